"""The Devices view on the emulated sensors: scan, per-sensor connect/disconnect, tap to assign, link loss.

Everything goes through the BLE reader (bleak's API) against Bumble's BLE stack, in real time; the
demo patient stands quietly unless a test makes it tap a sensor.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.gui.conftest import wait_scanned

from lumbar_gui.views.devices import COL_BATTERY, COL_BUTTON, COL_PLACEMENT, COL_SENSOR, COL_SIGNAL, COL_STATUS

COL_FAMILY = 1


def _emulated(win, row):
    """The emulated sensor (its configuration) behind a row of the Devices table."""
    return win.engine.link.emulator.sensor(win.devices.entries[row].address)


def _text_field_width(combo):
    """Width of the combo box's text field (without frame, padding and arrow), px."""
    from PySide6.QtWidgets import QStyle, QStyleOptionComboBox

    opt = QStyleOptionComboBox()
    combo.initStyleOption(opt)
    return combo.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, opt,
                                        QStyle.SubControl.SC_ComboBoxEditField, combo).width()


def _click(qtbot, button):
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_scan_lists_emulated_sensors_with_family_rssi_battery(qtbot, window):
    win = window
    d = win.devices
    wait_scanned(qtbot, win)
    assert win.engine.link.emulated and "Emulated sensors" in d.sub.text()
    # every emulated sensor advertises; the scan recognises its family from the advertisement
    assert [e.family for e in d.entries] == [_emulated(win, r).family for r in range(6)]
    assert sorted(e.family for e in d.entries) == ["lumbar_ref", "lumbar_ref", "polar_pmd"] + ["thingy52"] * 3
    # battery: read from each sensor's Battery service after the scan
    qtbot.waitUntil(lambda: all(e.battery_pct is not None for e in d.entries), timeout=20000)
    for r, e in enumerate(d.entries):
        assert e.battery_pct == _emulated(win, r).battery_pct
        assert d.table.item(r, COL_BATTERY).text() == f"{e.battery_pct:.0f} %"
        assert e.rssi_dbm is not None and d.table.item(r, COL_SIGNAL).text() == f"{e.rssi_dbm:.0f} dBm"
        assert d.table.item(r, COL_SENSOR).text() == e.name
        assert d.table.item(r, COL_FAMILY).text() == e.family
        assert d.table.item(r, COL_STATUS).text() == "available"
    # readable: the name column fits the longest name, the placement column its combo box
    fm = d.table.fontMetrics()
    widest = max(fm.horizontalAdvance(e.name) for e in d.entries)
    assert d.table.columnWidth(COL_SENSOR) >= widest + 8
    win.show_view(d)
    for combo in d._combos:
        for i in range(combo.count()):  # every placement's label fits the combo's text field
            combo.setCurrentIndex(i)
            assert _text_field_width(combo) >= combo.fontMetrics().horizontalAdvance(combo.currentText()), \
                combo.currentText()
            assert d.table.columnWidth(COL_PLACEMENT) >= combo.width()
        combo.setCurrentIndex(0)
    for b in d._buttons:
        for text in ("Connect", "Disconnect"):
            b.setText(text)
            assert b.width() >= b.sizeHint().width() and d.table.columnWidth(COL_BUTTON) >= b.width()


