"""A threaded WSGI server whose idle connections hold no thread (issue 21, finding 2).

werkzeug's threaded server starts one thread per accepted connection and reads it with no
timeout: ~1,750 idle half-open connections took the web screen past its 112 MiB limit.
Here a connection gets a worker thread only once it has sent its first bytes, and only if
one of ``workers`` is free (else a one-line 503, written without a thread). Until then it
waits in one selector thread, at most ``first_byte_s`` and at most ``waiting`` of them (the
oldest is closed to make room), and at most ``per_client`` connections per remote address
(loopback ``127.0.0.1``/``::1`` exempt: the kiosk display, nginx in front of the hub).
A served connection reads and writes under ``io_timeout_s``, and its input stream reads
64 KiB at a time (werkzeug drains an unread body with reads of 10 MB, each allocated in
full before a byte arrives).
Threads: the accept loop, the selector and at most ``workers``, whatever the clients do.

TLS (``appliance hub serve --tls-cert``) is wrapped per connection in its worker thread,
so a client that never finishes its handshake holds neither the accept loop nor the
selector.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler, load_ssl_context

log = logging.getLogger(__name__)

LOCAL_ADDRESSES = frozenset({"127.0.0.1", "::1"})
READ_CAP = 64 * 1024
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 5\r\nRetry-After: 5\r\nConnection: close\r\n\r\nbusy\n"
)


@dataclass(frozen=True)
class ServerLimits:
    """How much any set of clients can hold of a server."""

    workers: int = 32  # requests served at once; a live event stream holds one
    waiting: int = 256  # accepted connections that have not sent a byte yet
    per_client: int = 16  # connections per remote address (loopback exempt)
    first_byte_s: float = 10.0  # a connection silent this long after connecting is closed
    io_timeout_s: float = 30.0  # every read and write of a served connection


class _CappedReader:
    """The handler's input with each read capped, so no drain allocates megabytes."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def read(self, size: int | None = -1) -> bytes:
        """As ``BufferedReader.read`` (up to ``size``, short only at the end), but memory
        follows the bytes that arrive, not the size asked for."""
        if size is not None and 0 <= size <= READ_CAP:
            return self._raw.read(size)
        parts: list[bytes] = []
        left = -1 if size is None or size < 0 else size
        while left != 0:
            chunk = self._raw.read(READ_CAP if left < 0 else min(READ_CAP, left))
            if not chunk:
                break
            parts.append(chunk)
            left = left if left < 0 else left - len(chunk)
        return b"".join(parts)

    def readinto(self, buffer: Any) -> int:
        return self._raw.readinto(buffer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


class _CappedInput:
    """Handler mixin: the request's input stream through ``_CappedReader``."""

    rfile: Any

    def setup(self) -> None:
        super().setup()  # type: ignore[misc]
        self.rfile = _CappedReader(self.rfile)


class BoundedWSGIServer(ThreadedWSGIServer):
    """``werkzeug.serving.make_server(..., threaded=True)`` with the bounds of
    ``ServerLimits``; ``serve_forever``, ``shutdown`` and ``server_close`` as usual."""

    def __init__(
        self,
        host: str,
        port: int,
        app: Any,
        limits: ServerLimits | None = None,
        ssl_context: Any = None,
        clock: Callable[[], float] = time.monotonic,
        handler: type[WSGIRequestHandler] = WSGIRequestHandler,
    ) -> None:
        capped = type(f"Capped{handler.__name__}", (_CappedInput, handler), {})
        super().__init__(host, port, app, handler=capped)
        if isinstance(ssl_context, tuple):
            ssl_context = load_ssl_context(*ssl_context)
        self.ssl_context = ssl_context
        self.limits = limits or ServerLimits()
        self._clock = clock
        self._slots = threading.BoundedSemaphore(self.limits.workers)
        self._lock = threading.Lock()
        self._clients: collections.Counter[str] = collections.Counter()
        self._arrivals: collections.deque[tuple[socket.socket, Any]] = collections.deque()
        self._waiting: dict[socket.socket, tuple[Any, float]] = {}
        self.refused: collections.Counter[str] = collections.Counter()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._closing = False
        self._waiter = threading.Thread(target=self._wait_loop, name="http-waiting", daemon=True)
        self._waiter.start()

    # The accept loop (serve_forever's thread): count, then hand over to the selector.
    def process_request(self, request: Any, client_address: Any) -> None:
        address = _address(client_address)
        with self._lock:
            if address not in LOCAL_ADDRESSES and self._clients[address] >= self.limits.per_client:
                self.refused["per_client"] += 1
                refuse = True
            else:
                self._clients[address] += 1
                self._arrivals.append((request, client_address))
                refuse = False
        if refuse:
            _close(request)
            return
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    # The selector thread: connections that have not spoken yet.
    def _wait_loop(self) -> None:
        while not self._closing:
            try:
                self._wait_once()
            except Exception:  # this thread must outlive any one connection's fault
                log.exception("waiting connections: unexpected error")
        for sock, (client_address, _) in list(self._waiting.items()):
            self._drop(sock, client_address)

    def _wait_once(self) -> None:
        now = self._clock()
        deadlines = [d for _, d in self._waiting.values()]
        timeout = max(0.0, min(deadlines) - now) if deadlines else None
        for key, _ in self._selector.select(timeout):
            if key.fileobj is self._wake_r:
                with contextlib.suppress(OSError):
                    while self._wake_r.recv(4096):
                        pass
                continue
            sock = key.fileobj
            self._selector.unregister(sock)
            client_address, _ = self._waiting.pop(sock)  # type: ignore[call-overload]
            self._dispatch(sock, client_address)  # type: ignore[arg-type]
        self._expire()
        self._admit()

    def _admit(self) -> None:
        deadline = self._clock() + self.limits.first_byte_s
        while True:
            with self._lock:
                if not self._arrivals:
                    return
                sock, client_address = self._arrivals.popleft()
            if self._closing:
                self._forget(sock, client_address)
                continue
            if len(self._waiting) >= self.limits.waiting:
                oldest = next(iter(self._waiting))
                self._selector.unregister(oldest)
                self.refused["evicted"] += 1
                self._drop(oldest, self._waiting.pop(oldest)[0])
            try:
                self._selector.register(sock, selectors.EVENT_READ)
            except (ValueError, OSError):  # closed before it could wait
                self._drop(sock, client_address)
                continue
            self._waiting[sock] = (client_address, deadline)

    def _expire(self) -> None:
        now = self._clock()
        for sock, (client_address, deadline) in list(self._waiting.items()):
            if deadline <= now:
                self._selector.unregister(sock)
                del self._waiting[sock]
                self.refused["silent"] += 1
                self._drop(sock, client_address)

    def _dispatch(self, sock: socket.socket, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.refused["busy"] += 1
            if self.ssl_context is None:
                with contextlib.suppress(OSError):
                    sock.setblocking(False)
                    sock.send(BUSY)
            self._drop(sock, client_address)
            return
        try:
            threading.Thread(
                target=self._serve, args=(sock, client_address), name="http-worker", daemon=True
            ).start()
        except RuntimeError:  # no thread to be had: this connection only
            self._slots.release()
            self.refused["busy"] += 1
            self._drop(sock, client_address)

    # A worker thread: one connection, one request (werkzeug closes after each).
    def _serve(self, sock: socket.socket, client_address: Any) -> None:
        try:
            sock.settimeout(self.limits.io_timeout_s)
            if self.ssl_context is not None:
                sock = self.ssl_context.wrap_socket(sock, server_side=True)
            self.finish_request(sock, client_address)
        except (OSError, ssl.SSLError) as e:
            log.debug("connection from %s ended: %s", _address(client_address), e)
        except Exception:  # noqa: BLE001 - the waiting thread survives any one connection
            self.handle_error(sock, client_address)
        finally:
            self.shutdown_request(sock)
            self._slots.release()
            self._forget(None, client_address)

    def _drop(self, sock: socket.socket, client_address: Any) -> None:
        _close(sock)
        self._forget(None, client_address)

    def _forget(self, sock: socket.socket | None, client_address: Any) -> None:
        if sock is not None:
            _close(sock)
        address = _address(client_address)
        with self._lock:
            self._clients[address] -= 1
            if self._clients[address] <= 0:
                del self._clients[address]

    @property
    def connections(self) -> int:
        """Connections held now (waiting and served)."""
        with self._lock:
            return sum(self._clients.values())

    def server_close(self) -> None:
        self._closing = True
        self._wake()
        if self._waiter.is_alive() and threading.current_thread() is not self._waiter:
            self._waiter.join(timeout=5)
        super().server_close()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()


def _address(client_address: Any) -> str:
    if isinstance(client_address, tuple) and client_address:
        return str(client_address[0])
    return "local"


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


def make_bounded_server(
    host: str,
    port: int,
    app: Any,
    limits: ServerLimits | None = None,
    ssl_context: Any = None,
    handler: type[WSGIRequestHandler] = WSGIRequestHandler,
) -> BoundedWSGIServer:
    """The one way the appliance's screens and the hub's own server are created."""
    return BoundedWSGIServer(host, port, app, limits, ssl_context=ssl_context, handler=handler)


def screen_limits(max_event_streams: int) -> ServerLimits:
    """The web screens' bounds: every live stream may hold a worker and 16 more remain for
    pages, so streams never starve a request."""
    return ServerLimits(workers=max(1, max_event_streams) + 16)
