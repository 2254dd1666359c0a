"""``appliance heartbeat``: tell the hub's fleet view this device is alive, and how it is.

``appliance upload`` sends a heartbeat after every upload; this command, on its own timer
(appliance-heartbeat.timer), covers the hours with nothing to upload. Exit 0 when the hub
stored it (or one was sent within ``--unless-sent-within``), 1 with one line otherwise
(clock not trusted, hub unreachable or refusing); every attempt is recorded in
``state_dir/heartbeat_state.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from appliance.commands.argtypes import non_negative_float


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "heartbeat",
        help="send a signed heartbeat to the hub's fleet view ([upload] url)",
        description="Send one signed heartbeat (software and trust-data versions, trust "
        "age, last sync result, audit backlog, camera, clock trusted, disk free, uptime, "
        "remote-policy state) to the hub at [upload] url. Sent only while the clock is "
        "trusted. Exit 0 when stored, 1 with a one-line reason otherwise.",
        epilog="example: appliance heartbeat --config /etc/appliance/appliance.toml "
        "--unless-sent-within 10",
    )
    p.add_argument(
        "--config", type=Path, required=True, metavar="FILE", help="device configuration"
    )
    p.add_argument(
        "--unless-sent-within",
        type=non_negative_float,
        default=0.0,
        metavar="MINUTES",
        help="do nothing when a heartbeat was sent this recently (an upload "
        "sends one too); default 0: always send",
    )
    p.set_defaults(func=run)


def device_heartbeat(config: Any, identity: Any, client: Any, audit: Any = None) -> Any:
    """The device's ``Heartbeat`` over ``client`` (a HubClient); ``audit``: an open log,
    else the backlog is read from the configured one when it exists."""
    from appliance.kiosk.camera_probe import camera_state
    from appliance_sync.heartbeat import Heartbeat, sources_from_config

    def backlog() -> int | None:
        if audit is not None:
            return int(audit.status()["pending_upload"])
        if not config.audit_db.exists():
            return 0
        from appliance.audit.log import from_config

        with from_config(config, create_key=False) as log:
            return int(log.status()["pending_upload"])

    def head() -> dict[str, Any] | None:
        """The log's head signed now (the hub keeps the highest it saw: truncation shows)."""
        import time

        if audit is not None:
            return dict(audit.signed_head(identity, time.time()).as_dict())
        if not config.audit_db.exists():
            return None
        from appliance.audit.log import from_config

        with from_config(config, create_key=False) as log:
            return dict(log.signed_head(identity, time.time()).as_dict())

    def camera() -> str:
        return camera_state(
            config.web.kiosk_socket,
            config.camera.source,
            timeout_s=min(10.0, config.web.kiosk_socket_timeout_s),
        )

    sources = sources_from_config(config, audit_backlog=backlog, camera=camera, audit_head=head)
    return Heartbeat(sources, identity, client.post_heartbeat)


def run(args: argparse.Namespace) -> int:
    import time

    from appliance.audit.identity import load_identity
    from appliance.config import load_config
    from appliance.core.errors import ConfigError
    from appliance.core.isotime import instant_or_none
    from appliance_sync.heartbeat import read_state
    from appliance_sync.upload import HubClient

    config = load_config(args.config)
    if not config.upload.url:
        raise ConfigError("no hub to send heartbeats to: set [upload] url in the configuration")
    if args.unless_sent_within > 0:
        sent = instant_or_none(read_state(config.paths.state_dir).get("last_sent"))
        if sent is not None and 0 <= time.time() - sent < args.unless_sent_within * 60:
            print(f"heartbeat not needed: one was sent {(time.time() - sent) / 60:.0f} min ago")
            return 0
    identity = load_identity(config)
    client = HubClient(config.upload.url, timeout_s=config.upload.timeout_s)
    fields = device_heartbeat(config, identity, client).send()
    print(
        f"heartbeat stored by the hub (trust version {fields['trust_version']}, "
        f"audit backlog {fields['audit_backlog']}, camera {fields['camera']})"
    )
    return 0
