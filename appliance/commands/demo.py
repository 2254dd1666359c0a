"""appliance demo: the kiosk on this machine (see appliance.tools.demo)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from appliance.commands.argtypes import non_negative_float, port
from appliance.core.errors import UsageError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="run a whole demo checkpoint on this machine (make demo)",
        description="Generate demo keys and trust data (first run), publish and sync them "
        "over loopback, print sample verdicts, then run the kiosk with a simulated camera, "
        "simulated LEDs on a terminal line and the web screen.",
        epilog="example: appliance demo --dir demo/ --port 8080 (Ctrl-C stops it)")
    p.add_argument("--dir", type=Path, default=Path("demo"), help="demo workspace (default demo/)")
    p.add_argument("--port", type=port, default=8080, help="web screen port on 127.0.0.1")
    p.add_argument("--duration", type=non_negative_float, help="stop after this many seconds")
    p.add_argument("--no-web", action="store_true", help="do not start the web screen")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from appliance.tools.demo import prepare_world, table

    root: Path = args.dir.resolve()
    if root.exists() and not root.is_dir():
        raise UsageError(f"--dir {args.dir} is not a directory")
    _fit_logging(_columns())
    stop = threading.Event()
    _on_stop_signals(stop)
    world = prepare_world(root)
    server, url = _serve_repository(root)
    try:
        config = _publish_and_sync(root, world, url, args.port)
        service, audit = _service(config)
        samples = world.samples()
        rows = []
        for sample in samples:
            text = sample.make(time.time())
            if text is None:
                continue
            if sample.session and world.mdl is not None:  # a phone's mDL: a session
                from appliance.tools.demo_mdl import read_once

                v = read_once(config, world.mdl, service)
            else:
                v = service.verify(text, source="demo")
            rows.append((sample.label, f"{v.outcome} {v.reason}", sample.expected))
        print(table(rows), flush=True)
        mismatches = [r for r in rows if r[1] != r[2]]
        if mismatches:
            print(f"\n{len(mismatches)} sample(s) did not give the expected verdict",
                  file=sys.stderr)
        if stop.is_set():
            return 0
        return _run_kiosk(args, config, service, audit, samples, root, stop, world.mdl)
    finally:
        server.shutdown()
        server.server_close()


def _on_stop_signals(stop: threading.Event) -> None:
    """Ctrl-C, SIGTERM and SIGHUP (a closed terminal, tmux kill-session) all stop the demo.

    Before the kiosk runs they interrupt set-up (KeyboardInterrupt, exit 130); once it
    runs they set ``stop`` so every thread and server is shut down in order.
    """
    def handler(signum: int, frame: Any) -> None:
        if stop.is_set() or not getattr(stop, "kiosk_running", False):
            stop.set()
            raise KeyboardInterrupt
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def _columns() -> int:
    """The terminal's width, at most 80: the demo is read in the narrowest terminal."""
    return max(40, min(80, shutil.get_terminal_size((80, 24)).columns))


def _say(text: str, **kw: Any) -> None:
    """Print a message wrapped to the terminal (never wider than 80 columns)."""
    width = _columns()
    print("\n".join(textwrap.fill(part, width, subsequent_indent="  ",
                                  break_on_hyphens=False) if part else ""
                    for part in text.split("\n")), flush=True, **kw)


class _WrapFormatter(logging.Formatter):
    """Log lines of the demo wrapped to the terminal width."""

    def __init__(self, fmt: str | None, width: int) -> None:
        super().__init__(fmt)
        self._width = width

    def format(self, record: logging.LogRecord) -> str:
        return textwrap.fill(super().format(record), self._width, subsequent_indent="  ",
                             break_on_hyphens=False)


def _fit_logging(width: int) -> None:
    for handler in logging.getLogger().handlers:
        fmt = handler.formatter._fmt if handler.formatter is not None else None
        handler.setFormatter(_WrapFormatter(fmt, width))


