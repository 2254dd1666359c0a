"""appliance verify: the command-line contract of spec LC1 s.7.

Imports only the core verifier for texts: PIL and numpy load for --image alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.commands.argtypes import iso_instant
from appliance.core import isotime
from appliance.core.errors import AuditError, UsageError

if TYPE_CHECKING:
    from appliance.config import Config
    from appliance.core.reasons import Outcome
    from appliance.core.verifier import Verdict
    from appliance.kiosk.verification import VerificationService

EXIT_PASS, EXIT_FAIL, EXIT_UNVERIFIABLE = 0, 1, 2
# Beyond spec LC1 s.7: with --config, the audit record could not be written (EX_IOERR),
# so no verdict is given; distinct from 1, which says a credential FAILED.
EXIT_NO_AUDIT = 74


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "verify",
        help="verify QR texts or images of QR codes",
        description="Verify licence QR texts offline. Exit 0 all PASS, 1 any FAIL, "
        "2 any UNVERIFIABLE and none FAIL, 64 bad usage or unreadable trust data, "
        "74 (--config) the audit record could not be written: no verdict is given for "
        "that input or any after it.",
        epilog="example: appliance verify --trust-source trust.json --json LC1:NCF...; "
        "appliance verify --config /etc/appliance/appliance.toml --image photo.jpg",
    )
    add_trust_arguments(p)
    p.add_argument(
        "--at",
        metavar="ISO8601",
        type=iso_instant,
        help="evaluate at this instant (clock trusted); with --config, the "
        "verification is not audited",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per input")
    p.add_argument(
        "--image",
        action="extend",
        nargs="+",
        type=Path,
        default=[],
        metavar="PATH",
        help="decode the QR codes in an image file first",
    )
    p.add_argument("texts", nargs="*", metavar="TEXT", help="QR text; '-' reads lines from stdin")
    p.set_defaults(func=run)


def parse_instant(value: str) -> float:
    try:
        return isotime.parse_instant(value)
    except ValueError as e:
        raise UsageError(f"--at {e}") from e


def _inputs(args: argparse.Namespace) -> Iterator[tuple[str | None, str | None]]:
    """(file, text) pairs in input order; text None means an image with no code."""
    for path in args.image:
        from appliance.core.errors import ImageReadError
        from appliance.devices.scanner import decode_image_file

        try:
            texts = decode_image_file(path)
        except ImageReadError as e:
            raise UsageError(str(e)) from e
        if not texts:
            yield str(path), None
        for text in texts:
            yield str(path), text
    for text in args.texts:
        if text == "-":
            for line in sys.stdin:
                line = line.strip()
                if line:
                    yield None, line
        else:
            yield None, text


def add_trust_arguments(p: argparse.ArgumentParser) -> None:
    """``--trust-source`` or ``--config``, one of them: the same pair for ``verify`` and
    ``mdoc verify`` (spec mdl-reader s.5.1: "exactly as appliance verify")."""
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--trust-source",
        type=Path,
        metavar="FILE",
        help="trust source JSON (authoring check: no staleness, not audited)",
    )
    src.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="device configuration: use the synced trust store, audit",
    )


def run(args: argparse.Namespace) -> int:
    if not args.texts and not args.image:
        raise UsageError("give at least one TEXT, '-' or --image PATH")
    if args.trust_source is None and args.config is None:
        raise UsageError("give --trust-source FILE or --config FILE")
    at = parse_instant(args.at) if args.at else None
    try:
        return _verify_all(args, at)
    except AuditError as e:
        sys.stdout.flush()
        print(f"appliance verify: could not audit: {e}", file=sys.stderr)
        return EXIT_NO_AUDIT


def _verify_all(args: argparse.Namespace, at: float | None) -> int:
    from appliance.core.reasons import Outcome, Reason
    from appliance.core.verifier import Verdict

    verify_one = _verifier(args, at)
    # Decode every image before printing anything, so an unreadable file exits 64 cleanly.
    inputs = list(_inputs(args))
    if not inputs:  # an empty scan file must never read as "all PASS" to a gate script
        raise UsageError("no input: standard input held no QR text")
    outcomes = []
    for file, text in inputs:
        if text is None:
            verdict = Verdict(Outcome.FAIL, Reason.NO_QR_FOUND)
        elif text[:5].lower() == "mdoc:":  # a phone's engagement: needs a radio session
            verdict = Verdict(Outcome.UNVERIFIABLE, Reason.MDOC_SESSION_REQUIRED, "MDOC")
        else:
            verdict = verify_one(text)
        _print(verdict, file, args.json)
        outcomes.append(verdict.outcome)
    return exit_status(outcomes)


def exit_status(outcomes: Iterable[Outcome]) -> int:
    """0 when every input PASSed, 1 on any FAIL, else 2 on any UNVERIFIABLE (LC1 s.7)."""
    from appliance.core.reasons import Outcome

    seen = set(outcomes)
    if Outcome.FAIL in seen:
        return EXIT_FAIL
    return EXIT_UNVERIFIABLE if Outcome.UNVERIFIABLE in seen else EXIT_PASS


def _verifier(args: argparse.Namespace, at: float | None) -> Callable[[str], Verdict]:

    if args.trust_source is not None:
        from appliance.core.verifier import Checkpoint, verify
        from appliance.trust.source import load_trust_source

        trust = load_trust_source(args.trust_source)
        checkpoint = Checkpoint(check_staleness=False)
        if at is None:
            import time

            at = time.time()
        now = at
        return lambda text: verify(text, trust, now, checkpoint=checkpoint)

    from appliance.config import load_config

    service = cli_service(load_config(args.config), args.config, at, "verify")
    return lambda text: service.verify(text, source="cli")


def cli_service(
    config: Config, path: Path, at: float | None, command: str, **kwargs: Any
) -> VerificationService:
    """The device's verification service for a check from the command line (``--config``
    of ``verify`` and ``mdoc verify``): audited, which needs the device and fleet keys.

    With ``--at`` it verifies at that instant with the installed data but writes no record:
    an audited record's time is the device's trusted clock, never a caller's (issue 21),
    and it says so, so nobody takes the check for an audited one.
    """
    from appliance.kiosk.compose import build_service

    if at is None:
        _require_enrolled(config, path)
        return build_service(config, **kwargs)
    from appliance.kiosk.verification import NullAudit
    from appliance.trust.clock import FixedClock

    print(
        f"appliance {command}: --at given: verified at that instant, not audited", file=sys.stderr
    )
    return build_service(config, audit=NullAudit(), clock=FixedClock(at), **kwargs)


def _require_enrolled(config: Config, path: Path) -> None:
    """Refuse to audit without the device and fleet keys, rather than inventing them.

    The audit layer would create a device key (unenrolled at the hub) and a random fleet
    key (keyed hashes matching no other device); that belongs to enrolment, not to a check.
    """
    from appliance.audit.fleet_key import HMAC_KEY_NAME
    from appliance.audit.identity import private_key_path

    device_key = private_key_path(config)
    if not _exists(device_key):
        raise UsageError(
            f"no device key at {device_key}: run 'appliance device keygen "
            f"--config {path}' and enrol it at the hub"
        )
    fleet_key = config.paths.secrets_dir / HMAC_KEY_NAME
    if not _exists(fleet_key):
        raise UsageError(
            f"no fleet audit key at {fleet_key}: install the fleet's key (Ansible "
            f"does), or run 'appliance device keygen --config {path} "
            "--test-audit-key' on a test device"
        )


def _exists(key: Path) -> bool:
    """Whether a key file is there; a folder this user may not search (on a device the keys
    are root's and reach the units as credentials) cannot audit, and says so."""
    from appliance.core.errors import AuditUnavailable

    try:
        return key.exists()
    except OSError as e:
        raise AuditUnavailable(
            f"cannot look for {key}: {e.strerror or e} (on a device the keys are root's; "
            "the kiosk's unit gets them as systemd credentials)"
        ) from e


def _print(verdict: Verdict, file: str | None, as_json: bool) -> None:
    if as_json:
        obj = verdict.to_json()
        if file is not None:
            obj["file"] = file
        print(json.dumps(obj, ensure_ascii=False), flush=False)
        return
    parts = [str(verdict.outcome), str(verdict.reason), verdict.profile or "-"]
    if verdict.credential is not None:
        parts += [verdict.iss or "-", verdict.credential.typ, verdict.credential.no]
    if file is not None:
        parts.append(file)
    print("\t".join(parts))
