"""appliance publish: the authority's signed repository of trust data (TUF).

DIR holds plain static files for any web server; devices pin the root written by
init (or a later --root-out). See docs/adr/0006-trust-distribution.md. A repository or
key directory named wrongly is a usage error (64), found before any key is touched.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from appliance.commands.argtypes import positive_float
from appliance.core.errors import UsageError

ROLES = ("root", "targets", "snapshot", "timestamp")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "publish",
        help="publish signed trust data as static files (authority side)",
        description=__doc__.splitlines()[0],
        epilog="example: appliance publish update --repo repo/ --keys keys/ "
        "--source trust.json --expires-hours 72",
    )
    sub = p.add_subparsers(dest="publish_command", metavar="ACTION", parser_class=type(p))
    sub.required = True

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--repo",
            type=Path,
            required=True,
            metavar="DIR",
            help="repository directory (served as static files)",
        )
        q.add_argument(
            "--keys",
            type=Path,
            required=True,
            metavar="KEYDIR",
            help="directory of signing keys (<role>.pem, mode 0600)",
        )
        q.add_argument(
            "--expires-hours",
            type=positive_float,
            default=72.0,
            metavar="N",
            help="expiry of timestamp, snapshot and targets (default 72)",
        )

    q = sub.add_parser(
        "init",
        help="new keys, root and an empty first version",
        epilog="example: appliance publish init --repo repo/ --keys keys/ --root-out root.json",
    )
    common(q)
    q.add_argument(
        "--root-out",
        type=Path,
        required=True,
        metavar="FILE",
        help="write the trust root that devices pin here",
    )
    q.add_argument(
        "--root-expires-days",
        type=positive_float,
        default=365.0,
        metavar="N",
        help="expiry of the root (default 365)",
    )
    q.set_defaults(func=run_init)

    q = sub.add_parser(
        "update",
        help="publish a trust source as the next version",
        epilog="example: appliance publish update --repo repo/ --keys keys/ --source trust.json",
    )
    common(q)
    q.add_argument(
        "--source",
        type=Path,
        required=True,
        metavar="TRUST.json",
        help="trust source file (spec LC1 s.4)",
    )
    q.set_defaults(func=run_update)

    q = sub.add_parser(
        "rotate",
        help="replace one role's key (root included)",
        epilog="example: appliance publish rotate --repo repo/ --keys keys/ --role timestamp",
    )
    common(q)
    q.add_argument("--role", required=True, choices=ROLES, help="the role whose key to replace")
    q.add_argument(
        "--root-out",
        type=Path,
        metavar="FILE",
        help="also write the new root here (for newly provisioned devices)",
    )
    q.add_argument(
        "--root-expires-days",
        type=positive_float,
        default=365.0,
        metavar="N",
        help="expiry of the new root (default 365)",
    )
    q.set_defaults(func=run_rotate)

    q = sub.add_parser(
        "refresh",
        help="re-sign the timestamp only (online timestamp key)",
        epilog="example: appliance publish refresh --repo repo/ --keys keys/",
    )
    common(q)
    q.set_defaults(func=run_refresh)


def _existing(args: argparse.Namespace) -> None:
    """update/rotate/refresh work on a repository that init made, with its keys."""
    if not (args.repo / "metadata").is_dir():
        raise UsageError(f"{args.repo} is not a repository: run 'appliance publish init'")
    if not args.keys.is_dir():
        raise UsageError(f"--keys {args.keys} is not a directory")


def run_init(args: argparse.Namespace) -> int:
    from appliance_sync.publisher import init_repository

    metadata = args.repo / "metadata"
    if metadata.is_dir() and any(metadata.iterdir()):
        raise UsageError(f"{args.repo} already holds a repository")
    taken = [
        str(args.keys / f"{role}.pem") for role in ROLES if (args.keys / f"{role}.pem").exists()
    ]
    if taken:
        raise UsageError(f"{taken[0]} exists: refusing to overwrite a key")
    version = init_repository(
        args.repo,
        args.keys,
        args.root_out,
        expires_hours=args.expires_hours,
        root_expires_days=args.root_expires_days,
    )
    print(f"repository {args.repo} initialised at version {version}; pin {args.root_out}")
    return 0


def run_update(args: argparse.Namespace) -> int:
    from appliance_sync.publisher import update_repository
    from appliance_sync.trust_parts import load_source

    _existing(args)
    parts = load_source(args.source)
    version = update_repository(args.repo, args.keys, parts, expires_hours=args.expires_hours)
    print(f"published version {version}")
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    from appliance_sync.publisher import rotate_key

    _existing(args)
    version = rotate_key(
        args.repo,
        args.keys,
        args.role,
        root_out=args.root_out,
        expires_hours=args.expires_hours,
        root_expires_days=args.root_expires_days,
    )
    print(f"{args.role} key rotated; root is now version {version}")
    return 0


def run_refresh(args: argparse.Namespace) -> int:
    from appliance_sync.publisher_refresh import refresh_timestamp

    _existing(args)
    version = refresh_timestamp(args.repo, args.keys, expires_hours=args.expires_hours)
    print(f"timestamp refreshed to version {version}")
    return 0
