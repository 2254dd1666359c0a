"""``appliance selftest``: hardware acceptance of a new device, in one command.

An administrator (or Ansible, after provisioning) runs it once the device is set up; run
it with the kiosk stopped (``systemctl stop appliance-kiosk``): the camera and the pins
are the kiosk's. Each check gives pass, warn or fail with one line of detail: camera
present and frames arriving, the shipped test card (firmware/selftest-card.pdf) decoded
and verified against its own one-key trust source, every LED, the buzzer and the relay
driven, the clock (NTP, trusted-time floor), the trust data's freshness, an audit write
and chain check, hub and repository reachability, the Bluetooth controller of the mDL
reader (present, absent or mDL off), disk and memory headroom.

Exit 0 all pass, 1 any fail, 2 warnings only. No QR text, name or licence number is
printed or logged (the card's verdict is shown as its outcome and reason only).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PASS, WARN, FAIL = "pass", "warn", "fail"
EXIT = {PASS: 0, FAIL: 1, WARN: 2}
DEFAULT_CARD = Path(__file__).resolve().parents[2] / "firmware" / "selftest-card.json"
MIN_FREE_DISK_MB = 256
MIN_AVAILABLE_MEMORY_MB = 200  # kiosk 64 + web 48 MiB budgets, and room for a sync (96)


@dataclass(frozen=True)
class Result:
    """One check's outcome: a value, never an exception."""

    name: str
    status: str
    detail: str


@dataclass
class Context:
    """What the checks use; every outside effect is passed in, so tests drive it here."""

    config: Any
    card: Path
    operator: bool
    camera_s: float
    timeout_s: float
    ask: Callable[[str], str] = input
    sleep: Callable[[float], None] = time.sleep
    wall: Callable[[], float] = time.time
    pin_factory: Any = None
    ntp: Callable[[], bool] | None = None  # default: the kernel's NTP flag
    facts: dict[str, Any] = None  # type: ignore[assignment]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "selftest", help="hardware acceptance of a new device: camera, test card, LEDs, "
        "clock, trust, audit, network, Bluetooth, headroom",
        description=__doc__.split("\n\n")[1].replace("\n", " ").replace("``", "")
        + " Exit status: 0 every check passed, 1 any check failed, 2 warnings only.",
        epilog="example: appliance selftest --config /etc/appliance/appliance.toml --json")
    p.add_argument("--config", type=Path, required=True, metavar="FILE",
                   help="device configuration (TOML)")
    p.add_argument("--operator", action="store_true",
                   help="ask the operator at each LED, the buzzer and the relay whether it "
                   "worked (default: drive the pins and report, no prompt)")
    p.add_argument("--card", type=Path, default=DEFAULT_CARD, metavar="FILE",
                   help="the test card's selftest-card.json (default: the shipped one)")
    p.add_argument("--camera-seconds", type=float, default=10.0, metavar="S",
                   help="how long to look for frames and the test card (default 10)")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S",
                   help="network timeout for the hub and the repository (default 5)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from appliance.config import load_config

    ctx = Context(load_config(args.config), args.card, args.operator, args.camera_seconds,
                  args.timeout, facts={})
    results = run_checks(ctx)
    status = overall(results)
    if args.json:
        print(json.dumps({"device": ctx.config.device.id, "status": status, "time": ctx.wall(),
                          "checks": [asdict(r) for r in results]}, indent=1))
    else:
        print(report(ctx.config.device.id, results, status))
    return EXIT[status]


def overall(results: list[Result]) -> str:
    statuses = {r.status for r in results}
    return FAIL if FAIL in statuses else WARN if WARN in statuses else PASS


def report(device: str, results: list[Result], status: str) -> str:
    """One screen: a line per check, then the summary."""
    width = max(len(r.name) for r in results)
    lines = [f"appliance selftest: device {device}"]
    lines += [f"  {r.status.upper():4}  {r.name:<{width}}  {r.detail}" for r in results]
    lines.append(f"result: {status.upper()} (exit {EXIT[status]})")
    return "\n".join(lines)


