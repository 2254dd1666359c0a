"""The kiosk's side of the radio split (issue 23): an ``MdocTransport`` over a Unix socket.

With ``mdoc.radio_socket`` set the kiosk loads no Bluetooth code: it keeps the session
crypto, the verdict and the audit, and asks the radio service (``appliance mdl-radio``, the
one process with the controller) to connect, send and receive whole messages, one request
and one answer at a time (``radio_wire``). Every call has its own deadline, the radio's for
that step plus ``MARGIN_S``, so a radio that hangs, dies or speaks garbage costs the session
it was serving and nothing else: the next session opens a new connection.

No socket file: the radio service is not there (mDL off on this board, or not started),
``TransportUnavailable``. A socket that refuses, drops or breaks the wire: ``TransportFailed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.core.credential.mdoc.engagement import BleMode
from appliance.core.errors import (
    MdocTransportError,
    TransportFailed,
    TransportTimeout,
    TransportUnavailable,
)
from appliance.devices.radio_wire import (
    Frame,
    Limits,
    WireError,
    answer_body,
    connect_request,
    encode,
    read_frame,
)

if TYPE_CHECKING:
    from appliance.core.credential.mdoc.engagement import BleOption, Engagement
    from appliance.devices.mdoc_transport import Deadlines

log = logging.getLogger(__name__)

MARGIN_S = 1.0  # over the radio's own deadline for a step: its answer's way back


class RadioClient:
    """One session through the radio service: one connection, closed by ``close``."""

    def __init__(
        self,
        path: str | Path,
        deadlines: Deadlines,
        max_message_bytes: int,
        *,
        margin_s: float = MARGIN_S,
    ) -> None:
        self.path = Path(path)
        self.deadlines = deadlines
        self.limits = Limits.for_messages(max_message_bytes)
        self.margin_s = margin_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self, engagement: Engagement, option: BleOption) -> None:
        from appliance.core.credential.mdoc.session_crypto import ble_ident

        ident = (
            ble_ident(engagement.e_device_key_bytes)
            if option.mode is BleMode.CENTRAL_CLIENT
            else None
        )
        await self._open()
        await self._call(connect_request(option, ident), b"", self.deadlines.connect_bound_s)

    async def send(self, message: bytes) -> None:
        await self._call({"op": "send"}, message, self.deadlines.session_s)

    async def receive(self, max_bytes: int) -> bytes:
        max_bytes = min(max_bytes, self.limits.max_body)
        return await self._call(
            {"op": "receive", "max_bytes": max_bytes}, b"", self.deadlines.session_s
        )

    async def close(self, termination: bytes | None = None) -> None:
        """The radio sends ``termination``, State 0x02 and hangs up; never raises. Without
        an answer in time the connection is dropped, which ends the radio's session too."""
        if self._writer is None:
            return
        try:
            await self._call({"op": "close"}, termination or b"", self.deadlines.close_bound_s)
        except MdocTransportError as e:
            log.debug("mdoc radio close: %s", type(e).__name__)
        finally:
            await self._drop()

    async def _open(self) -> None:
        if not self.path.exists():
            raise TransportUnavailable(f"no mDL radio service at {self.path}")
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_unix_connection(str(self.path)), self.margin_s
            )
        except FileNotFoundError:
            raise TransportUnavailable(f"no mDL radio service at {self.path}") from None
        except TimeoutError:
            raise TransportTimeout(f"radio service at {self.path} did not accept") from None
        except OSError as e:
            raise TransportFailed(f"radio service at {self.path}: {e.strerror or e}") from None

    async def _call(self, header: dict[str, Any], body: bytes, step_s: float) -> bytes:
        """One request and its answer within ``step_s`` + the margin. An error answer
        raises its exception and keeps the connection (the radio's session lives on, to
        be closed); anything wrong with the connection itself drops it."""
        if self._writer is None or self._reader is None:
            raise TransportFailed("not connected to the radio service")
        reader, writer = self._reader, self._writer
        seconds = step_s + self.margin_s

        async def exchange() -> Frame:
            writer.write(encode(header, body, self.limits))
            await writer.drain()
            frame = await read_frame(reader, self.limits)
            if frame is None:
                raise TransportFailed("the radio service hung up")
            return frame

        try:
            frame = await asyncio.wait_for(exchange(), seconds)
        except asyncio.CancelledError:
            # The session's own deadline cut this call: its answer may still come, so the
            # connection is out of step. Hang up: the radio ends the BLE session.
            self._abort()
            raise
        except TimeoutError:
            await self._drop()
            raise TransportTimeout(
                f"radio: no answer to {header['op']} within {seconds} s"
            ) from None
        except TransportFailed:
            await self._drop()
            raise
        except OSError as e:  # refused, reset, broken pipe
            await self._drop()
            raise TransportFailed(f"radio connection lost ({type(e).__name__})") from None
        try:
            return answer_body(frame)
        except WireError:
            await self._drop()
            raise

    def _abort(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()

    async def _drop(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), self.margin_s)
