"""Every vector of ../shared/protocols/vectors.json, one test each, per family.

Each vector id maps to a check below: decode vectors compare decoded SI values (converted
back to the vector's units), command vectors compare the bytes our builders produce.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from lumbar_sensors import metawear, movella_dot, movesense_gsp, polar_pmd, thingy52, witmotion_ble5
from lumbar_sensors.family import DEG, G

SUPPORTED = {"polar_pmd", "metawear", "movella_dot", "witmotion_ble5", "thingy52", "movesense_gsp", "lumbar_ref"}
MG = G * 1e-3


def _b(v: dict[str, Any]) -> bytes:
    return bytes.fromhex(v["hex"])


def _close(a: Any, b: Any, atol: float) -> None:
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=0, atol=atol)


# ------------------------------------------------------------------ Polar


def polar_acc_raw_type1(v: dict) -> None:
    d = polar_pmd.decode(_b(v), polar_pmd.new_stream(acc_rate_hz=200))
    e = v["expected"]
    assert len(d) == e["n_samples"] and d.gyro is None
    assert d.meta["measurement_type"] == e["measurement_type"] == 2
    assert d.meta["timestamp_ns"] == e["timestamp_ns_of_last_sample"]
    assert d.device_time_s[-1] == pytest.approx(e["timestamp_ns_of_last_sample"] * 1e-9)
    _close(d.acc[:2] / MG, e["first_samples_mG"], 1e-9)
    _close(d.acc[-1] / MG, e["last_sample_mG"], 1e-9)


def polar_acc_delta_type0(v: dict) -> None:
    e = v["expected"]
    d = polar_pmd.decode(_b(v), polar_pmd.new_stream(acc_factor=e["conversion_factor"]))
    assert len(d) == e["n_samples"]
    counts = polar_pmd.delta_decode(_b(v)[10:], 3, e["resolution_bits"])
    assert counts[:2].tolist() == e["raw_counts_first_two"]
    # the SDK truncates mG to integers (float32); we keep floats: within 1 mG
    mg = d.acc / MG
    assert np.all(np.abs(mg[:2] - np.asarray(e["mG_first_two"])) < 1.0)
    assert np.all(np.abs(mg) <= 8000.0)
    assert d.device_time_s[-1] == pytest.approx(e["timestamp_ns_of_last_sample"] * 1e-9)
    content = _b(v)[10:]
    assert (content[6], content[7]) == (e["first_delta_block"]["delta_bits"], e["first_delta_block"]["count"])


def polar_acc_delta_type1(v: dict) -> None:
    e = v["expected"]
    # the SDK test's timestamps are 1 ns apart: declare a matching (GHz) rate, or the decoder
    # rightly refuses 2 samples in 1 ns as an impossible timestamp
    stream = polar_pmd.new_stream(acc_factor=e["conversion_factor"], acc_rate_hz=1e9, previous_timestamp_ns=100)
    d = polar_pmd.decode(_b(v), stream)
    _close(d.acc / MG, e["samples_mG"], 1e-9)
    # previous frame at 100 ns: samples fall in (100, 101] ns, the last exactly at 101
    assert d.meta["timestamp_ns"] == e["timestamp_ns_of_last_sample"]
    assert 100e-9 <= d.device_time_s[0] < d.device_time_s[1] == pytest.approx(101e-9)


def polar_gyro_delta_type0(v: dict) -> None:
    e = v["expected"]
    d = polar_pmd.decode(_b(v), polar_pmd.new_stream(gyro_factor=e["conversion_factor"]))
    assert d.acc is None and d.meta["measurement_type"] == 5
    _close(d.gyro / DEG, e["samples_dps"], 1e-9)
    assert d.meta["timestamp_ns"] == e["timestamp_ns_of_last_sample"]


def polar_gyro_delta_type1_float(v: dict) -> None:
    e = v["expected"]
    raw = polar_pmd.delta_decode(_b(v)[10:], 3, 32, float_bits=True)
    assert [[f"0x{x:08x}" for x in row] for row in raw.tolist()] == e["raw_bits"]
    d = polar_pmd.decode(_b(v), polar_pmd.new_stream(gyro_factor=e["conversion_factor"]))
    _close(d.gyro / DEG, e["samples_dps"], 1e-6)
    half = polar_pmd.decode(_b(v), polar_pmd.new_stream(gyro_factor=0.5))
    _close(half.gyro / DEG, np.asarray(e["samples_dps"]) / 2, 1e-6)


def polar_delta_spec_example(v: dict) -> None:
    assert polar_pmd.delta_decode(_b(v), 3, 16).tolist() == v["expected"]["samples_counts"]


def polar_settings_tlv(v: dict) -> None:
    assert polar_pmd.parse_settings(_b(v)) == v["expected"]


def polar_cp_response(v: dict) -> None:
    r = polar_pmd.parse_cp_response(_b(v))
    e = v["expected"]
    for k in ("response_code", "op_code", "measurement_type", "status", "more"):
        assert r[k] == e[k], k
    assert r["parameters"].hex() == e["parameters_hex"]


def polar_cmd(v: dict) -> None:
    cmds = {
        "polar-cmd-get-settings-acc": polar_pmd.get_settings_command(polar_pmd.ACC),
        "polar-cmd-start-acc-h10": polar_pmd.start_commands(200, 8, None)[0],
        "polar-cmd-start-gyro-verity": polar_pmd.start_commands(52, None, 2000, channels=3)[0],
        "polar-cmd-stop-acc": polar_pmd.stop_commands(gyro=False)[0],
        "polar-cmd-start-sdk-mode": polar_pmd.configure_commands(sdk_mode=True)[0],
    }
    c = cmds[v["id"]]
    assert c.data.hex() == v["hex"] and c.characteristic == polar_pmd.CONTROL_POINT and c.with_response


# ------------------------------------------------------------------ MetaWear


def metawear_data(v: dict) -> None:
    e = v["expected"]
    acc_range = {"metawear-acc-bmi160": 4.0, "metawear-acc-packed-bmi160": 8.0}.get(v["id"], 16.0)
    gyro_range = {"metawear-gyro-bmi160": 500.0, "metawear-gyro-packed-bmi160": 1000.0}.get(v["id"], 2000.0)
    d = metawear.decode(_b(v), metawear.new_stream("bmi160", acc_range, gyro_range))
    if "acc_g" in e:
        _close(d.acc / G, e["acc_g"], 5e-4)
        assert d.gyro is None
    else:
        _close(d.gyro / DEG, e["gyro_dps"], 5e-4)
        assert d.acc is None
    assert np.all(np.isnan(d.device_time_s)) and np.all(d.flags & 16)
    if v["id"] == "metawear-gyro-bmi160":  # 0x7fff and 0x8000 are the full-scale counts
        assert d.flags[0] & 8
    if v["id"] == "metawear-acc-packed-bmi160":  # the same bytes on a BMI270 board use register 0x05
        d270 = metawear.decode(b"\x03\x05" + _b(v)[2:], metawear.new_stream("bmi270", 8.0))
        _close(d270.acc, d.acc, 0)


def metawear_cmd(v: dict) -> None:
    start160 = {c.data.hex(): c for c in metawear.start_commands("bmi160")}
    stop160 = {c.data.hex(): c for c in metawear.stop_commands("bmi160")}
    built = {
        "metawear-cmd-acc-config-bmi160-200hz-8g": metawear.acc_config_bytes("bmi160", 200, 8),
        "metawear-cmd-acc-config-bmi270-200hz-8g": metawear.acc_config_bytes("bmi270", 200, 8),
        "metawear-cmd-gyro-config-bmi160-200hz": metawear.gyro_config_bytes(200, 2000),
        "metawear-cmd-gyro-config-bmi160-50hz-125dps": metawear.gyro_config_bytes(50, 125),
        "metawear-cmd-conn-params": metawear.connection_params_bytes(750, 1000, 128, 16384),
    }
    if v["id"] in built:
        assert built[v["id"]].hex() == v["hex"]
    else:  # subscribe / enable / start are part of the start sequence
        assert v["hex"] in start160
        assert not start160[v["hex"]].with_response
        if v["id"] == "metawear-cmd-acc-enable-sampling":
            assert "03020001" in stop160
    if v["id"] == "metawear-cmd-acc-config-bmi160-200hz-8g":
        cmds = metawear.configure_commands(200, 8, 2000, "bmi160")
        assert [c.data.hex() for c in cmds][1] == v["hex"]


def metawear_module_info(v: dict) -> None:
    d = metawear.decode(_b(v))
    info = d.meta["module_info"]
    assert len(d) == 0
    assert (info["module"], info["implementation"], info["revision"], info["chip"]) == (3, 1, 1, "bmi160")


# ------------------------------------------------------------------ Movella DOT


def dot_free_acc(v: dict) -> None:
    e = v["expected"]
    d = movella_dot.decode(_b(v), movella_dot.new_stream(payload_mode=6))
    assert d.acc is None and d.gyro is None
    assert d.device_time_s[0] == pytest.approx(e["timestamp_us"] * 1e-6)
    _close(d.meta["free_acc_mps2"][0], e["free_acc_ms2"], 1e-6)


def dot_rate_quantities(v: dict) -> None:
    e = v["expected"]
    for payload in (_b(v), _b(v)[:28]):  # padded to the characteristic, or bare
        d = movella_dot.decode(payload, movella_dot.new_stream(payload_mode=21))
        assert d.device_time_s[0] == pytest.approx(e["timestamp_us"] * 1e-6)
        _close(d.acc[0], e["acc_ms2"], 0)
        _close(d.gyro[0] / DEG, e["gyr_dps"], 1e-12)


def dot_captures_in_sequence(_: dict, shared: dict[str, dict]) -> None:
    s = movella_dot.new_stream(payload_mode=6, rate_hz=60)
    a = movella_dot.decode(_b(shared["dot-free-acc-capture-1"]), s)
    b = movella_dot.decode(_b(shared["dot-free-acc-capture-2"]), s)
    assert (b.device_time_s[0] - a.device_time_s[0]) == pytest.approx(1 / 60, abs=1e-5)
    assert b.seq[0] == 1 and b.flags[0] == 0


def dot_cmd(v: dict) -> None:
    built = {
        "dot-cmd-start-free-acc": movella_dot.start_commands(6)[0].data,
        "dot-cmd-start-rate-quantities": movella_dot.start_commands(21)[0].data,
        "dot-cmd-stop": movella_dot.stop_commands(21)[0].data,
        "dot-cmd-set-output-rate-60": movella_dot.configure_commands(60)[0].data,
        "dot-msg-get-recording-state": movella_dot.message(0x01, b"\x02"),
        "dot-msg-get-recording-state-ack": movella_dot.message(0x01, b"\x01\x06\x02"),
        "dot-msg-get-sync-status": movella_dot.message(0x02, b"\x08"),
        "dot-msg-stop-sync": movella_dot.message(0x02, b"\x02"),
        "dot-msg-start-sync": movella_dot.start_sync_message("D4:22:CD:AA:BB:CC"),
    }
    assert built[v["id"]].hex() == v["hex"]
    if v["id"].startswith("dot-msg"):
        assert sum(_b(v)) % 256 == 0


# ------------------------------------------------------------------ WitMotion, Thingy, Movesense


def witmotion_packet(v: dict) -> None:
    e = v["expected"]
    d = witmotion_ble5.decode(_b(v))
    _close(d.acc[0] / G, e["acc_g"], 1e-12)
    _close(d.gyro[0] / DEG, e["gyro_dps"], 1e-9)
    _close(d.meta["angle_deg"][0], e["angle_deg"], 1e-12)
    # the vendor cuts packets from a byte stream: split anywhere, the result is the same
    s = witmotion_ble5.new_stream()
    assert len(witmotion_ble5.decode(_b(v)[:7], s)) == 0
    _close(witmotion_ble5.decode(_b(v)[7:], s).acc, d.acc, 0)


def witmotion_cmd(v: dict) -> None:
    cfg50 = [c.data.hex() for c in witmotion_ble5.configure_commands(50)]
    cfg10 = [c.data.hex() for c in witmotion_ble5.configure_commands(10)]
    built = {
        "witmotion-cmd-unlock": cfg50[0],
        "witmotion-cmd-rate-50hz": cfg50[1],
        "witmotion-cmd-rate-10hz": cfg10[1],
        "witmotion-cmd-save": cfg50[2],
        "witmotion-cmd-read-mag": witmotion_ble5.read_register_command(0x3A).data.hex(),
    }
    assert built[v["id"]] == v["hex"]


def thingy_raw(v: dict) -> None:
    e = v["expected"]
    d = thingy52.decode(_b(v))
    _close(d.acc[0] / G, e["acc_g"], 1e-12)
    _close(d.gyro[0] / DEG, e["gyro_dps"], 1e-9)
    _close(d.mag[0], e["mag_uT"], 1e-12)


def thingy_config(v: dict) -> None:
    assert thingy52.config_value(10).hex() == v["hex"]
    assert thingy52.configure_commands(100)[0].data.hex() == "e803f401f401640001"


def movesense_cmd(v: dict) -> None:
    e = v["expected"]
    if e["command"].startswith("UNSUBSCRIBE"):
        assert movesense_gsp.stop_commands(e["reference"])[0].data.hex() == v["hex"]
    else:
        assert movesense_gsp.subscribe_bytes(e["path"], e["reference"]).hex() == v["hex"]
        if e["path"] == "/Meas/IMU6/104":
            assert movesense_gsp.start_commands(104, "IMU6", 99)[0].data.hex() == v["hex"]


def movesense_imu6(v: dict) -> None:
    e = v["expected"]
    d = movesense_gsp.decode(_b(v), movesense_gsp.new_stream("IMU6", 104, ref=e["reference"]))
    assert len(d) == e["n"]
    _close(d.acc, e["acc_ms2"], 0)
    _close(d.gyro / DEG, e["gyro_dps"], 1e-12)
    _close(d.device_time_s, [123.456, 123.456 + 1 / 104], 1e-9)
    # split into DATA + DATA_PART2 as the firmware does past the MTU
    s = movesense_gsp.new_stream("IMU6", 104)
    assert len(movesense_gsp.decode(_b(v)[:20], s)) == 0
    _close(movesense_gsp.decode(b"\x03\x63" + _b(v)[20:], s).acc, d.acc, 0)


CHECKS: dict[str, Callable[..., None]] = {
    "polar-acc-raw-type1": polar_acc_raw_type1,
    "polar-acc-delta-type0": polar_acc_delta_type0,
    "polar-acc-delta-type1": polar_acc_delta_type1,
    "polar-gyro-delta-type0": polar_gyro_delta_type0,
    "polar-gyro-delta-type1-float": polar_gyro_delta_type1_float,
    "polar-delta-spec-example": polar_delta_spec_example,
    "polar-settings-tlv": polar_settings_tlv,
    "polar-cp-response-ok": polar_cp_response,
    "polar-cp-response-error": polar_cp_response,
    "polar-cmd-get-settings-acc": polar_cmd,
    "polar-cmd-start-acc-h10": polar_cmd,
    "polar-cmd-start-gyro-verity": polar_cmd,
    "polar-cmd-stop-acc": polar_cmd,
    "polar-cmd-start-sdk-mode": polar_cmd,
    "metawear-acc-bmi160": metawear_data,
    "metawear-acc-packed-bmi160": metawear_data,
    "metawear-gyro-bmi160": metawear_data,
    "metawear-gyro-packed-bmi160": metawear_data,
    "metawear-cmd-acc-config-bmi160-200hz-8g": metawear_cmd,
    "metawear-cmd-acc-config-bmi270-200hz-8g": metawear_cmd,
    "metawear-cmd-acc-enable-sampling": metawear_cmd,
    "metawear-cmd-acc-subscribe": metawear_cmd,
    "metawear-cmd-gyro-config-bmi160-200hz": metawear_cmd,
    "metawear-cmd-gyro-config-bmi160-50hz-125dps": metawear_cmd,
    "metawear-cmd-gyro-start": metawear_cmd,
    "metawear-cmd-gyro-enable-sampling": metawear_cmd,
    "metawear-cmd-gyro-subscribe-bmi160": metawear_cmd,
    "metawear-cmd-conn-params": metawear_cmd,
    "metawear-module-info-acc-bmi160": metawear_module_info,
    "dot-free-acc-capture-1": dot_free_acc,
    "dot-free-acc-capture-2": dot_free_acc,
    "dot-rate-quantities-constructed": dot_rate_quantities,
    "dot-cmd-start-free-acc": dot_cmd,
    "dot-cmd-start-rate-quantities": dot_cmd,
    "dot-cmd-stop": dot_cmd,
    "dot-cmd-set-output-rate-60": dot_cmd,
    "dot-msg-get-recording-state": dot_cmd,
    "dot-msg-get-recording-state-ack": dot_cmd,
    "dot-msg-get-sync-status": dot_cmd,
    "dot-msg-stop-sync": dot_cmd,
    "dot-msg-start-sync": dot_cmd,
    "witmotion-0x61-constructed": witmotion_packet,
    "witmotion-cmd-unlock": witmotion_cmd,
    "witmotion-cmd-rate-50hz": witmotion_cmd,
    "witmotion-cmd-rate-10hz": witmotion_cmd,
    "witmotion-cmd-save": witmotion_cmd,
    "witmotion-cmd-read-mag": witmotion_cmd,
    "thingy52-raw-constructed": thingy_raw,
    "thingy52-config-default": thingy_config,
    "movesense-gsp-subscribe-imu9-104": movesense_cmd,
    "movesense-gsp-subscribe-acc-13": movesense_cmd,
    "movesense-gsp-unsubscribe": movesense_cmd,
    "movesense-gsp-subscribe-imu6-104": movesense_cmd,
    "movesense-gsp-imu6-constructed": movesense_imu6,
}
CROSS_CHECKS = {"dot-free-acc-capture-2": dot_captures_in_sequence}


def _load(shared_dir: Path) -> dict[str, dict]:
    path = shared_dir / "protocols" / "vectors.json"
    if not path.is_file():
        pytest.skip(f"no vectors.json in the shared material ({path.name} missing)")
    return {v["id"]: v for v in json.loads(path.read_text())}


def test_every_shared_vector_of_a_supported_family_has_a_check(shared_dir: Path) -> None:
    vectors = _load(shared_dir)
    ours = {i for i, v in vectors.items() if v["sensor"] in SUPPORTED}
    assert ours - set(CHECKS) == set(), "new shared vectors need a check here"
    assert set(CHECKS) - set(vectors) == set(), "checks for vectors that no longer exist"


@pytest.mark.parametrize("vector_id", sorted(CHECKS))
def test_shared_vector(vector_id: str, shared_dir: Path) -> None:
    vectors = _load(shared_dir)
    if vector_id not in vectors:
        pytest.fail(f"vector {vector_id} is no longer in vectors.json")
    v = vectors[vector_id]
    assert v["sensor"] in SUPPORTED
    CHECKS[vector_id](v)
    if vector_id in CROSS_CHECKS:
        CROSS_CHECKS[vector_id](v, vectors)
