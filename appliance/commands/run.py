"""``appliance run``: the kiosk process (camera, scanner, verifier, audit, LEDs; no network).

Composes the loop from the configuration, serves the web screens over the kiosk socket
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
its keystrokes reach nothing else (``appliance.devices.hid_scanner``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import termios
import threading
import tty
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_SERIAL_LINE = 8192


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run", help="run the kiosk: camera, verifier, audit, LEDs (the main process)",
        description="Run the kiosk process: read the camera (and a serial QR scanner when "
        "configured), verify every code, write the audit record, show the verdict on the "
        "LEDs, and serve the web screens on the kiosk socket ([web] kiosk_socket). Stops "
        "cleanly on SIGTERM or SIGINT. SIGHUP is ignored (logged): trust data reloads by "
        "itself, a changed configuration needs a restart. Files it creates are 0640 or "
        "stricter whatever the umask.",
        epilog="example: appliance run --config /etc/appliance/appliance.toml "
        "(systemd: appliance-kiosk.service)")
    p.add_argument("--config", type=Path, required=True, metavar="FILE",
                   help="device configuration (TOML)")
    p.add_argument("--require-trust", action="store_true",
                   help="exit 64 when no trust data is installed, instead of starting in the "
                   "trust-stale state and waiting for sync")
    p.add_argument("--no-socket", action="store_true",
                   help="do not serve the web screens on the kiosk socket")
    p.set_defaults(func=run)


# -- composition ---------------------------------------------------------------------------


def build_kiosk_service(config: Any, audit: Any, *, require_trust: bool = False) -> Any:
    """``compose.build_service``, or, with no trust data installed yet, the same service
    without the early check: it verifies nothing until sync installs data."""
    from appliance.core.errors import TrustDataError
    from appliance.kiosk.compose import build_service, device_checkpoint, device_clock
    from appliance.kiosk.verification import VerificationService
    from appliance.trust.store import CurrentTrust

    try:
        return build_service(config, audit=audit)
    except TrustDataError as e:
        if require_trust:
            raise
        log.warning("%s; starting in the trust-stale state until sync installs data", e)
    trust = CurrentTrust(config.trust_dir, root=config.sync.root)
    return VerificationService(trust=trust, clock=device_clock(config, trust),
                               checkpoint=device_checkpoint(config), audit=audit,
                               audit_required=config.audit.required)


def export_audit(audit: Any) -> Any:
    """The port's ``export`` callable: JSON lines of records in [since, until)."""
    import io
    import json

    def export(since: float | None, until: float | None) -> bytes:
        exporter = getattr(audit, "export_bytes", None)
        if exporter is not None:
            return exporter(since, until)
        out = io.StringIO()
        audit.export(out, since=since, fmt="jsonl")
        if until is None:
            return out.getvalue().encode("utf-8")
        from appliance.kiosk.status import epoch

        keep = []
        for line in out.getvalue().splitlines():
            at = epoch(json.loads(line).get("time"))
            if at is None or at < until:
                keep.append(line + "\n")
        return "".join(keep).encode("utf-8")

    return export


def build_port(config: Any, service: Any, bus: Any, kiosk: Any, audit: Any) -> Any:
    """The kiosk port the bridge serves: this process's service, bus and parts."""
    from appliance.kiosk import compose
    from appliance.kiosk.status import device_providers
    from appliance.kiosk.triggers import file_trigger

    return compose.build_port(
        config, service, bus,
        providers=device_providers(config, kiosk=kiosk, audit=audit),
        export=export_audit(audit),
        sync=file_trigger(config.paths.run_dir, "sync"),
        upload=file_trigger(config.paths.run_dir, "upload"),
    )


# -- serial scanner ------------------------------------------------------------------------


