"""``appliance demo``'s web screen, in the demo's own process: started on the kiosk's
in-process port, and stopped with every open request, live event streams included, so no
request thread outlives the demo.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from functools import cache
from typing import Any

from appliance.commands.demo_terminal import say


def start_web(parts: Any, stop: threading.Event) -> tuple[str, Any, Any] | None:
    """The screens in this process, reading the kiosk through the in-process port (sync
    runs right here; upload has no hub to go to).

    Returns the URL, the server and its live event fan-out, which the caller shuts down
    when the demo stops."""
    from appliance.kiosk.compose import kiosk_port
    from appliance.platform.bounded_server import make_bounded_server, screen_limits
    from appliance_web import create_app

    config = parts.config
    port = kiosk_port(
        parts, camera="demo (simulated camera)", actions={"sync": lambda: _sync_now(config)}
    )
    app = create_app(_StoppablePort(port, stop), config)
    try:
        server = make_bounded_server(
            config.web.host,
            config.web.port,
            app,
            screen_limits(config.web.max_event_streams),
            handler=_tracked_handler(),
        )
    except OSError as e:
        say(
            f"web screen not started: {config.web.host}:{config.web.port}: {e.strerror}",
            file=sys.stderr,
        )
        return None
    threading.Thread(target=server.serve_forever, daemon=True, name="demo-web").start()
    return (
        f"http://{config.web.host}:{server.server_port}/",
        server,
        app.extensions.get("live_events"),
    )


class _StoppablePort:
    """The kiosk port, whose event streams end once the demo stops (not at exit)."""

    def __init__(self, port: Any, stop: threading.Event) -> None:
        self._port, self._stop = port, stop

    def __getattr__(self, name: str) -> Any:
        return getattr(self._port, name)

    def events(self, timeout_s: float = 15.0) -> Iterator[Any]:
        upstream = self._port.events(timeout_s)
        try:
            for event in upstream:
                if self._stop.is_set():
                    return
                yield event
        finally:
            upstream.close()


# Open web connections, so the demo can end them all on a stop signal.
_OPEN: set[tuple[threading.Thread, Any]] = set()
_OPEN_LOCK = threading.Lock()


@cache
def _tracked_handler() -> type:
    """Werkzeug's handler, remembering open connections (built on first use: werkzeug is
    not imported by every command that only registers its options)."""
    from werkzeug.serving import WSGIRequestHandler

    class TrackedHandler(WSGIRequestHandler):
        def handle(self) -> None:
            me = (threading.current_thread(), self.connection)
            with _OPEN_LOCK:
                _OPEN.add(me)
            try:
                super().handle()
            finally:
                with _OPEN_LOCK:
                    _OPEN.discard(me)

    return TrackedHandler


def stop_web(server: Any, fanout: Any = None, deadline_s: float = 5.0) -> None:
    """Stop accepting, then end every open request, live event streams included: their
    sockets are shut and each stream is woken (a keep-alive write fails), so no request
    thread outlives the demo holding the kiosk's objects."""
    import socket

    server.shutdown()
    server.server_close()
    with _OPEN_LOCK:
        requests = list(_OPEN)
    for _thread, conn in requests:
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)
    for q in list(getattr(fanout, "_clients", ())):
        with contextlib.suppress(Exception):
            q.put_nowait(None)
    end = time.monotonic() + deadline_s
    for thread, _conn in requests:
        thread.join(max(0.0, end - time.monotonic()))


def _sync_now(config: Any) -> str:
    """The demo is one process with loopback network: sync right here."""
    from appliance_sync.client import client_from_config

    return client_from_config(config).sync_once().describe()


def logins(url: str) -> str:
    from appliance.tools.demo import DEMO_PASSWORDS

    return "\n".join(
        f"{role} login: {url}{role}/login password {password}"
        for role, password in DEMO_PASSWORDS.items()
    )