def run_checks(ctx: Context) -> list[Result]:
    results = []
    for name, check in CHECKS:
        try:
            results.append(Result(name, *check(ctx)))
        except Exception as e:  # a broken check is a failed check, never a traceback
            log.debug("check %s raised", name, exc_info=True)
            results.append(Result(name, FAIL, f"{type(e).__name__}: {e}"))
    return results


# -- camera and test card -----------------------------------------------------------------


def check_camera(ctx: Context) -> tuple[str, str]:
    from appliance.devices.camera import open_frame_source
    from appliance.devices.scanner import FrameScanner, make_decoder

    if ctx.config.camera.source == "none":
        ctx.facts["card"] = (WARN, "no camera configured (camera.source = none)")
        return WARN, "no camera configured (camera.source = none): scanner-only device"
    source = open_frame_source(ctx.config.camera)
    scanner = FrameScanner(make_decoder(ctx.config.scanner.backend, live=False))
    texts: set[str] = set()
    frames, started = 0, time.monotonic()
    source.open()
    try:
        while time.monotonic() - started < ctx.camera_s and not _card_seen(ctx, texts):
            frame = source.read(1.0)
            if frame is None:
                continue
            frames += 1
            if frames == 1:
                ctx.facts["frame_size"] = f"{frame.grey.shape[1]}x{frame.grey.shape[0]}"
            texts.update(scanner.scan(frame.grey))
    finally:
        source.close()
    elapsed = time.monotonic() - started
    ctx.facts["card_texts"] = texts
    if not frames:
        return FAIL, f"{ctx.config.camera.source}: no frame in {elapsed:.1f} s"
    return PASS, (f"{ctx.config.camera.source}: {frames} frames "
                  f"({ctx.facts['frame_size']}) in {elapsed:.1f} s")


def _card(ctx: Context) -> dict[str, Any]:
    if "card_doc" not in ctx.facts:
        ctx.facts["card_doc"] = json.loads(ctx.card.read_text())
    return ctx.facts["card_doc"]


def _card_seen(ctx: Context, texts: set[str]) -> bool:
    try:
        return _card(ctx)["text"] in texts
    except (OSError, ValueError, KeyError):
        return False


def check_card(ctx: Context) -> tuple[str, str]:
    from appliance.core.verifier import Checkpoint, verify
    from appliance.trust.source import snapshot_from_document

    if "card" in ctx.facts:
        return ctx.facts["card"]
    if ctx.operator and "card_texts" not in ctx.facts:
        ctx.ask("Hold the printed test card 15-30 cm in front of the camera, then press Enter")
    try:
        card = _card(ctx)
    except (OSError, ValueError) as e:
        return FAIL, f"test card file {ctx.card} unreadable: {e}"
    texts = ctx.facts.get("card_texts", set())
    if card["text"] not in texts:
        other = f"; {len(texts)} other code(s) decoded" if texts else ""
        return WARN, f"test card not seen in {ctx.camera_s:.0f} s{other} (focus, exposure?)"
    verdict = verify(card["text"], snapshot_from_document(card["trust"]), ctx.wall(),
                     checkpoint=Checkpoint(check_staleness=False))
    status = PASS if verdict.outcome.name == "PASS" else FAIL
    return status, f"test card decoded and verified: {verdict.outcome.name} {verdict.reason.name}"


# -- indicator ----------------------------------------------------------------------------


