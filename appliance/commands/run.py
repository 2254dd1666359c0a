"""``appliance run``: the kiosk process (camera, scanner, verifier, audit, LEDs; no network).

Has ``appliance.kiosk.compose`` build the kiosk from the configuration (as the demo does),
serves the web screens over the kiosk socket
(``[web] kiosk_socket``, see docs/processes.md), optionally reads a serial QR scanner, and
runs until SIGTERM or SIGINT, then stops cleanly and exits 0. Under systemd it sends
READY=1 once the socket listens and the loop starts, pets the watchdog from the loop
(``WatchdogSec=``), and STOPPING=1 on the way out.

SIGHUP is ignored (logged): trust data already reloads on every verification and accepted
types apply at once, while a new configuration (camera, pins, socket) needs a restart
(``systemctl restart appliance-kiosk``), so a stray hang-up never kills the kiosk.

Files the kiosk creates (audit log, state files) are 0640 or stricter whatever the umask
it was started with: it runs under ``secret_files.private_umask``.

Missing trust data does not stop the kiosk: it starts in the "trust data stale" state
(amber blink, no verdicts) and picks up the data as soon as ``appliance sync`` installs it,
without a restart (``CurrentTrust`` reloads on every verification). A device that must
not start without data can say ``--require-trust``: it then exits 64 with one line.

Second input: a CDC/serial QR scanner (``[scanner] serial_device = "/dev/ttyACM0"``), read
as lines (CR or LF) and verified through the same path as camera codes; or a
keyboard-wedge (USB HID) scanner (``[scanner] hid_device =
"/dev/input/by-id/usb-...-event-kbd"``), read from its key events and taken exclusively so
its keystrokes reach nothing else (``appliance.devices.serial_scanner``,
``appliance.devices.hid_scanner``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="run the kiosk: camera, verifier, audit, LEDs (the main process)",
        description="Run the kiosk process: read the camera (and a serial QR scanner when "
        "configured), verify every code, write the audit record, show the verdict on the "
        "LEDs, and serve the web screens on the kiosk socket ([web] kiosk_socket). Stops "
        "cleanly on SIGTERM or SIGINT. SIGHUP is ignored (logged): trust data reloads by "
        "itself, a changed configuration needs a restart. Files it creates are 0640 or "
        "stricter whatever the umask.",
        epilog="example: appliance run --config /etc/appliance/appliance.toml "
        "(systemd: appliance-kiosk.service)",
    )
    p.add_argument(
        "--config", type=Path, required=True, metavar="FILE", help="device configuration (TOML)"
    )
    p.add_argument(
        "--require-trust",
        action="store_true",
        help="exit 64 when no trust data is installed, instead of starting in the "
        "trust-stale state and waiting for sync",
    )
    p.add_argument(
        "--no-socket", action="store_true", help="do not serve the web screens on the kiosk socket"
    )
    p.set_defaults(func=run)


# -- the command ---------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    from appliance.platform.secret_files import private_umask

    with private_umask():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from appliance.audit.log import open_audit_log
    from appliance.config import load_config
    from appliance.kiosk.compose import build_kiosk, build_service, kiosk_port, serve_socket

    config = load_config(args.config)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    def on_hangup(_signum: int, _frame: Any) -> None:
        log.info(
            "SIGHUP ignored: trust data reloads by itself; restart the kiosk to apply "
            "a changed configuration"
        )

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hangup)
    audit = open_audit_log(config)
    cleanup: list[Any] = [audit.close]
    try:
        service = build_service(config, audit, wait_for_trust=not args.require_trust, capped=True)
        parts = build_kiosk(config, service, audit)
        cleanup.append(parts.close)
        if config.web.kiosk_socket and not args.no_socket:
            port = kiosk_port(parts)
            cleanup.append(port.close)
            cleanup.append(serve_socket(config, port).close)
        parts.start_inputs(stop)
        log.info("kiosk running (camera %s, device %s)", config.camera.source, config.device.id)
        parts.kiosk.run(stop)  # READY=1, watchdog, STOPPING=1
    finally:
        stop.set()
        for step in reversed(cleanup):
            try:
                step()
            except Exception:  # one failing close must not skip the others
                log.exception("shutdown step failed")
        for signum, handler in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signum, handler)
    log.info("kiosk stopped")
    return 0
