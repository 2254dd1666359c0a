"""``appliance selftest``: hardware acceptance of a new device, in one command.

An administrator (or Ansible, after provisioning) runs it once the device is set up; run
it with the kiosk stopped (``systemctl stop appliance-kiosk``): the camera and the pins
are the kiosk's. Each check gives pass, warn or fail with one line of detail: camera
present and frames arriving, the shipped test card (firmware/selftest-card.pdf) decoded
and verified against its own one-key trust source, every LED, the buzzer and the relay
driven, the clock (NTP, trusted-time floor), the trust data's freshness, an audit write
and chain check, hub and repository reachability, the Bluetooth controller of the mDL
reader (present, absent or mDL off) and its radio service (answering on its socket),
disk and memory headroom.

Exit 0 all pass, 1 any fail, 2 warnings only. No QR text, name or licence number is
printed or logged (the card's verdict is shown as its outcome and reason only).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PASS, WARN, FAIL = "pass", "warn", "fail"
EXIT = {PASS: 0, FAIL: 1, WARN: 2}
DEFAULT_CARD = Path(__file__).resolve().parents[2] / "firmware" / "selftest-card.json"


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


# A check: a status and one line of detail (selftest_hardware, selftest_services).
Check = Callable[[Context], tuple[str, str]]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "selftest",
        help="hardware acceptance of a new device: camera, test card, LEDs, "
        "clock, trust, audit, network, Bluetooth and the mDL radio, headroom",
        description=__doc__.split("\n\n")[1].replace("\n", " ").replace("``", "")
        + " Exit status: 0 every check passed, 1 any check failed, 2 warnings only.",
        epilog="example: appliance selftest --config /etc/appliance/appliance.toml --json",
    )
    p.add_argument(
        "--config", type=Path, required=True, metavar="FILE", help="device configuration (TOML)"
    )
    p.add_argument(
        "--operator",
        action="store_true",
        help="ask the operator at each LED, the buzzer and the relay whether it "
        "worked (default: drive the pins and report, no prompt)",
    )
    p.add_argument(
        "--card",
        type=Path,
        default=DEFAULT_CARD,
        metavar="FILE",
        help="the test card's selftest-card.json (default: the shipped one)",
    )
    p.add_argument(
        "--camera-seconds",
        type=float,
        default=10.0,
        metavar="S",
        help="how long to look for frames and the test card (default 10)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="network timeout for the hub and the repository (default 5)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from appliance.config import load_config

    ctx = Context(
        load_config(args.config),
        args.card,
        args.operator,
        args.camera_seconds,
        args.timeout,
        facts={},
    )
    results = run_checks(ctx)
    status = overall(results)
    if args.json:
        print(
            json.dumps(
                {
                    "device": ctx.config.device.id,
                    "status": status,
                    "time": ctx.wall(),
                    "checks": [asdict(r) for r in results],
                },
                indent=1,
            )
        )
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
    for name, check in checks():
        try:
            results.append(Result(name, *check(ctx)))
        except Exception as e:  # a broken check is a failed check, never a traceback
            log.debug("check %s raised", name, exc_info=True)
            results.append(Result(name, FAIL, f"{type(e).__name__}: {e}"))
    return results


def checks() -> tuple[tuple[str, Check], ...]:
    """The checks in the order they run; their modules load only when the command runs."""
    from appliance.commands.selftest_hardware import (
        check_bluetooth,
        check_camera,
        check_card,
        check_headroom,
        check_indicator,
    )
    from appliance.commands.selftest_services import (
        check_audit,
        check_clock,
        check_hub,
        check_mdl_radio,
        check_repository,
        check_trust,
    )

    return (
        ("camera", check_camera),
        ("test card", check_card),
        ("indicator", check_indicator),
        ("trust data", check_trust),
        ("clock", check_clock),
        ("audit", check_audit),
        ("repository", check_repository),
        ("hub", check_hub),
        ("bluetooth", check_bluetooth),
        ("mdl radio", check_mdl_radio),
        ("headroom", check_headroom),
    )
