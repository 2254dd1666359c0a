"""The mdoc BLE transport on Bumble, in both 18013-5 modes (spec mdl-reader s.3.2, [D2]).

- mdoc peripheral server mode: the phone advertises the engagement's UUID (BleOptions 10);
  the appliance scans, connects as GATT client, asks for MTU 515, subscribes to
  Server2Client and State, writes State 0x01 and sends on Client2Server.
- mdoc central client mode: the appliance advertises the UUID of BleOptions 11 and serves
  the GATT service (State, Client2Server, Server2Client, Ident); the phone connects, reads
  Ident, subscribes and writes State 0x01; the appliance sends by notification.

The Bumble device comes from ``ble_controllers``: ``hci-socket:N`` on the device, or a
``LocalRadio`` (Bumble's in-process link) in tests and the demo. This module imports Bumble;
nothing imports it except ``mdoc_transport.open_controller`` (and the simulator).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from bumble import core, gatt
from bumble.device import Connection, Device, Peer
from bumble.hci import Address

from appliance.core.credential.mdoc.engagement import BleMode, BleOption, Engagement
from appliance.core.credential.mdoc.session_crypto import ble_ident
from appliance.core.errors import TransportFailed, TransportTimeout
from appliance.devices.ble_controllers import DeviceFactory, LocalRadio, hci_socket_factory
from appliance.devices.mdoc_transport import WANTED_MTU, Deadlines, Reassembler, chunks

log = logging.getLogger(__name__)

_BASE = "-a123-48ce-896b-4c76973373e6"
# Characteristics (18013-5 s.8.3.3.1.1.2): peripheral server mode, then central client mode.
PERIPHERAL_STATE, PERIPHERAL_C2S, PERIPHERAL_S2C = (
    core.UUID(f"0000000{n}{_BASE}") for n in (1, 2, 3)
)
CENTRAL_STATE, CENTRAL_C2S, CENTRAL_S2C, CENTRAL_IDENT = (
    core.UUID(f"0000000{n}{_BASE}") for n in (5, 6, 7, 8)
)
STATE_START, STATE_END = b"\x01", b"\x02"
# Central client mode: how often the appliance advertises while it waits for the phone.
ADVERTISING_INTERVAL_MS = 50.0
# Inbound bytes held before the session reads them: a flooding phone is cut off here.
MAX_QUEUED_BYTES = 1 << 20
SERVICE_UUID_LISTS = (
    core.AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    core.AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
)


def bumble_uuid(raw: bytes) -> core.UUID:
    """An engagement's 16 UUID bytes (big-endian, as in CBOR) as a Bumble UUID."""
    return core.UUID(str(uuid.UUID(bytes=raw)))


def advertising_data(service: core.UUID) -> bytes:
    return bytes(core.AdvertisingData([(SERVICE_UUID_LISTS[0], bytes(service))]))


class BumbleTransport:
    """``MdocTransport`` on Bumble: one instance per session."""

    def __init__(self, make_device: DeviceFactory, deadlines: Deadlines) -> None:
        self.deadlines = deadlines
        self._make_device = make_device
        self._release: Callable[[], Awaitable[None]] | None = None
        self._role: _Role | None = None
        self._inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._queued = 0

    @classmethod
    def open(
        cls, spec: str, deadlines: Deadlines, *, radio: LocalRadio | None = None
    ) -> BumbleTransport:
        if spec == "local":
            if radio is None:
                raise TransportFailed("bumble:local needs the LocalRadio it shares")
            return cls(radio.reader_device, deadlines)
        return cls(hci_socket_factory(spec), deadlines)

    @property
    def mtu(self) -> int:
        return self._role.mtu() if self._role else 23

    async def connect(self, engagement: Engagement, option: BleOption) -> None:
        await self.connect_to(option, ble_ident(engagement.e_device_key_bytes))

    async def connect_to(self, option: BleOption, ident: bytes | None) -> None:
        """``connect`` from what the radio service gets over the wire: the mode, the
        service UUID and (central client mode) the Ident the kiosk derived."""
        device, self._release = await _within(
            self._make_device(), self.deadlines.connect_s, "opening the controller"
        )
        role: _Role = (
            _Central(device, self)
            if option.mode is BleMode.PERIPHERAL_SERVER
            else _Peripheral(device, self, ident or b"")
        )
        self._role = role
        await role.start(bumble_uuid(option.service_uuid))

    async def send(self, message: bytes) -> None:
        role = self._started()
        for value in chunks(message, role.mtu()):
            if not role.connected():
                raise TransportFailed("link lost while sending")
            await _within(role.write(value), self.deadlines.chunk_gap_s, "sending a chunk")

    async def receive(self, max_bytes: int) -> bytes:
        self._started()
        message = Reassembler(max_bytes)
        wait = self.deadlines.first_response_s
        while True:
            try:
                value = await asyncio.wait_for(self._inbox.get(), wait)
            except TimeoutError:
                what = "next chunk" if message.started else "first response chunk"
                raise TransportTimeout(f"{what} not within {wait} s") from None
            if value is None:
                raise TransportFailed("link lost before the last chunk")
            self._queued -= len(value)
            whole = message.feed(value)
            if whole is not None:
                return whole
            wait = self.deadlines.chunk_gap_s

    async def close(self, termination: bytes | None = None) -> None:
        role, self._role = self._role, None
        try:
            if role is not None:
                await asyncio.wait_for(role.finish(termination), self.deadlines.close_s)
        except Exception as e:  # noqa: BLE001 - closing never fails a verdict already reached
            log.debug("mdoc BLE close: %s", type(e).__name__)
        finally:
            release, self._release = self._release, None
            if release is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(release(), self.deadlines.close_s)

    def deliver(self, value: bytes) -> None:
        """A chunk from the phone (notification or write); bounded before it is kept."""
        if self._queued + len(value) > MAX_QUEUED_BYTES:
            self.lost()
            return
        self._queued += len(value)
        self._inbox.put_nowait(bytes(value))

    def lost(self) -> None:
        self._inbox.put_nowait(None)

    def _started(self) -> _Role:
        if self._role is None:
            raise TransportFailed("not connected")
        return self._role


