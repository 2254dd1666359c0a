"""``appliance hub serve|enrol``: the central audit hub that devices upload to."""

from __future__ import annotations

import argparse
from pathlib import Path

from appliance.core.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "hub", help="run the audit hub or enrol a device's key",
        description="The audit hub: receives signed batches from devices, keeps each record "
        "once, reports gaps and forks, and serves auditors behind a token.",
    )
    sub = p.add_subparsers(dest="hub_command", metavar="ACTION", parser_class=type(p))
    sub.required = True
    sv = sub.add_parser("serve", help="serve the hub over HTTP(S)")
    sv.add_argument("--db", required=True, metavar="PATH|DSN",
                    help="SQLite file, or postgresql://... for fleets")
    sv.add_argument("--devices", type=Path, required=True, metavar="DIR",
                    help="enrolled device public keys (DEVICE_ID.pem)")
    sv.add_argument("--auditor-token-file", type=Path, metavar="FILE",
                    help="file holding the bearer token for /v1/records and /v1/integrity")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8443)
    sv.add_argument("--tls-cert", type=Path, metavar="FILE", help="serve HTTPS with this "
                    "certificate (else plain HTTP, for a TLS-terminating proxy)")
    sv.add_argument("--tls-key", type=Path, metavar="FILE")
    sv.set_defaults(func=run)
    en = sub.add_parser("enrol", help="enrol a device public key (from 'appliance device keygen')")
    en.add_argument("--devices", type=Path, required=True, metavar="DIR")
    en.add_argument("device_id", metavar="DEVICE_ID")
    en.add_argument("public_key", type=Path, metavar="PEM_FILE", help="'-' reads stdin")
    en.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from appliance_hub.server import DeviceRegistry, create_app, serve
    from appliance_hub.store import HubStore

    if args.hub_command == "enrol":
        import sys

        pem = sys.stdin.read() if str(args.public_key) == "-" else _read(args.public_key)
        key = DeviceRegistry(args.devices).enrol(args.device_id, pem)
        print(f"enrolled {args.device_id} (key id {key.key_id})")
        return 0
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("give both --tls-cert and --tls-key, or neither")
    token = _read(args.auditor_token_file).strip() if args.auditor_token_file else None
    if args.auditor_token_file and not token:
        raise UsageError(f"{args.auditor_token_file} is empty")
    app = create_app(HubStore(args.db), args.devices, token)
    tls = (str(args.tls_cert), str(args.tls_key)) if args.tls_cert else None
    serve(app, args.host, args.port, ssl_context=tls)
    return 0


def _read(path: Path) -> str:
    from appliance.core.errors import ApplianceError

    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise ApplianceError(f"cannot read {path}: {e.strerror or e}") from e
