"""A recording killed with SIGKILL keeps every sample written up to 1 s before the kill."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np

from lumbar.storage import read_session, validate_file
from tests.storage.synthetic import make_batch

RECORDER = textwrap.dedent(
    """
    import sys, time
    from lumbar.storage import SessionWriter
    from lumbar.types import SensorInfo, SessionInfo
    from tests.storage.synthetic import make_batch

    sensors = [SensorInfo("lumbar", "lumbar", nominal_rate_hz=200.0), SensorInfo("sacrum", "sacrum", nominal_rate_hz=200.0)]
    w = SessionWriter(sys.argv[1], SessionInfo("S001", protocol="crash-test"), sensors)
    n = 0
    while True:  # 20 samples per sensor every 0.1 s: real time at 200 Hz
        for i, s in enumerate(sensors):
            w.append(make_batch(s.sensor_id, 20, start=n, seed=i))
        n += 20
        print(n, time.monotonic(), flush=True)
        time.sleep(0.1)
    """
)


def test_sigkill_keeps_data_up_to_last_flush(tmp_path, repo_root):
    path = tmp_path / "killed.h5"
    env = dict(os.environ, PYTHONPATH=str(repo_root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", RECORDER, str(path)], stdout=subprocess.PIPE, text=True, env=env)
    appended = []  # (samples appended per sensor, monotonic time)
    t_end = None
    try:
        for line in proc.stdout:
            n, t = line.split()
            appended.append((int(n), float(t)))
            if t_end is None:
                t_end = time.monotonic() + 3.0
            if time.monotonic() >= t_end:
                break
        kill_time = time.monotonic()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    must_have = max(n for n, t in appended if t <= kill_time - 1.0)
    assert must_have >= 200  # the test really recorded for a while

    rep = validate_file(path)
    assert rep.ok, rep.problems
    assert any("interrupted" in w for w in rep.warnings)
    s = read_session(path)
    assert not s.complete
    for i, sid in enumerate(("lumbar", "sacrum")):
        got = s.data[sid]
        assert len(got) >= must_have, f"{sid}: {len(got)} samples on disk, {must_have} appended ≥ 1 s before kill"
        want = make_batch(sid, len(got), start=0, seed=i)
        # Whatever is on disk is exactly what was appended (no garbage), in order.
        np.testing.assert_array_equal(got.seq, np.arange(len(got)))
        np.testing.assert_array_equal(got.time_s, want.time_s)
        np.testing.assert_allclose(got.acc, want.acc, atol=1e-6)