async def _within(step: Awaitable[Any], seconds: float, what: str) -> Any:
    """One step under its deadline; Bumble's own errors become ``TransportFailed``."""
    try:
        return await asyncio.wait_for(step, seconds)
    except (TimeoutError, core.TimeoutError):
        raise TransportTimeout(f"{what}: no answer within {seconds} s") from None
    except (TransportFailed, TransportTimeout):
        raise
    except Exception as e:  # core.BaseBumbleError, ATT errors, cancelled links
        raise TransportFailed(f"{what}: {type(e).__name__}") from e


class _Role:
    """What differs between the two modes: how to meet the phone and how to write."""

    def __init__(self, device: Device, transport: BumbleTransport) -> None:
        self.device, self.transport = device, transport
        self.connection: Connection | None = None

    async def start(self, service: core.UUID) -> None:
        raise NotImplementedError

    async def write(self, value: bytes) -> None:
        raise NotImplementedError

    async def finish(self, termination: bytes | None) -> None:
        """Termination and State 0x02 where the session got that far; always hang up."""
        if not self.connected():
            return
        try:
            if self.ready_to_talk():
                if termination is not None:
                    for value in chunks(termination, self.mtu()):
                        await self.write(value)
                await self.end_state()
        finally:
            await self.disconnect()

    def ready_to_talk(self) -> bool:
        raise NotImplementedError

    async def end_state(self) -> None:
        raise NotImplementedError

    def mtu(self) -> int:
        return self.connection.att_mtu if self.connection else 23

    def connected(self) -> bool:
        return self.connection is not None and self.connection.handle in self.device.connections

    def watch(self, connection: Connection) -> None:
        self.connection = connection
        connection.on(connection.EVENT_DISCONNECTION, lambda *_: self.transport.lost())

    async def disconnect(self) -> None:
        """Let queued chunks reach the phone (the termination), then drop the link."""
        if self.connected() and self.connection is not None:
            await self.connection.drain()
            await self.connection.disconnect()


