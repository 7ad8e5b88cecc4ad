"""Live acquisition under the emulator: latency, CPU, capacity (not collected by pytest; run as a script).

    python tests/benchmarks/bench_acquisition.py [--seconds 10] [--rates 200,400,800] [--max-sensors 16]

Everything in one process on the real clock (real time): emulated sensors (Bumble GATT
servers), the virtual link, the Bumble central behind bleak, the reader (decode, clock sync)
and a :class:`LiveBus`.

* **latency**: wall time from the emulated sensor's ``notify`` call to the moment the
  packet's last sample is pushed to the bus (Polar: after ACC and GYRO are paired);
* **CPU**: process CPU time / wall time while streaming, whole process (emulator and both
  sides of the BLE stack included: the reader alone costs less);
* **capacity**: lumbar_ref sensors at each rate, doubling the count until one of: a sent
  sample missing from the bus, p99 of (bus push - sample instant) above 150 ms (falling
  behind), or CPU above 95 % of the one core the asyncio loop runs on.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import time

import numpy as np

from lumbar.acquisition.bus import LiveBus
from lumbar.acquisition.emulated import EmulatedSensor, Emulator
from lumbar.acquisition.reader import Reader, SensorTarget

PLACEMENTS = ("lumbar", "sacrum", "thigh_left", "thigh_right")


def _last_sample_key(family: str, payload: bytes) -> int | None:
    """Device time of a data notification's last sample, in 10 µs units (as the reader will see it)."""
    if family == "lumbar_ref" and len(payload) >= 16:
        n = payload[1]
        t_us = int.from_bytes(payload[8:14], "little")
        period = int.from_bytes(payload[14:16], "little")
        return round((t_us + period * (n - 1)) / 10)
    if family == "polar_pmd" and len(payload) >= 10:
        return round(int.from_bytes(payload[1:9], "little") / 10_000)
    return None


async def _run(family: str, n_sensors: int, rate_hz: float, seconds: float) -> dict[str, float]:
    sensors = [EmulatedSensor(family, PLACEMENTS[i % 4], seed=i, jitter_ms=0.0, burst_prob=0.0,
                              conn_interval_ms=15.0) for i in range(n_sensors)]
    emu = Emulator(sensors, duration_s=seconds + 20.0, rate_hz=max(200.0, rate_hz), clock_drift_ppm=0.0)
    sent: dict[tuple[str, int], float] = {}
    pushed: dict[tuple[str, int], tuple[float, float]] = {}
    bus = LiveBus()
    async with emu:
        assert emu.radio is not None
        ids = {}
        for i, s in enumerate(sensors):
            sid = f"s{i}"
            ids[emu.address(s)] = sid
            p = emu.peripheral(s)
            orig = p.notify

            async def notify(uuid, data, _orig=orig, _sid=sid):  # type: ignore[no-untyped-def]
                k = _last_sample_key(family, bytes(data))
                if k is not None:
                    sent.setdefault((_sid, k), time.perf_counter())
                return await _orig(uuid, data)

            p.notify = notify  # type: ignore[method-assign]
        targets = [SensorTarget(f"s{i}", address=emu.address(s), rate_hz=rate_hz) for i, s in enumerate(sensors)]
        for t in targets:
            bus.add_sensor(t.sensor_id, rate_hz)

        def sink(batch):  # type: ignore[no-untyped-def]
            now, mono = time.perf_counter(), time.monotonic()
            bus.push(batch)
            for d in np.round(batch.device_time_s * 1e5).astype(np.int64).tolist():
                pushed[(batch.sensor_id, d)] = (now, mono)

        reader = Reader(targets, sink, clock=emu.clock, scanner_backend=emu.radio.scanner_backend,
                        client_backend=emu.radio.client_backend)
        reader.start()
        t_end = time.monotonic() + 15.0
        while time.monotonic() < t_end and not all(st.connected for st in reader.status.values()):
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # settle
        sent.clear()
        pushed.clear()
        c0, w0 = time.process_time(), time.perf_counter()
        t_start = time.monotonic()
        await asyncio.sleep(seconds)
        cpu = (time.process_time() - c0) / (time.perf_counter() - w0)
        t_stop = time.monotonic()
        await asyncio.sleep(0.5)  # let the last packets through
        await reader.stop()
    lat = np.array([pushed[k][0] - t for k, t in sent.items() if k in pushed])
    # completeness and lag over the measured window: every sample the emulator sent, on the bus
    missing = 0
    lag = []
    for s, sid in zip(sensors, [f"s{i}" for i in range(n_sensors)]):
        log = s.log.arrays()
        keep = (log["fate"] == "sent") & (log["true_time_s"] > t_start) & (log["true_time_s"] < t_stop - 0.2)
        for d, tt in zip(np.round(log["device_time_s"][keep] * 1e5).astype(np.int64).tolist(),
                         log["true_time_s"][keep].tolist()):
            got = pushed.get((sid, d))
            if got is None:
                missing += 1
            else:
                lag.append(got[1] - tt)
    lost = sum(st.lost_samples for st in reader.status.values())
    return {
        "latency_median_ms": float(np.median(lat) * 1e3) if lat.size else float("nan"),
        "latency_p99_ms": float(np.percentile(lat, 99) * 1e3) if lat.size else float("nan"),
        "lag_p99_ms": float(np.percentile(lag, 99) * 1e3) if lag else float("nan"),
        "cpu": cpu,
        "missing": float(missing + lost),
        "packets": float(lat.size),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="measured streaming time per run, s")
    ap.add_argument("--rates", default="200,400,800", help="rates for the capacity sweep, Hz")
    ap.add_argument("--max-sensors", type=int, default=16)
    ap.add_argument("--skip-capacity", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)

    print("notification -> bus at 200 Hz (real time, whole-process CPU):")
    print(f"{'family':<11} {'sensors':>7} {'packets':>8} {'median ms':>9} {'p99 ms':>7} {'CPU %':>6} {'CPU %/sensor':>12} {'missing':>7}")
    for family in ("lumbar_ref", "polar_pmd"):
        for n in (1, 4):
            r = asyncio.run(_run(family, n, 200.0, args.seconds))
            print(f"{family:<11} {n:>7} {r['packets']:>8.0f} {r['latency_median_ms']:>9.2f} {r['latency_p99_ms']:>7.2f} "
                  f"{r['cpu'] * 100:>6.1f} {r['cpu'] * 100 / n:>12.1f} {r['missing']:>7.0f}")
    if args.skip_capacity:
        return
    print("\ncapacity, lumbar_ref (zero loss, p99 lag <= 150 ms, CPU <= 95 %):")
    print(f"{'rate Hz':>7} {'sensors':>7} {'samples/s':>9} {'CPU %':>6} {'lag p99 ms':>10} {'missing':>7}  ok")
    for rate in (float(x) for x in args.rates.split(",")):
        best = 0
        n = 1
        while n <= args.max_sensors:
            r = asyncio.run(_run("lumbar_ref", n, rate, args.seconds))
            ok = r["missing"] == 0 and r["lag_p99_ms"] <= 150.0 and r["cpu"] <= 0.95
            print(f"{rate:>7.0f} {n:>7} {n * rate:>9.0f} {r['cpu'] * 100:>6.1f} {r['lag_p99_ms']:>10.1f} {r['missing']:>7.0f}  {'yes' if ok else 'no'}")
            if not ok:
                break
            best = n
            n *= 2
        print(f"  -> {best} sensor(s) × {rate:g} Hz = {best * rate:g} samples/s sustained")


if __name__ == "__main__":
    main()
