"""The virtual radio harness itself: specs, advertising payload, life cycle, fault switches."""
from __future__ import annotations

import asyncio

import pytest
from bleak import BleakClient, BleakScanner

from lumbar.acquisition.bumble_backend import _parse_ad_structures
from lumbar.acquisition.virtual_radio import (
    CharacteristicSpec,
    PeripheralSpec,
    ServiceSpec,
    VirtualRadio,
    normalize_uuid,
)
from lumbar.errors import ValidationError

from ._emulation import DATA_CHAR, INFO_CHAR, SENSOR_SERVICE, SensorLog, run_with_radio, sensor_spec


def test_normalize_uuid_matches_bleak() -> None:
    from bleak.uuids import normalize_uuid_str

    for value in ("180f", "2A19", "12345678", SENSOR_SERVICE.upper()):
        assert normalize_uuid(value) == normalize_uuid_str(value)
    assert normalize_uuid(0x180F) == normalize_uuid_str("180f")
    with pytest.raises(ValidationError, match="UUID"):
        normalize_uuid("not-a-uuid")


def test_specs_validate_at_the_boundary() -> None:
    with pytest.raises(ValidationError, match="properties"):
        CharacteristicSpec(DATA_CHAR, {"notifyy"})
    with pytest.raises(ValidationError, match="properties"):
        CharacteristicSpec(DATA_CHAR, set())
    with pytest.raises(ValidationError, match="static random"):
        PeripheralSpec("x", [], address="00:11:22:33:44:55")
    with pytest.raises(ValidationError, match="advertising_interval_ms"):
        PeripheralSpec("x", [], advertising_interval_ms=1.0)
    with pytest.raises(ValidationError, match="mtu"):
        VirtualRadio(mtu=1000)


def test_advertising_payload_round_trips_through_the_parser() -> None:
    spec = PeripheralSpec(
        "S1",
        [ServiceSpec(SENSOR_SERVICE, [CharacteristicSpec(DATA_CHAR, {"notify"})])],
        advertised_service_uuids=(SENSOR_SERVICE, "180f"),
        manufacturer_data={0x0059: b"\x01\x02"},
        service_data={"180f": b"\x55"},
        tx_power_dbm=-4,
    )
    parsed = _parse_ad_structures(spec.advertising_data())
    assert parsed.local_name == "S1"
    assert parsed.service_uuids is not None
    assert sorted(parsed.service_uuids) == sorted([SENSOR_SERVICE, normalize_uuid("180f")])
    assert parsed.manufacturer_data == {0x0059: b"\x01\x02"}
    assert parsed.service_data == {normalize_uuid("180f"): b"\x55"}
    assert parsed.tx_power == -4


def test_peripheral_api_and_duplicate_addresses() -> None:
    async def main() -> None:  # Bumble controllers need a running loop to be created
        radio = VirtualRadio()
        first = radio.add_peripheral(sensor_spec("A", SensorLog()))
        assert radio.peripheral("A") is first and radio.peripheral(first.address) is first
        with pytest.raises(ValidationError, match="already on this link"):
            radio.add_peripheral(PeripheralSpec("B", [], address=first.address))
        with pytest.raises(ValidationError, match="no virtual peripheral"):
            radio.peripheral("nope")
        with pytest.raises(ValidationError, match="has no characteristic"):
            first.characteristic("2a19")
        assert first.value(INFO_CHAR) == b""
        first.set_value(DATA_CHAR, b"\x01")
        assert first.value(DATA_CHAR) == b"\x01"
        assert "stopped" in repr(radio)

    asyncio.run(main())


def test_notify_without_subscriber_is_dropped_and_peripheral_added_while_running() -> None:
    async def body(radio: VirtualRadio) -> None:
        peripheral = radio.peripherals[0]
        assert peripheral.is_advertising and not peripheral.is_connected
        assert await peripheral.notify(DATA_CHAR, b"nobody") == 0
        late = radio.add_peripheral(sensor_spec("LATE", SensorLog()))
        await radio.start_peripheral(late)
        device = await BleakScanner.find_device_by_name("LATE", timeout=2.0, backend=radio.scanner_backend)
        assert device is not None and device.address == late.address

    run_with_radio(body, [sensor_spec("A", SensorLog())])


def test_caller_side_timeout_on_connect_leaves_the_central_usable() -> None:
    async def body(radio: VirtualRadio) -> None:
        peripheral = radio.peripherals[0]
        await peripheral.stop_advertising()
        client = BleakClient(peripheral.address, backend=radio.client_backend, timeout=5.0)
        # The reader's own (shorter) timeout cancels connect(); the pending attempt must go.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.connect(), 0.1)
        await peripheral.start_advertising()
        await asyncio.wait_for(client.connect(), 2.0)
        assert client.is_connected
        await client.disconnect()

    run_with_radio(body, [sensor_spec("A", SensorLog())])


def test_stop_with_open_links_fires_disconnected_callbacks_and_leaves_nothing_running() -> None:
    lost: list[str] = []

    async def main() -> None:
        async with VirtualRadio([sensor_spec("A", SensorLog()), sensor_spec("B", SensorLog())]) as radio:
            for peripheral in radio.peripherals:
                client = BleakClient(
                    peripheral.address, lambda c: lost.append(c.address), backend=radio.client_backend
                )
                await client.connect()
                await client.start_notify(DATA_CHAR, lambda _c, _d: None)
        # Links torn down by the radio count as unsolicited; callbacks run on the loop.
        await asyncio.sleep(0)
        assert not radio.is_running
        leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not leftovers, leftovers

    asyncio.run(main())
    assert sorted(lost) == ["C0:00:00:00:00:01", "C0:00:00:00:00:02"]