def _serve_repository(root: Path) -> tuple[Any, str]:
    """Serve the signed repository as plain static files on loopback, as a CDN would."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    repo = root / "repo"
    repo.mkdir(parents=True, exist_ok=True)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(Quiet, directory=str(repo)))
    threading.Thread(target=server.serve_forever, daemon=True, name="demo-repo").start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def _publish_and_sync(root: Path, world: Any, url: str, web_port: int) -> Any:
    from appliance.config import load_config
    from appliance.tools.demo import ensure_secrets, write_config
    from appliance_sync.client import client_from_config
    from appliance_sync.publisher import init_repository, update_repository
    from appliance_sync.trust_parts import load_source

    repo, keys, pin = root / "repo", root / "tuf-keys", root / "root.json"
    if not (repo / "metadata").is_dir() or not any((repo / "metadata").iterdir()):
        init_repository(repo, keys, pin)
    version = update_repository(repo, keys, load_source(world.trust_source), expires_hours=72)
    ensure_secrets(root)
    config = load_config(write_config(root, url, web_port, mdl=world.mdl is not None))
    result = client_from_config(config).sync_once()
    _say(f"published trust data version {version}; {result.describe()}")
    return config


def _service(config: Any) -> tuple[Any, Any]:
    from appliance.audit.log import open_audit_log
    from appliance.kiosk.compose import build_service

    audit = open_audit_log(config)
    return build_service(config, audit, capped=True), audit  # the kiosk's service


def _run_kiosk(args: argparse.Namespace, config: Any, service: Any, audit: Any,
               samples: list, root: Path, stop: threading.Event, mdl: Any = None) -> int:
    from appliance.kiosk.compose import build_kiosk
    from appliance.kiosk.loop import latency_percentiles
    from appliance.tools.demo import DemoCamera

    camera = DemoCamera(samples)
    # The device's kiosk with the simulated camera, and the phone's mDL sessions on the
    # emulated link (none without the Bluetooth stack).
    parts = build_kiosk(config, service, audit, source=camera, show_holder=True,
                        mdoc_sessions=mdl is not None,
                        mdoc_radio=None if mdl is None else mdl.link())
    kiosk, indicator, bus = parts.kiosk, parts.indicator, parts.bus
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    tty = sys.stdout.isatty()
    if tty:  # the live status line shows the verdicts; keep it readable
        logging.getLogger().setLevel(logging.WARNING)
    web = None if args.no_web else _start_web(parts, stop)
    status = threading.Thread(target=_status_line, args=(stop, kiosk, indicator, camera, bus,
                                                         config.indicator.verdict_hold_s),
                              daemon=True, name="demo-status")
    timer = None
    if args.duration is not None:
        timer = threading.Timer(args.duration, stop.set)
        timer.daemon = True
    try:
        _say(f"\nkiosk running{'' if web is None else f'; web screen on {web[0]}'} "
             "(Ctrl-C to stop)")
        if web is not None:
            _say(_logins(web[0]))
        stop.kiosk_running = True  # type: ignore[attr-defined]  # signals now only set stop
        parts.start_inputs(stop)
        status.start()
        if timer is not None:
            timer.start()
        kiosk.run(stop)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        if timer is not None:
            timer.cancel()
        if web is not None:
            bus.publish({"type": "demo-stopped"})  # wakes the web's event reader to end
            _stop_web(web[1], web[2])
        if status.is_alive():
            status.join(timeout=2)
        parts.close()  # a session in flight ends within its deadlines
        camera.close()
    if tty:
        print(flush=True)  # end the status line
    p = latency_percentiles(kiosk.stats.latencies_s)
    _say(f"{kiosk.stats.verdicts} verdicts from {kiosk.stats.frames} frames; "
         f"scan-to-LED p50 {p.get('p50_ms', 0):.1f} ms, p99 {p.get('p99_ms', 0):.1f} ms\n"
         f"audit log: {root / 'state' / 'audit.db'}")
    return 0


def _start_web(parts: Any, stop: threading.Event) -> tuple[str, Any, Any] | None:
    """The screens in this process, reading the kiosk through the in-process port (sync
    runs right here; upload has no hub to go to).

    Returns the URL, the server and its live event fan-out, which the caller shuts down
    when the demo stops."""
    from appliance.kiosk.compose import kiosk_port
    from appliance.platform.bounded_server import make_bounded_server, screen_limits
    from appliance_web import create_app

    config = parts.config
    port = kiosk_port(parts, camera="demo (simulated camera)",
                      actions={"sync": lambda: _sync_now(config)})
    app = create_app(_StoppablePort(port, stop), config)
    try:
        server = make_bounded_server(config.web.host, config.web.port, app,
                                     screen_limits(config.web.max_event_streams),
                                     handler=_tracked_handler())
    except OSError as e:
        _say(f"web screen not started: {config.web.host}:{config.web.port}: {e.strerror}",
             file=sys.stderr)
        return None
    threading.Thread(target=server.serve_forever, daemon=True, name="demo-web").start()
    return (f"http://{config.web.host}:{server.server_port}/", server,
            app.extensions.get("live_events"))


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


def _stop_web(server: Any, fanout: Any = None, deadline_s: float = 5.0) -> None:
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


_LAMP = {True: "\x1b[1m●\x1b[0m", False: "○"}
_COLOURS = {"green": "\x1b[32m", "amber": "\x1b[33m", "red": "\x1b[31m"}


def status_text(lamps: dict[str, bool], in_view: str, verdict: str, fps: float,
                width: int) -> str:
    """One status line narrower than ``width`` columns (so it never wraps), lamps in colour.

    The lamps are fixed; what the camera sees and the last verdict share what is left (cut
    with "~" when they do not fit), and the frame rate is shown where there is room."""
    leds_plain = " ".join(f"{'●' if on else '○'} {n}" for n, on in lamps.items())
    leds = " ".join(f"{_COLOURS.get(n, '')}{_LAMP[on]}\x1b[0m {n}" for n, on in lamps.items())
    tail = f" {fps:4.1f} fps"
    free = width - 1 - len(f"[{leds_plain}] ")  # columns left after the lamps

    def cut(text: str, n: int) -> str:
        return text if len(text) <= n else text[:max(0, n - 1)] + "~"

    room = free - len(" -> ")
    if room < 16:  # a narrow terminal: the lamps and the verdict only
        return f"[{leds}] {cut(verdict, max(0, free))}"
    verdict_w = min(len(verdict), room - 12)
    view_w = min(len(in_view), room - verdict_w)
    line = f"[{leds}] {cut(in_view, view_w):<{view_w}} -> {cut(verdict, verdict_w)}"
    pad = room - view_w - len(cut(verdict, verdict_w)) - len(tail)
    return f"{line}{' ' * pad}{tail}" if pad >= 0 else line


def _logins(url: str) -> str:
    from appliance.tools.demo import DEMO_PASSWORDS

    return "\n".join(f"{role} login: {url}{role}/login password {password}"
                     for role, password in DEMO_PASSWORDS.items())


def verdict_label(last: dict[str, Any], seen_at: float | None, now: float,
                  hold_s: float) -> str:
    """The verdict the line shows: the last one while its lamp is held, then "-" (the
    LEDs are back to the device state, and a label left over would read as a verdict
    for whatever, or nothing, is in view now)."""
    if not last or seen_at is None or now - seen_at >= hold_s:
        return "-"
    return f"{last.get('outcome', '-')} {last.get('reason', '')}".strip()


def _status_line(stop: threading.Event, kiosk: Any, indicator: Any, camera: Any,
                 bus: Any, hold_s: float, clock: Callable[[], float] = time.monotonic) -> None:
    """LEDs and the last verdict on one live terminal line (a line per verdict if no TTY)."""
    from appliance.devices.indicator import lamp_states

    last: dict[str, Any] = {}
    seen: list[float] = []

    def on_event(event: dict[str, Any]) -> None:
        if event.get("type") == "verdict":
            last.clear()
            last.update(event)
            seen[:] = [clock()]

    bus.listen(on_event)
    tty = sys.stdout.isatty()
    shown = None
    while not stop.wait(0.1):
        if tty:
            verdict = verdict_label(last, seen[0] if seen else None, clock(), hold_s)
        else:
            verdict = f"{last.get('outcome', '-')} {last.get('reason', '')}".strip()
        in_view = camera.current.label if camera.current else "nothing"
        if tty:
            line = status_text(lamp_states(indicator), in_view, verdict, kiosk.stats.fps,
                               _columns())
            sys.stdout.write(f"\r\x1b[K{line}")
            sys.stdout.flush()
        elif last.get("id") != shown and last:
            shown = last.get("id")
            _say(f"verdict: {verdict} ({in_view})")
