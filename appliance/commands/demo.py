"""appliance demo: the kiosk on this machine (see appliance.tools.demo)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
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
            v = service.verify(text, source="demo")
            rows.append((sample.label, f"{v.outcome} {v.reason}", sample.expected))
        print(table(rows), flush=True)
        mismatches = [r for r in rows if r[1] != r[2]]
        if mismatches:
            print(f"\n{len(mismatches)} sample(s) did not give the expected verdict",
                  file=sys.stderr)
        return _run_kiosk(args, config, service, audit, samples, root)
    finally:
        server.shutdown()


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
    from appliance_sync.publisher import init_repository, load_source, update_repository

    repo, keys, pin = root / "repo", root / "tuf-keys", root / "root.json"
    if not (repo / "metadata").is_dir() or not any((repo / "metadata").iterdir()):
        init_repository(repo, keys, pin)
    version = update_repository(repo, keys, load_source(world.trust_source), expires_hours=72)
    ensure_secrets(root)
    config = load_config(write_config(root, url, web_port))
    result = client_from_config(config).sync_once()
    print(f"published trust data version {version}; {result.describe()}", flush=True)
    return config


def _service(config: Any) -> tuple[Any, Any]:
    from appliance.audit.log import open_audit_log
    from appliance.kiosk.compose import build_service

    audit = open_audit_log(config)
    return build_service(config, audit=audit), audit


def _run_kiosk(args: argparse.Namespace, config: Any, service: Any, audit: Any,
               samples: list, root: Path) -> int:
    from appliance.devices.indicator import open_indicator
    from appliance.devices.scanner import FrameScanner, PresenceGate, make_decoder
    from appliance.kiosk.events import EventBus
    from appliance.kiosk.loop import Kiosk, latency_percentiles
    from appliance.tools.demo import DemoCamera

    bus = EventBus()
    indicator = open_indicator(config.indicator)
    camera = DemoCamera(samples)
    kiosk = Kiosk(camera, FrameScanner(make_decoder(config.scanner.backend, live=True),
                                       PresenceGate()),
                  service, indicator, bus, show_holder=True,
                  repeat_after_absent_s=config.scanner.repeat_after_absent_s)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if sys.stdout.isatty():  # the live status line shows the verdicts; keep it readable
        logging.getLogger().setLevel(logging.WARNING)
    web = None if args.no_web else _start_web(config, service, bus, kiosk, audit)
    status = threading.Thread(target=_status_line, args=(stop, kiosk, indicator, camera, bus),
                              daemon=True, name="demo-status")
    status.start()
    if args.duration is not None:
        threading.Timer(args.duration, stop.set).start()
    print(f"\nkiosk running{'' if web is None else f'; web screen on {web}'} "
          "(Ctrl-C to stop)", flush=True)
    try:
        kiosk.run(stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        indicator.close()
    p = latency_percentiles(kiosk.stats.latencies_s)
    print(f"\n{kiosk.stats.verdicts} verdicts from {kiosk.stats.frames} frames; "
          f"scan-to-LED p50 {p.get('p50_ms', 0):.1f} ms, p99 {p.get('p99_ms', 0):.1f} ms; "
          f"audit log {root / 'state' / 'audit.db'}", flush=True)
    return 0


def _start_web(config: Any, service: Any, bus: Any, kiosk: Any, audit: Any) -> str | None:
    """The screens in this process, reading the kiosk through the in-process port."""
    from werkzeug.serving import make_server

    from appliance.kiosk.compose import build_port
    from appliance_web import create_app

    port = build_port(
        config, service, bus, camera="demo (simulated)", show_holder=True,
        providers=_providers(config, kiosk, audit),
        export=lambda since, until: _export(audit, since),
        sync=lambda: _sync_now(config),
    )
    app = create_app(port, config)
    try:
        server = make_server(config.web.host, config.web.port, app, threaded=True)
    except OSError as e:
        print(f"web screen not started: {config.web.host}:{config.web.port}: {e.strerror}",
              file=sys.stderr)
        return None
    threading.Thread(target=server.serve_forever, daemon=True, name="demo-web").start()
    return f"http://{config.web.host}:{server.server_port}/"


def _sync_now(config: Any) -> str:
    """The demo is one process with loopback network: sync right here."""
    from appliance_sync.client import client_from_config

    return client_from_config(config).sync_once().describe()


def _export(audit: Any, since: float | None) -> bytes:
    import io

    buf = io.StringIO()
    audit.export(buf, since=since, fmt="jsonl")
    return buf.getvalue().encode()


def _providers(config: Any, kiosk: Any, audit: Any) -> dict[str, Any]:
    try:
        from appliance.kiosk.status import device_providers
    except ImportError:
        def camera() -> dict[str, Any]:
            return {"fps": round(kiosk.stats.fps, 1), "frames": kiosk.stats.frames}

        return {"camera": camera}
    providers = device_providers(config, kiosk=kiosk, audit=audit)
    live_camera = providers.get("camera")
    if live_camera is not None:
        providers["camera"] = lambda: {**live_camera(), "source": "demo (simulated camera)"}
    return providers


_LAMP = {True: "\x1b[1m●\x1b[0m", False: "○"}


def _status_line(stop: threading.Event, kiosk: Any, indicator: Any, camera: Any,
                 bus: Any) -> None:
    """LEDs and the last verdict on one live terminal line (a line per verdict if no TTY)."""
    from appliance.devices.indicator import lamp_states

    last: dict[str, Any] = {}
    bus.listen(lambda e: last.update(e) if e.get("type") == "verdict" else None)
    tty = sys.stdout.isatty()
    shown = None
    colours = {"green": "\x1b[32m", "amber": "\x1b[33m", "red": "\x1b[31m"}
    while not stop.wait(0.1):
        lamps = lamp_states(indicator)
        verdict = f"{last.get('outcome', '-')} {last.get('reason', '')}".strip()
        in_view = camera.current.label if camera.current else "nothing in view"
        if tty:
            leds = " ".join(f"{colours[n]}{_LAMP[on]}\x1b[0m {n}" for n, on in lamps.items())
            line = (f"\r\x1b[K[{leds}]  camera: {in_view:<34} last verdict: {verdict:<34} "
                    f"{kiosk.stats.fps:4.1f} fps")
            sys.stdout.write(line)
            sys.stdout.flush()
        elif last.get("id") != shown and last:
            shown = last.get("id")
            print(f"verdict: {verdict} ({in_view})", flush=True)
