"""A bleak backend over a Bumble central: a :class:`~lumbar.acquisition.virtual_radio.VirtualRadio`'s, or an
:class:`~lumbar.acquisition.virtual_radio.HciCentral` whose controller is in another process (both are a
:class:`~lumbar.acquisition.virtual_radio.BumbleCentral`, called "radio" below).

bleak 3.x takes a custom backend as a *class*: ``BleakScanner(backend=cls)`` and
``BleakClient(device, backend=cls)`` instantiate ``cls`` with the usual constructor arguments
plus any extra keyword arguments given to the facade. The classes here find their radio, in
this order:

1. a ``radio=`` keyword argument (``BleakClient(dev, backend=BumbleBleakClient, radio=r)``);
2. the radio the class was bound to with :meth:`BumbleBleakScanner.bind` /
   :meth:`BumbleBleakClient.bind` -- what :attr:`VirtualRadio.scanner_backend` and
   :attr:`VirtualRadio.client_backend` return, and what the reader should be given, since the
   reader only ever passes ``backend=``;
3. for a client, the radio recorded in ``BLEDevice.details`` by the scanner that found it.

There is no module-level registry, so two radios (two tests) never see each other.

Semantics worth knowing (bleak leaves them to the backend):

* characteristic ``handle`` is the ATT *value* handle (the handle notifications carry);
  descriptors have their own handles; the GAP (0x1800) and GATT (0x1801) services are listed;
* the MTU is exchanged on connect (:attr:`VirtualRadio.mtu`), so :attr:`mtu_size` is final
  once ``connect`` returns;
* the disconnected callback fires only for disconnects the client did not ask for (peripheral
  drop, radio shut down), as :class:`bleak.backends.client.BaseBleakClient` documents;
* a GATT operation in flight when the link drops raises :class:`bleak.exc.BleakError`; one
  the peripheral never answers raises :class:`TimeoutError` after ``gatt_timeout`` seconds;
* pairing is not emulated (:meth:`BumbleBleakClient.pair` raises ``NotImplementedError``).
"""
from __future__ import annotations

import asyncio
import logging
import struct
import uuid as uuid_module
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from bleak.args import SizedBuffer
from bleak.assigned_numbers import CHARACTERISTIC_PROPERTIES, CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError, BleakGATTProtocolError
from bumble import att, core, hci
from bumble.device import Advertisement, Connection, Peer
from bumble.gatt_client import CharacteristicProxy, DescriptorProxy, ServiceProxy

if TYPE_CHECKING:
    from lumbar.acquisition.virtual_radio import BumbleCentral

