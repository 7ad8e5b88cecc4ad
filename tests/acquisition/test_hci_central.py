"""A central in this process, its controller on a virtual radio in another process (HCI over TCP).

The child process below builds a :class:`~lumbar.acquisition.virtual_radio.VirtualRadio` with one
peripheral, serves one more central controller's HCI on a localhost socket
(:meth:`VirtualRadio.serve_hci`) and prints the port. The test process connects an
:class:`~lumbar.acquisition.virtual_radio.HciCentral` to it and drives bleak through its backends,
so everything between bleak and the peripheral's GATT server (host stack here, HCI over TCP,
controllers and link there) is the real thing.
"""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError

from lumbar.acquisition.virtual_radio import HciCentral

SRC_DIR = Path(__file__).resolve().parents[2] / "src"

SERVICE = "a0b20001-0000-4c75-6d62-61722d494d55"
INFO_CHAR = "a0b20002-0000-4c75-6d62-61722d494d55"  # read: INFO_VALUE
DATA_CHAR = "a0b20003-0000-4c75-6d62-61722d494d55"  # notify
CONTROL_CHAR = "a0b20004-0000-4c75-6d62-61722d494d55"  # write n: n notifications on DATA_CHAR
HANG = 255  # written to CONTROL_CHAR: the child never confirms the write
NAME = "HCI Probe"
INFO_VALUE = bytes(range(0, 256, 7)) + b"\x00\xffend"


def payload(i: int) -> bytes:
    """The i-th notification the child sends: distinct, with a zero byte and a varying length."""
    return bytes([i, 0, 0xA5]) + f"note-{i}".encode() * (1 + i % 3)


# The child: one peripheral on a virtual radio, a second central's HCI served on a TCP port.
# A write of one byte n to CONTROL_CHAR sends payload(0..n-1) as notifications on DATA_CHAR
# (before the write is confirmed); a write of HANG is never confirmed. It prints the port, then
# runs until its stdin closes.
CHILD = f"""
import asyncio, sys
from lumbar.acquisition.virtual_radio import CharacteristicSpec, PeripheralSpec, ServiceSpec, VirtualRadio

def payload(i):
    return bytes([i, 0, 0xA5]) + f"note-{{i}}".encode() * (1 + i % 3)

async def main():
    peripheral = None

    async def on_write(data):
        if data[0] == {HANG}:
            await asyncio.Event().wait()
        for i in range(data[0]):
            await peripheral.notify({DATA_CHAR!r}, payload(i))

    spec = PeripheralSpec({NAME!r}, [ServiceSpec({SERVICE!r}, [
        CharacteristicSpec({INFO_CHAR!r}, {{"read"}}, value={INFO_VALUE!r}),
        CharacteristicSpec({DATA_CHAR!r}, {{"notify"}}),
        CharacteristicSpec({CONTROL_CHAR!r}, {{"write"}}, on_write=on_write),
    ])])
    radio = VirtualRadio([spec])
    peripheral = radio.peripherals[0]
    await radio.start()
    port = await radio.serve_hci(coalesce_s=float(sys.argv[1]) if len(sys.argv) > 1 else 0.0)
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until stdin closes
    await radio.stop()

asyncio.run(main())
"""


