"""``appliance web``: serve the screens (kiosk, inspector, status, admin) on loopback.

Server: werkzeug's threaded WSGI server, bounded (``appliance.platform.bounded_server``): idle
connections hold no thread, workers and connections per client are capped, reads and
writes time out. It ships with Flask (Debian: python3-werkzeug) and needs nothing more;
each open kiosk screen holds one worker for its event stream. Tells systemd ``READY=1``
once the socket listens, then pings its watchdog (``WatchdogSec=``) only while a request
on loopback gets an answer.

Two modes (docs/processes.md):

- **kiosk socket** (the default): ``[web] kiosk_socket`` names the Unix socket that
  ``appliance run`` serves; every read and action goes to the kiosk process through
  ``appliance_web.socket_port.SocketKioskPort``, and live verdicts stream from it. When the
  kiosk is not running the screens still answer: status shows "kiosk not running",
  ``/healthz`` answers 503, and actions answer 503 with that message.
- **standalone** (``kiosk_socket = ""`` or ``--standalone``): no kiosk process; this process
  verifies uploads and pasted texts with its own service (same trust store, clock and
  audit log) and shows their verdicts. The demo runs kiosk and screens in one process.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from appliance.commands import argtypes
from appliance.core.errors import UsageError

log = logging.getLogger(__name__)


# What the watchdog probe asks for: a static file, answered by the server and the app
# without the kiosk (a stopped kiosk is shown on the screens, it is no reason to restart).
WATCHDOG_PROBE_PATH = "/static/app.css?watchdog"


class _QuietProbe(logging.Filter):
    """Keeps the probe's request lines (one every 15 s) out of the journal."""

    def filter(self, record: logging.LogRecord) -> bool:
        return WATCHDOG_PROBE_PATH not in record.getMessage()


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "web",
        help="serve the kiosk, inspector, status and admin screens",
        description="Serve the web screens. Binds to web.host:web.port of the configuration "
        "(127.0.0.1:8080 by default); another address only with --host or the configuration.",
        epilog="example: appliance web --config /etc/appliance/appliance.toml "
        "(systemd: appliance-web.service)",
    )
    p.add_argument(
        "--config", type=Path, required=True, metavar="FILE", help="device configuration (TOML)"
    )
    p.add_argument("--host", metavar="H", help="address to bind (default: web.host)")
    p.add_argument("--port", type=argtypes.port, metavar="P", help="TCP port (default: web.port)")
    p.add_argument(
        "--standalone",
        action="store_true",
        help="verify in this process instead of reading the kiosk over "
        "web.kiosk_socket (a screen without a kiosk process)",
    )
    p.set_defaults(func=run)


def build_app(config, *, standalone: bool | None = None):
    """The screens for ``config``: over the kiosk socket unless ``standalone`` (default:
    standalone only when ``[web] kiosk_socket`` is empty)."""
    if standalone is None:
        standalone = not config.web.kiosk_socket
    if not standalone:
        from appliance_web import create_app
        from appliance_web.socket_port import SocketKioskPort

        port = SocketKioskPort(
            config.web.kiosk_socket,
            timeout_s=config.web.kiosk_socket_timeout_s,
            max_message_bytes=config.web.kiosk_socket_max_kb * 1024,
        )
        return _with_kiosk_errors(create_app(port, config))
    return _with_kiosk_errors(_standalone_app(config))


KIOSK_FAULT_PAGE = """{% extends "base.html" %}
{% block title %}503{% endblock %}
{% block content %}
<h1>503</h1>
<p class="bad">{{ message }}</p>
<p><a href="{{ url_for('kiosk.home') }}">{{ _("Back to the start") }}</a></p>
{% endblock %}"""


def _with_kiosk_errors(app):
    """Faults from the kiosk that a view did not handle (kiosk not running, no trust data,
    a timeout) answer 503 with their one-line message instead of a 500."""
    from flask import render_template_string, request
    from markupsafe import escape

    from appliance.core.errors import ApplianceError

    def kiosk_fault(e: ApplianceError):
        log.warning("screen request failed: %s", e)
        if request.path.startswith(("/api/", "/healthz", "/metrics")):
            return {"error": str(e), "status": 503}, 503
        try:
            return render_template_string(KIOSK_FAULT_PAGE, message=str(e)), 503
        except Exception:  # noqa: BLE001 - the fault page must answer even when its template fails
            return (
                f"<p>503: {escape(str(e))}</p>",
                503,
                {"Content-Type": "text/html; charset=utf-8"},
            )

    app.register_error_handler(ApplianceError, kiosk_fault)
    return app


def _standalone_app(config):
    from appliance.kiosk.compose import build_port, build_service
    from appliance.port.events import EventBus
    from appliance_web import create_app

    service = build_service(config, capped=True)  # verdicts capped as the kiosk's are
    port = build_port(config, service, EventBus(), persist_types=False)
    return create_app(port, config)


def run(args: argparse.Namespace) -> int:
    from appliance.config import load_config
    from appliance.platform.bounded_server import make_bounded_server, screen_limits
    from appliance.platform.systemd_notify import (
        ProbeWatchdog,
        http_answers,
        loopback_for,
        sd_notify,
    )

    config = load_config(args.config)
    host = args.host or config.web.host
    port = config.web.port if args.port is None else args.port
    if not 0 < port < 65536:
        raise UsageError(f"--port must be 1..65535, not {port}")
    app = build_app(config, standalone=True if args.standalone else None)
    if not (args.standalone or not config.web.kiosk_socket):
        log.info("reading the kiosk on %s", config.web.kiosk_socket)
    if host not in app.config["TRUSTED_HOSTS"]:
        app.config["TRUSTED_HOSTS"] = [*app.config["TRUSTED_HOSTS"], host]
    server = make_bounded_server(host, port, app, screen_limits(config.web.max_event_streams))
    log.info("serving the screens on http://%s:%d/", host, server.server_port)
    sd_notify("READY=1")
    # The main thread sits in serve_forever: the watchdog is pinged from a thread, and only
    # while a real request on loopback gets an answer (a hung server stops the pings).
    probe_host, probe_port = loopback_for(host), server.server_port
    watchdog = ProbeWatchdog(
        lambda: http_answers(probe_host, probe_port, WATCHDOG_PROBE_PATH, watchdog.probe_timeout_s)
    )
    if watchdog.start():
        logging.getLogger("werkzeug").addFilter(_QuietProbe())
    try:
        server.serve_forever()
    finally:
        watchdog.stop()
        sd_notify("STOPPING=1")
        server.server_close()
    return 0
