"""``KioskPort`` over the kiosk's Unix socket: the web process's view of the real kiosk.

Every method is one short connection to the socket ``appliance run`` serves
(``appliance.kiosk.bridge``): connect, one JSON-line request, its answer, close. A new
connection per call means a restarted kiosk is simply found again by the next call, and a
call never waits behind another. Each call has a timeout; messages are capped in size
both ways. ``events()`` holds one streaming connection and re-subscribes, with backoff,
whenever the kiosk goes away and comes back.

When the kiosk is not running, reading methods answer what a screen can show without it
(``status()`` with ``kiosk.running = false`` and the reason, no verdicts, zero counts) and
acting methods (verify, sync, upload, export, accepted types) raise ``KioskNotRunning``,
a ``PortUnavailable`` whose message says so. Holder details that arrive in verdict events
stay in memory; nothing here logs or writes a message body.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from appliance.core.errors import ApplianceError, AuditError, TrustDataError
from appliance.core.reasons import Outcome
from appliance.platform.backoff import Backoff
from appliance.port.errors import BadRequest, BridgeError, MessageTooLarge, PortUnavailable
from appliance.port.events import Event
from appliance.port.wire import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_SOCKET,
    HEARTBEAT_S,
    LineReader,
    encode,
)
from appliance_web.errors import KioskNotRunning, KioskTimeout

log = logging.getLogger(__name__)

HOUR_S = 3600
MAX_RECONNECT_BACKOFF_S = 5.0


def _remote_errors() -> dict[str, type[ApplianceError]]:
    from appliance.core.errors import AuditUnavailable, ImageReadError, ImageTooLarge, RateLimited

    kinds: list[type[ApplianceError]] = [
        PortUnavailable,
        KioskNotRunning,
        AuditUnavailable,
        AuditError,
        ImageReadError,
        ImageTooLarge,
        RateLimited,
        TrustDataError,
        MessageTooLarge,
        BadRequest,
        BridgeError,
    ]
    return {k.__name__: k for k in kinds}


class _Stream:
    def __init__(self, sock: socket.socket, reader: LineReader, heartbeat_s: float) -> None:
        self.sock = sock
        self.reader = reader
        self.heartbeat_s = heartbeat_s
        self.last_rx = time.monotonic()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class SocketKioskPort:
    """``KioskPort`` implemented by requests to the kiosk process over its Unix socket."""

    def __init__(
        self,
        path: str | Path = DEFAULT_SOCKET,
        *,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 2.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_message_bytes = max_message_bytes
        self._wall = wall
        self._ids = itertools.count(1)
        self._errors = _remote_errors()
        self._closed = threading.Event()

    def close(self) -> None:
        """End open event streams (at their next heartbeat)."""
        self._closed.set()

    # -- transport ----------------------------------------------------------------------------

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock.settimeout(self.connect_timeout_s)
        try:
            sock.connect(str(self.path))
        except (FileNotFoundError, ConnectionRefusedError) as e:
            sock.close()
            raise KioskNotRunning(f"kiosk not running (nothing listens on {self.path})") from e
        except PermissionError as e:
            sock.close()
            raise PortUnavailable(
                f"kiosk socket {self.path}: permission denied (the web "
                "user must be in the kiosk's group)"
            ) from e
        except OSError as e:
            sock.close()
            raise KioskNotRunning(f"kiosk not reachable on {self.path}: {e.strerror or e}") from e
        return sock

    def _request(
        self, method: str, args: dict[str, Any], payload: bytes = b""
    ) -> tuple[socket.socket, LineReader]:
        data = encode(
            {"id": next(self._ids), "method": method, "args": args}, self.max_message_bytes
        )  # refused before connecting when too large
        if len(payload) > self.max_message_bytes:
            raise MessageTooLarge(
                f"payload of {len(payload)} bytes exceeds the bridge "
                f"limit of {self.max_message_bytes} bytes"
            )
        sock = self._connect()
        sock.settimeout(self.timeout_s)
        try:
            sock.sendall(data)
            if payload:
                sock.sendall(payload)  # raw, after its line (bridge: verify_image)
        except TimeoutError as e:
            sock.close()
            raise KioskTimeout(
                f"the kiosk did not take the {method} request within {self.timeout_s:g} s"
            ) from e
        except OSError as e:
            sock.close()
            raise KioskNotRunning(f"kiosk connection lost during {method}") from e
        return sock, LineReader(sock, self.max_message_bytes)

    def _read(self, reader: LineReader, method: str) -> dict[str, Any]:
        try:
            reply = reader.read()
        except TimeoutError as e:
            raise KioskTimeout(
                f"the kiosk did not answer {method} within {self.timeout_s:g} s"
            ) from e
        except OSError as e:
            raise KioskNotRunning(f"kiosk connection lost during {method}") from e
        if reply is None:
            raise KioskNotRunning(f"the kiosk closed the connection during {method}")
        return reply

    def _raise_remote(self, reply: dict[str, Any], method: str) -> None:
        error = reply.get("error")
        if not isinstance(error, dict):
            error = {}
        kind = self._errors.get(str(error.get("type")), ApplianceError)
        message = str(error.get("message") or f"the kiosk refused {method}")
        raise kind(message)

    def _call(self, method: str, payload: bytes = b"", **args: Any) -> Any:
        sock, reader = self._request(method, args, payload)
        try:
            chunks: list[bytes] = []
            while True:
                reply = self._read(reader, method)
                if "chunk" in reply:
                    piece = base64.b64decode(str(reply["chunk"]))
                    chunks.append(piece)
                    continue
                if not reply.get("ok"):
                    self._raise_remote(reply, method)
                if "chunks" in reply:
                    return b"".join(chunks)
                return reply.get("result")
        finally:
            sock.close()

    def _read_or(self, fallback: Any, method: str, **args: Any) -> Any:
        """A read that a screen can do without: the fallback while the kiosk is away."""
        try:
            return self._call(method, **args)
        except (KioskNotRunning, BridgeError) as e:
            log.debug("%s: %s", method, e)
            return fallback

    # -- KioskPort: reads ---------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        try:
            out = dict(self._call("status"))
        except (KioskNotRunning, BridgeError) as e:
            return self._down_status(str(e))
        out["kiosk"] = {"running": True, "socket": str(self.path), "error": None}
        return out

    def _down_status(self, reason: str) -> dict[str, Any]:
        from appliance import __version__

        return {
            "kiosk": {"running": False, "socket": str(self.path), "error": reason},
            "device": {"id": None, "name": None, "mode": None},
            "software": {"version": __version__},
            "camera": {"source": None, "fps": None, "last_frame_at": None},
            "trust": {
                "version": None,
                "published_at": None,
                "expires_at": None,
                "age_s": None,
                "issuers": None,
                "error": reason,
                "last_sync_at": None,
                "next_sync_at": None,
                "last_error": None,
            },
            "clock": {"now": self._wall(), "trusted": None},
            "audit": {"pending": None, "last_upload_at": None, "fault": None},
            "accepted_types": [],
            "verdicts": self._zero_totals(),
        }

    def recent_verdicts(self, limit: int = 20) -> list[Event]:
        return list(self._read_or([], "recent_verdicts", limit=int(limit)))

    def get_verdict(self, event_id: str) -> Event | None:
        return self._read_or(None, "get_verdict", event_id=str(event_id))

    def verdicts_per_hour(self, hours: int = 24) -> list[dict[str, Any]]:
        rows = self._read_or(None, "verdicts_per_hour", hours=int(hours))
        if rows is not None:
            return list(rows)
        current = int(self._wall() // HOUR_S) * HOUR_S
        return [
            {"hour": current - i * HOUR_S, **self._zero_totals()}
            for i in range(int(hours) - 1, -1, -1)
        ]

    def verdict_totals(self) -> dict[str, int]:
        return dict(self._read_or(self._zero_totals(), "verdict_totals"))

    @staticmethod
    def _zero_totals() -> dict[str, int]:
        return {str(o): 0 for o in Outcome}

    # -- KioskPort: actions -------------------------------------------------------------------

    def verify_text(self, text: str, source: str = "web-text") -> Event:
        return self._call("verify_text", text=text, source=source)

    def verify_image(self, data: bytes, source: str = "web-image") -> list[Event]:
        return list(self._call("verify_image", payload=data, data_bytes=len(data), source=source))

    def trigger_sync(self) -> str:
        return str(self._call("trigger_sync"))

    def trigger_upload(self) -> str:
        return str(self._call("trigger_upload"))

    def export_audit(self, since: float | None = None, until: float | None = None) -> bytes:
        return self._call("export_audit", since=since, until=until)

    def accepted_types(self) -> tuple[str, ...]:
        return tuple(self._call("accepted_types"))

    def set_accepted_types(self, types: Sequence[str]) -> None:
        self._call("set_accepted_types", types=list(types))

    # -- KioskPort: live events ---------------------------------------------------------------

    def events(self, timeout_s: float = 15.0) -> Iterator[Event | None]:
        """Live events; ``None`` after ``timeout_s`` of quiet. Subscribes now when the kiosk
        is up (so no event published after this call is missed); while it is down, keeps
        trying with backoff and yields keep-alives. Yields one ``{"type": "fault",
        "fault": "kiosk"}`` event each time the connection to the kiosk is lost."""
        stream: _Stream | None
        try:
            stream = self._subscribe()
        except (PortUnavailable, BridgeError) as e:
            log.info("kiosk events: %s; retrying in the background", e)
            stream = None
        return self._events(stream, timeout_s)

    def _subscribe(self) -> _Stream:
        sock, reader = self._request("events", {})
        try:
            reply = self._read(reader, "events")
            if not reply.get("ok") or not reply.get("stream"):
                self._raise_remote(reply, "events")
        except BaseException:
            sock.close()
            raise
        heartbeat = float(reply.get("heartbeat_s") or HEARTBEAT_S)
        return _Stream(sock, reader, heartbeat)

    def _events(self, stream: _Stream | None, timeout_s: float) -> Iterator[Event | None]:
        resubscribe = Backoff(0.25, MAX_RECONNECT_BACKOFF_S)
        quiet_since = time.monotonic()
        try:
            while not self._closed.is_set():
                now = time.monotonic()
                if now - quiet_since >= timeout_s:
                    quiet_since = now
                    yield None
                    continue
                if stream is None:
                    try:
                        stream = self._subscribe()
                        resubscribe.reset()
                        log.info("kiosk events: subscribed to %s", self.path)
                    except (PortUnavailable, BridgeError):
                        wait = min(resubscribe.next(), max(0.0, timeout_s - (now - quiet_since)))
                        self._closed.wait(wait)
                    continue
                stream.sock.settimeout(
                    max(0.05, min(stream.heartbeat_s, timeout_s - (now - quiet_since)))
                )
                try:
                    message = stream.reader.read()
                except TimeoutError:
                    if time.monotonic() - stream.last_rx > 3 * stream.heartbeat_s:
                        message = None  # no heartbeat: the kiosk is gone or hung
                    else:
                        continue
                except (OSError, BridgeError):
                    message = None
                if message is None:
                    stream.close()
                    stream = None
                    log.warning("kiosk events: connection to the kiosk lost")
                    quiet_since = time.monotonic()
                    yield {"type": "fault", "fault": "kiosk", "at": self._wall()}
                    continue
                stream.last_rx = time.monotonic()
                event = message.get("event")
                if isinstance(event, dict):
                    quiet_since = time.monotonic()
                    yield event
        finally:
            if stream is not None:
                stream.close()