async def start_child(coalesce_s: float = 0.0) -> tuple[asyncio.subprocess.Process, int]:
    """Start the child radio (notifications grouped over ``coalesce_s`` s); return it and the TCP port of its
    served HCI."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC_DIR)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(coalesce_s), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30.0)
        assert line.strip().isdigit(), f"the child did not print a port: {line!r} (exit code {proc.returncode})"
        return proc, int(line)
    except BaseException:
        await end_child(proc)
        raise


async def end_child(proc: asyncio.subprocess.Process) -> None:
    """Kill the child if it is still running, and reap it."""
    if proc.returncode is None:
        proc.kill()
    await proc.wait()
    if proc.stdin is not None:
        proc.stdin.close()


def assert_nothing_left_running() -> None:
    leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not leftovers, f"tasks left running after the central stopped: {leftovers}"


async def find_probe(central: HciCentral) -> BLEDevice:
    """Scan 1.5 s through ``central``; the one probe peripheral heard."""
    devices = await BleakScanner.discover(1.5, backend=central.scanner_backend)
    found = [d for d in devices if d.name == NAME]
    assert len(found) == 1, f"scan through the HCI central found {[(d.name, d.address) for d in devices]}"
    return found[0]


@pytest.mark.parametrize("coalesce_s", [0.0, 0.01], ids=["each-at-once", "grouped"])
def test_hci_central_scans_connects_reads_and_receives_notifications_in_order(coalesce_s: float) -> None:
    """Through a central whose controller is in another process: scan, connect, exact read,
    notifications in order with exact payloads, disconnect, stop; the child then exits cleanly
    (return code 0) when its stdin closes. The same with notifications grouped over 10 ms
    (``serve_hci(coalesce_s=...)``): nothing lost, reordered or mixed with the replies."""

    async def main() -> None:
        proc, port = await start_child(coalesce_s)
        try:
            central = await asyncio.wait_for(HciCentral.open(f"tcp-client:127.0.0.1:{port}"), 10.0)
            try:
                assert central.is_running
                device = await find_probe(central)
                lost: list[str] = []
                client = BleakClient(device, lambda c: lost.append(c.address), backend=central.client_backend)
                await asyncio.wait_for(client.connect(), 15.0)
                try:
                    assert client.is_connected
                    assert client.mtu_size == central.mtu
                    assert await asyncio.wait_for(client.read_gatt_char(INFO_CHAR), 5.0) == INFO_VALUE

                    received: list[bytes] = []
                    await asyncio.wait_for(client.start_notify(DATA_CHAR, lambda _c, d: received.append(bytes(d))), 5.0)
                    # The child notifies before it confirms the write: all have arrived when it returns.
                    await asyncio.wait_for(client.write_gatt_char(CONTROL_CHAR, bytes([40]), response=True), 10.0)
                    assert received == [payload(i) for i in range(40)]
                    await asyncio.wait_for(client.stop_notify(DATA_CHAR), 5.0)
                    await asyncio.wait_for(client.write_gatt_char(CONTROL_CHAR, bytes([5]), response=True), 10.0)
                    assert len(received) == 40  # unsubscribed: nothing more
                finally:
                    await asyncio.wait_for(client.disconnect(), 10.0)
                assert not client.is_connected
                assert lost == []  # our own disconnect does not call the callback
                # the peripheral advertises again: the same central finds and connects it again
                again = await find_probe(central)
                async with BleakClient(again, backend=central.client_backend) as second:
                    assert await asyncio.wait_for(second.read_gatt_char(INFO_CHAR), 5.0) == INFO_VALUE
            finally:
                await asyncio.wait_for(central.stop(), 10.0)
            assert not central.is_running
            assert_nothing_left_running()

            assert proc.stdin is not None
            proc.stdin.close()
            assert await asyncio.wait_for(proc.wait(), 10.0) == 0
        finally:
            await end_child(proc)

    asyncio.run(main())


async def connect_probe(central: HciCentral, **kwargs: object) -> tuple[BleakClient, asyncio.Event]:
    """Find the probe and connect to it; the event is set by the client's disconnected callback."""
    device = await find_probe(central)
    dropped = asyncio.Event()
    client = BleakClient(device, lambda _c: dropped.set(), backend=central.client_backend, **kwargs)  # type: ignore[arg-type]
    await asyncio.wait_for(client.connect(), 15.0)
    return client, dropped


def test_killed_peer_process_drops_the_link_without_hanging() -> None:
    """The process holding the controller dies while connected: the client's disconnected
    callback fires within a few seconds (no hang), the client says it is disconnected, a GATT
    read then raises a bleak error, the central says it is no longer running, a new scan fails at
    once with a bleak error, and the central still stops."""

    async def main() -> None:
        proc, port = await start_child()
        try:
            central = await asyncio.wait_for(HciCentral.open(f"tcp-client:127.0.0.1:{port}"), 10.0)
            try:
                client, dropped = await connect_probe(central)
                received: list[bytes] = []
                await asyncio.wait_for(client.start_notify(DATA_CHAR, lambda _c, d: received.append(bytes(d))), 5.0)
                await asyncio.wait_for(client.write_gatt_char(CONTROL_CHAR, bytes([3]), response=True), 10.0)
                assert received == [payload(i) for i in range(3)]

                proc.kill()
                assert await asyncio.wait_for(proc.wait(), 10.0) != 0
                await asyncio.wait_for(dropped.wait(), 5.0)
                assert not client.is_connected
                with pytest.raises(BleakError):
                    await asyncio.wait_for(client.read_gatt_char(INFO_CHAR), 5.0)
                await asyncio.wait_for(client.disconnect(), 5.0)  # no-op on a dead link
                assert not central.is_running
                with pytest.raises(BleakError):
                    await asyncio.wait_for(BleakScanner.discover(1.0, backend=central.scanner_backend), 3.0)
            finally:
                await asyncio.wait_for(central.stop(), 10.0)
            assert not central.is_running
            assert_nothing_left_running()
        finally:
            await end_child(proc)

    asyncio.run(main())


