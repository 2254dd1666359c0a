"""appliance upload: send the audit log to the hub, once or periodically."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "upload",
        help="upload audit records to the hub ([upload] url)",
        description="Upload audit records not yet uploaded to the hub in signed batches; "
        "records are marked uploaded only once the hub acknowledged them. Without --once, "
        "runs every [upload] interval_minutes, backing off after failures.",
        epilog="example: appliance upload --config /etc/appliance/appliance.toml --once",
    )
    p.add_argument(
        "--config", type=Path, required=True, metavar="FILE", help="device configuration"
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="upload what is pending (a few retries with backoff), then exit",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from appliance.audit.identity import ensure_identity
    from appliance.audit.log import from_config
    from appliance.commands.heartbeat import device_heartbeat
    from appliance.config import load_config
    from appliance.core.errors import ConfigError
    from appliance_sync.upload import HubClient, Uploader

    config = load_config(args.config)
    if not config.upload.url:
        raise ConfigError("no hub to upload to: set [upload] url in the configuration")
    if config.upload.hub_key is None:
        raise ConfigError(
            "no hub key pinned: set [upload] hub_key to the hub's public key "
            "('appliance hub keygen' writes it)"
        )
    from appliance.audit.head import load_hub_public
    from appliance.core.errors import HubKeyError

    try:  # read here, so a wrong path is a configuration error, not an upload failure
        load_hub_public(config.upload.hub_key)
    except HubKeyError as e:
        raise ConfigError(str(e)) from e
    identity, _ = ensure_identity(config)
    client = HubClient(config.upload.url, timeout_s=config.upload.timeout_s)
    with from_config(config) as audit:
        beat = device_heartbeat(config, identity, client, audit)  # after every upload
        uploader = Uploader(
            audit,
            identity,
            client,
            batch_size=config.upload.batch_size,
            heartbeat=beat.send_quietly,
        )
        if args.once:
            report = uploader.upload_pending(max_attempts=5)
            audit.prune(__import__("time").time())
            print(
                f"uploaded {report.records} records in {report.batches} batches"
                + (f" ({report.duplicates} already held by the hub)" if report.duplicates else "")
            )
            return 0
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        interval = config.upload.interval_minutes * 60
        logging.getLogger(__name__).info(
            "uploading to %s every %.0f s", config.upload.url, interval
        )
        uploader.run_forever(interval, min(60.0, interval / 10), stop)
    return 0