class _Central(_Role):
    """mdoc peripheral server mode: the appliance is the GATT client."""

    c2s: Any = None
    state: Any = None
    peer: Peer
    started = False  # State 0x01 written: the phone expects messages and a goodbye

    async def start(self, service: core.UUID) -> None:
        d = self.transport.deadlines
        address = await _within(self._scan(service), d.scan_s, "scanning for the phone")
        for attempt in range(d.connect_retries + 1):
            try:
                connection = await _within(
                    self.device.connect(address, timeout=d.connect_s),
                    d.connect_s + 1.0,
                    "connecting",
                )
                break
            except (TransportFailed, TransportTimeout):
                if attempt == d.connect_retries:
                    raise
        self.watch(connection)
        await _within(self._discover(Peer(connection), service), d.discovery_s, "service discovery")

    async def _scan(self, service: core.UUID) -> Address:
        found: asyncio.Future[Address] = asyncio.get_running_loop().create_future()

        def on_advertisement(advertisement: Any) -> None:
            for kind in SERVICE_UUID_LISTS:
                if service in (advertisement.data.get(kind) or ()) and not found.done():
                    found.set_result(advertisement.address)

        self.device.on(self.device.EVENT_ADVERTISEMENT, on_advertisement)
        try:
            await self.device.start_scanning(filter_duplicates=True)
            return await found
        finally:
            self.device.remove_listener(self.device.EVENT_ADVERTISEMENT, on_advertisement)
            with contextlib.suppress(Exception):
                await self.device.stop_scanning()

    async def _discover(self, peer: Peer, service: core.UUID) -> None:
        await peer.request_mtu(WANTED_MTU)
        services = await peer.discover_service(service)
        if not services:
            raise TransportFailed("the phone does not serve the engagement's service")
        found = {c.uuid: c for c in await peer.discover_characteristics(service=services[0])}
        try:
            state, c2s, s2c = (
                found[PERIPHERAL_STATE],
                found[PERIPHERAL_C2S],
                found[PERIPHERAL_S2C],
            )
        except KeyError as e:
            raise TransportFailed("mdoc characteristic missing") from e
        self.peer, self.state, self.c2s = peer, state, c2s
        await peer.subscribe(s2c, self.transport.deliver)
        await peer.subscribe(state, self._on_state)
        await peer.write_value(state, STATE_START, with_response=False)
        self.started = True

    def _on_state(self, value: bytes) -> None:
        if bytes(value) == STATE_END:
            self.transport.lost()

    async def write(self, value: bytes) -> None:
        await self.peer.write_value(self.c2s, value, with_response=False)

    def ready_to_talk(self) -> bool:
        return self.started

    async def end_state(self) -> None:
        await self.peer.write_value(self.state, STATE_END, with_response=False)


class _Peripheral(_Role):
    """mdoc central client mode: the appliance advertises and is the GATT server."""

    def __init__(self, device: Device, transport: BumbleTransport, ident: bytes) -> None:
        super().__init__(device, transport)
        self.ident = ident
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def start(self, service: core.UUID) -> None:
        props = gatt.Characteristic.Properties
        self.state = gatt.Characteristic[bytes](
            CENTRAL_STATE,
            props.NOTIFY | props.WRITE_WITHOUT_RESPONSE,
            gatt.Characteristic.WRITEABLE,
            gatt.CharacteristicValue(write=self._on_state),
        )
        c2s = gatt.Characteristic[bytes](
            CENTRAL_C2S,
            props.WRITE_WITHOUT_RESPONSE,
            gatt.Characteristic.WRITEABLE,
            gatt.CharacteristicValue(write=self._on_write),
        )
        self.s2c = gatt.Characteristic[bytes](
            CENTRAL_S2C, props.NOTIFY, gatt.Characteristic.READABLE, b""
        )
        ident = gatt.Characteristic[bytes](
            CENTRAL_IDENT, props.READ, gatt.Characteristic.READABLE, self.ident
        )
        self.device.add_service(gatt.Service(service, [self.state, c2s, self.s2c, ident]))
        self.device.gatt_server.max_mtu = WANTED_MTU  # the phone asks; this is the most given
        d = self.transport.deadlines
        connected: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()

        def on_connection(connection: Connection) -> None:
            if not connected.done():
                connected.set_result(connection)

        self.device.once(self.device.EVENT_CONNECTION, on_connection)
        await _within(
            self.device.start_advertising(
                advertising_data=advertising_data(service),
                advertising_interval_min=ADVERTISING_INTERVAL_MS,
                advertising_interval_max=ADVERTISING_INTERVAL_MS,
            ),
            d.connect_s,
            "advertising",
        )
        try:
            self.watch(
                await _within(connected, d.scan_s + d.connect_s, "waiting for the phone to connect")
            )
        finally:
            with contextlib.suppress(Exception):
                await self.device.stop_advertising()
        await _within(self.ready, d.discovery_s, "waiting for the phone to start")

    def _on_state(self, connection: Connection, value: bytes) -> None:
        if connection is not self.connection:
            return
        if bytes(value) == STATE_START and not self.ready.done():
            self.ready.set_result(None)
        elif bytes(value) == STATE_END:
            self.transport.lost()

    def _on_write(self, connection: Connection, value: bytes) -> None:
        if connection is self.connection:
            self.transport.deliver(value)

    async def write(self, value: bytes) -> None:
        assert self.connection is not None
        await self.device.notify_subscriber(self.connection, self.s2c, value)

    def ready_to_talk(self) -> bool:
        return self.ready.done()

    async def end_state(self) -> None:
        assert self.connection is not None
        await self.device.notify_subscriber(self.connection, self.state, STATE_END)
