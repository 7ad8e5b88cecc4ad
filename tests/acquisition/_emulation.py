"""Shared helpers for the emulation tests: two generic sensor-like peripherals, a runner."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from lumbar.acquisition.virtual_radio import (
    CharacteristicSpec,
    DescriptorSpec,
    PeripheralSpec,
    ServiceSpec,
    VirtualRadio,
)

# A made-up streaming profile: data (notify), control (write / write without response),
# info (read, dynamic), a read-only characteristic and a user-description descriptor.
SENSOR_SERVICE = "a0b10001-0000-4c75-6d62-61722d494d55"
DATA_CHAR = "a0b10002-0000-4c75-6d62-61722d494d55"
CONTROL_CHAR = "a0b10003-0000-4c75-6d62-61722d494d55"
INFO_CHAR = "a0b10004-0000-4c75-6d62-61722d494d55"
BATTERY_SERVICE = "180f"
BATTERY_LEVEL = "2a19"
USER_DESCRIPTION = "2901"
COMPANY_ID = 0xFFFF  # reserved for tests by the Bluetooth SIG


@dataclass
class SensorLog:
    """What one emulated sensor saw from the central."""

    writes: list[bytes] = field(default_factory=list)
    reads: int = 0


def sensor_spec(name: str, log: SensorLog, *, battery: bool = False) -> PeripheralSpec:
    """A generic IMU-like peripheral; ``battery`` adds (and advertises) a Battery service."""

    def on_read() -> bytes:
        log.reads += 1
        return f"{name}:{log.reads}".encode()

    services = [
        ServiceSpec(
            SENSOR_SERVICE,
            [
                CharacteristicSpec(DATA_CHAR, {"notify"}),
                CharacteristicSpec(
                    CONTROL_CHAR,
                    {"write", "write-without-response"},
                    on_write=log.writes.append,
                    descriptors=(DescriptorSpec(USER_DESCRIPTION, b"control", writable=True),),
                ),
                CharacteristicSpec(INFO_CHAR, {"read"}, on_read=on_read),
            ],
        )
    ]
    if battery:
        services.append(ServiceSpec(BATTERY_SERVICE, [CharacteristicSpec(BATTERY_LEVEL, {"read", "notify"}, b"\x64")]))
    return PeripheralSpec(name=name, services=services, manufacturer_data={COMPANY_ID: name.encode()})


def run_with_radio(
    body: Callable[[VirtualRadio], Awaitable[None]], specs: list[PeripheralSpec], *, timeout_s: float = 30.0
) -> None:
    """Run ``body(radio)`` in a fresh loop; fail if anything is left running afterwards."""

    async def main() -> None:
        radio = VirtualRadio(specs)
        async with radio:
            await asyncio.wait_for(body(radio), timeout_s)
        leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not leftovers, f"tasks left running after shutdown: {leftovers}"

    asyncio.run(main())
