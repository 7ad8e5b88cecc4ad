"""The GUI's recorder finishes a file on its own thread: stopping never waits for the disk."""
from __future__ import annotations

import threading

import numpy as np

from lumbar.acquisition.bus import LiveBus
from lumbar.storage import read_session
from lumbar.types import ImuBatch, SensorInfo, SessionInfo


def _push(bus, sid, start, n, rate=100.0):
    k = np.arange(start, start + n)
    bus.push(ImuBatch.create(sid, k / rate, np.tile([0.0, 0.0, 9.81], (n, 1)), np.zeros((n, 3)), seq=k))


def test_the_file_is_finished_on_the_recorders_thread_with_every_sample(tmp_path, monkeypatch):
    from lumbar.storage.writer import SessionWriter
    from lumbar_gui.recording import Recorder

    closed_on: list[str] = []
    real_close = SessionWriter.close
    release = threading.Event()

    def slow_close(self):  # a slow disk: closing waits until the test lets it go
        closed_on.append(threading.current_thread().name)
        assert release.wait(10.0)
        real_close(self)

    monkeypatch.setattr(SessionWriter, "close", slow_close)
    bus = LiveBus(capacity_s=10.0)
    for sid in ("lumbar", "sacrum"):
        bus.add_sensor(sid, 100.0)
    rec = Recorder(bus, tmp_path / "s.h5", SessionInfo("T01"), [SensorInfo("lumbar", "lumbar"),
                                                                 SensorInfo("sacrum", "sacrum")], period_s=0.02)
    for i in range(0, 300, 10):
        _push(bus, "lumbar", i, 10)
        _push(bus, "sacrum", i, 10)
    rec.mark(1.0, "trial_start")
    rec.finish()  # returns at once: the caller (the GUI thread) is not the one waiting for the disk
    assert not rec.saved.is_set()
    assert not rec.wait(0.2)  # still closing, on its own thread
    release.set()
    assert rec.wait(10.0) and rec.error is None
    assert closed_on == ["lumbar-recorder"]
    s = read_session(rec.path)
    assert s.complete
    for sid in ("lumbar", "sacrum"):
        np.testing.assert_array_equal(s.data[sid].seq, np.arange(300))  # every sample, in order
    assert [e.label for e in s.events] == ["trial_start"]


def test_a_failure_while_finishing_is_reported_and_the_wait_ends(tmp_path, monkeypatch):
    from lumbar.storage.writer import SessionWriter
    from lumbar_gui.recording import Recorder

    def broken_close(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(SessionWriter, "close", broken_close)
    bus = LiveBus(capacity_s=10.0)
    bus.add_sensor("lumbar", 100.0)
    rec = Recorder(bus, tmp_path / "s.h5", SessionInfo("T01"), [SensorInfo("lumbar", "lumbar")], period_s=0.02)
    _push(bus, "lumbar", 0, 50)
    assert rec.stop(timeout_s=10.0) == rec.path
    assert rec.saved.is_set()
    assert "No space left on device" in (rec.error or "")


def test_engine_stop_returns_the_path_and_announces_the_saved_file(qtbot, tmp_path):
    from lumbar_gui.engine import Engine

    eng = Engine()
    try:
        eng.bus.add_sensor("lumbar", 100.0)
        eng.sensor_infos = [SensorInfo("lumbar", "lumbar")]
        events: list[tuple[bool, str]] = []
        eng.recording_changed.connect(lambda on, p: events.append((on, p)))
        rec = eng.start_recording(tmp_path / "e.h5", SessionInfo("T02"))
        _push(eng.bus, "lumbar", 0, 120)
        path = eng.stop_recording()
        assert path == rec.path and eng.recorder is None
        assert eng.wait_saved(10.0)
        eng.poll()  # the GUI timer: the saved file is announced on the GUI thread
        assert events == [(True, str(path)), (False, str(path))]
        assert read_session(path).complete
        eng.poll()
        assert len(events) == 2  # announced once
    finally:
        eng.shutdown()


def test_a_file_that_cannot_be_created_is_reported_not_raised_on_the_gui_thread(qtbot, tmp_path):
    """The file is created on the recorder's thread (no disk wait, no h5py import on the GUI thread); when
    it cannot be, the operator is told and the application goes on."""
    from lumbar_gui.engine import Engine

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the session folder should be")
    eng = Engine()
    try:
        eng.bus.add_sensor("lumbar", 100.0)
        eng.sensor_infos = [SensorInfo("lumbar", "lumbar")]
        messages: list[str] = []
        eng.message.connect(messages.append)
        rec = eng.start_recording(blocker / "s.h5", SessionInfo("T03"))  # returns; the failure comes later
        assert rec.wait(10.0)
        assert rec.error and rec.error.startswith(f"the session file {blocker / 's.h5'} could not be created: ")
        assert "Errno" not in rec.error
        eng.poll()
        assert len(messages) == 1 and messages[0].startswith("recording failed:") and "not-a-folder" in messages[0]
        assert not blocker.with_name("s.h5").exists()
        eng.stop_recording()
        assert eng.wait_saved(5.0)
    finally:
        eng.shutdown()
