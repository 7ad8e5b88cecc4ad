"""The C reference firmware (encoder, command parser) agrees bit-exactly with the Python side.

The C files are compiled with the host's gcc into a shared library loaded with ctypes;
without gcc these tests skip with the reason.
"""
from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lumbar.types import SampleFlag
from lumbar_sensors import lumbar_ref
from lumbar_sensors.family import DEG, G

FW_DIR = Path(__file__).resolve().parents[2] / "firmware_interface" / "reference_firmware"


class Header(ctypes.Structure):
    _fields_ = [
        ("n_samples", ctypes.c_uint8),
        ("acc_code", ctypes.c_uint8),
        ("gyro_code", ctypes.c_uint8),
        ("status", ctypes.c_uint8),
        ("seq", ctypes.c_uint32),
        ("t_first_us", ctypes.c_uint64),
        ("period_us", ctypes.c_uint16),
    ]


class Cmd(ctypes.Structure):
    _fields_ = [
        ("op", ctypes.c_uint8),
        ("rate_hz", ctypes.c_uint16),
        ("acc_code", ctypes.c_uint8),
        ("gyro_code", ctypes.c_uint8),
        ("max_samples", ctypes.c_uint8),
        ("host_time_us", ctypes.c_uint64),
    ]


@pytest.fixture(scope="module")
def clib(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed: the C reference firmware cannot be compiled on this host")
    out = tmp_path_factory.mktemp("lumbar_ref_c") / "liblumbar_ref.so"
    cmd = [gcc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", "-shared", "-fPIC",
           "-o", str(out), str(FW_DIR / "lumbar_ref_protocol.c")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, f"gcc failed:\n{res.stderr}"
    lib = ctypes.CDLL(str(out))
    lib.lr_encode_packet.restype = ctypes.c_size_t
    lib.lr_encode_packet.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(Header), ctypes.POINTER(ctypes.c_int16)]
    lib.lr_parse_command.restype = ctypes.c_int
    lib.lr_parse_command.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(Cmd)]
    lib.lr_encode_response.restype = ctypes.c_size_t
    lib.lr_encode_response.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint8, ctypes.c_uint8, ctypes.c_uint64,
                                       ctypes.c_uint16, ctypes.c_uint8, ctypes.c_uint8, ctypes.c_uint8]
    lib.lr_max_samples_for_mtu.restype = ctypes.c_size_t
    lib.lr_max_samples_for_mtu.argtypes = [ctypes.c_uint16]
    return lib


def c_encode(lib: ctypes.CDLL, seq: int, t_us: int, period: int, acc_code: int, gyro_code: int, samples: np.ndarray, status: int = 0) -> bytes:
    s = np.ascontiguousarray(samples, dtype=np.int16)
    h = Header(s.shape[0], acc_code, gyro_code, status, seq, t_us, period)
    buf = ctypes.create_string_buffer(600)
    n = lib.lr_encode_packet(buf, 600, ctypes.byref(h), s.ctypes.data_as(ctypes.POINTER(ctypes.c_int16)))
    return buf.raw[:n]


packets = st.fixed_dictionaries(
    {
        "seq": st.integers(0, 2**32 - 1),
        "t_us": st.integers(0, 2**48 - 1 - 40 * 40000),
        "period": st.integers(lumbar_ref.MIN_PERIOD_US, lumbar_ref.MAX_PERIOD_US),
        "acc_code": st.integers(0, 3),
        "gyro_code": st.integers(0, 4),
        "status": st.sampled_from([0, 1]),
        "n": st.integers(1, lumbar_ref.MAX_SAMPLES),
        "seed": st.integers(0, 2**32 - 1),
    }
)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=packets)
def test_c_encoder_round_trips_through_python_decoder(clib: ctypes.CDLL, p: dict) -> None:
    rng = np.random.default_rng(p["seed"])
    # mix full-range values with the int16 extremes so saturation flags are exercised
    samples = rng.integers(-32768, 32768, size=(p["n"], 6), dtype=np.int16)
    samples[rng.random(samples.shape) < 0.02] = np.int16(-32768)
    args = (p["seq"], p["t_us"], p["period"], p["acc_code"], p["gyro_code"], samples, p["status"])
    c_bytes = c_encode(clib, *args)
    assert c_bytes == lumbar_ref.encode_packet(*args), "C and Python encoders differ"
    d = lumbar_ref.decode(c_bytes, lumbar_ref.new_stream())
    acc_fs = lumbar_ref.ACC_RANGES_G[p["acc_code"]] * G / 32768
    gyro_fs = lumbar_ref.GYRO_RANGES_DPS[p["gyro_code"]] * DEG / 32768
    # bit-exact: the counts come back exactly
    assert np.array_equal(np.rint(d.acc / acc_fs).astype(np.int64), samples[:, :3])
    assert np.array_equal(np.rint(d.gyro / gyro_fs).astype(np.int64), samples[:, 3:])
    assert d.seq.tolist() == list(range(p["seq"], p["seq"] + p["n"]))
    assert np.array_equal(np.rint(d.device_time_s * 1e6).astype(np.int64), p["t_us"] + p["period"] * np.arange(p["n"]))
    sat_acc = np.any((samples[:, :3] == -32768) | (samples[:, :3] == 32767), axis=1)
    assert np.array_equal((d.flags & SampleFlag.ACC_SATURATED) != 0, sat_acc)
    assert bool(d.flags[0] & SampleFlag.GAP_BEFORE) == bool(p["status"])


