"""The mDL radio service (issue 23, the radio split): the one process with the controller.

It listens on a Unix socket (``mdoc.radio_socket``) and carries whole messages between the
kiosk and the phone, on the transport the kiosk would otherwise run itself
(``ble_bumble.BumbleTransport``, opened per session by ``mdoc_transport.open_controller``,
which checks the controller first). It knows no session key and judges nothing.

- One session at a time: a second connection while one runs is answered ``failed``
  ("busy") and closed.
- Each request runs under the radio's deadline for that step; while it runs, the kiosk's
  connection is watched: when it drops (or speaks out of turn) the step is cancelled and
  the BLE session ends (State 0x02, disconnect).
- A bad frame is answered ``failed`` and ends that connection; nothing a client sends ends
  the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol

from appliance.core.credential.mdoc.engagement import BleOption
from appliance.core.errors import ConfigError, TransportFailed, TransportTimeout
from appliance.devices.mdoc_transport import Deadlines
from appliance.devices.radio_wire import (
    Close,
    Connect,
    Limits,
    Receive,
    Request,
    Send,
    WireError,
    encode,
    error,
    ok,
    parse_request,
    read_frame,
)
from appliance.platform.unix_listener import listen_unix, remove_if_ours

log = logging.getLogger(__name__)

SOCKET_MODE = 0o660  # the radio's group (the kiosk's supplementary group) may connect
ANSWER_S = 2.0  # the most an answer may wait for the kiosk to read it
BUSY = "busy: another session is running"


class RadioLink(Protocol):
    """What the service needs of a transport (``BumbleTransport``)."""

    async def connect_to(self, option: BleOption, ident: bytes | None) -> None: ...

    async def send(self, message: bytes) -> None: ...

    async def receive(self, max_bytes: int) -> bytes: ...

    async def close(self, termination: bytes | None = None) -> None: ...


class _Gone(Exception):
    """The kiosk hung up (or spoke out of turn) while a step ran."""


class RadioService:
    """Serves sessions, one at a time, from ``open_link`` (called once per session)."""

    def __init__(
        self, open_link: Callable[[], RadioLink], deadlines: Deadlines, max_message_bytes: int
    ) -> None:
        self._open_link = open_link
        self.deadlines = deadlines
        self.max_message_bytes = max_message_bytes
        self.limits = Limits.for_messages(max_message_bytes)
        self._session: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()  # every open connection
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = False
        self._server: asyncio.AbstractServer | None = None
        self._path: Path | None = None
        self._inode: int | None = None
        self.sessions = 0  # sessions served (connections that got past "busy")

    @property
    def busy(self) -> bool:
        return self._session is not None and not self._session.done()

    async def listen(self, path: Path) -> None:
        """Listen on ``path`` with mode 0660, as the kiosk's socket does: bound under a
        private name, given its mode, renamed into place; a stale socket left by a dead
        radio is replaced, a live one (a second radio) or any other file refused."""
        try:
            sock, self._inode = listen_unix(path, SOCKET_MODE, "radio service")
        except OSError as e:  # refused, too long, no such folder, not allowed
            raise ConfigError(f"cannot listen on mdoc.radio_socket {path}: {e}") from e
        self._server = await asyncio.start_unix_server(self.handle, sock=sock)
        self._path = path

    async def close(self) -> None:
        """Stop listening, end the running session (State 0x02, disconnect), remove the
        socket file. Each connection is hung up from here, so its handler sees the end as
        if the kiosk had gone (a cancellation alone can be lost in a ``wait_for`` that
        completes at that moment on Python 3.11); a handler still running after its
        close deadline is cancelled."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        await asyncio.sleep(0)  # connections accepted just now get to their handler
        for writer in list(self._writers):
            writer.close()
        handlers = list(self._handlers)
        if handlers:
            _, late = await asyncio.wait(handlers, timeout=self.deadlines.close_bound_s + ANSWER_S)
            for handler in late:
                handler.cancel()
            for handler in late:
                with contextlib.suppress(BaseException):
                    await handler
        if self._path is not None:  # ours still (not a successor's): remove it
            remove_if_ours(self._path, self._inode)
            self._path = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client connection: a session, or "busy"."""
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        try:
            if self._closing:
                return
            if self.busy:
                await self._refuse(reader, writer)
                return
            self._session = task
            self.sessions += 1
            try:
                await self._serve(reader, writer)
            finally:
                self._free(task)
        except asyncio.CancelledError:
            # ``close`` ended it (SIGTERM) past its deadline. The handler is a top-level task
            # of the server: it ends normally, since asyncio logs a cancelled one as an error.
            log.info("mdoc radio: stopping; the running session was ended")
        except Exception as e:  # noqa: BLE001 - one connection's fault never ends the service
            log.warning("mdoc radio: session ended by %s", type(e).__name__)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), ANSWER_S)
            self._handlers.discard(task)
            self._writers.discard(writer)

    def _free(self, task: asyncio.Task[Any] | None) -> None:
        """The radio is free for the next connection (only its own session frees it)."""
        if self._session is task:
            self._session = None

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(read_frame(reader, self.limits), ANSWER_S)
        await self._answer(writer, *error(TransportFailed(BUSY)))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link: RadioLink | None = None
        try:
            while True:
                try:
                    frame = await asyncio.wait_for(
                        read_frame(reader, self.limits), self.deadlines.session_s
                    )
                    if frame is None:
                        return  # the kiosk hung up between steps
                    request = parse_request(frame)
                except TimeoutError:
                    log.info(
                        "mdoc radio: the kiosk sent nothing for %s s", self.deadlines.session_s
                    )
                    return
                except WireError as e:
                    log.warning("mdoc radio: bad frame from the kiosk (%s)", e)
                    await self._answer(writer, *error(e))
                    return
                if isinstance(request, Close):
                    closing, link = link, None
                    if closing is not None:
                        await closing.close(request.termination)
                    # Free before the kiosk hears it: its next QR may come at once.
                    self._free(asyncio.current_task())
                    await self._answer(writer, *ok())
                    return
                if isinstance(request, Connect):
                    if link is not None:
                        await self._answer(writer, *error(TransportFailed("connected already")))
                        return
                    try:
                        link = self._open_link()
                    except Exception as e:  # noqa: BLE001 - unavailable or failed, answered
                        await self._answer(writer, *error(e))
                        continue
                elif link is None:
                    await self._answer(writer, *error(TransportFailed("not connected")))
                    return
                try:
                    body = await self._step(reader, link, request)
                except _Gone:
                    log.info("mdoc radio: the kiosk hung up mid-step; ending the BLE session")
                    return
                except Exception as e:  # noqa: BLE001 - the step's fault is the answer
                    await self._answer(writer, *error(e))
                    continue
                await self._answer(writer, *ok(body))
        finally:
            if link is not None:
                await link.close(None)

    async def _step(self, reader: asyncio.StreamReader, link: RadioLink, request: Request) -> bytes:
        """Run one step under the radio's deadline, cancelled if the kiosk hangs up."""
        d = self.deadlines
        work: Coroutine[Any, Any, bytes | None]
        if isinstance(request, Connect):
            work, seconds = link.connect_to(request.option, request.ident), d.connect_bound_s
        elif isinstance(request, Send):
            work, seconds = link.send(request.message), d.session_s
        else:
            assert isinstance(request, Receive)
            limit = min(request.max_bytes, self.max_message_bytes)
            work, seconds = link.receive(limit), d.session_s
        step = asyncio.ensure_future(work)
        watch = asyncio.ensure_future(reader.read(1))
        try:
            done, _ = await asyncio.wait(
                {step, watch}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (watch, step):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
        if watch in done:
            raise _Gone
        if step not in done:
            raise TransportTimeout(f"{type(request).__name__.lower()}: over {seconds} s")
        result = step.result()
        return result if isinstance(result, bytes) else b""

    async def _answer(self, writer: asyncio.StreamWriter, header: dict, body: bytes) -> None:
        writer.write(encode(header, body))
        await asyncio.wait_for(writer.drain(), ANSWER_S)
