"""``appliance fault``: hold the red fault pattern while the kiosk is down.

systemd starts it (``appliance-fault.service``) when the kiosk unit has failed for good:
the kiosk's restart policy stops retrying instead of rebooting the Pi (a hostile sticker
in view would make a reboot loop), so the person at the checkpoint needs a sign that the
device is out of service. Steady red is the one pattern the kiosk never shows (a red
verdict lasts ``verdict_hold_s``; camera lost and audit failing blink). The status page
says the kiosk is not running. Starting the kiosk again stops this unit (Conflicts=).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fault",
        help="show the kiosk-down fault pattern (steady red) until stopped",
        description="Hold the indicator's red lamp steady (and every other lamp off) until "
        "SIGTERM: the out-of-service sign while the kiosk unit has failed.",
        epilog="example: appliance fault --config /etc/appliance/appliance.toml "
        "(run by appliance-fault.service)",
    )
    p.add_argument(
        "--config", type=Path, required=True, metavar="FILE", help="device configuration (TOML)"
    )
    p.set_defaults(func=run)


def show_fault(indicator: Any) -> None:
    """Steady red, nothing else lit: the indicator's kiosk-down state, which its driver
    keeps (lamps set from outside would be overwritten at the next pattern change)."""
    from appliance.devices.indicator import DeviceState

    indicator.set_state(DeviceState.KIOSK_DOWN)


def hold(indicator: Any, stop: threading.Event) -> None:
    """Show the pattern until ``stop`` is set, then release the pins."""
    try:
        show_fault(indicator)
        log.warning("kiosk is down: showing the fault pattern")
        stop.wait()
    finally:
        indicator.close()


def run(args: argparse.Namespace) -> int:
    from appliance.config import load_config
    from appliance.devices.indicator import open_indicator

    config = load_config(args.config)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    hold(open_indicator(config.indicator), stop)
    return 0
