"""End-to-end tests of the bleak backend over Bumble: bleak facade -> backend -> Bumble central
-> virtual link -> Bumble peripherals. Only bleak's public API is used on the central side."""
from __future__ import annotations

import asyncio
import random

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakError, BleakGATTProtocolError, BleakGATTProtocolErrorCode

from lumbar.acquisition.bumble_backend import BumbleBleakClient, BumbleBleakScanner, _parse_ad_structures
from lumbar.acquisition.virtual_radio import VirtualRadio, normalize_uuid

from ._emulation import (
    BATTERY_LEVEL,
    BATTERY_SERVICE,
    COMPANY_ID,
    CONTROL_CHAR,
    DATA_CHAR,
    INFO_CHAR,
    SENSOR_SERVICE,
    USER_DESCRIPTION,
    SensorLog,
    run_with_radio,
    sensor_spec,
)


def two_sensors() -> tuple[list, SensorLog, SensorLog]:
    log_a, log_b = SensorLog(), SensorLog()
    return [sensor_spec("LUMBAR-L1", log_a), sensor_spec("LUMBAR-S1", log_b, battery=True)], log_a, log_b


async def find(radio: VirtualRadio, name: str):
    device = await BleakScanner.find_device_by_name(name, timeout=2.0, backend=radio.scanner_backend)
    assert device is not None, f"{name} not found"
    return device


# ------------------------------------------------------------------------------------ scanning
def test_scan_finds_both_peripherals_by_name_and_service() -> None:
    specs, _, _ = two_sensors()

    async def body(radio: VirtualRadio) -> None:
        found = await BleakScanner.discover(0.3, return_adv=True, backend=radio.scanner_backend)
        by_name = {adv.local_name: (device, adv) for device, adv in found.values()}
        assert set(by_name) == {"LUMBAR-L1", "LUMBAR-S1"}
        device, adv = by_name["LUMBAR-L1"]
        assert device.address == radio.peripheral("LUMBAR-L1").address
        assert device.name == "LUMBAR-L1"
        assert adv.service_uuids == [SENSOR_SERVICE]
        assert adv.manufacturer_data == {COMPANY_ID: b"LUMBAR-L1"}
        assert isinstance(adv.rssi, int) and -127 <= adv.rssi <= 20
        assert set(by_name["LUMBAR-S1"][1].service_uuids) == {SENSOR_SERVICE, normalize_uuid(BATTERY_SERVICE)}

        # Filter by service UUID (16-bit short form accepted, as bleak does).
        only_battery = await BleakScanner.discover(
            0.3, return_adv=True, service_uuids=[BATTERY_SERVICE], backend=radio.scanner_backend
        )
        assert [adv.local_name for _, adv in only_battery.values()] == ["LUMBAR-S1"]

        # The streaming API and find-by-name work too.
        assert (await find(radio, "LUMBAR-S1")).address == radio.peripheral("LUMBAR-S1").address
        async with BleakScanner(backend=radio.scanner_backend) as scanner:
            async for device, adv in scanner.advertisement_data():
                if adv.local_name == "LUMBAR-L1":
                    break
        assert scanner.backend_id == "BumbleBleakScanner"

    run_with_radio(body, specs)


def test_peripheral_that_stops_advertising_vanishes_from_scans() -> None:
    specs, _, _ = two_sensors()

    async def body(radio: VirtualRadio) -> None:
        await radio.peripheral("LUMBAR-L1").stop_advertising()
        await asyncio.sleep(0.05)
        names = {adv.local_name for _, adv in (await BleakScanner.discover(
            0.3, return_adv=True, backend=radio.scanner_backend)).values()}
        assert names == {"LUMBAR-S1"}

    run_with_radio(body, specs)