def _open_serial(device: str) -> int:
    fd = os.open(device, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if os.isatty(fd):
            tty.setraw(fd)  # no echo, no line editing; CDC-ACM ignores the baud rate
            attrs = termios.tcgetattr(fd)
            attrs[4] = attrs[5] = termios.B9600
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except termios.error as e:
        os.close(fd)
        raise OSError(f"cannot set the serial line up: {e}") from e
    return fd


def read_serial(device: str, submit: Any, stop: threading.Event, *,
                poll_s: float = 0.25) -> None:
    """Lines from a serial QR scanner to ``submit(text, "serial")`` until ``stop``.

    Lines end in CR or LF; blank lines are skipped; a line longer than MAX_SERIAL_LINE
    bytes is dropped whole. Bytes are UTF-8 where valid, else latin-1 (like the camera
    decoders). A lost device is reopened with backoff. Scanned texts are never logged.
    """
    from appliance.devices.reader import read_device
    from appliance.devices.scanner import bytes_to_text

    def new_consumer() -> Any:
        buf, overlong = bytearray(), False

        def consume(chunk: bytes) -> None:
            nonlocal buf, overlong
            buf += chunk
            *lines, rest = buf.replace(b"\r", b"\n").split(b"\n")
            buf = bytearray(rest)
            for line in lines:
                if overlong:
                    overlong = False  # the tail of a dropped line
                elif line.strip():
                    submit(bytes_to_text(line.strip()), "serial")
            if len(buf) > MAX_SERIAL_LINE:
                log.warning("serial scanner %s: line over %d bytes dropped",
                            device, MAX_SERIAL_LINE)
                buf.clear()
                overlong = True

        return consume

    read_device(device, _open_serial, new_consumer, stop, name="serial scanner",
                poll_s=poll_s)


# -- the command ---------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    from appliance.platform.secret_files import private_umask

    with private_umask():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from appliance.audit.log import open_audit_log
    from appliance.config import load_config
    from appliance.devices.camera import open_frame_source
    from appliance.devices.indicator import open_indicator
    from appliance.devices.scanner import FrameScanner, PresenceGate, make_decoder
    from appliance.kiosk.bridge import BridgeServer
    from appliance.kiosk.events import EventBus, holder_details_allowed
    from appliance.kiosk.loop import Kiosk
    from appliance.kiosk.mdoc_session import MdocSessions, mdoc_reader
    from appliance.kiosk.rate_cap import verdict_cap

    config = load_config(args.config)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    def on_hangup(_signum: int, _frame: Any) -> None:
        log.info("SIGHUP ignored: trust data reloads by itself; restart the kiosk to apply "
                 "a changed configuration")

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hangup)
    audit = open_audit_log(config)
    cleanup: list[Any] = [audit.close]
    try:
        service = build_kiosk_service(config, audit, require_trust=args.require_trust)
        service.rate_cap = verdict_cap(config.audit.max_verdicts_per_minute)
        source = open_frame_source(config.camera)
        budget_s = config.scanner.frame_budget_ms / 1000 or None
        scanner = FrameScanner(make_decoder(config.scanner.backend, live=True,
                                            budget_s=budget_s), PresenceGate())
        indicator = open_indicator(config.indicator)
        cleanup.append(indicator.close)
        bus = EventBus()
        show_holder = holder_details_allowed(config.device.mode, config.web.show_holder_details)
        mdoc = MdocSessions(mdoc_reader(config), service, indicator, bus, show_holder=show_holder)
        kiosk = Kiosk(source, scanner, service, indicator, bus,
                      repeat_after_absent_s=config.scanner.repeat_after_absent_s,
                      show_holder=show_holder, mdoc=mdoc)
        if config.web.kiosk_socket and not args.no_socket:
            port = build_port(config, service, bus, kiosk, audit)
            cleanup.append(port.close)
            bridge = BridgeServer(port, config.web.kiosk_socket,
                                  max_message_bytes=config.web.kiosk_socket_max_kb * 1024)
            bridge.start()
            cleanup.append(bridge.close)
        if config.scanner.serial_device:
            serial = threading.Thread(target=read_serial, daemon=True, name="serial-scanner",
                                      args=(config.scanner.serial_device, kiosk.submit_text,
                                            stop))
            serial.start()
            cleanup.append(lambda: serial.join(2.0))
        if config.scanner.hid_device:
            from appliance.devices.hid_scanner import read_hid

            hid = threading.Thread(target=read_hid, daemon=True, name="hid-scanner",
                                   args=(config.scanner.hid_device, kiosk.submit_text, stop))
            hid.start()
            cleanup.append(lambda: hid.join(2.0))
        log.info("kiosk running (camera %s, device %s)", config.camera.source, config.device.id)
        kiosk.run(stop)  # READY=1, watchdog, STOPPING=1
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
