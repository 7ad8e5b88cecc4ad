"""Notifications/s through the emulated BLE stack (not collected by pytest; run as a script).

    python tests/benchmarks/bench_ble_emulation.py [--notifications 20000] [--payload 40] [--repeat 3]

Rows, each end to end in one process and one asyncio loop (peripheral notify -> ATT ->
L2CAP -> HCI -> virtual link -> HCI -> ATT -> callback), counting until the last
notification has reached the callback:

* ``bumble, stock``: Bumble's own Controller/Host and GATT client, no bleak -- the figure
  the project's measurements quote (about 10,000/s was noted on another machine);
* ``bumble, virtual radio``: the same through :class:`VirtualRadio` (its controller and host
  skip Bumble's per-packet debug strings);
* ``bleak -> bumble, N sensors``: through ``BleakClient.start_notify`` with the Bumble
  backend, N peripherals streaming concurrently (the reader's path).

The sender yields to the loop every 16 notifications, so delivery overlaps sending, as
with a sensor streaming on its own.
"""
from __future__ import annotations

import argparse
import asyncio
import time

from bleak import BleakClient, BleakScanner
from bumble import gatt, hci
from bumble.controller import Controller
from bumble.core import UUID
from bumble.device import Device, Peer
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from lumbar.acquisition.virtual_radio import CharacteristicSpec, PeripheralSpec, ServiceSpec, VirtualRadio

SERVICE = "a0b10001-0000-4c75-6d62-61722d494d55"
DATA = "a0b10002-0000-4c75-6d62-61722d494d55"
YIELD_EVERY = 16


async def _stream(send, n: int, payload: bytes) -> None:
    for i in range(n):
        await send(i.to_bytes(4, "little") + payload)
        if i % YIELD_EVERY == 0:
            await asyncio.sleep(0)


async def bench_stock_bumble(n: int, payload: bytes) -> float:
    """Plain Bumble devices, Peer.subscribe, no bleak."""
    link = LocalLink()

    def make(name: str, address: str) -> Device:
        controller = Controller(name, link=link)
        return Device(name=name, address=hci.Address(address), host=Host(controller, AsyncPipeSink(controller)))

    peripheral, central = make("p", "C0:00:00:00:00:01"), make("c", "C0:00:00:00:00:FF")
    characteristic = gatt.Characteristic(DATA, gatt.Characteristic.Properties.NOTIFY, gatt.Characteristic.READABLE, b"")
    peripheral.add_service(gatt.Service(SERVICE, [characteristic]))
    await peripheral.power_on()
    await central.power_on()
    await peripheral.start_advertising(advertising_interval_min=20, advertising_interval_max=20)
    connection = await central.connect(peripheral.random_address, timeout=5)
    peer = Peer(connection)
    await peer.request_mtu(247)
    await peer.discover_services()
    for service in peer.services:
        await service.discover_characteristics()
    proxy = peer.get_characteristics_by_uuid(UUID(DATA))[0]
    got = 0
    done = asyncio.Event()

    def on_value(_value: bytes) -> None:
        nonlocal got
        got += 1
        if got == n:
            done.set()

    await peer.gatt_client.subscribe(proxy, on_value)
    await asyncio.sleep(0.01)
    peripheral_connection = next(iter(peripheral.connections.values()))
    t0 = time.perf_counter()
    await _stream(lambda data: peripheral.notify_subscriber(peripheral_connection, characteristic, data), n, payload)
    await done.wait()
    elapsed = time.perf_counter() - t0
    await connection.disconnect()
    await peripheral.power_off()
    await central.power_off()
    return n / elapsed


async def bench_radio_bumble(n: int, payload: bytes) -> float:
    """VirtualRadio peripheral, Bumble central used directly (no bleak)."""
    spec = PeripheralSpec("P0", [ServiceSpec(SERVICE, [CharacteristicSpec(DATA, {"notify"})])])
    async with VirtualRadio([spec]) as radio:
        connection = await radio.central.connect(radio.peripherals[0].device.random_address, timeout=5)
        peer = Peer(connection)
        await peer.request_mtu(247)
        await peer.discover_services()
        for service in peer.services:
            await service.discover_characteristics()
        proxy = peer.get_characteristics_by_uuid(UUID(DATA))[0]
        got = 0
        done = asyncio.Event()

        def on_value(_value: bytes) -> None:
            nonlocal got
            got += 1
            if got == n:
                done.set()

        await peer.gatt_client.subscribe(proxy, on_value)
        await radio.peripherals[0].wait_subscribed(DATA)
        t0 = time.perf_counter()
        await _stream(lambda data: radio.peripherals[0].notify(DATA, data), n, payload)
        await done.wait()
        return n / (time.perf_counter() - t0)


async def bench_bleak(n_total: int, payload: bytes, sensors: int) -> float:
    """bleak facade + Bumble backend, ``sensors`` peripherals streaming at once."""
    specs = [
        PeripheralSpec(f"P{i}", [ServiceSpec(SERVICE, [CharacteristicSpec(DATA, {"notify"})])]) for i in range(sensors)
    ]
    per_sensor = n_total // sensors
    async with VirtualRadio(specs) as radio:
        clients = []
        for peripheral in radio.peripherals:
            device = await BleakScanner.find_device_by_name(peripheral.name, timeout=2, backend=radio.scanner_backend)
            assert device is not None
            clients.append(BleakClient(device, backend=radio.client_backend))
        await asyncio.gather(*(c.connect() for c in clients))
        counts = [0] * sensors
        remaining = sensors
        done = asyncio.Event()

        def callback(index: int):
            def on_data(_sender: object, _data: bytearray) -> None:
                nonlocal remaining
                counts[index] += 1
                if counts[index] == per_sensor:
                    remaining -= 1
                    if remaining == 0:
                        done.set()
            return on_data

        for index, client in enumerate(clients):
            await client.start_notify(DATA, callback(index))
            await radio.peripherals[index].wait_subscribed(DATA)
        t0 = time.perf_counter()
        await asyncio.gather(
            *(_stream(lambda data, p=p: p.notify(DATA, data), per_sensor, payload) for p in radio.peripherals)
        )
        await done.wait()
        elapsed = time.perf_counter() - t0
        await asyncio.gather(*(c.disconnect() for c in clients))
        return per_sensor * sensors / elapsed


def best_of(repeat: int, factory) -> float:
    return max(asyncio.run(factory()) for _ in range(repeat))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notifications", type=int, default=20000, help="per row, all sensors together")
    ap.add_argument("--payload", type=int, default=40, help="bytes per notification (>= 4)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n, payload = args.notifications, bytes(max(args.payload - 4, 0))
    rows = [
        ("bumble, stock", lambda: bench_stock_bumble(n, payload)),
        ("bumble, virtual radio", lambda: bench_radio_bumble(n, payload)),
        ("bleak -> bumble, 1 sensor", lambda: bench_bleak(n, payload, 1)),
        ("bleak -> bumble, 4 sensors", lambda: bench_bleak(n, payload, 4)),
    ]
    print(f"{n} notifications of {args.payload} B per row, best of {args.repeat}")
    print(f"{'path':<30}{'notifications/s':>17}{'200 Hz sensors':>16}")
    for name, factory in rows:
        rate = best_of(args.repeat, factory)
        # One notification per sample at 200 Hz is the worst case (most families batch).
        print(f"{name:<30}{rate:>17,.0f}{rate / 200:>16.0f}")


if __name__ == "__main__":
    main()
