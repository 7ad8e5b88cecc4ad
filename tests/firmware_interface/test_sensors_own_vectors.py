"""Our own vectors, one or more per frame type decoded, built byte by byte from SENSORS.md layouts.

Each payload is packed with ``struct`` straight from the documented table (named in the
comment) and the expected numbers are chosen to be exact in the documented scale.
"""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from lumbar.errors import DecodeError, ValidationError
from lumbar.types import SampleFlag
from lumbar_sensors import (
    cli_decode,
    lumbar_ref,
    metawear,
    movella_dot,
    movesense_gsp,
    polar_pmd,
    registry,
    synth,
    thingy52,
    witmotion_ble5,
)
from lumbar_sensors.family import DEG, G

GAP, ACC_SAT, GYRO_SAT, HOST = (int(f) for f in (SampleFlag.GAP_BEFORE, SampleFlag.ACC_SATURATED,
                                                 SampleFlag.GYRO_SATURATED, SampleFlag.HOST_TIME_ONLY))


def polar_header(mtype: int, ts_ns: int, ftb: int) -> bytes:  # SENSORS.md §1 "Data frame"
    return bytes([mtype]) + struct.pack("<Q", ts_ns) + bytes([ftb])


# ---------------------------------------------------------------- Polar


def test_polar_raw_acc_int8_and_int24_are_mg() -> None:
    i8 = polar_header(2, 10**9, 0x00) + struct.pack("<6b", 1, -2, 100, 0, 0, -128)
    d = polar_pmd.decode(i8)
    np.testing.assert_allclose(d.acc / (G * 1e-3), [[1, -2, 100], [0, 0, -128]])
    i24 = polar_header(2, 10**9, 0x02) + b"".join(v.to_bytes(3, "little", signed=True) for v in (-1000, 2000, -8_000_000 // 1000))
    d = polar_pmd.decode(i24)
    np.testing.assert_allclose(d.acc / (G * 1e-3), [[-1000, 2000, -8000]])
    assert d.flags[0] & ACC_SAT  # 8000 mG reaches the default ±8 g range


def test_polar_gyro_delta_with_factor_and_saturation() -> None:
    # reference (0, 1000, -32768), one 2-bit block of 1 sample with deltas (+1, -1, 0)
    content = struct.pack("<3h", 0, 1000, -32768) + bytes([2, 1]) + bytes([0b00_11_01])
    d = polar_pmd.decode(polar_header(5, 10**9, 0x80) + content, polar_pmd.new_stream(gyro_factor=0.0625))
    np.testing.assert_allclose(d.gyro / DEG, [[0, 62.5, -2048], [0.0625, 62.4375, -2048]])
    assert d.flags.tolist() == [GYRO_SAT, GYRO_SAT]  # 2048 dps reaches the ±2000 dps range
    # -2294 dps is beyond anything a Polar gyro reports (limit 2100 dps): refused, not passed on
    with pytest.raises(DecodeError, match="polar_pmd: angular rate"):
        polar_pmd.decode(polar_header(5, 10**9, 0x80) + content, polar_pmd.new_stream(gyro_factor=0.07))
    ok = struct.pack("<3h", 0, 1000, -32000) + bytes([2, 1]) + bytes([0b00_11_01])
    d = polar_pmd.decode(polar_header(5, 10**9, 0x80) + ok, polar_pmd.new_stream(gyro_factor=0.0625, gyro_range_dps=2000))
    assert d.flags[0] & GYRO_SAT and d.acc is None


def test_polar_timestamps_follow_the_documented_rule_and_detect_gaps() -> None:
    rate, n = 52.0, 4
    period = 1e9 / rate
    s = polar_pmd.new_stream(acc_rate_hz=rate)
    frames = []
    t_last = 10**12
    for k in range(4):
        t_last += int(round((2 if k == 3 else 1) * n * period))  # frame before the 4th lost
        frames.append(polar_header(2, t_last, 0x01) + struct.pack("<12h", *range(12)))
    d0 = polar_pmd.decode(frames[0], s)  # first frame: stepped back from the last sample
    np.testing.assert_allclose(d0.device_time_s, (frames and (10**12 + round(n * period)) - period * np.arange(3, -1, -1)) * 1e-9)
    d1 = polar_pmd.decode(frames[1], s)  # then interpolated from the previous frame
    assert d1.device_time_s[0] == pytest.approx(d0.device_time_s[-1] + period * 1e-9, abs=1e-9)
    d2 = polar_pmd.decode(frames[2], s)
    d3 = polar_pmd.decode(frames[3], s)
    assert not (d1.flags[0] | d2.flags[0]) & GAP and d3.flags[0] & GAP
    assert d3.seq[0] == 3 * n + n  # 4 samples estimated lost
    with pytest.raises(DecodeError, match="does not advance"):
        polar_pmd.decode(frames[3], s)
    assert len(polar_pmd.decode(frames[3], s)) == n  # the stream goes on (restarted timing)


def _polar_acc_frames(sizes: list[int], period_ns: float, t0_ns: int = 10**12) -> tuple[list[bytes], np.ndarray]:
    """Delta ACC frames of ``sizes`` samples each, sampled every ``period_ns`` on the device clock;
    returns the frames and every sample's device time (ns)."""
    t = t0_ns + period_ns * np.arange(1, sum(sizes) + 1)
    ends = np.cumsum(sizes)
    frames = [polar_header(2, int(round(t[e - 1])), 0x80) + synth.polar_delta_content(np.zeros((k, 3), np.int64))
              for k, e in zip(sizes, ends)]
    return frames, t


def test_polar_lost_small_frame_before_a_large_one_is_a_gap() -> None:
    # 200 Hz, one ms-level drift: frames of 6, then a lost 1-sample frame, then 14 samples. The
    # mean step of the 14-sample frame is only 15/14 of a period; the span still holds 15 periods.
    rate = 200.0
    period = 1e9 / rate * (1 + 150e-6)
    sizes = [6] * 10 + [1, 14] + [6] * 3 + [2, 12] + [6]
    frames, t = _polar_acc_frames(sizes, period)
    lost = {10, 15}  # frame indices
    s = polar_pmd.new_stream(acc_rate_hz=rate)
    start = np.concatenate([[0], np.cumsum(sizes)])
    for k, frame in enumerate(frames):
        if k in lost:
            continue
        d = polar_pmd.decode(frame, s)
        want = t[start[k] : start[k + 1]]
        # ns; the first frame is stepped back at the nominal period (the true one is not known yet)
        np.testing.assert_allclose(d.device_time_s * 1e9 - 10**12, want - 10**12, atol=2.0 if k else 5e3)
        assert bool(d.flags[0] & GAP) == (k - 1 in lost), k
        assert d.seq.tolist() == list(range(start[k], start[k + 1])), k  # lost samples counted exactly
    assert s.period_ns(2) == pytest.approx(period, rel=1e-9)


@pytest.mark.parametrize("offset", [-0.02, 0.02])
def test_polar_device_rate_a_few_percent_off_nominal_gives_no_false_gaps(offset: float) -> None:
    rng = np.random.default_rng(4)
    rate = 52.0
    period = 1e9 / rate * (1 + offset)
    sizes = [int(k) for k in rng.integers(1, 40, 300)]
    frames, t = _polar_acc_frames(sizes, period)
    s = polar_pmd.new_stream(acc_rate_hz=rate)
    out = [polar_pmd.decode(f, s) for f in frames]
    assert not any(int(d.flags[0]) & GAP for d in out)
    np.testing.assert_array_equal(np.concatenate([d.seq for d in out]), np.arange(sum(sizes)))
    got = np.concatenate([d.device_time_s for d in out[1:]]) * 1e9 - 10**12
    np.testing.assert_allclose(got, t[sizes[0]:] - 10**12, atol=2.0)
    assert s.period_ns(2) == pytest.approx(period, rel=1e-9)
    # then a lost 1-sample frame before a 39-sample one: one sample missing, found and timed exactly
    sizes2 = [1, 39]
    more, t2 = _polar_acc_frames(sizes2, period, t0_ns=int(round(t[-1])))
    d = polar_pmd.decode(more[1], s)
    assert d.flags[0] & GAP and d.seq[0] == sum(sizes) + 1
    np.testing.assert_allclose(d.device_time_s * 1e9 - 10**12, t2[1:] - 10**12, atol=2.0)


@pytest.mark.parametrize(
    "payload, problem",
    [
        (polar_header(1, 0, 0x00) + b"\x00" * 6, "measurement type 1"),
        (polar_header(2, 0, 0x05) + b"\x00" * 6, "unknown raw ACC frame"),
        (polar_header(2, 0, 0x85) + b"\x00" * 6, "unknown compressed ACC"),
        (polar_header(5, 0, 0x00) + b"\x00" * 6, "uncompressed GYRO"),
        (polar_header(2, 0, 0x01) + b"\x00" * 7, "not a whole number"),
        (polar_header(2, 0, 0x80) + b"\x00" * 5, "shorter than its 6-byte reference"),
        (polar_header(2, 0, 0x80) + b"\x00" * 6 + bytes([40, 1]) + b"\x00" * 15, "delta width 40"),
        (polar_header(2, 0, 0x80) + b"\x00" * 6 + bytes([8, 5]) + b"\x00" * 3, "needs 15 bytes"),
        (polar_header(2, 2**63, 0x01) + b"\x00" * 6, "impossible"),
        (b"\x02\x00", "shorter than its 10-byte header"),
    ],
)
def test_polar_bad_frames(payload: bytes, problem: str) -> None:
    with pytest.raises(DecodeError, match=f"^polar_pmd: .*{problem}"):
        polar_pmd.decode(payload)


def test_polar_delta_encoder_round_trip() -> None:
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.integers(-300, 300, (100, 3)), axis=0)
    assert np.array_equal(polar_pmd.delta_decode(synth.polar_delta_content(x, block=30)), x)


def test_polar_cp_stop_notice_and_features() -> None:
    assert polar_pmd.parse_cp_response(bytes([0x01, 2, 5])) == {"stopped_types": [2, 5]}
    assert polar_pmd.parse_cp_response(bytes([0x0F, 0b0010_0100, 0b0000_0010]))["features"] == ["acc", "gyro", "sdk_mode"]


# ---------------------------------------------------------------- MetaWear


def test_metawear_bmi270_registers_and_scales() -> None:
    s = metawear.new_stream("bmi270", acc_range_g=2, gyro_range_dps=125)
    # §3 "Notification layouts": gyro data on BMI270 is register 0x04; 262.4 LSB/dps at ±125
    d = metawear.decode(b"\x13\x04" + struct.pack("<3h", 2624, -2624, 0), s)
    np.testing.assert_allclose(d.gyro / DEG, [[10, -10, 0]])
    d = metawear.decode(b"\x03\x04" + struct.pack("<3h", 16384, -8192, 32767), s)
    np.testing.assert_allclose(d.acc / G, [[1, -0.5, 32767 / 16384]])
    assert d.flags[0] == ACC_SAT | HOST
    with pytest.raises(DecodeError, match="metawear: unexpected module 0x13 register 0x07"):
        metawear.decode(b"\x13\x07" + bytes(18), s)  # packed gyro is 0x05 on BMI270
    with pytest.raises(DecodeError, match="needs 20 bytes"):
        metawear.decode(b"\x13\x05" + bytes(6), s)
    assert metawear.decode(b"\x03\x80").meta["module_info"]["present"] is False
    assert [c.data.hex() for c in metawear.start_commands("bmi270", packed=True)][:2] == ["030501", "130501"]


# ---------------------------------------------------------------- DOT


def test_dot_modes_20_26_22_24_and_clock_wrap() -> None:
    t0 = 2**32 - 10_000
    # mode 20: ts, acc, gyro, mag int16 (÷2^12)
    p20 = struct.pack("<I3f3f3h", t0, 0, 0, 9.5, 10, 0, 0, 4096, -8192, 0)
    s = movella_dot.new_stream(payload_mode=20)
    d = movella_dot.decode(p20, s)
    np.testing.assert_allclose(d.mag, [[1, -2, 0]])
    # next sample 16 667 µs later crosses the 2^32 µs wrap
    d2 = movella_dot.decode(struct.pack("<I3f3f3h", 6_667, 0, 0, 9.5, 0, 0, 0, 0, 0, 0), s)
    assert d2.device_time_s[0] - d.device_time_s[0] == pytest.approx(0.016667)
    with pytest.raises(DecodeError, match="goes backwards"):
        movella_dot.decode(struct.pack("<I3f3f3h", 6_000, 0, 0, 9.5, 0, 0, 0, 0, 0, 0), s)
    # mode 26: ts, quaternion, acc, gyro (44 bytes on the 63-byte long characteristic)
    p26 = struct.pack("<I4f3f3f", 5, 1, 0, 0, 0, 0, 0, 9.75, 90, 0, 0)
    d = movella_dot.decode(p26 + bytes(19), movella_dot.new_stream(payload_mode=26))
    np.testing.assert_allclose(d.quat, [[1, 0, 0, 0]])
    np.testing.assert_allclose(d.gyro, [[np.pi / 2, 0, 0]])
    with pytest.raises(DecodeError, match="quaternion norm"):
        movella_dot.decode(struct.pack("<I4f3f3f", 5, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0), movella_dot.new_stream(payload_mode=26))
    # mode 22: ts, Euler, free acc, gyro; mode 24: ts, quaternion, gyro
    d = movella_dot.decode(struct.pack("<I3f3f3f", 1, 10, 20, 30, 0.5, 0, 0, 0, 0, 45), movella_dot.new_stream(payload_mode=22))
    np.testing.assert_allclose(d.meta["euler_deg"], [[10, 20, 30]])
    assert d.acc is None and d.gyro[0, 2] == pytest.approx(np.pi / 4)
    d = movella_dot.decode(struct.pack("<I4f3f", 1, 0, 1, 0, 0, 1, 2, 3), movella_dot.new_stream(payload_mode=24))
    assert d.quat.tolist() == [[0, 1, 0, 0]]
    with pytest.raises(DecodeError, match="NaN"):
        movella_dot.decode(struct.pack("<I3f3f", 1, float("nan"), 0, 0, 0, 0, 0), movella_dot.new_stream())
    with pytest.raises(DecodeError, match="needs 28–40 bytes"):
        movella_dot.decode(bytes(27), movella_dot.new_stream())


def test_dot_gap_from_timestamps() -> None:
    s = movella_dot.new_stream(rate_hz=60)
    seqs = []
    for k in (0, 1, 2, 5):  # samples 3 and 4 lost
        d = movella_dot.decode(struct.pack("<I6f", 1000 + round(k * 1e6 / 60), 0, 0, 9.8, 0, 0, 0), s)
        seqs.append((int(d.seq[0]), bool(d.flags[0] & GAP)))
    assert seqs == [(0, False), (1, False), (2, False), (5, True)]


# ---------------------------------------------------------------- WitMotion, Thingy, Movesense


def test_witmotion_byte_stream_resync_and_register_reply() -> None:
    pkt = b"\x55\x61" + struct.pack("<9h", 2048, 0, -2048, 16384, 0, 0, 0, 0, 0)
    reply = b"\x55\x71\x51\x00" + struct.pack("<8h", 32767, 0, 0, 0, 0, 0, 0, 0)
    s = witmotion_ble5.new_stream()
    d = witmotion_ble5.decode(b"\x00\x13" + pkt + reply[:5], s)  # junk, a packet, half a reply
    np.testing.assert_allclose(d.acc / G, [[1, 0, -1]])
    np.testing.assert_allclose(d.gyro / DEG, [[1000, 0, 0]])
    assert d.flags[0] == GAP | HOST
    d = witmotion_ble5.decode(reply[5:], s)
    assert len(d) == 0 and d.meta["registers"][0]["register"] == 0x51
    with pytest.raises(DecodeError, match="witmotion_ble5: 3 bytes without"):
        witmotion_ble5.decode(b"\x01\x02\x03", witmotion_ble5.new_stream())
    with pytest.raises(DecodeError, match="incomplete packet"):
        witmotion_ble5.decode(pkt[:10])
    with pytest.raises(ValidationError):
        witmotion_ble5.configure_commands(100)
    assert witmotion_ble5.configure_commands(100, allow_unverified=True)[1].data.hex() == "ffaa030900"


def test_thingy_saturation_and_length() -> None:
    d = thingy52.decode(struct.pack("<9h", 32767, 0, 1024, 0, 0, -32767, 0, 0, 0))
    assert d.flags[0] == ACC_SAT | GYRO_SAT | HOST
    assert d.acc[0, 0] == pytest.approx(32767 / 1024 * G)
    with pytest.raises(DecodeError, match="thingy52: raw-data notification must be 18 bytes, got 20"):
        thingy52.decode(bytes(20))


def test_movesense_imu9_split_and_results() -> None:
    n = 2
    body = struct.pack(f"<{9 * n}f", *([0.5, 0, 9.75] * n), *([180, 0, 0] * n), *([20, -40, 10] * n))
    full = bytes([2, 7]) + struct.pack("<I", 5000) + body
    s = movesense_gsp.new_stream("IMU9", 52, ref=7)
    assert len(movesense_gsp.decode(full[:30], s)) == 0
    d = movesense_gsp.decode(b"\x03\x07" + full[30:], s)
    np.testing.assert_allclose(d.mag, [[20, -40, 10]] * n)
    np.testing.assert_allclose(d.gyro[:, 0], np.pi)
    np.testing.assert_allclose(d.device_time_s, [5.0, 5.0 + 1 / 52])
    assert movesense_gsp.decode(b"\x01\x07\x00\xc8", s).meta["command_result"]["status_hex"] == "00c8"
    with pytest.raises(DecodeError, match="DATA_PART2 for reference 7 without"):
        movesense_gsp.decode(b"\x03\x07" + full[30:], s)
    with pytest.raises(DecodeError, match="reference 8 does not belong"):
        movesense_gsp.decode(b"\x02\x08" + full[2:], s)
    with pytest.raises(DecodeError, match="unknown packet type 9"):
        movesense_gsp.decode(b"\x09\x07", s)


# ---------------------------------------------------------------- lumbar_ref (README layout)


def test_lumbar_ref_hand_built_packet() -> None:
    # README "Data packet": version 1, N=2, ranges acc code 2 (±8 g) | gyro code 4 (±2000 dps) << 4,
    # status 0, seq 7, t = 1 000 000 µs, period 5000 µs, then 2 × (ax ay az gx gy gz)
    hexs = ("01" "02" "42" "00" "07000000" "40420f000000" "8813"
            "0010" "0000" "00f0" "0000" "0000" "ff7f"
            "0000" "0000" "0010" "0040" "0000" "0000")
    d = lumbar_ref.decode(bytes.fromhex(hexs))
    np.testing.assert_allclose(d.acc / G, [[1, 0, -1], [0, 0, 1]])  # 4096 counts = 1 g at ±8 g
    np.testing.assert_allclose(d.gyro / DEG, [[0, 0, 32767 / 32768 * 2000], [1000, 0, 0]])
    np.testing.assert_allclose(d.device_time_s, [1.0, 1.005])
    assert d.seq.tolist() == [7, 8] and d.flags.tolist() == [GYRO_SAT, 0]


@pytest.mark.parametrize(
    "mutation, problem",
    [
        (lambda b: b"\x02" + b[1:], "protocol version 2"),
        (lambda b: b[:1] + b"\x00" + b[2:], "sample count 0"),
        (lambda b: b[:-1], "declares 2 samples"),
        (lambda b: b[:2] + b"\x54" + b[3:], "unknown range codes"),
        (lambda b: b[:3] + b"\x02" + b[4:], "reserved status bits"),
        (lambda b: b[:14] + b"\x10\x00" + b[16:], "sample period 16"),
    ],
)
def test_lumbar_ref_bad_packets(mutation, problem: str) -> None:
    good = lumbar_ref.encode_packet(7, 10**6, 5000, 2, 4, np.zeros((2, 6)))
    with pytest.raises(DecodeError, match=f"^lumbar_ref: .*{problem}"):
        lumbar_ref.decode(mutation(good))


# ---------------------------------------------------------------- registry and CLI


def test_registry_lists_families_and_identifies_advertisements() -> None:
    names = [f.name for f in registry.families()]
    assert names == list(registry.FAMILY_NAMES)
    for f in registry.families():
        assert f.rates_hz and f.acc_ranges_g and f.max_realtime_rate_hz > 0
        json.dumps(f.to_dict())
        mod = registry.module(f.name)
        for fn in ("new_stream", "decode", "configure_commands", "start_commands", "stop_commands"):
            assert callable(getattr(mod, fn))
    assert [f.name for f in registry.identify("Xsens DOT")] == ["movella_dot"]
    assert [f.name for f in registry.identify(None, [lumbar_ref.SERVICE.upper()])] == ["lumbar_ref"]
    assert [f.name for f in registry.identify("x", manufacturer_ids=[0x0886])] == ["movella_dot"]
    assert [f.name for f in registry.identify("Polar Sense B5A3")] == ["polar_pmd"]
    with pytest.raises(ValidationError, match="unknown sensor family 'nope'"):
        registry.get("nope")


def test_decode_payloads_and_run_decode(capsys: pytest.CaptureFixture[str]) -> None:
    good = lumbar_ref.encode_packet(0, 10, 5000, 0, 0, np.ones((1, 6))).hex()
    out = cli_decode.decode_payloads("lumbar_ref", [good, "00"])
    json.dumps(out)
    assert out["n_samples"] == 1 and out["n_errors"] == 1 and "lumbar_ref:" in out["packets"][1]["error"]
    out = cli_decode.decode_payloads("thingy52", ["0x" + bytes(18).hex()], {"rate_hz": 100})
    assert out["packets"][0]["device_time_s"] == [None] and out["packets"][0]["flag_names"] == [["HOST_TIME_ONLY"]]
    with pytest.raises(ValidationError, match="unknown context key"):
        cli_decode.decode_payloads("thingy52", [], {"nope": 1})
    import argparse

    parser = argparse.ArgumentParser()
    cli_decode.add_decode_parser(parser.add_subparsers(dest="cmd"))
    assert cli_decode.run_decode(parser.parse_args(["decode", "--family", "lumbar_ref", good])) == 0
    assert json.loads(capsys.readouterr().out)["n_samples"] == 1
    assert cli_decode.run_decode(parser.parse_args(["decode", "--family", "lumbar_ref", good, "zz"])) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lumbar decode: error: payload 2 is not hexadecimal")
    assert cli_decode.run_decode(parser.parse_args(["decode", "--family", "polar_pmd", "--context", "{", "00"])) == 1
    assert "not valid JSON" in capsys.readouterr().err


def test_to_batch_fills_missing_channel_with_nan_and_keeps_host_time() -> None:
    d = metawear.decode(b"\x03\x04" + struct.pack("<3h", 0, 0, 2048), metawear.new_stream(acc_range_g=16))
    b = d.to_batch("lumbar", time_s=np.array([12.5]))
    assert b.time_s.tolist() == [12.5] and np.isnan(b.gyro).all() and b.acc[0, 2] == pytest.approx(G)
    assert np.isnan(b.device_time_s).all() and b.has_flag(SampleFlag.HOST_TIME_ONLY).all()


def test_lumbar_sensors_does_not_import_bleak() -> None:
    import subprocess
    import sys

    code = "import sys, lumbar_sensors, lumbar_sensors.cli_decode, lumbar_sensors.synth; " \
           "[lumbar_sensors.module(n) for n in lumbar_sensors.FAMILY_NAMES]; print('bleak' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