# ------------------------------------------------------------------------------------ GATT
def test_connect_both_discover_read_write_mtu() -> None:
    specs, log_a, log_b = two_sensors()

    async def body(radio: VirtualRadio) -> None:
        devices = [await find(radio, "LUMBAR-L1"), await find(radio, "LUMBAR-S1")]
        clients = [BleakClient(d, backend=radio.client_backend) for d in devices]
        await asyncio.gather(*(c.connect() for c in clients))
        try:
            assert all(c.is_connected for c in clients)
            for client, log, name in zip(clients, (log_a, log_b), ("LUMBAR-L1", "LUMBAR-S1")):
                assert client.backend_id == "BumbleBleakClient"
                assert client.mtu_size == radio.mtu == 247
                service = client.services.get_service(SENSOR_SERVICE)
                assert service is not None
                data = service.get_characteristic(DATA_CHAR)
                control = service.get_characteristic(CONTROL_CHAR)
                info = service.get_characteristic(INFO_CHAR)
                assert data is not None and control is not None and info is not None
                assert data.properties == ["notify"]
                assert set(control.properties) == {"write", "write-without-response"}
                assert info.properties == ["read"]
                assert len({data.handle, control.handle, info.handle}) == 3
                assert control.max_write_without_response_size == 247 - 3
                cccd = data.get_descriptor("2902")
                assert cccd is not None and cccd.handle > data.handle
                assert client.services.get_characteristic(data.handle) is data

                assert await client.read_gatt_char(INFO_CHAR) == f"{name}:1".encode()
                assert await client.read_gatt_char(info) == f"{name}:2".encode()
                assert await client.read_gatt_char(info, use_cached=True) == f"{name}:2".encode()

                await client.write_gatt_char(CONTROL_CHAR, b"\x01start", response=True)
                assert log.writes[-1] == b"\x01start"  # confirmed: the handler already ran
                await client.write_gatt_char(control, bytearray(b"\x02nr"), response=False)
                for _ in range(100):
                    if log.writes[-1] == b"\x02nr":
                        break
                    await asyncio.sleep(0.001)
                assert log.writes == [b"\x01start", b"\x02nr"]
                # A long write (> MTU - 3) goes through prepare/execute and arrives whole.
                await client.write_gatt_char(control, bytes(range(256)) * 2, response=True)
                assert log.writes[-1] == bytes(range(256)) * 2

                description = control.get_descriptor(USER_DESCRIPTION)
                assert description is not None
                assert await client.read_gatt_descriptor(description) == b"control"
                await client.write_gatt_descriptor(description.handle, b"ctl")
                assert await client.read_gatt_descriptor(description.handle) == b"ctl"

            battery = clients[1].services.get_characteristic(BATTERY_LEVEL)
            assert battery is not None and await clients[1].read_gatt_char(battery) == b"\x64"
            assert clients[0].services.get_service(BATTERY_SERVICE) is None
        finally:
            await asyncio.gather(*(c.disconnect() for c in clients))
        assert not any(c.is_connected for c in clients)

    run_with_radio(body, specs)


def test_services_filter_and_protocol_errors() -> None:
    specs, _, _ = two_sensors()

    async def body(radio: VirtualRadio) -> None:
        device = await find(radio, "LUMBAR-S1")
        async with BleakClient(device, services=[BATTERY_SERVICE], backend=radio.client_backend) as client:
            assert [s.uuid for s in client.services] == [normalize_uuid(BATTERY_SERVICE)]
        async with BleakClient(device, backend=radio.client_backend) as client:
            with pytest.raises(BleakGATTProtocolError) as info:
                await client.read_gatt_char(CONTROL_CHAR)  # write-only
            assert info.value.code == BleakGATTProtocolErrorCode.READ_NOT_PERMITTED
            with pytest.raises(BleakError, match="cannot notify"):
                await client.start_notify(INFO_CHAR, lambda c, d: None)
            with pytest.raises(BleakError, match="exceeds"):
                await client.write_gatt_char(CONTROL_CHAR, bytes(300), response=False)
            with pytest.raises(NotImplementedError, match="pairing"):
                await client.pair()
            with pytest.raises(NotImplementedError):
                await client.unpair()

    run_with_radio(body, specs)


