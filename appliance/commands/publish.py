"""``appliance publish``: the authority's signed repository of trust data (TUF).

    appliance publish init   --repo DIR --keys KEYDIR --root-out FILE
    appliance publish update --repo DIR --keys KEYDIR --source TRUST.json [--expires-hours N]
    appliance publish rotate --repo DIR --keys KEYDIR --role ROLE [--root-out FILE]
    appliance publish refresh --repo DIR --keys KEYDIR [--expires-hours N]

DIR holds plain static files for any web server; devices pin the root written by
``init`` (or a later ``--root-out``). See docs/adr/0006-trust-distribution.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from appliance.core.errors import UsageError

ROLES = ("root", "targets", "snapshot", "timestamp")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "publish", help="publish signed trust data as static files (authority side)",
        description=__doc__.splitlines()[0],
    )
    sub = p.add_subparsers(dest="publish_command", metavar="ACTION",
                           parser_class=type(p))
    sub.required = True

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--repo", type=Path, required=True, metavar="DIR",
                       help="repository directory (served as static files)")
        q.add_argument("--keys", type=Path, required=True, metavar="KEYDIR",
                       help="directory of signing keys (<role>.pem, mode 0600)")
        q.add_argument("--expires-hours", type=float, default=72.0, metavar="N",
                       help="expiry of timestamp, snapshot and targets (default 72)")

    q = sub.add_parser("init", help="new keys, root and an empty first version")
    common(q)
    q.add_argument("--root-out", type=Path, required=True, metavar="FILE",
                   help="write the trust root that devices pin here")
    q.add_argument("--root-expires-days", type=float, default=365.0, metavar="N")
    q.set_defaults(func=run_init)

    q = sub.add_parser("update", help="publish a trust source as the next version")
    common(q)
    q.add_argument("--source", type=Path, required=True, metavar="TRUST.json",
                   help="trust source file (spec LC1 s.4)")
    q.set_defaults(func=run_update)

    q = sub.add_parser("rotate", help="replace one role's key (root included)")
    common(q)
    q.add_argument("--role", required=True, choices=ROLES)
    q.add_argument("--root-out", type=Path, metavar="FILE",
                   help="also write the new root here (for newly provisioned devices)")
    q.add_argument("--root-expires-days", type=float, default=365.0, metavar="N")
    q.set_defaults(func=run_rotate)

    q = sub.add_parser("refresh", help="re-sign the timestamp only (online timestamp key)")
    common(q)
    q.set_defaults(func=run_refresh)


def _positive(value: float, name: str) -> float:
    if not value > 0:
        raise UsageError(f"{name} must be positive")
    return value


def run_init(args: argparse.Namespace) -> int:
    from appliance_sync.publisher import init_repository

    version = init_repository(args.repo, args.keys, args.root_out,
                              expires_hours=_positive(args.expires_hours, "--expires-hours"),
                              root_expires_days=_positive(args.root_expires_days,
                                                          "--root-expires-days"))
    print(f"repository {args.repo} initialised at version {version}; pin {args.root_out}")
    return 0


def run_update(args: argparse.Namespace) -> int:
    from appliance_sync.publisher import load_source, update_repository

    parts = load_source(args.source)
    version = update_repository(args.repo, args.keys, parts,
                                expires_hours=_positive(args.expires_hours, "--expires-hours"))
    print(f"published version {version}")
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    from appliance_sync.publisher import rotate_key

    version = rotate_key(args.repo, args.keys, args.role, root_out=args.root_out,
                         expires_hours=_positive(args.expires_hours, "--expires-hours"),
                         root_expires_days=_positive(args.root_expires_days,
                                                     "--root-expires-days"))
    print(f"{args.role} key rotated; root is now version {version}")
    return 0


def run_refresh(args: argparse.Namespace) -> int:
    from appliance_sync.publisher_refresh import refresh_timestamp

    version = refresh_timestamp(args.repo, args.keys,
                                expires_hours=_positive(args.expires_hours, "--expires-hours"))
    print(f"timestamp refreshed to version {version}")
    return 0