def check_indicator(ctx: Context) -> tuple[str, str]:
    cfg = ctx.config.indicator
    if cfg.backend == "none":
        return WARN, "no indicator configured (indicator.backend = none)"
    factory = ctx.pin_factory
    if factory is None and cfg.backend == "mock":
        from gpiozero.pins.mock import MockFactory

        factory = MockFactory()
    from gpiozero import DigitalOutputDevice

    outputs = {"green LED": cfg.green_pin, "red LED": cfg.red_pin, "amber LED": cfg.amber_pin,
               "buzzer": cfg.buzzer_pin, "relay": cfg.relay_pin}
    driven: list[str] = []
    failed: list[str] = []
    for name, pin in outputs.items():
        if pin is None:
            continue
        device = DigitalOutputDevice(pin, active_high=cfg.active_high, pin_factory=factory)
        try:
            device.on()
            ok = device.value == 1 and device.pin.state == (1 if cfg.active_high else 0)
            if ctx.operator:
                ok = ctx.ask(f"Is the {name} (GPIO {pin}) on? [y/n] ").strip().lower() \
                    .startswith("y")
            else:
                ctx.sleep(0.5)
            device.off()
            ok = ok and device.value == 0
        finally:
            device.close()
        (driven if ok else failed).append(f"{name} {pin}")
    if failed:
        return FAIL, f"not working: {', '.join(failed)}"
    how = "confirmed by the operator" if ctx.operator else "driven (not observed)"
    return PASS, f"{', '.join(driven)}: {how}"


# -- clock, trust, audit --------------------------------------------------------------------


def check_clock(ctx: Context) -> tuple[str, str]:
    from appliance.trust.clock import (
        FileTimeFloor,
        is_trusted,
        system_clock_synchronised,
        time_floor,
    )

    last_sync = FileTimeFloor(ctx.config.paths.state_dir / "clock.json").last_synchronised()
    published = ctx.facts.get("published_at")
    now = ctx.wall()
    floor = time_floor(last_sync, published)
    ntp = (ctx.ntp or system_clock_synchronised)()
    if not is_trusted(now, floor):
        return FAIL, "the clock is behind the trusted-time floor: verdicts are withheld"
    if not ntp:
        return WARN, "clock not NTP-synchronised (above the trusted floor)"
    return PASS, "NTP-synchronised, above the trusted-time floor"


def check_trust(ctx: Context) -> tuple[str, str]:
    from appliance.core.errors import TrustDataError
    from appliance.trust.store import load_trust_store

    try:
        snap = load_trust_store(ctx.config.trust_dir, ctx.config.sync.root)
    except TrustDataError as e:
        return FAIL, str(e)
    ctx.facts["published_at"] = snap.published_at
    if snap.published_at is None:  # installed data always has it; an authoring file has not
        return FAIL, f"version {snap.version} has no publication time"
    age_h = (ctx.wall() - snap.published_at) / 3600
    limit = snap.policy.max_age_hours
    if age_h > limit:
        return FAIL, f"version {snap.version} is {age_h:.0f} h old (limit {limit:.0f} h): stale"
    if age_h > limit / 2:
        return WARN, f"version {snap.version} is {age_h:.0f} h old (limit {limit:.0f} h)"
    return PASS, f"version {snap.version}, {age_h:.1f} h old (limit {limit:.0f} h)"


def check_audit(ctx: Context) -> tuple[str, str]:
    """A scratch log on the audit log's own disk: written durably and its chain verified;
    the device's log itself is only read (``appliance audit verify``), never written."""
    from appliance.audit.log import open_audit_log

    state = ctx.config.paths.state_dir
    with tempfile.TemporaryDirectory(prefix=".selftest-", dir=state) as tmp:
        paths = replace(ctx.config.paths, state_dir=Path(tmp), secrets_dir=Path(tmp) / "s")
        scratch = open_audit_log(replace(ctx.config, paths=paths))
        try:
            start = time.monotonic()
            for i in range(3):
                scratch.append({"verdict": "PASS", "reason": "OK", "source": "selftest"},
                               now=ctx.wall() + i)
            write_ms = (time.monotonic() - start) / 3 * 1000
            chain = scratch.verify()
        finally:
            scratch.close()
    if not chain.ok:
        return FAIL, f"scratch audit chain does not verify: {chain}"
    return PASS, f"durable write {write_ms:.1f} ms per record on {state}, chain verified"


# -- network and headroom -----------------------------------------------------------------


def _reach(url: str, timeout_s: float) -> str | None:
    """None when the server answers HTTP at all (any status), else why not."""
    status, why = _probe(url, timeout_s)
    return why if status is None else None