def test_connect_two_through_the_reader_then_disconnect_one(qtbot, window):
    from lumbar.types import SampleFlag
    from lumbar_gui.sources import BleSource

    win = window
    d = win.devices
    wait_scanned(qtbot, win)
    d.assign(0, "lumbar")  # LumbarRef Demo 1
    d.assign(2, "sacrum")  # Polar Sense Demo 3
    _click(qtbot, d._buttons[0])
    _click(qtbot, d._buttons[2])
    bus = win.engine.bus
    qtbot.waitUntil(lambda: all(p in bus.rings and bus.rings[p].total > 200 for p in ("lumbar", "sacrum")),
                    timeout=20000)
    src = win.engine.source
    assert isinstance(src, BleSource)
    for row, sid in ((0, "lumbar"), (2, "sacrum")):
        # the samples came through the reader (in its own process): it found the advertised sensor and
        # decoded its family's packets
        qtbot.waitUntil(lambda: bus.status[sid].samples > 0, timeout=5000)
        st = bus.status[sid]
        assert st.connected and st.address == d.entries[row].address and st.family == d.entries[row].family
        qtbot.waitUntil(lambda: win.engine.link.emulator.is_connected(d.entries[row].address), timeout=2000)
        b = bus.rings[sid].latest(200)
        assert np.all(np.diff(b.seq) == 1)
        # Host times are non-decreasing, not strictly increasing: in the first seconds the clock fit's
        # offset (the lowest arrival latency so far) drops whenever a packet arrives faster than all before;
        # a drop of more than one sample period makes the reader hold the next sample at the previous time
        # rather than run time backwards. Otherwise the times advance at the sensor's rate.
        dt = np.diff(b.time_s)
        assert np.all(dt >= 0), dt[dt < 0]
        assert abs(np.median(dt) * src.rates_hz[sid] - 1.0) < 0.02, np.median(dt)
        # standing still: gravity
        assert abs(np.nanmean(np.linalg.norm(b.acc, axis=1)) - 9.81) < 0.5
    qtbot.waitUntil(lambda: all(bus.status[s].achieved_rate_hz > 0 for s in ("lumbar", "sacrum")), timeout=10000)
    d.refresh()
    for row, sid in ((0, "lumbar"), (2, "sacrum")):
        assert d.table.item(row, COL_STATUS).text().startswith("streaming as")
        assert d._buttons[row].text() == "Disconnect"
    assert d.table.item(1, COL_STATUS).text() == "available"
    assert d.diagram.states == {"lumbar": "streaming", "sacrum": "streaming"}  # the figure shows them

    # disconnect the Polar only: the other keeps streaming
    _click(qtbot, d._buttons[2])
    qtbot.waitUntil(lambda: not bus.status["sacrum"].connected
                    and not win.engine.link.emulator.is_connected(d.entries[2].address), timeout=10000)
    # the sensor is reported disconnected only once its reader has stopped the stream, closed the link and
    # pushed what was still queued (BleSource._stop): from here on its ring must not grow
    stopped_at = bus.rings["sacrum"].total
    lumbar_at = bus.rings["lumbar"].total
    qtbot.waitUntil(lambda: bus.rings["lumbar"].total > lumbar_at + 150, timeout=10000)
    assert bus.rings["sacrum"].total == stopped_at
    assert bus.status["lumbar"].connected
    d.refresh()
    assert d._buttons[2].text() == "Connect" and d.table.item(2, COL_STATUS).text() == "available"
    assert d.table.item(0, COL_STATUS).text().startswith("streaming as")
    assert [s.sensor_id for s in win.engine.sensor_infos] == ["lumbar"]

    # and connect it again: the same reader continues, the gap is flagged
    _click(qtbot, d._buttons[2])
    qtbot.waitUntil(lambda: bus.rings["sacrum"].total > stopped_at + 100, timeout=20000)
    new = bus.rings["sacrum"].latest(bus.rings["sacrum"].total - stopped_at + 1)
    assert new.seq[1] > new.seq[0] + 1 and new.flags[1] & SampleFlag.GAP_BEFORE


def _wait_listening(qtbot, d, label):
    qtbot.waitUntil(lambda: d.tap_msg.text().startswith(f"Tap the sensor for {label}"), timeout=20000)


