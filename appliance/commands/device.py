"""``appliance device keygen``: the device's Ed25519 key, for enrolment at the audit hub."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "device",
        help="device identity (signing key for audit checkpoints and uploads)",
        description="Device identity. 'keygen' creates the Ed25519 device key if absent "
        "(0600 under [paths] secrets_dir) and prints its public key PEM for enrolment.",
        epilog="example: appliance device keygen --config /etc/appliance/appliance.toml "
        "> kiosk-01.pem",
    )
    sub = p.add_subparsers(dest="device_command", metavar="ACTION", parser_class=type(p))
    sub.required = True
    kg = sub.add_parser(
        "keygen",
        help="create the device key if absent; print the public key",
        epilog="example: appliance device keygen --config appliance.toml | "
        "appliance hub enrol --devices devices/ kiosk-01 -",
    )
    kg.add_argument(
        "--config", type=Path, required=True, metavar="FILE", help="device configuration"
    )
    kg.add_argument(
        "--test-audit-key",
        action="store_true",
        help="also create a random fleet audit key if absent (a test device only: "
        "a fleet installs one shared key, or keyed hashes will not match)",
    )
    kg.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from appliance.audit.identity import ensure_identity, private_key_path
    from appliance.config import load_config

    config = load_config(args.config)
    identity, created = ensure_identity(config)
    if created:
        print(f"created device key {private_key_path(config)}", file=sys.stderr)
    if args.test_audit_key:
        from appliance.audit.fleet_key import load_hmac_key

        load_hmac_key(config.paths.secrets_dir)
    print(identity.public.pem, end="")
    return 0
