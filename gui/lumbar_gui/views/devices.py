"""Devices: scan, assign placements (by hand or by tapping a sensor), connect and disconnect sensors one by
one, with battery, signal strength, status, achieved rate and loss live from the reader.

Everything Bluetooth goes through :mod:`lumbar.acquisition.reader` on the acquisition worker's loop
(:class:`~lumbar_gui.engine.Engine`); with emulated sensors the same code runs against Bumble's BLE stack.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QHeaderView, QLabel, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from lumbar.acquisition.bus import SampleRing, SensorStatus
from lumbar_gui.engine import Engine
from lumbar_gui.sources import PLACEMENTS, BleSource, DeviceEntry, EmulatedSource, batch_motion, loss_text
from lumbar_gui.widgets import COLORS, PlacementDiagram, card

NONE = "— not worn —"
COLUMNS = ["Sensor", "Family", "Address", "Battery", "Signal", "Placement", "Status", "Rate", "Loss", ""]
COL_SENSOR, COL_BATTERY, COL_SIGNAL, COL_PLACEMENT, COL_STATUS, COL_RATE, COL_LOSS, COL_BUTTON = 0, 3, 4, 5, 6, 7, 8, 9


class TapDetector:
    """Finds the one sensor that shows a motion burst while the others stay still.

    A sensor's *score* is the largest of ``|acc − median acc of its previous second| / acc_threshold_mps2``
    and ``|gyro| / gyro_threshold_rads`` over its new samples; ≥ 1 is a burst. After the first burst the
    detector waits ``settle_s`` (wall time, so every sensor's packets arrive) and decides: exactly one
    sensor burst and every other stayed below ``still_ratio`` → that sensor; otherwise several moved.

    Parameters
    ----------
    acc_threshold_mps2 : float
        Acceleration deviation that counts as a burst, m/s² (a finger tap gives several g).
    gyro_threshold_rads : float
        Angular rate that counts as a burst, rad/s.
    still_ratio : float
        The others must stay below this fraction of the thresholds.
    settle_s : float
        Wall-clock wait after the first burst before deciding, s.
    """

    def __init__(self, acc_threshold_mps2: float = 4.0, gyro_threshold_rads: float = 1.5, *,
                 still_ratio: float = 0.5, settle_s: float = 0.4, history_s: float = 1.0) -> None:
        self.acc_threshold_mps2 = acc_threshold_mps2
        self.gyro_threshold_rads = gyro_threshold_rads
        self.still_ratio = still_ratio
        self.settle_s = settle_s
        self.history_s = history_s
        self._cursor: dict[str, int] = {}
        self._hist: dict[str, np.ndarray] = {}
        self._rate: dict[str, float] = {}
        self.reset()

    def reset(self) -> None:
        """Forget bursts seen so far (baselines stay)."""
        self.peak: dict[str, float] = {}
        self._first_burst: float | None = None

    def ready(self, keys: Any) -> bool:
        """Whether every sensor in ``keys`` has a baseline (streams)."""
        return all(len(self._hist.get(k, ())) >= 10 for k in keys)

    def update(self, rings: dict[str, SampleRing], rates_hz: dict[str, float],
               now_s: float | None = None) -> tuple[str, list[str]] | None:
        """Take the rings' new samples; ``("detected", [key])`` or ``("several", keys)`` once decided."""
        now = time.monotonic() if now_s is None else now_s
        for key, ring in rings.items():
            n_hist = max(10, int(self.history_s * rates_hz.get(key, 100.0)))
            if key not in self._cursor:
                acc, _ = batch_motion(ring.latest(n_hist))
                self._hist[key] = acc
                self._cursor[key] = ring.total
                continue
            batch, self._cursor[key], _missed = ring.since(self._cursor[key])
            acc, gyro = batch_motion(batch)
            if not len(acc):
                continue
            hist = self._hist[key]
            if len(hist) >= 10:
                base = np.median(hist, axis=0)
                score = max(float(np.linalg.norm(acc - base, axis=1).max()) / self.acc_threshold_mps2,
                            float(np.linalg.norm(gyro, axis=1).max()) / self.gyro_threshold_rads)
                self.peak[key] = max(self.peak.get(key, 0.0), score)
                if score >= 1.0 and self._first_burst is None:
                    self._first_burst = now
            self._hist[key] = np.concatenate([hist, acc])[-n_hist:]
        if self._first_burst is None or now - self._first_burst < self.settle_s:
            return None
        movers = [k for k, v in self.peak.items() if v >= 1.0]
        others_still = all(v < self.still_ratio for k, v in self.peak.items() if k not in movers)
        self.reset()
        if len(movers) == 1 and others_still:
            return "detected", movers
        return "several", sorted(movers)


class DevicesView(QWidget):
    """The Devices page.

    Parameters
    ----------
    engine : Engine
    emulated : bool
        Emulated sensors (Bumble) instead of the host's Bluetooth adapter; without an adapter the
        first scan switches to them by itself.
    rate_hz : float
        Output rate offered first, Hz (100 or 200).
    """

    title = "Devices"

    def __init__(self, engine: Engine, *, emulated: bool = False, rate_hz: float = 100.0,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("page")
        self.engine = engine
        self.entries: list[DeviceEntry] = []
        self._combos: list[QComboBox] = []
        self._buttons: list[QPushButton] = []
        self._auto: tuple[str, ...] | None = None
        self._tap: dict[str, Any] | None = None
        outer = QVBoxLayout(self)
        outer.setContentsMargins(16, 12, 16, 12)
        head = QHBoxLayout()
        t = QLabel("Sensors")
        t.setObjectName("title")
        head.addWidget(t)
        self.sub = QLabel("")
        self.sub.setObjectName("subtitle")
        self.sub.setWordWrap(True)
        head.addWidget(self.sub, 1)
        outer.addLayout(head)
        c, lay = card("Sensors in range")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        hh = self.table.horizontalHeader()
        for col in range(len(COLUMNS)):
            hh.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(COL_STATUS, QHeaderView.ResizeMode.Stretch)
        for col in (COL_PLACEMENT, COL_BUTTON):  # cell widgets: sized in _fit_widgets
            hh.setSectionResizeMode(col, QHeaderView.ResizeMode.Fixed)
        self.table.setStyleSheet("QTableWidget::item { padding: 0px 8px; }")  # room around names and numbers
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        lay.addWidget(self.table, 1)
        btns = QHBoxLayout()
        self.scan_btn = QPushButton("Scan")
        self.scan_btn.clicked.connect(self.scan)
        self.rate = QComboBox()
        self.rate.addItems(["100 Hz", "200 Hz"])
        self.rate.setCurrentIndex(1 if rate_hz >= 200 else 0)
        self.connect_btn = QPushButton("Connect assigned sensors")
        self.connect_btn.setObjectName("primary")
        self.connect_btn.clicked.connect(self.connect_assigned)
        self.disconnect_btn = QPushButton("Disconnect all")
        self.disconnect_btn.clicked.connect(self.disconnect_all)
        self.drop_btn = QPushButton("Simulate link loss (3 s)")
        self.drop_btn.setToolTip("Emulated sensors only: the selected sensor's link drops for 3 s")
        self.drop_btn.clicked.connect(self.drop_selected)
        btns.addWidget(self.scan_btn)
        btns.addWidget(QLabel("Output rate"))
        btns.addWidget(self.rate)
        btns.addStretch(1)
        btns.addWidget(self.drop_btn)
        btns.addWidget(self.disconnect_btn)
        btns.addWidget(self.connect_btn)
        lay.addLayout(btns)
        outer.addWidget(c, 1)
        bottom = QHBoxLayout()
        outer.addLayout(bottom, 1)  # the table and the figure share the height
        left = QVBoxLayout()
        bottom.addLayout(left, 1)

        tc, tl = card("Tap to assign")
        trow = QHBoxLayout()
        trow.addWidget(QLabel("Placement"))
        self.tap_placement = self._placement_combo(with_none=False)
        trow.addWidget(self.tap_placement)
        self.tap_btn = QPushButton("Start: tap the sensor")
        self.tap_btn.clicked.connect(self.toggle_tap)
        trow.addWidget(self.tap_btn)
        self.demo_tap_btn = QPushButton("Tap selected sensor (demo)")
        self.demo_tap_btn.setToolTip("Emulated sensors only: the demo patient taps the selected sensor")
        self.demo_tap_btn.clicked.connect(self.demo_tap_selected)
        trow.addWidget(self.demo_tap_btn)
        trow.addStretch(1)
        tl.addLayout(trow)
        self.tap_msg = QLabel("Pick a placement, press Start and tap (or shake) the sensor worn there; "
                              "the sensor that moves while the others stay still is assigned.")
        self.tap_msg.setWordWrap(True)
        tl.addWidget(self.tap_msg)
        left.addWidget(tc)

        help_card, hl = card("How to place the sensors")
        tip = QLabel("<ol style='margin-left:-20px'>"
                     "<li><b>Attach</b> each sensor with tape on the skin, its long side vertical: <b>L1</b> on the "
                     "spine at the thoraco-lumbar junction (T12/L1); <b>S1</b> on the sacrum, centred between the "
                     "dimples of Venus; <b>thighs</b> (optional) lateral, mid-thigh; <b>shanks</b> (optional, for the "
                     "knee tests) lateral, mid-shank.</li>"
                     "<li><b>Assign</b> each sensor's placement in the table, or with <i>Tap to assign</i>.</li>"
                     "<li><b>Connect</b>: the rate should reach the output rate and the loss stay at 0 %.</li>"
                     "<li><b>Zero posture</b> (Live, or the assessment's calibration): the patient stands upright "
                     "and still for 5 s.</li></ol>"
                     "A sensor that drops out shows here in red; the recording continues and the gap is flagged "
                     "in the file.")
        tip.setWordWrap(True)
        hl.addWidget(tip)
        hl.addStretch(1)
        left.addWidget(help_card, 1)
        fig_card, fl = card("Placements")
        self.diagram = PlacementDiagram()
        fl.addWidget(self.diagram, 1)
        fig_card.setMinimumWidth(300)
        bottom.addWidget(fig_card)
        engine.devices_found.connect(self._on_found)
        engine.device_battery.connect(self._on_battery)
        engine.use_link(emulated)
        self._show_emulated_controls()
        self.scan()

    # -- helpers --------------------------------------------------------------------------------------
    @staticmethod
    def _placement_combo(with_none: bool = True) -> QComboBox:
        combo = QComboBox()
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        if with_none:
            combo.addItem(NONE, "")
        for key, label in PLACEMENTS.items():
            combo.addItem(label, key)
        return combo

    @property
    def emulated(self) -> bool:
        return bool(self.engine.link is not None and self.engine.link.emulated)

    def _show_emulated_controls(self) -> None:
        self.drop_btn.setVisible(self.emulated)
        self.demo_tap_btn.setVisible(self.emulated)

    def _source(self) -> BleSource | None:
        src = self.engine.source
        return src if isinstance(src, BleSource) else None

    def _sid(self, row: int) -> str | None:
        """Sensor id under which the row's sensor is connected (or connecting), if any."""
        src = self._source()
        return src.sensor_id_of(self.entries[row].address) if src is not None else None

    def _row_of(self, address: str) -> int | None:
        for r, e in enumerate(self.entries):
            if e.address.upper() == address.upper():
                return r
        return None

    def selected_row(self) -> int | None:
        rows = {i.row() for i in self.table.selectedIndexes()}
        return min(rows) if rows else None

    def rate_hz(self) -> float:
        return 200.0 if self.rate.currentIndex() == 1 else 100.0

    def _target(self, row: int, sensor_id: str) -> Any:
        from lumbar.acquisition.reader import SensorTarget

        e = self.entries[row]
        return SensorTarget(sensor_id, address=e.address, name=e.name or None, family=e.family or None,
                            rate_hz=self.rate_hz())

    # -- scan -----------------------------------------------------------------------------------------
    def scan(self) -> None:
        """Scan in the background (the table is filled when it ends)."""
        if self.engine.scan():
            self.scan_btn.setEnabled(False)
            self.sub.setText("Scanning…")
        else:
            self.sub.setText("The last scan is still reading battery levels; scan again in a moment.")

    def auto_connect(self, placements: tuple[str, ...] = ("lumbar", "sacrum")) -> None:
        """Once the scan has listed the sensors, assign ``placements`` to the first rows and connect."""
        self._auto = tuple(placements)
        if self.entries and not self.engine.scanning:
            self._run_auto()

    def _run_auto(self) -> None:
        pl, self._auto = self._auto, None
        if pl:
            for row, p in enumerate(pl[: len(self.entries)]):
                self.assign(row, p)
            self.connect_assigned()

    def _on_found(self, found: list[DeviceEntry] | None) -> None:
        self.scan_btn.setEnabled(True)
        self._show_emulated_controls()
        if found is None:  # the scan failed (the message is in the status bar)
            self.sub.setText("Scan failed; see the message below.")
            return
        link = self.engine.link
        where = ("Emulated sensors (Bumble BLE stack)" + (f" — {link.fallback_reason}" if link.fallback_reason else "")
                 if self.emulated else "Bluetooth adapter")
        self.sub.setText(f"{where}: {len(found)} sensor{'s' if len(found) != 1 else ''} found")
        # keep the sensors that are connected (they do not advertise while connected) and every placement
        placements = {e.address: c.currentData() for e, c in zip(self.entries, self._combos)}
        src = self._source()
        keep = [e for e in self.entries if src is not None and src.sensor_id_of(e.address)]
        known = {e.address for e in keep}
        old = {e.address: e for e in self.entries}
        for e in found:
            if e.address not in known:
                if e.battery_pct is None and e.address in old:
                    e.battery_pct = old[e.address].battery_pct
                keep.append(e)
        self.entries = sorted(keep, key=lambda e: (e.name, e.address))
        self._build_rows(placements)
        if self._auto:
            self._run_auto()

    def _on_battery(self, address: str, pct: float) -> None:
        r = self._row_of(address)
        if r is not None:
            self.entries[r].battery_pct = pct
            self._set(r, COL_BATTERY, _pct(pct))

    def _build_rows(self, placements: dict[str, str]) -> None:
        self.table.setRowCount(len(self.entries))
        self._combos, self._buttons = [], []
        for r, e in enumerate(self.entries):
            vals = [e.name or "(no name)", e.family, e.address, _pct(e.battery_pct), _dbm(e.rssi_dbm), None,
                    "available", "–", "–"]
            for col, v in enumerate(vals):
                if v is not None:
                    self.table.setItem(r, col, QTableWidgetItem(v))
            combo = self._placement_combo()
            combo.setCurrentIndex(max(0, combo.findData(placements.get(e.address, ""))))
            combo.currentIndexChanged.connect(lambda _i, c=combo: self._placement_changed(self._combos.index(c)))
            self.table.setCellWidget(r, COL_PLACEMENT, combo)
            self._combos.append(combo)
            btn = QPushButton("Connect")
            btn.clicked.connect(lambda _c=False, b=btn: self.toggle_row(self._buttons.index(b)))
            self.table.setCellWidget(r, COL_BUTTON, btn)
            self._buttons.append(btn)
        self._fit_widgets()
        self.refresh()

    def _fit_widgets(self) -> None:
        """Placement combos and row buttons as wide as their longest text (+ room), columns to match."""
        if not self._combos:
            return
        combo_w = max(c.sizeHint().width() for c in self._combos) + 16
        probe = QPushButton("Disconnect")
        probe.setStyle(self._buttons[0].style())
        btn_w = max(probe.sizeHint().width(), *(b.sizeHint().width() for b in self._buttons)) + 8
        for c in self._combos:
            c.setMinimumWidth(combo_w)
        for b in self._buttons:
            b.setMinimumWidth(btn_w)
        self.table.setColumnWidth(COL_PLACEMENT, combo_w + 8)
        self.table.setColumnWidth(COL_BUTTON, btn_w + 8)

    # -- placements -------------------------------------------------------------------------------------
    def assign(self, row: int, placement: str) -> None:
        """Pick a placement for a row (as the operator does with the combo box)."""
        combo = self._combos[row]
        combo.setCurrentIndex(max(0, combo.findData(placement)))

    def assignments(self) -> dict[str, str]:
        """placement → address of the rows with a placement."""
        return {c.currentData(): e.address for e, c in zip(self.entries, self._combos) if c.currentData()}

    def _placement_changed(self, row: int) -> None:
        """One sensor per placement; a connected sensor moves to its new placement (reconnects under it)."""
        placement = self._combos[row].currentData()
        sid = self._sid(row)
        taken = bool(placement) and any(self._sid(r) == placement for r in range(len(self.entries)) if r != row)
        if self.engine.recorder is not None and (sid is not None or taken):
            # the file's sensors are fixed when the recording starts: keep what is recorded as it is
            combo = self._combos[row]
            combo.blockSignals(True)
            combo.setCurrentIndex(max(0, combo.findData(sid or "")))
            combo.blockSignals(False)
            self.sub.setText("A recording is running: stop it before changing the placement of a connected sensor.")
            return
        if placement:
            for r, c in enumerate(self._combos):
                if r != row and c.currentData() == placement:
                    c.blockSignals(True)
                    c.setCurrentIndex(0)
                    c.blockSignals(False)
                    if self._sid(r) is not None:  # the sensor that was worn there is no longer
                        self.engine.disconnect_sensor(str(self._sid(r)))
        sid = self._sid(row)
        if sid is not None and sid != placement:
            self.engine.disconnect_sensor(sid)
            if placement:
                self.engine.connect_sensors([self._target(row, placement)])

    # -- connect / disconnect -----------------------------------------------------------------------
    def connect_assigned(self) -> bool:
        """Connect every sensor with a placement (those not yet connected)."""
        rows = [r for r, c in enumerate(self._combos) if c.currentData()]
        if not rows:
            self.sub.setText("Assign a placement to at least one sensor first (by hand or with Tap to assign).")
            return False
        self._stop_tap("")
        self.engine.connect_sensors([self._target(r, self._combos[r].currentData()) for r in rows
                                     if self._sid(r) != self._combos[r].currentData()])
        return True

    def toggle_row(self, row: int) -> None:
        """The row's button: connect the sensor at its placement, or disconnect it."""
        sid = self._sid(row)
        if sid is not None:
            self.engine.disconnect_sensor(sid)
            return
        placement = self._combos[row].currentData()
        if not placement:
            self.sub.setText(f"Choose a placement for {self.entries[row].name} first (or use Tap to assign).")
            return
        self._stop_tap("")
        self.engine.connect_sensors([self._target(row, placement)])

    def disconnect_all(self) -> None:
        self._stop_tap("")
        self.engine.disconnect_source()

    def drop_selected(self) -> None:
        """Emulated sensors: the selected sensor's link drops on the virtual radio for 3 s."""
        src, row = self.engine.source, self.selected_row()
        if isinstance(src, EmulatedSource) and row is not None:
            sid = self._sid(row)
            if sid is not None:
                src.drop(sid, 3.0)

    # -- tap to assign -----------------------------------------------------------------------------------
    def toggle_tap(self) -> None:
        if self._tap is None:
            self.start_tap()
        else:
            self._stop_tap("Tap to assign cancelled.")

    def start_tap(self, placement: str | None = None) -> bool:
        """Listen for a tap on one of the listed sensors; it gets ``placement`` (default: the one chosen)."""
        if placement is not None:
            self.tap_placement.setCurrentIndex(max(0, self.tap_placement.findData(placement)))
        placement = self.tap_placement.currentData()
        if self.engine.recorder is not None:
            self.tap_msg.setText("A recording is running: stop it before assigning placements by tapping.")
            return False
        if not self.entries:
            self.tap_msg.setText("Scan first: no sensors are listed.")
            return False
        # sensors streaming already are watched on the bus; the others stream onto a probe bus meanwhile
        watch: dict[str, tuple[Any, str]] = {}
        probes = []
        for r, e in enumerate(self.entries):
            sid = self._sid(r)
            if sid is not None:
                watch[e.address] = (self.engine.bus, sid)
            else:
                probes.append((e.address, self._target(r, f"probe_{r}")))
        probe_bus = self.engine.start_probe([t for _, t in probes]) if probes else None
        for address, t in probes:
            watch[address] = (probe_bus, t.sensor_id)
        self._tap = {"placement": placement, "watch": watch, "detector": TapDetector(), "ready": False}
        self.tap_btn.setText("Cancel")
        self.tap_msg.setText(f"Connecting the sensors to listen for a tap for {PLACEMENTS[placement]}…")
        return True

    def _stop_tap(self, message: str) -> None:
        if self._tap is None:
            return
        self._tap = None
        self.engine.stop_probe()
        self.tap_btn.setText("Start: tap the sensor")
        if message:
            self.tap_msg.setText(message)

    def demo_tap_selected(self) -> None:
        row = self.selected_row()
        if row is None:
            self.tap_msg.setText("Select the sensor the demo patient should tap.")
            return
        self.engine.tap_demo(self.entries[row].address)

    def _tap_step(self) -> None:
        tap = self._tap
        assert tap is not None
        rings, rates = {}, {}
        for address, (bus, sid) in tap["watch"].items():
            ring = bus.rings.get(sid)
            st = bus.status.get(sid)
            if ring is not None and st is not None and st.connected:
                rings[address] = ring
                rates[address] = float(st.achieved_rate_hz or self.rate_hz())
        det: TapDetector = tap["detector"]
        label = PLACEMENTS[tap["placement"]]
        result = det.update(rings, rates)
        if not tap["ready"] and det.ready(tap["watch"]):
            tap["ready"] = True
            self.tap_msg.setText(f"Tap the sensor for {label} … (the others must stay still)")
        if result is None:
            return
        kind, keys = result
        names = [self.entries[r].name for r in (self._row_of(k) for k in keys) if r is not None]
        if kind == "several":
            self.tap_msg.setText(f"Several sensors moved ({', '.join(names)}); tap only the sensor for {label}.")
            return
        row = self._row_of(keys[0])
        self._stop_tap(f"Tap the sensor for {label} … detected {names[0]}: assigned to {label}.")
        if row is not None:
            self.assign(row, tap["placement"])
            self.table.selectRow(row)
            if self._sid(row) is None:
                self.tap_msg.setText(self.tap_msg.text() + " Connect it with its row's button or "
                                     "Connect assigned sensors.")

    # -- live ---------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        if self._tap is not None:
            self._tap_step()
        bus = self.engine.bus
        for r, e in enumerate(self.entries):
            sid = self._sid(r)
            st: SensorStatus | None = bus.status.get(sid) if sid is not None else None
            if st is None:
                probe = self._tap["watch"].get(e.address) if self._tap is not None else None
                status = ("listening for a tap", COLORS["muted"]) if probe is not None and probe[0] is not bus else (
                    "available", COLORS["muted"])
                vals = {COL_STATUS: status, COL_RATE: ("–", None), COL_LOSS: ("–", None)}
                btn = "Connect"
            else:
                if st.connected:
                    status = (f"streaming as {PLACEMENTS.get(sid, sid).split(' (')[0]}", COLORS["ok"])
                elif st.message.startswith("link lost"):
                    status = ("link lost — reconnecting", COLORS["bad"])
                elif st.message == "connecting":
                    status = ("connecting…", COLORS["muted"])
                else:
                    status = (st.message or "not connected", COLORS["bad"])
                vals = {COL_BATTERY: (_pct(st.battery_pct if st.battery_pct is not None else e.battery_pct), None),
                        COL_SIGNAL: (_dbm(st.rssi_dbm if st.rssi_dbm is not None else e.rssi_dbm), None),
                        COL_STATUS: status,
                        COL_RATE: (f"{st.achieved_rate_hz:.0f} Hz" if st.connected or st.achieved_rate_hz else "–", None),
                        COL_LOSS: (loss_text(st), COLORS["bad"] if st.loss_pct > 1 else None)}
                btn = "Disconnect"
            for col, (text, color) in vals.items():
                self._set(r, col, text, color)
            if r < len(self._buttons) and self._buttons[r].text() != btn:
                self._buttons[r].setText(btn)
        self.diagram.set_states(self.placement_states())

    def placement_states(self) -> dict[str, str]:
        """placement → "streaming", "lost", "connecting", "failed" or "assigned" (:class:`PlacementDiagram`)."""
        states: dict[str, str] = {}
        bus = self.engine.bus
        for r, combo in enumerate(self._combos):
            sid = self._sid(r)
            placement = sid or combo.currentData()
            if not placement:
                continue
            st = bus.status.get(sid) if sid is not None else None
            if st is None:
                states[placement] = "connecting" if sid is not None else "assigned"
            elif st.connected:
                states[placement] = "streaming"
            elif st.message.startswith("link lost"):
                states[placement] = "lost"
            else:
                states[placement] = "connecting" if st.message == "connecting" else "failed"
        return states

    def _set(self, row: int, col: int, text: str, color: str | None = None) -> None:
        it = self.table.item(row, col)
        if it is None:
            it = QTableWidgetItem()
            self.table.setItem(row, col, it)
        if it.text() != text:
            it.setText(text)
        if color:
            it.setForeground(_brush(color))


def _pct(v: Any) -> str:
    return "–" if v is None else f"{v:.0f} %"


def _dbm(v: Any) -> str:
    return "–" if v is None else f"{v:.0f} dBm"


def _brush(color: str) -> Any:
    from PySide6.QtGui import QBrush, QColor

    return QBrush(QColor(color))