def test_tap_to_assign_picks_the_tapped_sensor(qtbot, window):
    win = window
    d = win.devices
    wait_scanned(qtbot, win)
    # nothing connected: every sensor streams onto the probe bus while listening
    assert d.start_tap("sacrum")
    _wait_listening(qtbot, d, "S1 (sacrum)")
    d.table.selectRow(3)  # Thingy Demo 4: the demo patient taps it
    _click(qtbot, d.demo_tap_btn)
    qtbot.waitUntil(lambda: d._tap is None, timeout=10000)
    assert "detected Thingy Demo 4" in d.tap_msg.text(), d.tap_msg.text()
    assert d.assignments() == {"sacrum": d.entries[3].address}
    assert win.engine._probe is None

    # with L1 streaming on the main bus (and watched there), tap another sensor for the left thigh
    d.assign(0, "lumbar")
    assert d.connect_assigned()
    bus = win.engine.bus
    qtbot.waitUntil(lambda: "lumbar" in bus.rings and bus.rings["lumbar"].total > 100
                    and "sacrum" in bus.rings and bus.rings["sacrum"].total > 100, timeout=20000)
    assert d.start_tap("thigh_left")
    assert d._tap["watch"][d.entries[0].address][0] is bus  # a connected sensor is watched where it streams
    _wait_listening(qtbot, d, "Left thigh")
    win.engine.tap_demo(d.entries[1].address)  # LumbarRef Demo 2, not connected
    qtbot.waitUntil(lambda: d._tap is None, timeout=10000)
    assert "detected LumbarRef Demo 2" in d.tap_msg.text(), d.tap_msg.text()
    assert d.assignments() == {"lumbar": d.entries[0].address, "sacrum": d.entries[3].address,
                               "thigh_left": d.entries[1].address}

    # tapping a connected sensor for another placement moves it there (reconnects under it)
    assert d.start_tap("thigh_right")
    _wait_listening(qtbot, d, "Right thigh")
    win.engine.tap_demo(d.entries[3].address)  # the Thingy, streaming as S1
    qtbot.waitUntil(lambda: d._tap is None, timeout=10000)
    assert "detected Thingy Demo 4" in d.tap_msg.text(), d.tap_msg.text()
    assert d.assignments()["thigh_right"] == d.entries[3].address and "sacrum" not in d.assignments()
    qtbot.waitUntil(lambda: "thigh_right" in bus.rings and bus.status["thigh_right"].connected, timeout=20000)
    assert win.engine.source.sensor_id_of(d.entries[3].address) == "thigh_right"


def test_tap_detector_refuses_when_several_sensors_move(qtbot, window):
    win = window
    d = win.devices
    wait_scanned(qtbot, win)
    assert d.start_tap("lumbar")
    _wait_listening(qtbot, d, "L1 (thoraco-lumbar)")
    win.engine.tap_demo(d.entries[0].address)
    win.engine.tap_demo(d.entries[2].address)
    qtbot.waitUntil(lambda: d.tap_msg.text().startswith("Several sensors moved"), timeout=10000)
    assert "LumbarRef Demo 1" in d.tap_msg.text() and "Polar Sense Demo 3" in d.tap_msg.text()
    assert d._tap is not None and d.assignments() == {}  # still listening, nothing assigned
    d.toggle_tap()
    assert d._tap is None and win.engine._probe is None


def test_link_loss_shows_and_recording_continues(qtbot, window, tmp_path):
    from lumbar.storage import read_session
    from lumbar.types import SampleFlag, SessionInfo
    from tests.gui.conftest import connect_demo

    win = window
    d = win.devices
    connect_demo(qtbot, win)
    win.show_view(d)
    bus = win.engine.bus
    rec = win.engine.start_recording(tmp_path / "loss.h5", SessionInfo("S001", protocol="quiet-standing"))
    qtbot.waitUntil(lambda: rec.written["sacrum"] > 50, timeout=10000)
    row = [e.address for e in d.entries].index(bus.status["sacrum"].address)
    # while recording, the recorded sensors keep their placements
    d.assign(row, "thigh_left")
    assert d._combos[row].currentData() == "sacrum" and "recording is running" in d.sub.text()
    assert not d.start_tap("thigh_left") and win.engine._probe is None
    d.table.selectRow(row)
    _click(qtbot, d.drop_btn)  # a real link loss on the virtual radio
    qtbot.waitUntil(lambda: not bus.status["sacrum"].connected, timeout=10000)
    qtbot.waitUntil(lambda: not win.engine.link.emulator.is_connected(d.entries[row].address), timeout=2000)
    lumbar_at = bus.rings["lumbar"].total
    d.refresh()
    assert d.table.item(row, COL_STATUS).text() == "link lost — reconnecting"
    assert d.diagram.states == {"lumbar": "streaming", "sacrum": "lost"}  # the figure shows it too
    win._update_status()
    assert "S1 ○ LOST" in win.status.text()
    qtbot.waitUntil(lambda: bus.rings["lumbar"].total > lumbar_at + 100, timeout=10000)  # L1 records on
    assert not bus.status["sacrum"].connected
    qtbot.waitUntil(lambda: bus.status["sacrum"].connected and bus.status["sacrum"].reconnects == 1, timeout=20000)
    back = bus.rings["sacrum"].total
    qtbot.waitUntil(lambda: bus.rings["sacrum"].total > back + 50, timeout=10000)
    d.refresh()
    assert d.table.item(row, COL_STATUS).text().startswith("streaming as")
    assert d.diagram.states == {"lumbar": "streaming", "sacrum": "streaming"}
    path = win.engine.stop_recording()
    assert win.engine.wait_saved()
    s = read_session(path)
    assert s.complete
    assert s.data["sacrum"].has_flag(SampleFlag.GAP_BEFORE).sum() == 1
    labels = [e.label for e in s.events]
    assert "disconnect" in labels and "reconnect" in labels
    assert len(s.data["lumbar"]) > len(s.data["sacrum"])
    assert win.engine._last_recorder.missed == 0


