"""A simulated phone presenting an mdoc over Bumble's in-process link (tests and the demo).

``SimulatedPhone`` shows a QR engagement offering BLE in the modes asked for and plays the
phone's GATT role in each: in mdoc peripheral server mode it advertises and serves State,
Client2Server and Server2Client; in mdoc central client mode it scans for the reader, checks
its Ident, subscribes and writes State 0x01. It answers the reader's SessionEstablishment with
``holder_mdoc.answer`` and misbehaves on command (``Behaviour``). ``events`` records what the
reader did to it (start, termination, State 0x02, disconnection), for the tests to check.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from bumble import gatt
from bumble.device import Connection, Device, Peer
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.core.credential.mdoc import session_crypto as sc
from appliance.core.credential.mdoc.engagement import BleMode, parse_engagement
from appliance.devices.ble_bumble import (
    CENTRAL_C2S,
    CENTRAL_IDENT,
    CENTRAL_S2C,
    CENTRAL_STATE,
    PERIPHERAL_C2S,
    PERIPHERAL_S2C,
    PERIPHERAL_STATE,
    SERVICE_UUID_LISTS,
    STATE_END,
    STATE_START,
    advertising_data,
    bumble_uuid,
)
from appliance.devices.ble_controllers import LocalRadio
from appliance.devices.mdoc_transport import MIN_MTU, Reassembler, chunks
from appliance.tools.holder_mdoc import (
    Behaviour,
    HolderSession,
    Misbehaviour,
    Wallet,
    answer,
    device_engagement,
    engagement_text,
)

MAX_INBOUND = 64 * 1024
ADVERTISING_MS = 50.0  # what phones do while they show the QR (fast discovery)
Send = Callable[[bytes], Awaitable[None]]


class SimulatedPhone:
    """One phone, one engagement, one session at a time (a new QR per session)."""

    def __init__(
        self,
        radio: LocalRadio,
        wallet: Wallet,
        *,
        modes: tuple[BleMode, ...] = (BleMode.PERIPHERAL_SERVER,),
        behaviour: Behaviour | None = None,
        replay: tuple[bytes, bytes] | None = None,
        curve: ec.EllipticCurve | None = None,
    ) -> None:
        self.radio, self.wallet, self.modes = radio, wallet, modes
        self.behaviour = behaviour or Behaviour()
        self.replay = replay
        self.e_device_key = ec.generate_private_key(curve or ec.SECP256R1())
        self.uuids = {mode: uuid.uuid4().bytes for mode in modes}
        self.engagement = device_engagement(
            self.e_device_key.public_key(),
            peripheral_uuid=self.uuids.get(BleMode.PERIPHERAL_SERVER),
            central_uuid=self.uuids.get(BleMode.CENTRAL_CLIENT),
        )
        self.text = engagement_text(self.engagement)
        self.session = HolderSession(self.e_device_key, self.engagement)
        self.events: list[str] = []
        # (DeviceResponse, SessionData) of the last answer: another phone can replay it.
        self.last: tuple[bytes, bytes] | None = None
        self._device: Device | None = None
        self._leave: Callable[[], Awaitable[None]] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._inbound = Reassembler(MAX_INBOUND)
        self._answered = False
        self.chunks_sent = 0
        self.mtu = 0  # the ATT MTU the link had when the phone answered

    async def start(self) -> str:
        """Power on and take the phone's part in each offered mode; return the QR text."""
        self._device, self._leave = await self.radio.device("phone")
        self._device.on(self._device.EVENT_CONNECTION, self._on_connection)
        if BleMode.PERIPHERAL_SERVER in self.modes:
            await self._serve(bumble_uuid(self.uuids[BleMode.PERIPHERAL_SERVER]))
        if BleMode.CENTRAL_CLIENT in self.modes:
            self._spawn(self._find_reader(bumble_uuid(self.uuids[BleMode.CENTRAL_CLIENT])))
        return self.text

    def attach(self) -> str:
        """Join the reader's next session on ``radio`` from inside its event loop (the
        kiosk runs sessions on a worker thread); return the QR text to show."""

        async def start() -> Callable[[], Awaitable[None]]:
            await self.start()
            return self.stop

        self.radio.invite(start)
        return self.text

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._leave is not None:
            await self._leave()

    async def __aenter__(self) -> SimulatedPhone:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_connection(self, connection: Connection) -> None:
        self.events.append("connected")
        connection.on(connection.EVENT_DISCONNECTION, lambda *_: self.events.append("disconnected"))

    # mdoc peripheral server mode: the phone is the GATT server.
    async def _serve(self, service: Any) -> None:
        assert self._device is not None
        props = gatt.Characteristic.Properties
        state = gatt.Characteristic[bytes](
            PERIPHERAL_STATE,
            props.NOTIFY | props.WRITE_WITHOUT_RESPONSE,
            gatt.Characteristic.WRITEABLE,
            gatt.CharacteristicValue(write=lambda _c, v: self._on_state(bytes(v))),
        )
        c2s = gatt.Characteristic[bytes](
            PERIPHERAL_C2S,
            props.WRITE_WITHOUT_RESPONSE,
            gatt.Characteristic.WRITEABLE,
            gatt.CharacteristicValue(write=self._on_server_write),
        )
        s2c = gatt.Characteristic[bytes](
            PERIPHERAL_S2C, props.NOTIFY, gatt.Characteristic.READABLE, b""
        )
        served = service
        if self.behaviour.misbehaviour is Misbehaviour.WRONG_SERVICE:
            served = bumble_uuid(uuid.uuid4().bytes)  # advertised one UUID, serves another
        self._device.add_service(gatt.Service(served, [state, c2s, s2c]))
        self._device.gatt_server.max_mtu = max(self.behaviour.mtu, MIN_MTU)
        self._s2c = s2c
        await self._device.start_advertising(
            advertising_data=advertising_data(service),
            advertising_interval_min=ADVERTISING_MS,
            advertising_interval_max=ADVERTISING_MS,
        )

    def _on_server_write(self, connection: Connection, value: bytes) -> None:
        device = self._device
        assert device is not None

        async def notify(chunk: bytes) -> None:
            await device.notify_subscriber(connection, self._s2c, chunk)

        self._on_chunk(bytes(value), notify, connection)

    # mdoc central client mode: the phone is the GATT client.
    async def _find_reader(self, service: Any) -> None:
        device = self._device
        assert device is not None
        found: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def on_advertisement(advertisement: Any) -> None:
            for kind in SERVICE_UUID_LISTS:
                if service in (advertisement.data.get(kind) or ()) and not found.done():
                    found.set_result(advertisement.address)

        device.on(device.EVENT_ADVERTISEMENT, on_advertisement)
        await device.start_scanning(filter_duplicates=True)
        address = await found
        await device.stop_scanning()
        connection = await device.connect(address)
        peer = Peer(connection)
        if self.behaviour.mtu > MIN_MTU:
            await peer.request_mtu(self.behaviour.mtu)
        [svc] = await peer.discover_service(service)
        chars = {c.uuid: c for c in await peer.discover_characteristics(service=svc)}
        ident = await peer.read_value(chars[CENTRAL_IDENT])
        if bytes(ident) != sc.ble_ident(parse_engagement(self.text).e_device_key_bytes):
            self.events.append("wrong ident")
            await connection.disconnect()
            return
        c2s = chars[CENTRAL_C2S]

        async def write(chunk: bytes) -> None:
            await peer.write_value(c2s, chunk, with_response=False)

        await peer.subscribe(
            chars[CENTRAL_S2C], lambda v: self._on_chunk(bytes(v), write, connection)
        )
        await peer.subscribe(chars[CENTRAL_STATE], lambda v: self._on_state(bytes(v)))
        await peer.write_value(chars[CENTRAL_STATE], STATE_START, with_response=False)

    # Both modes: messages in, the answer out.
    def _on_state(self, value: bytes) -> None:
        self.events.append(
            {STATE_START: "state start", STATE_END: "state end"}.get(value, f"state {value.hex()}")
        )

    def _on_chunk(self, value: bytes, send: Send, connection: Connection) -> None:
        try:
            message = self._inbound.feed(value)
        except Exception:  # noqa: BLE001 - a broken reader message is recorded, not raised
            self.events.append("bad chunk from reader")
            return
        if message is None:
            return
        if self._answered:
            status = sc.parse_session_data(message).status
            self.events.append("termination" if status == 20 else f"message status {status}")
            return
        self._answered = True
        self.events.append("request")
        self._spawn(self._respond(message, send, connection))

    async def _respond(self, establishment: bytes, send: Send, connection: Connection) -> None:
        behaviour, kind = self.behaviour, self.behaviour.misbehaviour
        message, response = answer(self.session, establishment, self.wallet, behaviour, self.replay)
        if message is None:
            return  # STALL: the request was read, no answer will come
        if response is not None:
            self.last = (response, message)
        self.mtu = connection.att_mtu
        parts = chunks(message, connection.att_mtu)
        if kind is Misbehaviour.BAD_CHUNK:
            parts[0] = b"\x07" + parts[0][1:]
        if kind in (Misbehaviour.STALL_MID, Misbehaviour.DISCONNECT_MID):
            parts = parts[: max(1, len(parts) // 2)]
        for part in parts:
            if kind is Misbehaviour.DRIP:
                await asyncio.sleep(behaviour.delay_s)
            await send(part)
            self.chunks_sent += 1
        self.events.append("response sent")
        if kind in (Misbehaviour.DISCONNECT_MID, Misbehaviour.DISCONNECT_AFTER):
            if kind is Misbehaviour.DISCONNECT_AFTER:
                await connection.drain()  # every chunk left the phone, then the link drops
            await connection.disconnect()
