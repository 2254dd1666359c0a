"""``appliance hub serve|enrol|keygen``: the central audit hub that devices upload to."""

from __future__ import annotations

import argparse
from pathlib import Path

from appliance.commands.argtypes import port
from appliance.core.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "hub",
        help="run the audit hub or enrol a device's key",
        description="The audit hub: receives signed batches from devices, keeps each record "
        "once, reports gaps and forks, and serves auditors behind a token.",
        epilog="example: appliance hub enrol --devices /var/lib/hub/devices kiosk-01 kiosk-01.pem",
    )
    sub = p.add_subparsers(dest="hub_command", metavar="ACTION", parser_class=type(p))
    sub.required = True
    sv = sub.add_parser(
        "serve",
        help="serve the hub over HTTP(S)",
        epilog="example: appliance hub serve --db hub.db --devices devices/ "
        "--auditor-token-file token.txt --port 8443",
    )
    sv.add_argument(
        "--db",
        required=True,
        metavar="PATH|DSN",
        help="SQLite file, or postgresql://... for fleets",
    )
    sv.add_argument(
        "--devices",
        type=Path,
        required=True,
        metavar="DIR",
        help="enrolled device public keys (DEVICE_ID.pem)",
    )
    sv.add_argument(
        "--auditor-token-file",
        type=Path,
        metavar="FILE",
        help="file holding the bearer token for /v1/records and /v1/integrity",
    )
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sv.add_argument("--port", type=port, default=8443, help="TCP port (default 8443)")
    sv.add_argument(
        "--tls-cert",
        type=Path,
        metavar="FILE",
        help="serve HTTPS with this certificate (else plain HTTP, for a TLS-terminating proxy)",
    )
    sv.add_argument("--tls-key", type=Path, metavar="FILE", help="private key of --tls-cert")
    sv.add_argument(
        "--ack-key",
        type=Path,
        metavar="FILE",
        help="the hub's signing key ('appliance hub keygen'): signs every "
        "acknowledgement; devices pin its .pub as [upload] hub_key and mark "
        "nothing uploaded without it",
    )
    sv.set_defaults(func=run)
    kg = sub.add_parser(
        "keygen",
        help="make the hub's signing key (devices pin its .pub)",
        epilog="example: appliance hub keygen --out hub-key.pem",
    )
    kg.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="FILE",
        help="private key (0600, never overwritten); the public key goes to FILE.pub",
    )
    kg.set_defaults(func=run)
    en = sub.add_parser(
        "enrol",
        help="enrol a device public key (from 'appliance device keygen')",
        epilog="example: appliance device keygen --config appliance.toml | "
        "appliance hub enrol --devices devices/ kiosk-01 -",
    )
    en.add_argument(
        "--devices",
        type=Path,
        required=True,
        metavar="DIR",
        help="enrolled device public keys (created if absent)",
    )
    en.add_argument("device_id", metavar="DEVICE_ID", help="the device's [device] id")
    en.add_argument("public_key", type=Path, metavar="PEM_FILE", help="'-' reads stdin")
    en.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from appliance_hub.server import DeviceRegistry, create_app, serve
    from appliance_hub.store import HubStore

    if args.hub_command == "keygen":
        from appliance.audit.head import HubSigner

        signer = HubSigner.generate(args.out)
        print(f"hub key {args.out} (key id {signer.public.key_id}); devices pin {args.out}.pub")
        return 0
    if args.hub_command == "enrol":
        import sys

        from appliance.core.errors import DeviceKeyError

        pem = sys.stdin.read() if str(args.public_key) == "-" else _read(args.public_key)
        try:
            key = DeviceRegistry(args.devices).enrol(args.device_id, pem)
        except DeviceKeyError as e:  # the file given is not a key: usage, not a hub fault
            raise UsageError(str(e)) from e
        print(f"enrolled {args.device_id} (key id {key.key_id})")
        return 0
    if not args.devices.is_dir():
        raise UsageError(f"--devices {args.devices} is not a directory: enrol a device first")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("give both --tls-cert and --tls-key, or neither")
    token = _read(args.auditor_token_file).strip() if args.auditor_token_file else None
    if args.auditor_token_file and not token:
        raise UsageError(f"{args.auditor_token_file} is empty")
    ack_key = None
    if args.ack_key is not None:
        from appliance.audit.head import HubSigner
        from appliance.core.errors import HubKeyError

        try:
            ack_key = HubSigner.load(args.ack_key)
        except HubKeyError as e:
            raise UsageError(str(e)) from e
    else:
        import logging

        logging.getLogger(__name__).warning(
            "no --ack-key: acknowledgements are unsigned and devices mark nothing uploaded"
        )
    app = create_app(HubStore(args.db), args.devices, token, ack_key=ack_key)
    tls = (str(args.tls_cert), str(args.tls_key)) if args.tls_cert else None
    serve(app, args.host, args.port, ssl_context=tls)
    return 0


def _read(path: Path) -> str:
    """A small text file named on the command line; unreadable or binary is usage (64)."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise UsageError(f"{path} is not a text file (a PEM key or token)") from e