# ------------------------------------------------------------------------------------ notifications
def test_1000_notifications_in_order_from_two_peripherals_concurrently() -> None:
    specs, _, _ = two_sensors()
    n = 1000
    rng = random.Random(20240611)
    payloads = {
        name: [i.to_bytes(4, "little") + bytes(rng.getrandbits(8) for _ in range(36)) for i in range(n)]
        for name in ("LUMBAR-L1", "LUMBAR-S1")
    }

    async def body(radio: VirtualRadio) -> None:
        received: dict[str, list[bytes]] = {name: [] for name in payloads}
        senders: dict[str, list[str]] = {name: [] for name in payloads}
        done = {name: asyncio.Event() for name in payloads}
        clients = {}
        for name in payloads:
            device = await find(radio, name)
            clients[name] = BleakClient(device, backend=radio.client_backend)
        await asyncio.gather(*(c.connect() for c in clients.values()))

        def make_callback(name: str):
            def on_data(sender: BleakGATTCharacteristic, data: bytearray) -> None:
                assert isinstance(data, bytearray)
                senders[name].append(sender.uuid)
                received[name].append(bytes(data))
                if len(received[name]) == n:
                    done[name].set()
            return on_data

        for name, client in clients.items():
            await client.start_notify(DATA_CHAR, make_callback(name))
            await radio.peripheral(name).wait_subscribed(DATA_CHAR)

        async def stream(name: str) -> None:
            peripheral = radio.peripheral(name)
            for i, payload in enumerate(payloads[name]):
                assert await peripheral.notify(DATA_CHAR, payload) == 1
                if i % 50 == 0:
                    await asyncio.sleep(0)  # interleave the two sensors

        await asyncio.gather(*(stream(name) for name in payloads))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in done.values())), 10.0)
        for name in payloads:
            assert received[name] == payloads[name]
            assert set(senders[name]) == {DATA_CHAR}

        # stop_notify: the peripheral sees the unsubscription and nothing more arrives.
        for name, client in clients.items():
            await client.stop_notify(DATA_CHAR)
            await radio.peripheral(name).wait_subscribed(DATA_CHAR, subscribed=False)
            assert await radio.peripheral(name).notify(DATA_CHAR, b"late") == 0
        await asyncio.sleep(0.01)
        assert all(len(v) == n for v in received.values())
        await asyncio.gather(*(c.disconnect() for c in clients.values()))

    run_with_radio(body, specs)


def test_async_notification_callback() -> None:
    specs, _, _ = two_sensors()

    async def body(radio: VirtualRadio) -> None:
        got: asyncio.Queue[bytes] = asyncio.Queue()

        async def on_data(_sender: BleakGATTCharacteristic, data: bytearray) -> None:
            await got.put(bytes(data))

        async with BleakClient(await find(radio, "LUMBAR-L1"), backend=radio.client_backend) as client:
            await client.start_notify(DATA_CHAR, on_data)
            await radio.peripheral("LUMBAR-L1").notify(DATA_CHAR, b"abc")
            assert await asyncio.wait_for(got.get(), 1.0) == b"abc"

    run_with_radio(body, specs)


# ------------------------------------------------------------------------------------ link faults
def test_peripheral_disconnect_fires_callback_and_reconnect_works() -> None:
    specs, _, _ = two_sensors()

    async def body(radio: VirtualRadio) -> None:
        lost: list[BleakClient] = []
        lost_event = asyncio.Event()

        def on_disconnect(client: BleakClient) -> None:
            lost.append(client)
            lost_event.set()

        peripheral = radio.peripheral("LUMBAR-L1")
        client = BleakClient(await find(radio, "LUMBAR-L1"), on_disconnect, backend=radio.client_backend)
        await client.connect()
        got: list[bytes] = []
        await client.start_notify(DATA_CHAR, lambda _c, d: got.append(bytes(d)))
        await peripheral.wait_subscribed(DATA_CHAR)

        await peripheral.disconnect()
        await asyncio.wait_for(lost_event.wait(), 2.0)
        assert lost == [client]
        assert not client.is_connected
        assert not peripheral.is_connected
        with pytest.raises(BleakError):
            await client.read_gatt_char(INFO_CHAR)

        # The peripheral advertises again by itself; the same client object reconnects.
        await client.connect()
        assert client.is_connected and client.mtu_size == 247
        await client.start_notify(DATA_CHAR, lambda _c, d: got.append(bytes(d)))
        await peripheral.wait_subscribed(DATA_CHAR)
        await peripheral.notify(DATA_CHAR, b"again")
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.001)
        assert got == [b"again"]

        # A disconnect the client asks for does not fire the callback.
        await client.disconnect()
        await asyncio.sleep(0.01)
        assert lost == [client] and not client.is_connected

    run_with_radio(body, specs)


