"""An in-process virtual radio: Bumble peripherals and one Bumble central on a ``LocalLink``.

The harness gives tests, the demo and ``lumbar emulate`` a real BLE host stack (HCI, L2CAP,
ATT, GATT, advertising, connections) without any Bluetooth adapter. Each emulated sensor is a
Bumble :class:`~bumble.device.Device` with its own virtual controller and a GATT server whose
content the caller describes as plain data (:class:`PeripheralSpec`): UUIDs, properties, bytes
in, bytes out. Sensor-family profiles live in ``lumbar_sensors`` and plug in by building
those specs and driving :meth:`VirtualPeripheral.notify`.

The central side is consumed through bleak: :attr:`VirtualRadio.scanner_backend` and
:attr:`VirtualRadio.client_backend` are bleak backend classes bound to this radio (see
:mod:`lumbar.acquisition.bumble_backend`), so a reader written against ``BleakScanner`` /
``BleakClient`` runs unchanged.

Everything runs in the asyncio loop that calls :meth:`VirtualRadio.start`; the radio is not
thread-safe and must be used from that loop only.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import struct
import uuid as uuid_module
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bumble import att, gatt, hci
from bumble.controller import Controller
from bumble.core import UUID
from bumble.device import Connection, Device
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from lumbar.errors import ValidationError

if TYPE_CHECKING:
    from lumbar.acquisition.bumble_backend import BumbleBleakClient, BumbleBleakScanner

__all__ = [
    "BumbleCentral",
    "CharacteristicSpec",
    "DescriptorSpec",
    "HciCentral",
    "PeripheralSpec",
    "ServiceSpec",
    "VirtualPeripheral",
    "VirtualRadio",
    "normalize_uuid",
]

logger = logging.getLogger(__name__)
# Bumble's GATT server and client log every notification with an f-string holding the
# formatted ATT PDU, built even when debug logging is off. The notification fast paths
# below skip that only while these loggers would drop the message anyway.
_GATT_SERVER_LOG = logging.getLogger("bumble.gatt_server")
_GATT_CLIENT_LOG = logging.getLogger("bumble.gatt_client")
_ATT_NOTIFICATION = int(att.Opcode.ATT_HANDLE_VALUE_NOTIFICATION)
_NOTIFICATION_HEADER = struct.Struct("<BH")

#: Characteristic property names, spelled as bleak spells them.
PROPERTY_NAMES: Mapping[str, gatt.Characteristic.Properties] = {
    "broadcast": gatt.Characteristic.Properties.BROADCAST,
    "read": gatt.Characteristic.Properties.READ,
    "write-without-response": gatt.Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
    "write": gatt.Characteristic.Properties.WRITE,
    "notify": gatt.Characteristic.Properties.NOTIFY,
    "indicate": gatt.Characteristic.Properties.INDICATE,
}

_BLUETOOTH_BASE_UUID_SUFFIX = "-0000-1000-8000-00805f9b34fb"
_CENTRAL_ADDRESS = "C0:00:00:00:00:00"
_HCI_CENTRAL_ADDRESS = "C0:00:00:00:FF:FE"  # a central in another process (HciCentral)
# Advertising-data (AD) types, Core Supplement Part A.
_AD_FLAGS = 0x01
_AD_UUID16_COMPLETE = 0x03
_AD_UUID32_COMPLETE = 0x05
_AD_UUID128_COMPLETE = 0x07
_AD_COMPLETE_LOCAL_NAME = 0x09
_AD_TX_POWER = 0x0A
_AD_SERVICE_DATA_16 = 0x16
_AD_MANUFACTURER = 0xFF
_FLAGS_LE_GENERAL_NO_BREDR = 0x06


def normalize_uuid(value: str | int | uuid_module.UUID) -> str:
    """Return a UUID as bleak writes it: 128-bit, lower case, dashed.

    Parameters
    ----------
    value : str or int or uuid.UUID
        A 16-bit or 32-bit assigned number (``0x180F``, ``"180f"``) or a full 128-bit UUID.

    Returns
    -------
    str
        ``"0000180f-0000-1000-8000-00805f9b34fb"`` style string.
    """
    if isinstance(value, int):
        return f"{value:08x}{_BLUETOOTH_BASE_UUID_SUFFIX}"
    text = str(value).strip().lower()
    if len(text) in (4, 8):
        try:
            return normalize_uuid(int(text, 16))
        except ValueError:
            pass
    try:
        return str(uuid_module.UUID(text))
    except ValueError as exc:
        raise ValidationError(f"UUID {value!r} is neither a 16/32-bit number nor a 128-bit UUID") from exc


def _bumble_uuid(value: str) -> UUID:
    """A Bumble UUID, 16-bit when the value sits on the Bluetooth base UUID (as on air)."""
    text = normalize_uuid(value)
    if text.endswith(_BLUETOOTH_BASE_UUID_SUFFIX) and text.startswith("0000"):
        return UUID.from_16_bits(int(text[4:8], 16))
    return UUID(text)


@dataclass(frozen=True)
class DescriptorSpec:
    """A GATT descriptor other than the CCCD (Bumble adds the CCCD for notify/indicate).

    Parameters
    ----------
    uuid : str
        Descriptor type, 16-bit or 128-bit.
    value : bytes
        Value returned on read.
    writable : bool
        Whether the client may write it (the written bytes replace ``value``).
    """

    uuid: str
    value: bytes = b""
    writable: bool = False


WriteHandler = Callable[[bytes], "None | Awaitable[None]"]
ReadHandler = Callable[[], bytes]


@dataclass(frozen=True)
class CharacteristicSpec:
    """A GATT characteristic served by a virtual peripheral.

    Parameters
    ----------
    uuid : str
        Characteristic UUID, 16-bit or 128-bit.
    properties : iterable of str
        Any of ``"read"``, ``"write"``, ``"write-without-response"``, ``"notify"``,
        ``"indicate"``, ``"broadcast"`` (bleak's spelling).
    value : bytes
        Initial value, returned on read when ``on_read`` is not given; a write without an
        ``on_write`` handler replaces it.
    on_read : callable, optional
        ``on_read() -> bytes``, called for every read request.
    on_write : callable, optional
        ``on_write(data: bytes)``, plain or async, called for every write (with or without
        response) after the bytes arrive at the peripheral.
    descriptors : sequence of DescriptorSpec
        Extra descriptors.
    """

    uuid: str
    properties: frozenset[str] | Iterable[str]
    value: bytes = b""
    on_read: ReadHandler | None = None
    on_write: WriteHandler | None = None
    descriptors: tuple[DescriptorSpec, ...] = ()

    def __post_init__(self) -> None:
        props = frozenset(self.properties)
        unknown = props - set(PROPERTY_NAMES)
        if unknown or not props:
            raise ValidationError(
                f"characteristic {self.uuid}: properties must be a non-empty subset of "
                f"{sorted(PROPERTY_NAMES)}, got {sorted(props)}"
            )
        object.__setattr__(self, "properties", props)
        object.__setattr__(self, "uuid", normalize_uuid(self.uuid))
        object.__setattr__(self, "descriptors", tuple(self.descriptors))


@dataclass(frozen=True)
class ServiceSpec:
    """A primary GATT service.

    Parameters
    ----------
    uuid : str
        Service UUID, 16-bit or 128-bit.
    characteristics : sequence of CharacteristicSpec
        Its characteristics, in handle order.
    """

    uuid: str
    characteristics: tuple[CharacteristicSpec, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "uuid", normalize_uuid(self.uuid))
        object.__setattr__(self, "characteristics", tuple(self.characteristics))


@dataclass(frozen=True)
class PeripheralSpec:
    """Everything a virtual peripheral shows on air.

    Parameters
    ----------
    name : str
        Advertised complete local name (also the GAP Device Name).
    services : sequence of ServiceSpec
        The GATT database (Bumble adds the GAP and GATT services in front).
    advertised_service_uuids : sequence of str, optional
        Service UUIDs put in the advertisement; ``None`` advertises every service in
        ``services``.
    manufacturer_data : mapping of int to bytes
        Company identifier → payload, advertised as manufacturer-specific data.
    service_data : mapping of str to bytes
        16-bit service UUID → payload, advertised as service data.
    tx_power_dbm : int, optional
        Advertised TX power level.
    address : str, optional
        Static random address ``"C0:..:.."`` (two top bits set); assigned by the radio when
        omitted.
    advertising_interval_ms : float
        Advertising interval; also bounds how long a connection attempt waits (the virtual
        controller connects on the next advertising event). At least 10 ms.
    """

    name: str
    services: tuple[ServiceSpec, ...]
    advertised_service_uuids: tuple[str, ...] | None = None
    manufacturer_data: Mapping[int, bytes] = field(default_factory=dict)
    service_data: Mapping[str, bytes] = field(default_factory=dict)
    tx_power_dbm: int | None = None
    address: str | None = None
    advertising_interval_ms: float = 20.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "services", tuple(self.services))
        if self.advertised_service_uuids is not None:
            object.__setattr__(
                self, "advertised_service_uuids",
                tuple(normalize_uuid(u) for u in self.advertised_service_uuids),
            )
        if self.address is not None:
            _check_static_random(self.address)
        if self.advertising_interval_ms < 10.0:
            raise ValidationError(
                f"peripheral {self.name!r}: advertising_interval_ms must be >= 10, "
                f"got {self.advertising_interval_ms}"
            )

    def advertising_data(self) -> bytes:
        """The advertising payload (AD structures) this peripheral sends.

        Returns
        -------
        bytes
            Flags, complete local name, complete service-UUID lists, service data, TX power
            and manufacturer data. The virtual controller does not model scan responses nor
            enforce the 31-byte legacy limit, so everything goes in one payload.
        """
        uuids = (
            self.advertised_service_uuids
            if self.advertised_service_uuids is not None
            else tuple(s.uuid for s in self.services)
        )
        structures: list[tuple[int, bytes]] = [(_AD_FLAGS, bytes([_FLAGS_LE_GENERAL_NO_BREDR]))]
        structures.append((_AD_COMPLETE_LOCAL_NAME, self.name.encode("utf-8")))
        by_size: dict[int, bytes] = {2: b"", 4: b"", 16: b""}
        for text in uuids:
            raw = bytes(_bumble_uuid(text).to_bytes())  # little-endian, as on air
            by_size[len(raw)] += raw
        for size, ad_type in ((2, _AD_UUID16_COMPLETE), (4, _AD_UUID32_COMPLETE), (16, _AD_UUID128_COMPLETE)):
            if by_size[size]:
                structures.append((ad_type, by_size[size]))
        for text, payload in self.service_data.items():
            short = _bumble_uuid(text).to_bytes()
            if len(short) != 2:
                raise ValidationError(f"peripheral {self.name!r}: service data needs a 16-bit UUID, got {text}")
            structures.append((_AD_SERVICE_DATA_16, bytes(short) + bytes(payload)))
        if self.tx_power_dbm is not None:
            structures.append((_AD_TX_POWER, struct.pack("<b", self.tx_power_dbm)))
        for company_id, payload in self.manufacturer_data.items():
            structures.append((_AD_MANUFACTURER, struct.pack("<H", company_id) + bytes(payload)))
        out = bytearray()
        for ad_type, payload in structures:
            if len(payload) > 254:
                raise ValidationError(f"peripheral {self.name!r}: AD structure 0x{ad_type:02X} too long")
            out += bytes([len(payload) + 1, ad_type]) + payload
        return bytes(out)


def _check_static_random(address: str) -> None:
    try:
        first = int(address.split(":")[0], 16)
        valid = len(address.split(":")) == 6 and first >> 6 == 0b11
    except ValueError:
        valid = False
    if not valid:
        raise ValidationError(
            f"address {address!r}: expected a static random address 'C0:00:00:00:00:01' "
            "style (six hex octets, first octet 0xC0..0xFF)"
        )


class _VirtualController(Controller):
    """Bumble's virtual controller, with connection cancel fixed and a cheaper data path.

    Bumble formats a coloured f-string describing every HCI packet even when debug logging
    is off, which costs more than moving the packet. With debug logging off, ACL data (the
    notifications) and controller-to-host packets skip it; commands and events otherwise
    take Bumble's own path unchanged. With debug on, everything does.

    The controller advertises LE ACL buffers of 251 bytes (a controller with the LE Data
    Length Extension, as current sensors and adapters have) instead of Bumble's default 27:
    the host then sends a notification of up to ATT_MTU 247 as one HCI ACL packet rather
    than up to ten fragments, each with its own Number Of Completed Packets event. The
    receiving controller hands every L2CAP PDU to its host whole either way.
    """

    le_acl_data_packet_length = 251

    def on_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if isinstance(packet, hci.HCI_AclDataPacket) and not logger.isEnabledFor(logging.DEBUG):
            self.on_hci_acl_data_packet(packet)
            return
        super().on_hci_packet(packet)

    def on_hci_le_create_connection_cancel_command(
        self, command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        # Bumble's controller acknowledges the cancel but keeps the pending connection, so
        # the host waits forever and a later advertisement of that peer connects by itself.
        # As the Core spec says (Vol 4, Part E, 7.8.13): drop it and report the attempt
        # as failed with "Unknown Connection Identifier", after the Command Complete.
        pending = self.pending_le_connection
        self.pending_le_connection = None
        if pending is not None:
            asyncio.get_running_loop().call_soon(self._report_connection_cancelled, pending.peer_address)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def _report_connection_cancelled(self, peer_address: hci.Address) -> None:
        self.send_hci_packet(
            hci.HCI_LE_Connection_Complete_Event(
                status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
                connection_handle=0,
                role=hci.Role.CENTRAL,
                peer_address_type=peer_address.address_type,
                peer_address=peer_address,
                connection_interval=0,
                peripheral_latency=0,
                supervision_timeout=0,
                central_clock_accuracy=0,
            )
        )

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if logger.isEnabledFor(logging.DEBUG) or self.host is None:
            super().send_hci_packet(packet)
            return
        asyncio.get_running_loop().call_soon(self.host.on_packet, bytes(packet))


class _QuietHost(Host):
    """Bumble's host without the per-packet debug string for ACL data and events (see above)."""

    def on_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if self.snooper is None and not logger.isEnabledFor(logging.DEBUG):
            if isinstance(packet, hci.HCI_AclDataPacket):
                self.on_hci_acl_data_packet(packet)
                return
            if isinstance(packet, hci.HCI_Event):  # e.g. Number Of Completed Packets
                self.on_hci_event_packet(packet)
                return
        super().on_hci_packet(packet)

    def on_transport_lost(self) -> None:
        # Bumble fails the pending command's future even when it is already done (cancelled by a caller's
        # timeout), which raises InvalidStateError in the event loop's callback: forget a done one first.
        if self.pending_response is not None and self.pending_response.done():
            self.pending_response = None
        super().on_transport_lost()

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if self.snooper is None and self.hci_sink is not None and not logger.isEnabledFor(logging.DEBUG):
            self.hci_sink.on_packet(bytes(packet))
            return
        super().send_hci_packet(packet)


class _PeripheralDevice(Device):
    """A Bumble device that can be told to stop answering ATT requests (fault injection)."""

    answering: bool = True

    def on_gatt_pdu(self, connection_handle: int, pdu: bytes) -> None:  # type: ignore[override]
        # Even op codes are client -> server (requests, commands); odd ones are server ->
        # client. A mute peripheral drops the former, so the central's request times out.
        if not self.answering and pdu and pdu[0] & 1 == 0:
            return
        super().on_gatt_pdu(connection_handle, pdu)


class _CentralDevice(Device):
    """A Bumble device that hands notifications to the GATT client without formatting them.

    Bumble's ``Device.on_gatt_pdu`` passes every server-to-client PDU to
    ``GattClient.on_gatt_pdu``, which first formats the PDU for a debug message. A
    notification is dispatched to the same handler (``on_att_handle_value_notification``)
    directly here while that debug message would not be emitted; everything else, and
    everything when it would, takes Bumble's own path.
    """

    def on_gatt_pdu(self, connection_handle: int, pdu: bytes) -> None:  # type: ignore[override]
        if len(pdu) >= 3 and pdu[0] == _ATT_NOTIFICATION and not _GATT_CLIENT_LOG.isEnabledFor(logging.DEBUG):
            connection = self.lookup_connection(connection_handle)
            if connection is not None and connection.gatt_client is not None:
                # what att.ATT_PDU.from_bytes builds: handle (uint16 LE), then the value
                notification = att.ATT_Handle_Value_Notification(
                    attribute_handle=pdu[1] | pdu[2] << 8, attribute_value=bytes(pdu[3:])
                )
                notification.payload = bytes(pdu[1:])
                connection.gatt_client.on_att_handle_value_notification(notification)
                return
        super().on_gatt_pdu(connection_handle, pdu)


class _CoalescingSink:
    """An HCI sink that writes ATT notifications in groups (see :meth:`VirtualRadio.serve_hci`)."""

    def __init__(self, sink: Any, delay_s: float) -> None:
        self.sink = sink
        self.delay_s = float(delay_s)
        self._pending: list[bytes] = []
        self._timer: asyncio.TimerHandle | None = None

    @staticmethod
    def _is_notification(packet: bytes) -> bool:
        # H4 ACL packet (0x02), one whole L2CAP PDU on the ATT channel (CID 4), ATT opcode 0x1B;
        # byte offsets: type 0, handle 1-2, ACL length 3-4, L2CAP length 5-6, CID 7-8, opcode 9
        return (len(packet) > 9 and packet[0] == 0x02 and packet[7] == 0x04 and packet[8] == 0x00
                and packet[9] == _ATT_NOTIFICATION)

    def on_packet(self, packet: bytes) -> None:
        if self._is_notification(packet):
            self._pending.append(packet)
            if self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(self.delay_s, self.flush)
            return
        self.flush()
        self.sink.on_packet(packet)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending:
            data, self._pending = b"".join(self._pending), []
            self.sink.on_packet(data)


def _make_device(link: LocalLink, name: str, address: str, cls: type[Device] = Device) -> Device:
    controller = _VirtualController(name, link=link)
    host = _QuietHost(controller, AsyncPipeSink(controller))
    return cls(name=name, address=hci.Address(address), host=host)


class VirtualPeripheral:
    """One emulated BLE peripheral: a Bumble device advertising and serving a GATT database.

    Create through :meth:`VirtualRadio.add_peripheral`. The peripheral keeps advertising
    while connected-to is possible (after a disconnect it advertises again), so a central
    can reconnect.

    Parameters
    ----------
    spec : PeripheralSpec
        What it shows on air.
    device : bumble.device.Device
        The Bumble device (escape hatch for tests that need the stack itself).
    """

    def __init__(self, spec: PeripheralSpec, device: _PeripheralDevice) -> None:
        self.spec = spec
        self.device = device
        self._characteristics: dict[str, gatt.Characteristic[bytes]] = {}
        self._values: dict[str, bytes] = {}
        self._subscribed: dict[str, set[Connection]] = {}
        self._keys: dict[str, str] = {}
        self._subscription_changed = asyncio.Event()
        self._advertising = False
        self._build_gatt()

    # ------------------------------------------------------------------ set-up
    def _build_gatt(self) -> None:
        services = []
        for service_spec in self.spec.services:
            characteristics = []
            for char_spec in service_spec.characteristics:
                characteristics.append(self._build_characteristic(char_spec))
            services.append(gatt.Service(_bumble_uuid(service_spec.uuid), characteristics))
        self.device.add_services(services)

    def _build_characteristic(self, spec: CharacteristicSpec) -> gatt.Characteristic[bytes]:
        properties = gatt.Characteristic.Properties(0)
        for name in spec.properties:
            properties |= PROPERTY_NAMES[name]
        permissions = gatt.Attribute.Permissions(0)
        if "read" in spec.properties:
            permissions |= gatt.Attribute.READABLE
        if spec.properties & {"write", "write-without-response"}:
            permissions |= gatt.Attribute.WRITEABLE
        key = spec.uuid
        self._values[key] = bytes(spec.value)

        readable = "read" in spec.properties
        writable = bool(spec.properties & {"write", "write-without-response"})

        # Bumble does not check attribute permissions itself; a real GATT server answers
        # a read of a write-only characteristic (and vice versa) with an ATT error.
        def read(_connection: Connection) -> bytes:
            if not readable:
                raise att.ATT_Error(att.ErrorCode.READ_NOT_PERMITTED)
            return bytes(spec.on_read()) if spec.on_read is not None else self._values[key]

        async def write(_connection: Connection, value: bytes) -> None:
            if not writable:
                raise att.ATT_Error(att.ErrorCode.WRITE_NOT_PERMITTED)
            if spec.on_write is None:
                self._values[key] = bytes(value)
                return
            result = spec.on_write(bytes(value))
            if inspect.isawaitable(result):
                await result

        descriptors = [
            gatt.Descriptor(
                _bumble_uuid(d.uuid),
                gatt.Attribute.READABLE | (gatt.Attribute.WRITEABLE if d.writable else 0),
                d.value,
            )
            for d in spec.descriptors
        ]
        characteristic: gatt.Characteristic[bytes] = gatt.Characteristic(
            _bumble_uuid(spec.uuid),
            properties,
            permissions,
            gatt.CharacteristicValue(read=read, write=write),
            descriptors=descriptors,
        )
        if key in self._characteristics:
            raise ValidationError(f"peripheral {self.spec.name!r}: characteristic {key} declared twice")
        self._characteristics[key] = characteristic
        self._subscribed[key] = set()

        def on_subscription(bearer: Any, notify: bool, indicate: bool) -> None:
            connection = getattr(bearer, "connection", bearer)
            if notify or indicate:
                self._subscribed[key].add(connection)
            else:
                self._subscribed[key].discard(connection)
            self._subscription_changed.set()

        characteristic.on(characteristic.EVENT_SUBSCRIPTION, on_subscription)
        return characteristic

    async def _start(self) -> None:
        self.device.on(self.device.EVENT_CONNECTION, self._on_connection)
        await self.device.power_on()
        await self.start_advertising()

    def _on_connection(self, connection: Connection) -> None:
        def forget(*_args: Any) -> None:
            for connections in self._subscribed.values():
                connections.discard(connection)
            self._subscription_changed.set()

        connection.on(connection.EVENT_DISCONNECTION, forget)

    async def _stop(self) -> None:
        await self.stop_advertising()
        for connection in list(self.device.connections.values()):
            await _disconnect_quietly(connection)
        await self.device.power_off()

    # ------------------------------------------------------------------ state
    @property
    def name(self) -> str:
        """The advertised name."""
        return self.spec.name

    @property
    def address(self) -> str:
        """The Bluetooth address, as bleak reports it (``"C0:00:00:00:00:01"``)."""
        return self.device.random_address.to_string(False)

    @property
    def is_connected(self) -> bool:
        """Whether a central is connected."""
        return bool(self.device.connections)

    @property
    def is_advertising(self) -> bool:
        """Whether the peripheral is advertising (and so discoverable and connectable)."""
        return self._advertising

    def _key(self, uuid: str) -> str:
        # notify() runs thousands of times a second: skip normalising known spellings.
        key = self._keys.get(uuid)
        if key is None:
            key = normalize_uuid(uuid)
            if key in self._characteristics:
                self._keys[uuid] = key
        return key

    def characteristic(self, uuid: str) -> gatt.Characteristic[bytes]:
        """The Bumble characteristic for ``uuid`` (raises a clear error when unknown)."""
        key = self._key(uuid)
        try:
            return self._characteristics[key]
        except KeyError:
            raise ValidationError(
                f"peripheral {self.spec.name!r} has no characteristic {key}; it has "
                f"{sorted(self._characteristics)}"
            ) from None

    def value(self, uuid: str) -> bytes:
        """The stored value of a characteristic (last written, or the initial value)."""
        self.characteristic(uuid)
        return self._values[self._key(uuid)]

    def set_value(self, uuid: str, data: bytes) -> None:
        """Replace the value returned on read (when the spec has no ``on_read``)."""
        self.characteristic(uuid)
        self._values[self._key(uuid)] = bytes(data)

    def is_subscribed(self, uuid: str) -> bool:
        """Whether any connected central has enabled notifications/indications on ``uuid``."""
        self.characteristic(uuid)
        return bool(self._subscribed[self._key(uuid)])

    async def wait_subscribed(self, uuid: str, subscribed: bool = True) -> None:
        """Wait until a central (un)subscribes ``uuid`` (wrap in ``asyncio.timeout``)."""
        while self.is_subscribed(uuid) != subscribed:
            self._subscription_changed.clear()
            await self._subscription_changed.wait()

    # ------------------------------------------------------------------ traffic
    async def notify(self, uuid: str, data: bytes) -> int:
        """Send one notification on characteristic ``uuid`` to every subscribed central.

        Parameters
        ----------
        uuid : str
            The characteristic.
        data : bytes
            Payload; at most ``ATT_MTU - 3`` bytes of it reach the central.

        Returns
        -------
        int
            Number of connections notified (0 when nobody subscribed: data is dropped, as a
            real peripheral would).
        """
        characteristic = self.characteristic(uuid)
        connections = self._subscribed[self._key(uuid)]
        for connection in tuple(connections):
            if not self._notify_quietly(connection, characteristic, bytes(data)):
                await self.device.notify_subscriber(connection, characteristic, bytes(data))
        return len(connections)

    def _notify_quietly(self, connection: Connection, characteristic: gatt.Characteristic[bytes], data: bytes) -> bool:
        """Bumble's ``GattServer.notify_subscriber`` for one plain ATT bearer, minus its debug string.

        Same checks (subscription, CCCD notify bit), encoding, MTU truncation and PDU bytes
        as Bumble's path. Returns ``False``, having sent nothing, when Bumble's path must be
        taken: debug logging on for ``bumble.gatt_server`` or an enhanced ATT bearer on the
        connection.
        """
        if _GATT_SERVER_LOG.isEnabledFor(logging.DEBUG):
            return False
        device = self.device
        if device.l2cap_channel_manager.le_coc_channels.get(connection.handle):
            return False  # possibly EATT bearers: Bumble notifies each of them
        server = device.gatt_server
        subscribers = server.subscribers.get(connection)
        cccd = subscribers.get(characteristic.handle) if subscribers else None
        if not cccd or len(cccd) != 2 or cccd[0] & 0x01 == 0:
            return True  # not subscribed: Bumble sends nothing either
        value = characteristic.encode_value(data)
        limit = connection.att_mtu - 3
        if len(value) > limit:
            value = value[:limit]
        server.send_gatt_pdu(connection, _NOTIFICATION_HEADER.pack(_ATT_NOTIFICATION, characteristic.handle) + value)
        return True

    async def indicate(self, uuid: str, data: bytes) -> int:
        """Send one indication (waits for each central's confirmation); see :meth:`notify`."""
        characteristic = self.characteristic(uuid)
        connections = self._subscribed[self._key(uuid)]
        for connection in tuple(connections):
            await self.device.indicate_subscriber(connection, characteristic, bytes(data))
        return len(connections)

    # ------------------------------------------------------------------ faults
    async def disconnect(self, reason: int = hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR) -> None:
        """Drop every connection from the peripheral side (the central sees a remote disconnect).

        Parameters
        ----------
        reason : int
            HCI reason code sent to the central (default: remote user terminated).
        """
        for connection in list(self.device.connections.values()):
            await _disconnect_quietly(connection, reason)

    @property
    def answering(self) -> bool:
        """Whether ATT requests are answered. Set to ``False`` to emulate a hung sensor.

        A mute peripheral keeps its link (and keeps sending notifications when told to) but
        silently drops every request and command from the central, so reads, writes,
        MTU exchange and service discovery time out on the central side.
        """
        return self.device.answering

    @answering.setter
    def answering(self, value: bool) -> None:
        self.device.answering = bool(value)

    async def start_advertising(self) -> None:
        """Advertise (connectable, scannable); restarts by itself after each disconnect."""
        interval = self.spec.advertising_interval_ms
        await self.device.start_advertising(
            auto_restart=True,
            advertising_data=self.spec.advertising_data(),
            advertising_interval_min=interval,
            advertising_interval_max=interval,
        )
        self._advertising = True

    async def stop_advertising(self) -> None:
        """Stop advertising: the peripheral vanishes from scans and cannot be connected."""
        if self._advertising:
            await self.device.stop_advertising()
            self._advertising = False

    def __repr__(self) -> str:
        return f"<VirtualPeripheral {self.spec.name!r} {self.address}>"


async def _disconnect_quietly(
    connection: Connection, reason: int = hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR, timeout_s: float = 1.0
) -> None:
    # A link may already be going down from the other side; that is not an error here. Nor is a link whose
    # disconnection is never confirmed (one a reader was disconnecting at the same moment waited forever):
    # after ``timeout_s`` it is left to the transport's closing.
    try:
        await asyncio.wait_for(connection.disconnect(reason), timeout_s)
    except asyncio.TimeoutError:
        logger.debug("disconnect of %s not confirmed within %.1f s", connection, timeout_s)
    except Exception as exc:  # noqa: BLE001 - Bumble raises several unrelated types here
        logger.debug("disconnect of %s ignored: %s", connection, exc)


class BumbleCentral:
    """The central side that the bleak backends drive: one Bumble central device.

    Scanners share the central (it scans while at least one of them does) and connection
    attempts take turns (a controller allows one pending LE connection). Two kinds exist:
    :class:`VirtualRadio`, whose central sits on the in-process link beside the peripherals,
    and :class:`HciCentral`, whose controller is reached over an HCI transport, e.g. emulated
    sensors running in another process (:meth:`VirtualRadio.serve_hci`).

    Parameters
    ----------
    mtu : int
        ATT MTU the central asks for on connect (bleak backends exchange MTU on connect);
        peripherals accept up to 517.
    """

    central: Device

    def __init__(self, *, mtu: int = 247) -> None:
        if not 23 <= mtu <= 517:
            raise ValidationError(f"mtu must be within 23..517, got {mtu}")
        self.mtu = mtu
        self._started = False
        self._scan_users = 0
        self._scan_lock = asyncio.Lock()
        self._connect_lock = asyncio.Lock()
        self._scanner_backend: type[BumbleBleakScanner] | None = None
        self._client_backend: type[BumbleBleakClient] | None = None

    @property
    def is_running(self) -> bool:
        """Whether :meth:`start` has run (and :meth:`stop` has not)."""
        return self._started

    async def _stop_central(self) -> None:
        """Drop the central's links and stop its scanning."""
        await asyncio.gather(*(_disconnect_quietly(c) for c in list(self.central.connections.values())))
        if self.central.scanning:
            await self.central.stop_scanning()
        self._scan_users = 0

    # ------------------------------------------------------------------ used by the backend
    async def _acquire_scan(self) -> None:
        async with self._scan_lock:
            self._check_running()
            if self._scan_users == 0:
                await self.central.start_scanning(filter_duplicates=False)
            self._scan_users += 1

    async def _release_scan(self) -> None:
        async with self._scan_lock:
            if self._scan_users == 0:
                return
            self._scan_users -= 1
            if self._scan_users == 0 and self._started and self.central.scanning:
                await self.central.stop_scanning()

    async def _cancel_pending_connection(self, peer_address: hci.Address) -> None:
        try:
            await self.central.send_sync_command(hci.HCI_LE_Create_Connection_Cancel_Command())
        except Exception as exc:  # noqa: BLE001 - best effort while unwinding a cancellation
            logger.debug("connection cancel ignored: %s", exc)
        # The link may have come up just before the cancel: do not leave it dangling.
        for connection in list(self.central.connections.values()):
            if connection.peer_address == peer_address:
                await _disconnect_quietly(connection)

    def _not_running(self) -> str:
        """Why scans and connections are refused (the central is not running)."""
        return (f"the {type(self).__name__} is not running: use 'async with ...' or 'await ....start()' "
                "before scanning or connecting")

    def _check_running(self) -> None:
        if not self._started:
            from bleak.exc import BleakBluetoothNotAvailableError, BleakBluetoothNotAvailableReason

            raise BleakBluetoothNotAvailableError(self._not_running(), BleakBluetoothNotAvailableReason.POWERED_OFF)

    # ------------------------------------------------------------------ bleak backends
    @property
    def scanner_backend(self) -> type[BumbleBleakScanner]:
        """A bleak scanner backend class bound to this central: ``BleakScanner(backend=...)``."""
        if self._scanner_backend is None:
            from lumbar.acquisition.bumble_backend import BumbleBleakScanner

            self._scanner_backend = BumbleBleakScanner.bind(self)
        return self._scanner_backend

    @property
    def client_backend(self) -> type[BumbleBleakClient]:
        """A bleak client backend class bound to this central: ``BleakClient(..., backend=...)``."""
        if self._client_backend is None:
            from lumbar.acquisition.bumble_backend import BumbleBleakClient

            self._client_backend = BumbleBleakClient.bind(self)
        return self._client_backend


class HciCentral(BumbleCentral):
    """A Bumble central whose controller is reached over an HCI transport.

    The host stack (HCI, L2CAP, ATT, GATT client) runs here, in the caller's asyncio loop;
    the controller runs wherever the transport leads: on a :class:`VirtualRadio` in another
    process (:meth:`VirtualRadio.serve_hci`, ``"tcp-client:127.0.0.1:<port>"``), or any HCI
    controller Bumble can open. The bleak backends use it as they use a radio
    (:attr:`scanner_backend`, :attr:`client_backend`).

    Create with :meth:`open` (inside the running loop that will use it).
    """

    def __init__(self, transport: Any, *, mtu: int = 247, address: str = _HCI_CENTRAL_ADDRESS) -> None:
        super().__init__(mtu=mtu)
        self.transport = transport
        self.lost = False  # the transport closed from the controller's side
        host = _QuietHost(transport.source, transport.sink)
        self.central = _CentralDevice(name="lumbar-central", address=hci.Address(address), host=host)

    @classmethod
    async def open(cls, spec: str, *, mtu: int = 247) -> HciCentral:
        """Open the transport ``spec`` (Bumble's syntax, e.g. ``"tcp-client:127.0.0.1:9001"``) and power on."""
        from bumble.transport import open_transport

        central = cls(await open_transport(spec), mtu=mtu)
        try:
            await central.central.power_on()
        except BaseException:
            await central.transport.close()
            raise
        central._started = True
        terminated = getattr(central.transport.source, "terminated", None)
        if terminated is not None:
            terminated.add_done_callback(lambda _f: central._on_transport_lost())
        return central

    def _on_transport_lost(self) -> None:
        """The controller's end closed (its process ended): every link is gone, and scans and
        connections now fail at once with a clear error instead of waiting for HCI timeouts."""
        if not self._started:
            return
        self._started = False
        self.lost = True
        logger.warning("the HCI transport of the central was lost: its controller (the emulated sensors' "
                       "process?) has stopped; every link is down")
        for handle in list(self.central.connections):
            # as the controller would report a link that timed out
            self.central.on_disconnection(handle, hci.HCI_CONNECTION_TIMEOUT_ERROR)

    async def stop(self) -> None:
        """Drop the links, stop scanning and close the transport."""
        if self._started:
            self._started = False
            try:
                await self._stop_central()
            except Exception as exc:  # noqa: BLE001 - the other end may be gone already
                logger.debug("central stop: %s", exc)
            # a command still in flight (a reader disconnecting as the application closes) gets its
            # answer rather than a lost transport (≤ 1 s)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 1.0
            while self.central.host.pending_response is not None and loop.time() < deadline:
                await asyncio.sleep(0.01)
        await self.transport.close()

    def _not_running(self) -> str:
        if self.lost:
            return ("the Bluetooth controller has gone: its connection closed (for emulated sensors, their "
                    "process has ended)")
        return super()._not_running()

    def __repr__(self) -> str:
        return f"<HciCentral {'running' if self._started else 'lost' if self.lost else 'stopped'}>"


class VirtualRadio(BumbleCentral):
    """One virtual BLE link with N emulated peripherals and one central.

    Parameters
    ----------
    peripherals : iterable of PeripheralSpec, optional
        Peripherals to create now (more can be added with :meth:`add_peripheral`).
    mtu : int
        ATT MTU the central asks for on connect (bleak backends exchange MTU on connect);
        peripherals accept up to 517.

    Notes
    -----
    Create the radio (and add peripherals) inside the running asyncio loop that will use
    it: Bumble's controllers bind to the running loop when they are constructed.

    Examples
    --------
    >>> async def main():                                     # doctest: +SKIP
    ...     async with VirtualRadio([spec_a, spec_b]) as radio:
    ...         devices = await BleakScanner.discover(1.0, backend=radio.scanner_backend)
    ...         async with BleakClient(devices[0], backend=radio.client_backend) as client:
    ...             print(await client.read_gatt_char(CHAR_UUID))
    """

    def __init__(self, peripherals: Iterable[PeripheralSpec] = (), *, mtu: int = 247) -> None:
        super().__init__(mtu=mtu)
        self.link = LocalLink()
        self.central = _make_device(self.link, "lumbar-central", _CENTRAL_ADDRESS, _CentralDevice)
        self.peripherals: list[VirtualPeripheral] = []
        self._served: list[Any] = []  # HCI transports of centrals in other processes (serve_hci)
        for spec in peripherals:
            self.add_peripheral(spec)

    # ------------------------------------------------------------------ peripherals
    def add_peripheral(self, spec: PeripheralSpec) -> VirtualPeripheral:
        """Create a peripheral on this link (started with the radio, or at once if running).

        Parameters
        ----------
        spec : PeripheralSpec
            What it shows on air.

        Returns
        -------
        VirtualPeripheral
            Handle to drive notifications and faults. When the radio is already running,
            call ``await radio.start_peripheral(p)`` to power it on.
        """
        address = spec.address or f"C0:00:00:00:{(len(self.peripherals) + 1) >> 8:02X}:{(len(self.peripherals) + 1) & 0xFF:02X}"
        if any(p.address == address for p in self.peripherals) or address == _CENTRAL_ADDRESS:
            raise ValidationError(f"peripheral {spec.name!r}: address {address} is already on this link")
        device = _make_device(self.link, spec.name, address, _PeripheralDevice)
        assert isinstance(device, _PeripheralDevice)
        peripheral = VirtualPeripheral(spec, device)
        self.peripherals.append(peripheral)
        return peripheral

    async def start_peripheral(self, peripheral: VirtualPeripheral) -> None:
        """Power on and start advertising a peripheral added after :meth:`start`."""
        await peripheral._start()

    def peripheral(self, name_or_address: str) -> VirtualPeripheral:
        """Find a peripheral by advertised name or address."""
        for p in self.peripherals:
            if name_or_address in (p.name, p.address):
                return p
        raise ValidationError(
            f"no virtual peripheral named or addressed {name_or_address!r}; have "
            f"{[p.name for p in self.peripherals]}"
        )

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        """Power on the central and every peripheral; peripherals start advertising."""
        if self._started:
            return
        await self.central.power_on()
        for peripheral in self.peripherals:
            await peripheral._start()
        self._started = True

    async def stop(self) -> None:
        """Drop every link, stop advertising and scanning, power everything off."""
        if not self._started:
            return
        self._started = False
        await self._stop_central()
        for peripheral in self.peripherals:
            await peripheral._stop()
        await self.central.power_off()
        for transport in self._served:
            await transport.close()
        self._served.clear()
        # Let the link deliver the last queued packets so nothing is left for a closed loop.
        for _ in range(3):
            await asyncio.sleep(0)

    async def serve_hci(self, host: str = "127.0.0.1", port: int = 0, *, coalesce_s: float = 0.0) -> int:
        """Put one more central's controller on this link, its HCI served on a TCP socket.

        An :class:`HciCentral` in another process connects to it
        (``HciCentral.open(f"tcp-client:127.0.0.1:{port}")``) and uses the peripherals as if
        they were on air: the emulated sensors then no longer share the interpreter of the
        application reading them. One client per call.

        Parameters
        ----------
        host, port : str, int
            Where to listen (``port=0``: a free port).
        coalesce_s : float
            Notifications for the central are written to the socket together, at most this long
            after the first of them, s (0: each at once). Everything else (command replies, events,
            other ATT PDUs) goes at once, after what is pending, so the order is kept. A reader
            then wakes once for several notifications, as it would for one connection event's
            worth of them, instead of once for each.

        Returns
        -------
        int
            The TCP port.
        """
        import socket

        from bumble.transport.tcp_server import open_tcp_server_transport_with_socket

        self._check_running()
        # IPPROTO_TCP named: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets that say
        # so; with it on, each ATT request/response waits for a delayed ACK (≈ 40 ms instead of < 1 ms).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        transport = await open_tcp_server_transport_with_socket(sock)
        sink = _CoalescingSink(transport.sink, coalesce_s) if coalesce_s > 0 else transport.sink
        _VirtualController("lumbar-central-hci", host_source=transport.source, host_sink=sink, link=self.link)
        self._served.append(transport)
        return int(sock.getsockname()[1])

    async def __aenter__(self) -> VirtualRadio:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def __repr__(self) -> str:
        state = "running" if self._started else "stopped"
        return f"<VirtualRadio {state}, peripherals={[p.name for p in self.peripherals]}>"
