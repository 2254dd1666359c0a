"""appliance sync: fetch, verify and install the newest signed trust data.

Exit 0 when the device holds the newest valid data (updated or unchanged); otherwise
exit 1 with one line saying why, and the last good data stays installed. Without
--once it runs every ``[sync] interval_minutes`` plus up to ``jitter_s`` seconds.

A configuration that cannot sync (no ``[sync] url`` or ``root``) exits 64: trying again
cannot help, so the unit stops (``RestartPreventExitStatus=64``), and the reason is
recorded in ``sync_state.json`` for the status page and the heartbeat (issue 24).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sync",
        help="fetch and install signed trust data (TUF)",
        description="Fetch, verify and atomically install the newest trust data from "
        "[sync] url, trusting only the pinned root [sync] root. Exit 0 when the device "
        "holds the newest valid data, 1 with a one-line reason otherwise, 64 when the "
        "configuration cannot sync (no [sync] url or root).",
        epilog="example: appliance sync --config /etc/appliance/appliance.toml --once",
    )
    p.add_argument(
        "--config", type=Path, required=True, metavar="FILE", help="device configuration (TOML)"
    )
    p.add_argument(
        "--once", action="store_true", help="sync once and exit (default: run periodically)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from appliance.config import load_config, not_configured
    from appliance.core.errors import ConfigError
    from appliance_sync.client import client_from_config
    from appliance_sync.schedule import run_periodic

    config = load_config(args.config)
    problem = not_configured(config).get("sync")
    if problem:
        record_config_error(config.paths.state_dir, problem)
        raise ConfigError(problem)
    client = client_from_config(config)
    if args.once:
        print(client.sync_once().describe())
        return 0
    run_periodic(client.sync_once, config.sync.interval_minutes * 60, config.sync.jitter_s)
    return 0  # pragma: no cover - runs until stopped


def record_config_error(state_dir: Path, problem: str, wall: float | None = None) -> None:
    """Note the attempt and its configuration fault in the sync state: ``config_error_at``
    equal to ``last_attempt`` marks it (a later attempt of any kind replaces both)."""
    from appliance.core.isotime import format_utc
    from appliance.trust.sync_state import read_sync_state, write_sync_state

    state = read_sync_state(state_dir)
    at = format_utc(time.time() if wall is None else wall)
    state.update(last_attempt=at, last_error=problem, last_error_at=at, config_error_at=at)
    try:
        write_sync_state(state_dir, state)
    except OSError as e:
        log.warning("sync state not recorded: %s", e.strerror or e)