def test_mute_peripheral_times_out_and_drop_during_request_is_a_bleak_error() -> None:
    specs, _, _ = two_sensors()

    async def body(radio: VirtualRadio) -> None:
        peripheral = radio.peripheral("LUMBAR-L1")
        device = await find(radio, "LUMBAR-L1")
        # gatt_timeout is a backend-specific keyword; bleak forwards it to the backend.
        async with BleakClient(device, backend=radio.client_backend, gatt_timeout=0.2) as client:
            peripheral.answering = False
            with pytest.raises(TimeoutError, match="no answer"):
                await client.read_gatt_char(INFO_CHAR)
            read = asyncio.ensure_future(client.read_gatt_char(INFO_CHAR))
            await asyncio.sleep(0.05)
            await peripheral.disconnect()
            with pytest.raises(BleakError, match="disconnected during"):
                await read
            peripheral.answering = True

        # A mute peripheral still accepts the link, but connect() times out in set-up.
        peripheral.answering = False
        with pytest.raises(TimeoutError, match="MTU exchange or service discovery"):
            await BleakClient(device, backend=radio.client_backend, timeout=0.3).connect()
        assert not peripheral.is_connected or await _eventually_disconnected(peripheral)

        # The link dropping while connect() waits in set-up is a BleakError, not a
        # cancellation leaking out of the stack.
        lost: list[BleakClient] = []
        pending = asyncio.ensure_future(
            BleakClient(device, lost.append, backend=radio.client_backend, timeout=5).connect()
        )
        for _ in range(200):
            if peripheral.is_connected:
                break
            await asyncio.sleep(0.001)
        await peripheral.disconnect()
        with pytest.raises(BleakError, match="disconnected during connection set-up"):
            await pending
        await asyncio.sleep(0)
        assert lost == []  # connect() raised; the callback is for established links only
        peripheral.answering = True

        # Not advertising: the connection attempt itself times out.
        await peripheral.stop_advertising()
        client = BleakClient(device, backend=radio.client_backend, timeout=0.3)
        with pytest.raises(TimeoutError, match="no connection"):
            await client.connect()
        assert not client.is_connected
        await peripheral.start_advertising()
        await client.connect()
        assert client.is_connected
        await client.disconnect()

    run_with_radio(body, specs)


async def _eventually_disconnected(peripheral) -> bool:
    for _ in range(100):
        if not peripheral.is_connected:
            return True
        await asyncio.sleep(0.001)
    return False


def test_connect_by_address_string_and_unbound_backend() -> None:
    specs, _, _ = two_sensors()

    async def body(radio: VirtualRadio) -> None:
        address = radio.peripheral("LUMBAR-S1").address
        async with BleakClient(address, backend=radio.client_backend) as client:
            assert client.address == address
            assert await client.read_gatt_char(BATTERY_LEVEL) == b"\x64"
        # The unbound class finds its radio in BLEDevice.details, or in radio=...
        device = await find(radio, "LUMBAR-S1")
        async with BleakClient(device, backend=BumbleBleakClient) as client:
            assert client.is_connected
        async with BleakClient(address, backend=BumbleBleakClient, radio=radio) as client:
            assert client.is_connected
        async with BleakScanner(backend=BumbleBleakScanner, radio=radio):
            await asyncio.sleep(0.05)

    run_with_radio(body, specs)


def test_backend_without_radio_says_what_to_do() -> None:
    with pytest.raises(BleakError, match="client_backend"):
        BleakClient("C0:00:00:00:00:01", backend=BumbleBleakClient)
    with pytest.raises(BleakError, match="scanner_backend"):
        BleakScanner(backend=BumbleBleakScanner)


def test_scanning_a_stopped_radio_is_a_clear_error() -> None:
    async def main() -> None:
        radio = VirtualRadio()
        with pytest.raises(BleakError, match="not running"):
            await BleakScanner(backend=radio.scanner_backend).start()

    asyncio.run(main())


# ------------------------------------------------------------------------------------ parsing
def test_advertising_parser_is_tolerant() -> None:
    data = bytes([2, 0x01, 0x06, 4, 0x09]) + b"abc" + bytes([3, 0x03, 0x0F, 0x18, 5, 0xFF, 0x34, 0x12, 1, 2])
    parsed = _parse_ad_structures(data + bytes([9, 0x09, 0x41]))  # truncated trailing structure
    assert parsed.local_name == "abc"
    assert parsed.service_uuids == [normalize_uuid("180f")]
    assert parsed.manufacturer_data == {0x1234: b"\x01\x02"}
    assert _parse_ad_structures(b"\x00\x00\x00").local_name is None
