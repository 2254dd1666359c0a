"""The kiosk's side of the Unix-socket bridge to the web screens (see docs/processes.md).

The kiosk process has the camera, the verifier and the audit writer and no network; the
web process renders pages. ``BridgeServer`` serves the kiosk's ``KioskPort`` (a
``LocalKioskPort`` over the kiosk's own service and event bus) on a ``SOCK_STREAM`` Unix
socket, mode 0660, so that only the kiosk's user and group can talk to it.

Wire format: JSON lines, UTF-8, one message per line, at most ``max_message_bytes`` a line
either way (a bigger one is refused, not read). A request is
``{"id": n, "method": "status", "args": {...}}``; its answer ``{"id": n, "ok": true,
"result": ...}`` or ``{"id": n, "ok": false, "error": {"type": "PortUnavailable",
"message": "..."}}``. ``events`` answers ``{"ok": true, "stream": true, "heartbeat_s": s}``
and then sends ``{"event": {...}}`` per live event and ``{"keepalive": true}`` every
``heartbeat_s`` of quiet, until either side closes. ``export_audit`` answers with
``{"chunk": base64}`` lines before its final answer. ``verify_image``'s picture follows
its request line as ``data_bytes`` raw bytes (held once; base64 in JSON cost the kiosk
four times the picture, issue 21).

Every request is checked before it reaches the kiosk: at most ``max_message_bytes`` a line
and ``MAX_DEPTH`` levels of nesting (a deeper line is refused before it is parsed), then
each argument by ``appliance.kiosk.bridge_requests`` (times, sources, accepted types). A
refused request gets a ``BadRequest`` reply; a fault while answering one gets
``InternalError``; neither closes the bridge.

Holder details (name, number, photo) cross this socket inside verdict events when the
device shows them; they are held in memory only. Nothing here logs a message body: logs
name the method and the fault, never arguments or results.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import socket
import threading
from pathlib import Path
from typing import Any

from appliance.core.errors import ApplianceError
from appliance.kiosk.bridge_requests import METHODS, opt_epoch, payload_size, screen_source
from appliance.platform.unix_listener import ListenRefused, listen_unix, remove_if_ours
from appliance.port.errors import BadRequest, BridgeError, MessageTooLarge
from appliance.port.interface import KioskPort
from appliance.port.wire import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_SOCKET,
    HEARTBEAT_S,
    PROTOCOL,
    LineReader,
    encode,
)

log = logging.getLogger(__name__)

EXPORT_CHUNK_BYTES = 256 * 1024
MAX_CONNECTIONS = 32
SOCKET_MODE = 0o660
# A connected client that sends no request for this long is dropped.
IDLE_TIMEOUT_S = 60.0


class BridgeServer:
    """Serves ``port`` (any ``KioskPort``) on a Unix socket; one thread per connection."""

    def __init__(
        self,
        port: KioskPort,
        path: str | Path = DEFAULT_SOCKET,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        heartbeat_s: float = HEARTBEAT_S,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
    ) -> None:
        self.port = port
        self.path = Path(path)
        self.max_message_bytes = max_message_bytes
        self.heartbeat_s = heartbeat_s
        self.max_connections = max_connections
        self.idle_timeout_s = idle_timeout_s
        self._listener: socket.socket | None = None
        self._inode: int | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> BridgeServer:
        """Bind (replacing a stale socket file, refusing a live one) and start accepting."""
        self._listener = self._bind()
        thread = threading.Thread(target=self._accept_loop, name="bridge-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        log.info("kiosk bridge listening on %s", self.path)
        return self

    def close(self, join_timeout_s: float = 3.0) -> None:
        self._stop.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept()
            with contextlib.suppress(OSError):
                self._listener.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            if thread is not threading.current_thread():
                thread.join(join_timeout_s)
        self._unlink_if_ours()

    def __enter__(self) -> BridgeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _bind(self) -> socket.socket:
        path = self.path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BridgeError(
                f"cannot create {path.parent} for the kiosk socket: {e.strerror or e}"
            ) from e
        try:
            sock, self._inode = listen_unix(path, SOCKET_MODE, "kiosk")
        except ListenRefused as e:
            raise BridgeError(f"cannot listen on kiosk socket {path}: {e}") from e
        sock.settimeout(0.5)
        return sock

    def _unlink_if_ours(self) -> None:
        remove_if_ours(self.path, self._inode)
        self._inode = None

    # -- connections --------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if not self._stop.is_set():
                    log.exception("kiosk bridge stopped accepting")
                return
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()]
                if len(self._conns) >= self.max_connections:
                    busy = True
                else:
                    busy = False
                    self._conns.add(conn)
            if busy:
                log.warning(
                    "kiosk bridge: %d connections open; refusing another", self.max_connections
                )
                self._refuse(conn)
                continue
            thread = threading.Thread(
                target=self._serve, args=(conn,), daemon=True, name="bridge-conn"
            )
            with self._lock:
                self._threads.append(thread)
            thread.start()

    def _refuse(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.settimeout(1.0)
            conn.sendall(
                encode(
                    _error_reply(None, "PortUnavailable", "the kiosk is busy; try again"),
                    self.max_message_bytes,
                )
            )
        conn.close()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(self.idle_timeout_s)
            reader = LineReader(conn, self.max_message_bytes)
            while not self._stop.is_set():
                try:
                    request = reader.read()
                except MessageTooLarge as e:
                    log.warning("kiosk bridge: refused a request: %s", e)
                    self._send(conn, _error_reply(None, "MessageTooLarge", str(e)))
                    return
                except BridgeError as e:
                    self._send(conn, _error_reply(None, "BadRequest", str(e)))
                    return
                if request is None:
                    return
                if not self._answer(conn, request, reader):
                    return
        except OSError:
            return  # the client went away or the server is stopping
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def _answer(self, conn: socket.socket, request: dict[str, Any], reader: LineReader) -> bool:
        """Answer one request; False when the connection is done (a stream ended)."""
        rid = request.get("id")
        method = request.get("method")
        args = request.get("args") or {}
        if not isinstance(args, dict):
            return self._send(conn, _error_reply(rid, "BadRequest", "args must be an object"))
        if method == "hello":
            return self._send(
                conn,
                {
                    "id": rid,
                    "ok": True,
                    "result": {
                        "protocol": PROTOCOL,
                        "heartbeat_s": self.heartbeat_s,
                        "max_message_bytes": self.max_message_bytes,
                    },
                },
            )
        if method == "events":
            self._stream(conn, rid)
            return False
        if method == "export_audit":
            return self._export(conn, rid, args)
        if method == "verify_image":
            return self._verify_image(conn, reader, rid, args)
        handler = METHODS.get(method) if isinstance(method, str) else None
        if handler is None:
            return self._send(
                conn, _error_reply(rid, "BadRequest", f"unknown method {str(method)[:40]!r}")
            )
        try:
            result = handler(self.port, args)
        except ApplianceError as e:
            return self._send(conn, _error_reply(rid, type(e).__name__, str(e)))
        except Exception:  # a bug in one call must not take the bridge down
            log.exception("kiosk bridge: %s failed", method)
            return self._send(
                conn, _error_reply(rid, "InternalError", f"the kiosk failed to answer {method}")
            )
        return self._send(conn, {"id": rid, "ok": True, "result": result})

    def _verify_image(
        self, conn: socket.socket, reader: LineReader, rid: Any, args: dict[str, Any]
    ) -> bool:
        """``verify_image``: the picture follows its request line as ``data_bytes`` raw
        bytes. A refused size or source ends the connection (the bytes are not read)."""
        try:
            size = payload_size(args, self.max_message_bytes)
            source = screen_source(args, "web-image")
        except BadRequest as e:
            self._send(conn, _error_reply(rid, "BadRequest", str(e)))
            return False
        try:
            received = reader.read_exact(size)
        except BridgeError as e:
            log.warning("kiosk bridge: verify_image: %s", e)
            return False
        data = bytes(received)  # the port takes bytes; the buffer goes at once
        del received
        try:
            result = self.port.verify_image(data, source)
        except ApplianceError as e:
            return self._send(conn, _error_reply(rid, type(e).__name__, str(e)))
        except Exception:  # a bug in one call must not take the bridge down
            log.exception("kiosk bridge: verify_image failed")
            return self._send(
                conn, _error_reply(rid, "InternalError", "the kiosk failed to answer verify_image")
            )
        return self._send(conn, {"id": rid, "ok": True, "result": result})

    def _send(self, conn: socket.socket, message: dict[str, Any]) -> bool:
        try:
            data = encode(message, self.max_message_bytes)
        except MessageTooLarge as e:
            log.warning("kiosk bridge: answer too large: %s", e)
            data = encode(
                _error_reply(message.get("id"), "MessageTooLarge", str(e)), self.max_message_bytes
            )
        conn.sendall(data)
        return True

    def _export(self, conn: socket.socket, rid: Any, args: dict[str, Any]) -> bool:
        try:
            data = self.port.export_audit(opt_epoch(args, "since"), opt_epoch(args, "until"))
        except ApplianceError as e:
            return self._send(conn, _error_reply(rid, type(e).__name__, str(e)))
        except Exception:  # a bug in the export must not take the connection down
            log.exception("kiosk bridge: export_audit failed")
            return self._send(
                conn, _error_reply(rid, "InternalError", "the kiosk failed to export the audit log")
            )
        chunks = 0
        for start in range(0, len(data), EXPORT_CHUNK_BYTES):
            piece = data[start : start + EXPORT_CHUNK_BYTES]
            self._send(conn, {"id": rid, "chunk": base64.b64encode(piece).decode("ascii")})
            chunks += 1
        return self._send(conn, {"id": rid, "ok": True, "result": None, "chunks": chunks})

    def _stream(self, conn: socket.socket, rid: Any) -> None:
        events = self.port.events(self.heartbeat_s)  # registered now, before the answer
        try:
            self._send(
                conn, {"id": rid, "ok": True, "stream": True, "heartbeat_s": self.heartbeat_s}
            )
            for event in events:
                if self._stop.is_set():
                    return
                if event is None:
                    self._send(conn, {"keepalive": True})
                    continue
                try:
                    data = encode({"event": event}, self.max_message_bytes)
                except MessageTooLarge:
                    log.warning(
                        "kiosk bridge: dropped an event larger than %d bytes",
                        self.max_message_bytes,
                    )
                    continue
                conn.sendall(data)
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()


def _error_reply(rid: Any, kind: str, message: str) -> dict[str, Any]:
    return {"id": rid, "ok": False, "error": {"type": kind, "message": message}}