def test_without_an_adapter_the_emulated_sensors_are_used(qtbot, tmp_path):
    """On a host without a usable Bluetooth adapter the first scan says so and lists the emulated sensors."""
    import asyncio

    from bleak import BleakScanner
    from bleak.exc import BleakError

    async def probe() -> bool:
        try:
            await BleakScanner.discover(0.2)
            return True
        except (BleakError, OSError):
            return False

    if asyncio.run(probe()):
        pytest.skip("this host has a Bluetooth adapter")
    from lumbar_gui.app import MainWindow

    win = MainWindow(sessions_dir=tmp_path / "sessions", emulated=False)
    qtbot.addWidget(win)
    try:
        wait_scanned(qtbot, win)
        link = win.engine.link
        assert link.emulated and link.fallback_reason
        assert link.fallback_reason in win.devices.sub.text() and "Emulated sensors" in win.devices.sub.text()
        assert win.devices.drop_btn.isVisibleTo(win) and win.devices.demo_tap_btn.isVisibleTo(win)
    finally:
        win.close()


def _turned(u: np.ndarray, gyro: np.ndarray, rate: float) -> np.ndarray:
    """The gravity direction seen from a sensor (unit vector ``u`` at the start) after it turned as its
    gyroscope says: a world vector seen from a sensor turning at ω changes as −ω × v."""
    from scipy.spatial.transform import Rotation

    for w in gyro:
        u = Rotation.from_rotvec(-w / rate).apply(u)
    return u


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return math.degrees(math.atan2(np.linalg.norm(np.cross(a, b)), np.dot(a, b)))


def test_demo_patient_holds_the_start_position_until_go():
    """``perform(..., hold=True)``: the patient gets down on all fours (for rocking) in a few seconds, a turn
    the gyroscopes see as they would on a person, so the live orientation follows it; then holds the start
    position, repeating its first seconds, however long the operator waits; after ``go()`` the movement goes
    on from there, sample for sample the simulated trial; then the patient stands up again and idles."""
    import time

    from lumbar.simulate import simulate
    from lumbar_gui.sources import TRANSITION_S, DemoPatient

    p = DemoPatient(("lumbar", "sacrum"), 100.0, seed=5)
    p.prepare()
    rate = p.rate_hz
    stand, _ = p.samples("lumbar", np.arange(0, 100))
    p.samples("sacrum", np.arange(0, 100))
    job = p.perform("rocking", 30.0, hold=True, reps=3)
    while p._ready is None:
        assert p.last_error is None, p.last_error
        time.sleep(0.01)
    move = simulate("rocking", duration_s=30.0, seed=5, sensors=p.placements, rate_hz=rate, reps=3,
                    misalignment_deg=p._misalignment).batches
    k_hold = int(round(p.HOLD_S * rate))
    wait = np.arange(100, 100 + int(TRANSITION_S[1] * rate) + 3 * k_hold + 17)  # three holds and more: a slow operator
    acc, gyro = p.samples("lumbar", wait)
    assert p.started == job == 1
    lead = [s for s in p._timeline if s.movement == "rocking" and not s.loop]
    assert len(lead) == 1  # getting down: one segment before the held start position
    n_tr = len(lead[0].acc["lumbar"])
    assert TRANSITION_S[0] * rate <= n_tr <= TRANSITION_S[1] * rate
    # the trunk pitches about 90° onto all fours, and integrating the gyroscope over those seconds turns the
    # standing gravity direction into the kneeling one (what an orientation filter does with it)
    up0 = stand.mean(axis=0) / np.linalg.norm(stand.mean(axis=0))
    up1 = move["lumbar"].acc[:k_hold].mean(axis=0)
    assert 60.0 < _angle(up0, up1) < 120.0
    assert _angle(_turned(up0, gyro[:n_tr], rate), up1) < 3.0
    assert np.abs(np.linalg.norm(acc[:n_tr], axis=1) - 9.81).max() < 0.5  # at rest otherwise: 1 g throughout
    ring = np.arange(wait.size - n_tr) % k_hold
    assert np.array_equal(acc[n_tr:], move["lumbar"].acc[ring]) and np.array_equal(gyro[n_tr:], move["lumbar"].gyro[ring])
    acc_s, _ = p.samples("sacrum", wait)
    # in the start position: the pelvis near horizontal, so gravity is no longer along the standing axis
    assert abs(np.median(acc_s[n_tr:, 1])) < 0.5 * 9.81 and p.current_movement == "rocking"
    p.go()
    n_rest = len(move["sacrum"].acc) - k_hold
    after = np.arange(int(wait[-1]) + 1, int(wait[-1]) + 1 + n_rest + int(TRANSITION_S[1] * rate) + 50)
    for pl in ("sacrum", "lumbar"):
        acc, gyro = p.samples(pl, after)
        assert np.array_equal(acc[:n_rest], move[pl].acc[k_hold:])
        assert np.array_equal(gyro[:n_rest], move[pl].gyro[k_hold:])
    # standing up again (the lumbar sensor's samples): a turn the gyroscope sees, back to standing, then idle
    back = [s for s in p._timeline if s.movement == "quiet-standing" and not s.loop]
    assert len(back) == 1
    n_back = len(back[0].acc["lumbar"])
    end = move["lumbar"].acc[-25:].mean(axis=0)
    assert _angle(_turned(end / np.linalg.norm(end), gyro[n_rest : n_rest + n_back], rate), up0) < 3.0
    assert p.current_movement == "quiet-standing" and p.started == 1  # the same request, over: idle again


