"""``appliance web``: serve the screens (kiosk, inspector, status, admin) on loopback.

Server: werkzeug's threaded WSGI server (``werkzeug.serving.make_server``, threaded=True).
It ships with Flask (Debian: python3-werkzeug), needs nothing more, and is enough for a
screen bound to 127.0.0.1 with a handful of clients; each open kiosk screen holds one
thread for its event stream. Tells systemd ``READY=1`` once the socket listens.

Until the kiosk's Unix-socket event bridge exists, this process verifies uploads and pasted
texts with its own service (same trust store, clock and audit log as the kiosk) and shows
their verdicts; the demo runs kiosk and screens in one process instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
from pathlib import Path

from appliance.errors import UsageError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "web", help="serve the kiosk, inspector, status and admin screens",
        description="Serve the web screens. Binds to web.host:web.port of the configuration "
        "(127.0.0.1:8080 by default); another address only with --host or the configuration.",
    )
    p.add_argument("--config", type=Path, required=True, metavar="FILE",
                   help="device configuration (TOML)")
    p.add_argument("--host", metavar="H", help="address to bind (default: web.host)")
    p.add_argument("--port", type=int, metavar="P", help="TCP port (default: web.port)")
    p.set_defaults(func=run)


def sd_notify(message: str, env: dict[str, str] | None = None) -> bool:
    """Send ``message`` to systemd's $NOTIFY_SOCKET; False when not run under systemd."""
    address = (env if env is not None else os.environ).get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(address)
            s.sendall(message.encode())
    except OSError as e:
        log.warning("cannot notify systemd at %s: %s", address, e)
        return False
    return True


def build_app(config):
    from appliance_web import create_app
    from appliance_web.ports import LocalKioskPort

    from appliance.compose import build_service, device_clock
    from appliance.events import EventBus, holder_details_allowed
    from appliance.trust_store import CurrentTrust

    service = build_service(config)
    trust = CurrentTrust(config.trust_dir)
    port = LocalKioskPort(
        service, EventBus(),
        device={"id": config.device.id, "name": config.device.name,
                "mode": config.device.mode, "camera": config.camera.source},
        trust=trust, clock=device_clock(config, trust),
        show_holder=holder_details_allowed(config.device.mode, config.web.show_holder_details),
        decoder_backend=config.scanner.backend, history_size=config.web.history_size,
    )
    return create_app(port, config)


def run(args: argparse.Namespace) -> int:
    from werkzeug.serving import make_server

    from appliance.config import load_config

    config = load_config(args.config)
    host = args.host or config.web.host
    port = config.web.port if args.port is None else args.port
    if not 0 < port < 65536:
        raise UsageError(f"--port must be 1..65535, not {port}")
    app = build_app(config)
    if host not in app.config["TRUSTED_HOSTS"]:
        app.config["TRUSTED_HOSTS"] = [*app.config["TRUSTED_HOSTS"], host]
    server = make_server(host, port, app, threaded=True)
    log.info("serving the screens on http://%s:%d/", host, server.server_port)
    sd_notify("READY=1")
    try:
        server.serve_forever()
    finally:
        sd_notify("STOPPING=1")
        server.server_close()
    return 0