def test_c_encoder_refuses_invalid_headers(clib: ctypes.CDLL) -> None:
    ok = np.zeros((1, 6), np.int16)
    assert c_encode(clib, 0, 0, 5000, 0, 0, ok)
    assert c_encode(clib, 0, 0, 5000, 4, 0, ok) == b""  # acc code
    assert c_encode(clib, 0, 0, 5000, 0, 5, ok) == b""  # gyro code
    assert c_encode(clib, 0, 0, 99, 0, 0, ok) == b""  # period
    assert c_encode(clib, 0, 0, 5000, 0, 0, ok, status=2) == b""  # reserved status bit
    assert c_encode(clib, 0, 0, 5000, 0, 0, np.zeros((41, 6), np.int16)) == b""


def test_stream_of_c_packets_tracks_sequence_and_gaps(clib: ctypes.CDLL) -> None:
    s = lumbar_ref.new_stream()
    n, period = 19, 5000
    seq, t = 2**32 - 19, 10**9  # crosses the 32-bit sequence wrap
    seen = []
    for k in range(5):
        if k == 3:  # one packet lost on the air
            seq, t = (seq + n) % 2**32, t + n * period
        d = lumbar_ref.decode(c_encode(clib, seq, t, period, 2, 4, np.full((n, 6), k, np.int16)), s)
        seen.append(d)
        seq, t = (seq + n) % 2**32, t + n * period
    assert [bool(d.flags[0] & SampleFlag.GAP_BEFORE) for d in seen] == [False, False, False, True, False]
    assert seen[3].meta["n_lost"] == n
    allseq = np.concatenate([d.seq for d in seen])
    assert allseq[0] == 2**32 - 19 and np.all(np.diff(allseq)[:38] == 1) and allseq[-1] == 2**32 - 19 + 6 * n - 1


@settings(max_examples=1000, deadline=None)
@given(data=st.one_of(st.binary(max_size=12), st.tuples(st.integers(0, 7), st.binary(max_size=9)).map(lambda t: bytes([t[0]]) + t[1])))
def test_c_command_parser_matches_python(clib: ctypes.CDLL, data: bytes) -> None:
    cmd = Cmd()
    status = clib.lr_parse_command(data, len(data), ctypes.byref(cmd))
    py_status, fields = lumbar_ref.parse_command(data)
    assert status == py_status
    assert cmd.op == fields["op"]
    if status == 0:
        for k, v in fields.items():
            assert getattr(cmd, k) == v, k


def test_python_command_builders_parse_ok_in_c(clib: ctypes.CDLL) -> None:
    cmds = (
        lumbar_ref.configure_commands(1600, 16, 125) + lumbar_ref.configure_commands(25, 2, 2000)
        + lumbar_ref.start_commands(40) + lumbar_ref.stop_commands() + [lumbar_ref.time_sync_command(2**63 + 5)]
    )
    for c in cmds:
        cmd = Cmd()
        assert clib.lr_parse_command(c.data, len(c.data), ctypes.byref(cmd)) == 0, c.note
        assert c.characteristic == lumbar_ref.CONTROL_POINT
    cmd = Cmd()
    data = lumbar_ref.time_sync_command(2**63 + 5).data
    clib.lr_parse_command(data, len(data), ctypes.byref(cmd))
    assert cmd.host_time_us == 2**63 + 5


@pytest.mark.parametrize("op,status", [(op, st_) for op in range(1, 8) for st_ in range(5)])
def test_c_responses_parse_in_python(clib: ctypes.CDLL, op: int, status: int) -> None:
    buf = ctypes.create_string_buffer(16)
    n = clib.lr_encode_response(buf, 16, op, status, 123456789012, 400, 3, 2, 1)
    raw = buf.raw[:n]
    assert raw == lumbar_ref.encode_response(op, status, 123456789012, (400, 3, 2, 1))
    r = lumbar_ref.parse_response(raw)
    assert (r["op"], r["status"]) == (op, status)
    if status == 0 and op == lumbar_ref.OP_TIME_SYNC:
        assert r["device_time_us"] == 123456789012
    if status == 0 and op == lumbar_ref.OP_GET_CONFIG:
        assert (r["rate_hz"], r["acc_code"], r["gyro_code"], r["streaming"]) == (400, 3, 2, True)


@pytest.mark.parametrize("mtu", [23, 30, 31, 185, 247, 251, 512, 65535])
def test_samples_per_mtu_agree(clib: ctypes.CDLL, mtu: int) -> None:
    assert clib.lr_max_samples_for_mtu(mtu) == lumbar_ref.max_samples_for_mtu(mtu)
    k = lumbar_ref.max_samples_for_mtu(mtu)
    if k:
        assert lumbar_ref.HEADER_LEN + k * lumbar_ref.SAMPLE_LEN <= mtu - 3
