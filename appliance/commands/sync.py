"""appliance sync: fetch, verify and install the newest signed trust data.

Exit 0 when the device holds the newest valid data (updated or unchanged); otherwise
exit 1 with one line saying why, and the last good data stays installed. Without
--once it runs every ``[sync] interval_minutes`` plus up to ``jitter_s`` seconds.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sync", help="fetch and install signed trust data (TUF)",
        description="Fetch, verify and atomically install the newest trust data from "
        "[sync] url, trusting only the pinned root [sync] root. Exit 0 when the device "
        "holds the newest valid data, 1 with a one-line reason otherwise.",
        epilog="example: appliance sync --config /etc/appliance/appliance.toml --once",
    )
    p.add_argument("--config", type=Path, required=True, metavar="FILE",
                   help="device configuration (TOML)")
    p.add_argument("--once", action="store_true",
                   help="sync once and exit (default: run periodically)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from appliance.config import load_config
    from appliance_sync.client import client_from_config
    from appliance_sync.schedule import run_periodic

    config = load_config(args.config)
    client = client_from_config(config)
    if args.once:
        print(client.sync_once().describe())
        return 0
    run_periodic(client.sync_once, config.sync.interval_minutes * 60, config.sync.jitter_s)
    return 0  # pragma: no cover - runs until stopped