def test_demo_patient_moves_on_request_from_the_next_sample_and_taps_one_sensor():
    """The live patient's segment logic, without the radio: what the emulator asks for, sample by sample."""
    import time

    from lumbar.simulate import simulate
    from lumbar_gui.sources import DemoPatient

    p = DemoPatient(("lumbar", "sacrum"), 200.0, seed=3)
    p.prepare()
    rate = p.rate_hz
    idle = simulate("quiet-standing", duration_s=p.IDLE_S, seed=3, sensors=p.placements, rate_hz=rate,
                    misalignment_deg=p._misalignment).batches
    n_idle = len(idle["lumbar"])
    k = np.arange(0, 400)
    for pl in p.placements:
        acc, gyro = p.samples(pl, k)
        assert np.array_equal(acc, idle[pl].acc[k]) and np.array_equal(gyro, idle[pl].gyro[k])
    job = p.perform("flexion", 24.0, reps=2)
    while p._ready is None:  # simulated in a background thread
        assert p.last_error is None, p.last_error
        time.sleep(0.01)
    assert p.started == 0  # ready, not begun: it begins at the next sample asked for
    move = simulate("flexion", duration_s=24.0, seed=3, sensors=p.placements, rate_hz=rate, reps=2,
                    misalignment_deg=p._misalignment).batches
    n_move = len(move["lumbar"])
    # every sensor: the movement from the next sample on (even one that lags behind), then quiet standing again
    k = np.arange(400, 400 + n_move + 500)
    for pl in ("sacrum", "lumbar"):
        acc, gyro = p.samples(pl, k)
        assert np.array_equal(acc[:n_move], move[pl].acc) and np.array_equal(gyro[:n_move], move[pl].gyro)
        assert np.array_equal(acc[n_move:], idle[pl].acc[np.arange(500) % n_idle])
        assert p.current_movement == "quiet-standing"
    assert p.started == job == 1  # began (and ended: the patient idles again)
    # a tap: a burst on the tapped sensor only, from the next sample, for TAP_S
    p.tap("sacrum")
    k = np.arange(int(k[-1]) + 1, int(k[-1]) + 1 + int(rate))
    expected = {pl: idle[pl].acc[(k - (400 + n_move)) % n_idle] for pl in p.placements}
    acc_l, _ = p.samples("lumbar", k)
    acc_s, gyro_s = p.samples("sacrum", k)
    assert np.array_equal(acc_l, expected["lumbar"])
    dev = np.linalg.norm(acc_s - expected["sacrum"], axis=1)
    n_tap = int(round(p.TAP_S * rate))
    assert dev[0] > 20.0 and np.abs(gyro_s[:n_tap]).max() > 2.0
    assert np.array_equal(acc_s[n_tap:], expected["sacrum"][n_tap:])
