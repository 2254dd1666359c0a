"""``appliance mdl-radio``: the mDL radio service, the one process with the controller.

The kiosk keeps the mDL session (keys, verdict, audit, screens) and, with
``mdoc.radio_socket`` set, loads no Bluetooth code: this process serves ``mdoc.transport``
on that Unix socket (``devices.radio_service``), so only it needs CAP_NET_ADMIN and
AF_BLUETOOTH (systemd/appliance-mdl-radio.service). Under systemd it sends READY=1 once the
socket listens and pets the watchdog from its event loop (half ``$WATCHDOG_USEC``); SIGTERM
or SIGINT ends a running session (State 0x02, disconnect), removes the socket and exits 0.

Exit 64 when there is nothing to serve: ``radio_socket`` empty, ``transport`` "none",
unknown, ``bumble:local`` (in-process only) or the Bluetooth stack not installed. A board
whose controller is missing still starts: every session then answers "unavailable", which
the kiosk shows as mDL off (UNVERIFIABLE MDOC_NO_SUPPORTED_TRANSPORT).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "mdl-radio",
        help="serve the Bluetooth controller to the kiosk's mDL sessions (radio service)",
        description="Serve mdoc.transport (the Bluetooth controller) on the Unix socket "
        "mdoc.radio_socket: the kiosk moves whole mDL messages through it and loads no "
        "Bluetooth code. One session at a time. READY=1 and watchdog pings under systemd; "
        "SIGTERM ends a running session and exits 0. Exit 64 when radio_socket is empty or "
        "transport is none or unknown.",
        epilog="example: appliance mdl-radio --config /etc/appliance/appliance.toml "
        "(systemd: appliance-mdl-radio.service)",
    )
    p.add_argument(
        "--config", type=Path, required=True, metavar="FILE", help="device configuration (TOML)"
    )
    p.set_defaults(func=run)


def check(mdoc: Any) -> None:
    """``ConfigError`` (exit 64) when this configuration gives the radio nothing to serve."""
    from appliance.core.errors import ConfigError
    from appliance.devices.mdoc_transport import mdl_available

    if not mdoc.radio_socket:
        raise ConfigError("mdoc.radio_socket is empty: there is no socket to serve")
    why_not = mdl_available(mdoc.transport)
    if why_not is not None:
        raise ConfigError(why_not)
    if mdoc.transport == "bumble:local":
        raise ConfigError("mdoc.transport bumble:local is in-process only (tests, demo)")


def run(args: argparse.Namespace) -> int:
    from appliance.config import load_config

    config = load_config(args.config)
    check(config.mdoc)
    return asyncio.run(serve(config.mdoc))


async def serve(
    mdoc: Any,
    *,
    radio: Any = None,
    env: Mapping[str, str] | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT (or ``stop``, for tests); ``radio``: a ``LocalRadio``."""
    from appliance.devices.mdoc_transport import Deadlines, open_controller
    from appliance.devices.radio_service import RadioService
    from appliance.platform.systemd_notify import Watchdog, sd_notify

    deadlines = Deadlines.from_config(mdoc)
    service = RadioService(
        lambda: open_controller(mdoc.transport, deadlines, radio=radio),
        deadlines,
        mdoc.max_response_bytes,
    )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
    watchdog = Watchdog(env)
    pets: asyncio.Task[None] | None = None
    try:
        await service.listen(Path(mdoc.radio_socket))
        sd_notify("READY=1", env)
        log.info("mDL radio serving %s on %s", mdoc.transport, mdoc.radio_socket)
        if watchdog.interval_s is not None:
            pets = asyncio.ensure_future(_pet(watchdog))
        await stop.wait()
        log.info("stopping")
        sd_notify("STOPPING=1", env)
    finally:
        if pets is not None:
            pets.cancel()
        await service.close()
        for signum in handled:
            loop.remove_signal_handler(signum)
    return 0


async def _pet(watchdog: Any) -> None:
    """WATCHDOG=1 every half interval, from the event loop the sessions run on: a loop
    stuck in a session stops the pings and systemd restarts the radio."""
    while True:
        watchdog.ping()
        await asyncio.sleep(watchdog.interval_s)