def _probe(url: str, timeout_s: float) -> tuple[int | None, str | None]:
    """(HTTP status, None) when the server answers, else (None, why not)."""
    import urllib.error
    import urllib.request

    if not url.startswith(("http://", "https://")):
        return None, "not an http(s) URL"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:  # noqa: S310 - checked
            return int(answer.status), None
    except urllib.error.HTTPError as e:
        return int(e.code), None
    except (urllib.error.URLError, OSError, ValueError) as e:
        return None, str(getattr(e, "reason", e))


def check_repository(ctx: Context) -> tuple[str, str]:
    return _check_service(ctx, ctx.config.sync.url, "/metadata/timestamp.json",
                          "no repository configured ([sync] url)")


def check_hub(ctx: Context) -> tuple[str, str]:
    """The address uploads post to (``[upload] url`` + ``/v1/batches``), asked with GET:
    the hub answers 405 (POST only) there; 404 means the URL's path is not the hub's
    (``.../api/audit`` once stopped a whole fleet's uploads and heartbeats)."""
    from appliance_sync.upload import BATCH_PATH

    url = ctx.config.upload.url
    if not url:
        return WARN, "no hub configured ([upload] url)"
    endpoint = url.rstrip("/") + BATCH_PATH
    status, why = _probe(endpoint, ctx.timeout_s)
    if status is None:
        return FAIL, f"{url}: {why}"
    if status == 404:
        return FAIL, (f"{endpoint}: HTTP 404, no hub there: [upload] url must be the hub's "
                      "base address (https://hub.example.go.th/); the device adds "
                      f"{BATCH_PATH} itself")
    if status >= 500:
        return FAIL, f"{endpoint}: HTTP {status} (hub or its proxy failing)"
    return PASS, f"{url} answers at {BATCH_PATH} (HTTP {status} to GET)"


def _check_service(ctx: Context, url: str | None, path: str,
                   unconfigured: str) -> tuple[str, str]:
    """A warning where nothing is configured; else whether ``url + path`` answers."""
    if not url:
        return WARN, unconfigured
    why = _reach(url.rstrip("/") + path, ctx.timeout_s)
    return (FAIL, f"{url}: {why}") if why else (PASS, f"{url} answers")


def check_headroom(ctx: Context) -> tuple[str, str]:
    state = ctx.config.paths.state_dir
    free_mb = shutil.disk_usage(state).free / 2**20
    available_mb = _meminfo_mb("MemAvailable")
    detail = f"disk {free_mb:,.0f} MiB free on {state}; memory {available_mb:,.0f} MiB available"
    if free_mb < MIN_FREE_DISK_MB or available_mb < MIN_AVAILABLE_MEMORY_MB:
        return WARN, f"{detail} (want {MIN_FREE_DISK_MB} and {MIN_AVAILABLE_MEMORY_MB})"
    return PASS, detail


def check_bluetooth(ctx: Context) -> tuple[str, str]:
    """The mDL reader's controller (spec mdl-reader s.8): present, absent or mDL off. A
    board without one passes with mDL off when the configuration says so; configured on
    without a controller is a warning, never a failure: every other format works."""
    from appliance.devices.bluetooth import OFF_CONFIG, mdl_state

    state = mdl_state(ctx.config.mdoc.transport)
    if state.enabled:
        return PASS, f"mDL on: {state.detail}"
    if state.off == OFF_CONFIG:
        return PASS, f"mDL off: {state.detail}"
    return WARN, f"mDL off: {state.detail}"


def _meminfo_mb(key: str) -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


CHECKS: tuple[tuple[str, Callable[[Context], tuple[str, str]]], ...] = (
    ("camera", check_camera),
    ("test card", check_card),
    ("indicator", check_indicator),
    ("trust data", check_trust),
    ("clock", check_clock),
    ("audit", check_audit),
    ("repository", check_repository),
    ("hub", check_hub),
    ("bluetooth", check_bluetooth),
    ("headroom", check_headroom),
)
