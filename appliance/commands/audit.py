"""``appliance audit status|verify|export``: the device's audit log for an auditor."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from appliance.commands.argtypes import iso_instant
from appliance.core.errors import AuditError, UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "audit",
        help="inspect, verify and export the device audit log",
        description="The device audit log under [paths] state_dir: status, verification of "
        "the hash chain and signed checkpoints, export.",
        epilog="example: appliance audit verify --config /etc/appliance/appliance.toml",
    )
    sub = p.add_subparsers(dest="audit_command", metavar="ACTION", parser_class=type(p))
    sub.required = True
    st = sub.add_parser(
        "status",
        help="records, upload backlog, checkpoints, size",
        epilog="example: appliance audit status --config appliance.toml --json",
    )
    st.add_argument("--json", action="store_true", help="one JSON object")
    ve = sub.add_parser(
        "verify",
        help="exit 0 if chain and signatures hold, 1 naming the first bad record",
        epilog="example: appliance audit verify --config appliance.toml",
    )
    ex = sub.add_parser(
        "export",
        help="records as CSV or JSON lines on standard output",
        epilog="example: appliance audit export --config appliance.toml "
        "--since 2026-11-01T00:00:00Z --format csv > audit.csv",
    )
    ex.add_argument(
        "--since", metavar="ISO8601", type=iso_instant, help="only records at or after this time"
    )
    ex.add_argument(
        "--format", choices=("csv", "jsonl"), default="jsonl", help="csv, or JSON lines (default)"
    )
    for q in (st, ve, ex):
        q.add_argument(
            "--config", type=Path, required=True, metavar="FILE", help="device configuration"
        )
        q.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from appliance.audit.log import from_config
    from appliance.config import load_config

    config = load_config(args.config)
    if not config.audit_db.exists():
        raise AuditError(f"no audit log at {config.audit_db}")
    since = None
    if getattr(args, "since", None):
        from appliance.commands.verify import parse_instant

        try:
            since = parse_instant(args.since)
        except UsageError as e:
            raise UsageError(str(e).replace("--at", "--since")) from e
    with from_config(config, create_key=False) as audit:
        if args.audit_command == "status":
            status = audit.status()
            if args.json:
                print(json.dumps(status))
            else:
                for key, value in status.items():
                    print(f"{key}: {value}")
            return 0
        if args.audit_command == "verify":
            report = audit.verify()
            print(report)
            return 0 if report.ok else 1
        audit.export(sys.stdout, since=since, fmt=args.format)
        return 0