__all__ = ["BumbleBleakClient", "BumbleBleakScanner", "BumbleDeviceDetails"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_BASE_UUID_SUFFIX = "-0000-1000-8000-00805f9b34fb"
_ATT_DEFAULT_MTU = 23


@dataclass(frozen=True)
class BumbleDeviceDetails:
    """``BLEDevice.details`` for devices found on a virtual radio.

    Attributes
    ----------
    radio : BumbleCentral
        The radio the advertisement was heard on.
    address : bumble.hci.Address
        The peer address with its type (static random for virtual peripherals).
    """

    radio: BumbleCentral
    address: hci.Address


def _uuid_str(uuid: core.UUID) -> str:
    """Bumble UUID -> bleak's normalised 128-bit lower-case string."""
    raw = bytes(uuid.to_bytes())  # little-endian
    if len(raw) == 2:
        return f"0000{int.from_bytes(raw, 'little'):04x}{_BASE_UUID_SUFFIX}"
    if len(raw) == 4:
        return f"{int.from_bytes(raw, 'little'):08x}{_BASE_UUID_SUFFIX}"
    return str(uuid_module.UUID(bytes=raw[::-1]))


def _uuid_from_le(raw: bytes) -> str:
    if len(raw) == 2:
        return f"0000{int.from_bytes(raw, 'little'):04x}{_BASE_UUID_SUFFIX}"
    if len(raw) == 4:
        return f"{int.from_bytes(raw, 'little'):08x}{_BASE_UUID_SUFFIX}"
    return str(uuid_module.UUID(bytes=raw[::-1]))


@dataclass
class _ParsedAdvertisement:
    local_name: str | None = None
    manufacturer_data: dict[int, bytes] | None = None
    service_data: dict[str, bytes] | None = None
    service_uuids: list[str] | None = None
    tx_power: int | None = None


def _parse_ad_structures(data: bytes) -> _ParsedAdvertisement:
    """Parse advertising data (length, type, payload)* as bleak wants it; tolerant of junk."""
    out = _ParsedAdvertisement(manufacturer_data={}, service_data={}, service_uuids=[])
    assert out.manufacturer_data is not None and out.service_data is not None and out.service_uuids is not None
    i = 0
    while i < len(data):
        length = data[i]
        if length == 0 or i + 1 + length > len(data):
            break  # padding or a truncated structure: keep what was parsed
        ad_type, payload = data[i + 1], bytes(data[i + 2 : i + 1 + length])
        i += 1 + length
        if ad_type in (0x08, 0x09):
            if ad_type == 0x09 or out.local_name is None:
                out.local_name = payload.decode("utf-8", errors="replace")
        elif ad_type in (0x02, 0x03, 0x04, 0x05, 0x06, 0x07):
            size = {0x02: 2, 0x03: 2, 0x04: 4, 0x05: 4, 0x06: 16, 0x07: 16}[ad_type]
            for k in range(0, len(payload) - size + 1, size):
                out.service_uuids.append(_uuid_from_le(payload[k : k + size]))
        elif ad_type in (0x16, 0x20, 0x21):
            size = {0x16: 2, 0x20: 4, 0x21: 16}[ad_type]
            if len(payload) >= size:
                out.service_data[_uuid_from_le(payload[:size])] = payload[size:]
        elif ad_type == 0x0A and len(payload) == 1:
            out.tx_power = struct.unpack("<b", payload)[0]
        elif ad_type == 0xFF and len(payload) >= 2:
            out.manufacturer_data[int.from_bytes(payload[:2], "little")] = payload[2:]
    return out


def _being_cancelled() -> bool:
    """Whether the current task has a cancellation request pending (Python >= 3.11)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return bool(cancelling()) if cancelling is not None else False


def _no_radio_error(what: str) -> BleakError:
    return BleakError(
        f"{what}: no virtual radio. Pass backend=radio.{'scanner' if 'Scanner' in what else 'client'}_backend "
        "(a class bound to a running VirtualRadio or HciCentral), or radio=... as a keyword argument."
    )


# ---------------------------------------------------------------------------------------- scanner
class BumbleBleakScanner(BaseBleakScanner):
    """bleak scanner backend listening to a :class:`BumbleCentral` (a radio's central or an HCI central).

    Several scanners may run at once; the central scans while at least one does. Scanning
    is always active with duplicates reported, like BlueZ; ``scanning_mode`` is accepted and
    ignored.

    Parameters
    ----------
    detection_callback : callable, optional
        Called with ``(BLEDevice, AdvertisementData)`` for every advertisement.
    service_uuids : list of str, optional
        Only advertisements naming one of these services are reported.
    scanning_mode : {"active", "passive"}
        Ignored.
    radio : BumbleCentral, optional
        The radio, when the class is not bound (see the module docstring).
    **kwargs
        bleak's platform arguments (``bluez=``, ``cb=``); ignored.
    """

    _bound_radio: ClassVar[BumbleCentral | None] = None

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        *,
        radio: BumbleCentral | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        if self._service_uuids is not None:
            # bleak lower-cases the filter; expand 16/32-bit forms so comparisons work.
            from lumbar.acquisition.virtual_radio import normalize_uuid

            self._service_uuids = [normalize_uuid(u) for u in self._service_uuids]
        resolved = radio if radio is not None else self._bound_radio
        if resolved is None:
            raise _no_radio_error("BumbleBleakScanner")
        self._radio: BumbleCentral = resolved
        self._scanning = False

    @classmethod
    def bind(cls, radio: BumbleCentral) -> type[BumbleBleakScanner]:
        """A subclass of this backend bound to ``radio`` (pass it as ``backend=``)."""
        return type(cls.__name__, (cls,), {"_bound_radio": radio, "__module__": cls.__module__})

    async def start(self) -> None:
        """Start scanning (clears :attr:`seen_devices`, as bleak requires)."""
        if self._scanning:
            return
        self.seen_devices = {}
        self._radio.central.on(self._radio.central.EVENT_ADVERTISEMENT, self._on_advertisement)
        try:
            await self._radio._acquire_scan()
        except BaseException as exc:
            self._radio.central.remove_listener(self._radio.central.EVENT_ADVERTISEMENT, self._on_advertisement)
            if isinstance(exc, core.BaseBumbleError):  # e.g. the controller's transport lost meanwhile
                raise BleakError(f"scan could not start: {exc}") from exc
            raise
        self._scanning = True

    async def stop(self) -> None:
        """Stop scanning."""
        if not self._scanning:
            return
        self._scanning = False
        self._radio.central.remove_listener(self._radio.central.EVENT_ADVERTISEMENT, self._on_advertisement)
        try:
            await self._radio._release_scan()
        except core.BaseBumbleError as exc:
            raise BleakError(f"scan could not stop: {exc}") from exc

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        parsed = _parse_ad_structures(advertisement.data_bytes)
        address = advertisement.address.to_string(False)
        key = address
        previous = self.seen_devices.get(key)
        # Merge with what was heard before, as BlueZ does (scan responses carry only part).
        local_name = parsed.local_name
        manufacturer_data = dict(parsed.manufacturer_data or {})
        service_data = dict(parsed.service_data or {})
        service_uuids = list(parsed.service_uuids or [])
        tx_power = parsed.tx_power
        if previous is not None:
            old = previous[1]
            local_name = local_name if local_name is not None else old.local_name
            manufacturer_data = {**old.manufacturer_data, **manufacturer_data}
            service_data = {**old.service_data, **service_data}
            service_uuids = list(dict.fromkeys([*old.service_uuids, *service_uuids]))
            tx_power = tx_power if tx_power is not None else old.tx_power
        if not self.is_allowed_uuid(service_uuids):
            return
        rssi = advertisement.rssi
        if rssi == Advertisement.RSSI_NOT_AVAILABLE:
            rssi = -127
        adv = AdvertisementData(
            local_name=local_name,
            manufacturer_data=manufacturer_data,
            service_data=service_data,
            service_uuids=service_uuids,
            tx_power=None if tx_power == Advertisement.TX_POWER_NOT_AVAILABLE else tx_power,
            rssi=rssi,
            platform_data=(advertisement,),
        )
        device = self.create_or_update_device(
            key, address, local_name, BumbleDeviceDetails(self._radio, advertisement.address), adv
        )
        self.call_detection_callbacks(device, adv)


# ---------------------------------------------------------------------------------------- client
class BumbleBleakClient(BaseBleakClient):
    """bleak client backend over a :class:`BumbleCentral` (a radio's central or an HCI central).

    Parameters
    ----------
    address_or_ble_device : BLEDevice or str
        A device from :class:`BumbleBleakScanner`, or the peripheral's address.
    disconnected_callback : callable, optional
        Called (no arguments, scheduled on the loop) when the link drops without the client
        asking.
    timeout : float
        Seconds for :meth:`connect` as a whole (link, MTU exchange, service discovery).
    services : set of str, optional
        Only these services are put in :attr:`services` (all are discovered).
    radio : BumbleCentral, optional
        The radio, when neither the class nor the device carries one.
    gatt_timeout : float
        Seconds a read/write/subscribe waits for the peripheral before ``TimeoutError``.
    **kwargs
        bleak's platform arguments (``bluez=``, ``winrt=``); ignored.
    """

    _bound_radio: ClassVar[BumbleCentral | None] = None

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        services: set[str] | None = None,
        radio: BumbleCentral | None = None,
        gatt_timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout)
        details = address_or_ble_device.details if isinstance(address_or_ble_device, BLEDevice) else None
        resolved = radio or self._bound_radio
        if resolved is None and isinstance(details, BumbleDeviceDetails):
            resolved = details.radio
        if resolved is None:
            raise _no_radio_error(f"BumbleBleakClient({self.address})")
        self._radio: BumbleCentral = resolved
        self._peer_address = (
            details.address
            if isinstance(details, BumbleDeviceDetails)
            else hci.Address(self.address.upper(), hci.Address.RANDOM_DEVICE_ADDRESS)
        )
        self._device_name = (
            address_or_ble_device.name if isinstance(address_or_ble_device, BLEDevice) else None
        )
        self._service_filter = None if services is None else {s.lower() for s in services}
        self._gatt_timeout = float(gatt_timeout)
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._closing = False
        self._established = False
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    @classmethod
    def bind(cls, radio: BumbleCentral) -> type[BumbleBleakClient]:
        """A subclass of this backend bound to ``radio`` (pass it as ``backend=``)."""
        return type(cls.__name__, (cls,), {"_bound_radio": radio, "__module__": cls.__module__})

    # ------------------------------------------------------------------ properties
    @property
    def name(self) -> str:
        """Advertised name when known, else the address with dashes (bleak's convention)."""
        return self._device_name or self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        """The ATT MTU of the link (exchanged on connect); 23 when not connected."""
        if self._connection is None:
            return _ATT_DEFAULT_MTU
        return int(self._connection.att_mtu)

    @property
    def is_connected(self) -> bool:
        """Whether the link is up (``False`` as soon as a disconnection is reported)."""
        return self._connection is not None

    # ------------------------------------------------------------------ connection
    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Connect, exchange MTU and discover services, all within ``timeout`` seconds.

        Raises
        ------
        TimeoutError
            The peripheral did not answer in time (not advertising, or mute).
        BleakError
            The link could not be set up.
        """
        if self.is_connected:
            return
        if pair:
            logger.warning("%s: pairing is not emulated on the virtual radio; connecting without it", self.address)
        self._radio._check_running()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        try:
            async with self._radio._connect_lock:
                # The central allows one pending LE connection at a time, hence the lock.
                remaining = max(deadline - loop.time(), 0.001)
                connection = await self._radio.central.connect(self._peer_address, timeout=remaining)
        except (core.TimeoutError, asyncio.TimeoutError) as exc:
            raise TimeoutError(
                f"{self.address}: no connection within {self._timeout:g} s (is the peripheral advertising?)"
            ) from exc
        except core.BaseBumbleError as exc:
            raise BleakError(f"{self.address}: connection failed: {exc}") from exc
        except asyncio.CancelledError:
            # Our caller gave up (its own timeout). Bumble leaves the controller's
            # connection attempt pending in that case; cancel it so the next one is allowed.
            await self._radio._cancel_pending_connection(self._peer_address)
            raise

        self._connection = connection
        self._closing = False
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        self._peer = Peer(connection)
        try:
            remaining = max(deadline - loop.time(), 0.001)
            await asyncio.wait_for(self._set_up_link(), remaining)
        except BaseException as exc:
            link_lost = self._connection is None  # dropped by the peer during set-up
            await self._abort_connection()
            if isinstance(exc, asyncio.CancelledError) and link_lost and not _being_cancelled():
                # Bumble cancels the pending request when the link drops.
                raise BleakError(f"{self.address}: disconnected during connection set-up") from None
            if isinstance(exc, (asyncio.TimeoutError, core.TimeoutError)):
                raise TimeoutError(
                    f"{self.address}: connected, but MTU exchange or service discovery did not "
                    f"finish within {self._timeout:g} s (peripheral not answering?)"
                ) from exc
            if isinstance(exc, att.ATT_Error):
                raise BleakGATTProtocolError(exc.error_code) from exc
            raise
        self._established = True

    async def _set_up_link(self) -> None:
        assert self._peer is not None
        await self._peer.request_mtu(self._radio.mtu)
        self.services = await self._discover()

    async def _discover(self) -> BleakGATTServiceCollection:
        assert self._peer is not None
        collection = BleakGATTServiceCollection()
        service_proxies: list[ServiceProxy] = await self._peer.discover_services()
        for service_proxy in service_proxies:
            service_uuid = _uuid_str(service_proxy.uuid)
            characteristics = await self._peer.discover_characteristics(service=service_proxy)
            if self._service_filter is not None and service_uuid not in self._service_filter:
                continue
            service = BleakGATTService(service_proxy, service_proxy.handle, service_uuid)
            collection.add_service(service)
            for proxy in characteristics:
                descriptors: list[DescriptorProxy] = await self._peer.discover_descriptors(proxy)
                properties: list[CharacteristicPropertyName] = [
                    name for bit, name in CHARACTERISTIC_PROPERTIES.items() if int(proxy.properties) & bit
                ]
                characteristic = BleakGATTCharacteristic(
                    proxy, proxy.handle, _uuid_str(proxy.uuid), properties, self._max_write_size, service
                )
                collection.add_characteristic(characteristic)
                for descriptor_proxy in descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            descriptor_proxy, descriptor_proxy.handle, _uuid_str(descriptor_proxy.type), characteristic
                        )
                    )
        return collection

    def _max_write_size(self) -> int:
        return self.mtu_size - 3

    async def _abort_connection(self) -> None:
        connection = self._connection
        if connection is None:
            return
        self._closing = True
        try:
            await connection.disconnect()
        except Exception as exc:  # noqa: BLE001 - the link may already be gone
            logger.debug("%s: disconnect after failed set-up ignored: %s", self.address, exc)
        self._forget_connection()

    def _forget_connection(self) -> None:
        if self._connection is not None:
            self._connection.remove_listener(self._connection.EVENT_DISCONNECTION, self._on_disconnection)
        self._connection = None
        self._peer = None
        self._established = False
        self._subscribers.clear()

    def _on_disconnection(self, reason: int) -> None:
        # Only a link that connect() handed over counts: a drop during set-up is reported
        # by connect() raising, not by the callback.
        unsolicited = not self._closing and self._established
        logger.debug("%s: disconnected (reason 0x%02X, unsolicited=%s)", self.address, reason, unsolicited)
        self._forget_connection()
        if unsolicited and self._disconnected_callback is not None:
            # Scheduled, not called: the user's code must not run inside Bumble's event dispatch.
            asyncio.get_running_loop().call_soon(self._disconnected_callback)

    async def disconnect(self) -> None:
        """Disconnect (no-op when not connected); the disconnected callback is not called."""
        connection = self._connection
        if connection is None:
            return
        self._closing = True
        try:
            await connection.disconnect()
        except Exception as exc:  # noqa: BLE001 - a concurrent remote disconnect is fine
            logger.debug("%s: disconnect ignored: %s", self.address, exc)
        finally:
            self._forget_connection()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Not supported: emulated sensors need no bonding."""
        raise NotImplementedError(
            "BumbleBleakClient does not emulate pairing/bonding; emulated sensors are used unpaired"
        )

    async def unpair(self) -> None:
        """Not supported: see :meth:`pair`."""
        raise NotImplementedError(
            "BumbleBleakClient does not emulate pairing/bonding; there is nothing to unpair"
        )

    # ------------------------------------------------------------------ GATT I/O
    def _require_peer(self, what: str) -> Peer:
        if self._peer is None:
            raise BleakError(f"{self.address}: not connected ({what})")
        return self._peer

    async def _gatt(self, what: str, operation: Coroutine[Any, Any, _T]) -> _T:
        """Run one GATT procedure with bleak-style errors and a timeout."""
        try:
            return await asyncio.wait_for(operation, self._gatt_timeout)
        except att.ATT_Error as exc:
            raise BleakGATTProtocolError(exc.error_code) from exc
        except (asyncio.TimeoutError, core.TimeoutError) as exc:
            raise TimeoutError(f"{self.address}: {what} got no answer within {self._gatt_timeout:g} s") from exc
        except asyncio.CancelledError:
            # Bumble cancels the pending request when the link drops; report that as a
            # BLE error, but let a genuine cancellation of our caller through.
            if not _being_cancelled() and not self.is_connected:
                raise BleakError(f"{self.address}: disconnected during {what}") from None
            raise

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Read a characteristic value (long values are read in pieces)."""
        peer = self._require_peer("read")
        if use_cached and characteristic.handle in peer.gatt_client.cached_values:
            return bytearray(peer.gatt_client.cached_values[characteristic.handle][1])
        value = await self._gatt(f"read of {characteristic.uuid}", peer.read_value(characteristic.handle))
        return bytearray(value)

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Read a descriptor value."""
        peer = self._require_peer("descriptor read")
        if use_cached and descriptor.handle in peer.gatt_client.cached_values:
            return bytearray(peer.gatt_client.cached_values[descriptor.handle][1])
        value = await self._gatt(f"read of descriptor {descriptor.uuid}", peer.read_value(descriptor.handle))
        return bytearray(value)

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        """Write with response (a Write Request, confirmed) or without (a Write Command)."""
        peer = self._require_peer("write")
        payload = bytes(data)
        if not response and len(payload) > self._max_write_size():
            raise BleakError(
                f"{self.address}: write without response of {len(payload)} bytes exceeds "
                f"max_write_without_response_size={self._max_write_size()}"
            )
        await self._gatt(
            f"write to {characteristic.uuid}",
            peer.write_value(characteristic.handle, payload, with_response=response),
        )

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: SizedBuffer) -> None:
        """Write a descriptor (with response)."""
        peer = self._require_peer("descriptor write")
        await self._gatt(
            f"write to descriptor {descriptor.uuid}",
            peer.write_value(descriptor.handle, bytes(data), with_response=True),
        )

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        """Enable notifications (preferred) or indications and route them to ``callback``."""
        peer = self._require_peer("start_notify")
        if not {"notify", "indicate"} & set(characteristic.properties):
            raise BleakError(f"{self.address}: characteristic {characteristic.uuid} cannot notify or indicate")
        if characteristic.handle in self._subscribers:
            raise BleakError(f"{self.address}: notifications on {characteristic.uuid} are already started")
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        address = self.address

        def on_value(value: bytes) -> None:
            try:
                callback(bytearray(value))
            except Exception:
                # Keep the stack's dispatch alive whatever the user's callback does.
                logger.exception("%s: notification callback for %s raised", address, characteristic.uuid)

        self._subscribers[characteristic.handle] = on_value
        try:
            await self._gatt(
                f"subscription to {characteristic.uuid}",
                peer.gatt_client.subscribe(proxy, on_value, prefer_notify=True),
            )
        except BaseException:
            self._subscribers.pop(characteristic.handle, None)
            raise

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Disable notifications/indications (no-op when not subscribed or not connected)."""
        subscriber = self._subscribers.pop(characteristic.handle, None)
        if subscriber is None or self._peer is None:
            return
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        await self._gatt(
            f"unsubscription from {characteristic.uuid}",
            self._peer.gatt_client.unsubscribe(proxy, subscriber),
        )