def test_killed_peer_process_fails_the_gatt_operation_in_flight() -> None:
    """The process holding the controller dies while a write waits for its confirmation: the
    write raises a bleak error within a few seconds (not after the GATT timeout, set to a minute
    here), and the disconnected callback fires."""

    async def main() -> None:
        proc, port = await start_child()
        try:
            central = await asyncio.wait_for(HciCentral.open(f"tcp-client:127.0.0.1:{port}"), 10.0)
            try:
                client, dropped = await connect_probe(central, gatt_timeout=60.0)
                write = asyncio.ensure_future(client.write_gatt_char(CONTROL_CHAR, bytes([HANG]), response=True))
                await asyncio.sleep(0.5)
                assert not write.done()  # the child holds the confirmation back
                proc.kill()
                assert await asyncio.wait_for(proc.wait(), 10.0) != 0
                with pytest.raises(BleakError):
                    await asyncio.wait_for(write, 5.0)
                await asyncio.wait_for(dropped.wait(), 5.0)
                assert not client.is_connected
            finally:
                await asyncio.wait_for(central.stop(), 10.0)
            assert_nothing_left_running()
        finally:
            await end_child(proc)

    asyncio.run(main())


def test_killed_peer_process_ends_a_running_scan_without_hanging() -> None:
    """The process holding the controller dies while a scanner runs: the central notices (no
    longer running) within a few seconds, stopping the scanner returns at once (no HCI command to a
    dead controller), and the central stops."""

    async def main() -> None:
        proc, port = await start_child()
        try:
            central = await asyncio.wait_for(HciCentral.open(f"tcp-client:127.0.0.1:{port}"), 10.0)
            try:
                heard: list[str] = []
                scanner = BleakScanner(lambda d, _a: heard.append(d.name), backend=central.scanner_backend)
                await asyncio.wait_for(scanner.start(), 5.0)
                try:
                    t0 = time.monotonic()
                    while NAME not in heard:
                        assert time.monotonic() - t0 < 10.0, "the probe was not heard"
                        await asyncio.sleep(0.05)
                    proc.kill()
                    assert await asyncio.wait_for(proc.wait(), 10.0) != 0
                    t0 = time.monotonic()
                    while central.is_running:
                        assert time.monotonic() - t0 < 5.0, "the central did not notice its controller had gone"
                        await asyncio.sleep(0.05)
                finally:
                    await asyncio.wait_for(scanner.stop(), 2.0)
            finally:
                await asyncio.wait_for(central.stop(), 2.0)
            assert_nothing_left_running()
        finally:
            await end_child(proc)

    asyncio.run(main())


async def _scan(central: HciCentral, device: object) -> object:
    return await BleakScanner.discover(1.0, backend=central.scanner_backend)


async def _connect(central: HciCentral, device: object) -> object:
    client = BleakClient(device, backend=central.client_backend, timeout=30.0)  # type: ignore[arg-type]
    await client.connect()
    return client


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP to freeze the peer process")
@pytest.mark.parametrize("operation", [
    pytest.param(_connect, id="connect"),
    pytest.param(_scan, id="scan"),
])
def test_an_hci_command_pending_when_the_peer_process_dies_fails_with_a_bleak_error(operation) -> None:
    """The peer process is frozen (its controller answers nothing), an operation waits for the
    answer to its HCI command, then the process is killed: the operation fails at once with a
    bleak error (which the reader handles as a link problem), not a Bumble one nor a hang."""

    async def main() -> None:
        proc, port = await start_child()
        try:
            central = await asyncio.wait_for(HciCentral.open(f"tcp-client:127.0.0.1:{port}"), 10.0)
            try:
                device = await find_probe(central)
                os.kill(proc.pid, signal.SIGSTOP)
                pending = asyncio.ensure_future(operation(central, device))
                await asyncio.sleep(0.5)
                assert not pending.done()  # waits for a controller that does not answer
                proc.kill()
                assert await asyncio.wait_for(proc.wait(), 10.0) != 0
                with pytest.raises(BleakError):
                    await asyncio.wait_for(pending, 5.0)
            finally:
                await asyncio.wait_for(central.stop(), 10.0)
        finally:
            await end_child(proc)

    asyncio.run(main())
