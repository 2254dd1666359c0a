"""appliance demo: the kiosk on this machine (see appliance.tools.demo).

Set-up (trust data published and synced over loopback, sample verdicts) and the kiosk's
run are here; the terminal's output is ``demo_terminal``'s and the web screen
``demo_web``'s, both loaded only when the demo runs.
"""

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
        "demo",
        help="run a whole demo checkpoint on this machine (make demo)",
        description="Generate demo keys and trust data (first run), publish and sync them "
        "over loopback, print sample verdicts, then run the kiosk with a simulated camera, "
        "simulated LEDs on a terminal line and the web screen.",
        epilog="example: appliance demo --dir demo/ --port 8080 (Ctrl-C stops it)",
    )
    p.add_argument("--dir", type=Path, default=Path("demo"), help="demo workspace (default demo/)")
    p.add_argument("--port", type=port, default=8080, help="web screen port on 127.0.0.1")
    p.add_argument("--duration", type=non_negative_float, help="stop after this many seconds")
    p.add_argument("--no-web", action="store_true", help="do not start the web screen")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from appliance.commands.demo_terminal import columns, fit_logging
    from appliance.tools.demo import prepare_world, table

    root: Path = args.dir.resolve()
    if root.exists() and not root.is_dir():
        raise UsageError(f"--dir {args.dir} is not a directory")
    fit_logging(columns())
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
            print(
                f"\n{len(mismatches)} sample(s) did not give the expected verdict", file=sys.stderr
            )
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


def _serve_repository(root: Path) -> tuple[Any, str]:
    """Serve the signed repository as plain static files on loopback, as a CDN would."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    repo = root / "repo"
    repo.mkdir(parents=True, exist_ok=True)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(repo)))
    threading.Thread(target=server.serve_forever, daemon=True, name="demo-repo").start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def _publish_and_sync(root: Path, world: Any, url: str, web_port: int) -> Any:
    from appliance.commands.demo_terminal import say
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
    say(f"published trust data version {version}; {result.describe()}")
    return config


def _service(config: Any) -> tuple[Any, Any]:
    from appliance.audit.log import open_audit_log
    from appliance.kiosk.compose import build_service

    audit = open_audit_log(config)
    return build_service(config, audit, capped=True), audit  # the kiosk's service


def _run_kiosk(
    args: argparse.Namespace,
    config: Any,
    service: Any,
    audit: Any,
    samples: list,
    root: Path,
    stop: threading.Event,
    mdl: Any = None,
) -> int:
    from appliance.commands.demo_terminal import say, status_line
    from appliance.commands.demo_web import logins, start_web, stop_web
    from appliance.kiosk.compose import build_kiosk
    from appliance.kiosk.loop import latency_percentiles
    from appliance.tools.demo import DemoCamera

    camera = DemoCamera(samples)
    # The device's kiosk with the simulated camera, and the phone's mDL sessions on the
    # emulated link (none without the Bluetooth stack).
    parts = build_kiosk(
        config,
        service,
        audit,
        source=camera,
        show_holder=True,
        mdoc_sessions=mdl is not None,
        mdoc_radio=None if mdl is None else mdl.link(),
    )
    kiosk, indicator, bus = parts.kiosk, parts.indicator, parts.bus
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    tty = sys.stdout.isatty()
    if tty:  # the live status line shows the verdicts; keep it readable
        logging.getLogger().setLevel(logging.WARNING)
    web = None if args.no_web else start_web(parts, stop)
    status = threading.Thread(
        target=status_line,
        args=(stop, kiosk, indicator, camera, bus, config.indicator.verdict_hold_s),
        daemon=True,
        name="demo-status",
    )
    timer = None
    if args.duration is not None:
        timer = threading.Timer(args.duration, stop.set)
        timer.daemon = True
    try:
        say(f"\nkiosk running{'' if web is None else f'; web screen on {web[0]}'} (Ctrl-C to stop)")
        if web is not None:
            say(logins(web[0]))
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
            stop_web(web[1], web[2])
        if status.is_alive():
            status.join(timeout=2)
        parts.close()  # a session in flight ends within its deadlines
        camera.close()
    if tty:
        print(flush=True)  # end the status line
    p = latency_percentiles(kiosk.stats.latencies_s)
    say(
        f"{kiosk.stats.verdicts} verdicts from {kiosk.stats.frames} frames; "
        f"scan-to-LED p50 {p.get('p50_ms', 0):.1f} ms, p99 {p.get('p99_ms', 0):.1f} ms\n"
        f"audit log: {root / 'state' / 'audit.db'}"
    )
    return 0
