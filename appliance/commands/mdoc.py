"""appliance mdoc: ISO 18013-5 mobile driving licences (spec mdl-reader s.5).

``mdoc verify`` judges DeviceResponse files offline (no radio) with the same line format,
``--json`` and exit statuses as ``appliance verify``; ``mdoc read`` (the live session) is
registered beside it by its own function. Heavy imports stay inside the run functions, so
the CLI's start-up cost is unchanged; the inputs (``mdoc_inputs``) and the printed line
(``mdoc_output``) live in modules of their own, loaded only when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.core.errors import AuditError, UsageError

if TYPE_CHECKING:
    from appliance.commands.mdoc_inputs import Inputs
    from appliance.core.credential.mdoc.verify import MdocResult


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "mdoc",
        help="ISO 18013-5 mobile driving licences (mDL)",
        description="Read and verify ISO/IEC 18013-5 mdoc (mDL) presentations.",
        epilog="example: appliance mdoc read --config /etc/appliance/appliance.toml",
    )
    commands = p.add_subparsers(dest="mdoc_command", metavar="SUBCOMMAND")
    commands.required = True
    for add in SUBCOMMANDS:
        add(commands)


def register_verify(commands: argparse._SubParsersAction) -> None:
    from appliance.commands.verify import add_trust_arguments

    p = commands.add_parser(
        "verify",
        help="verify DeviceResponse files offline",
        description="Verify ISO 18013-5 DeviceResponse (or, with --session-data, SessionData) "
        "files offline. One line per response: VERDICT REASON MDOC ISS DOCTYPE NUMBER. "
        "Exit 0 all PASS, 1 any FAIL, 2 any UNVERIFIABLE and none FAIL, 64 bad usage or "
        "unreadable trust data, keys or files, 74 (--config) the audit record could not be "
        "written. Files are CBOR bytes or hex text.",
        epilog="example: appliance mdoc verify --trust-source annexd-trust.json --at "
        "2021-01-01T00:00:00Z --session-transcript session_transcript_bytes.hex "
        "--reader-key e_reader_key.pem --request device_request.hex "
        "--response device_response.hex",
    )
    add_trust_arguments(p)
    p.add_argument("--at", metavar="ISO8601", help="evaluate at this instant (clock trusted)")
    p.add_argument("--json", action="store_true", help="one JSON object per response")
    transcript = p.add_mutually_exclusive_group()
    transcript.add_argument(
        "--engagement",
        metavar="TEXT",
        help="the mdoc: text (or DeviceEngagement hex); the transcript is "
        "built with a null handover and --reader-key's public key",
    )
    transcript.add_argument(
        "--session-transcript",
        type=Path,
        metavar="FILE",
        help="SessionTranscriptBytes (#6.24 form), taken as given",
    )
    p.add_argument(
        "--reader-key",
        type=Path,
        metavar="FILE",
        help="EReaderKey private key, PEM (PKCS#8 or SEC1)",
    )
    asked = p.add_mutually_exclusive_group()
    asked.add_argument(
        "--request", type=Path, metavar="FILE", help="the DeviceRequest that was sent"
    )
    p.add_argument(
        "--request-profile",
        choices=("checkpoint", "age"),
        help="what was asked and how it is decided (default: the device's "
        "mdoc.request, else checkpoint)",
    )
    p.add_argument(
        "--age",
        type=int,
        metavar="NN",
        help="age_over_NN threshold of the age profile (default 20)",
    )
    p.add_argument(
        "--session-data",
        action="store_true",
        help="the files are SessionData messages: decrypt with SKDevice first",
    )
    p.add_argument(
        "--response",
        type=Path,
        action="append",
        required=True,
        metavar="FILE",
        help="a DeviceResponse file; repeat for several",
    )
    p.set_defaults(func=run_verify)


def register_read(commands: argparse._SubParsersAction) -> None:
    """``mdoc read`` (the live session) lives in its own module."""
    from appliance.commands.mdoc_read import register_read as register

    register(commands)


# Each adds one ``mdoc`` subcommand.
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [register_verify, register_read]


def run_verify(args: argparse.Namespace) -> int:
    if args.trust_source is None and args.config is None:
        raise UsageError("give --trust-source FILE or --config FILE")
    from appliance.commands.verify import EXIT_NO_AUDIT, parse_instant

    at = parse_instant(args.at) if args.at else None
    try:
        return _verify_all(args, at)
    except AuditError as e:
        sys.stdout.flush()
        print(f"appliance mdoc verify: could not audit: {e}", file=sys.stderr)
        return EXIT_NO_AUDIT


def _verify_all(args: argparse.Namespace, at: float | None) -> int:
    from appliance.commands.mdoc_inputs import read_bytes
    from appliance.commands.mdoc_output import print_result
    from appliance.commands.verify import exit_status

    judge = (
        _judge_with_trust(args, at)
        if args.trust_source is not None
        else _judge_with_config(args, at)
    )
    responses = [(path, read_bytes(path, "response")) for path in args.response]
    for path, data in responses:
        if not args.session_data:
            judge.inputs.check_device_auth(data, path)
    outcomes = []
    for _, data in responses:
        result = judge(data)
        print_result(result, args.json, judge.inputs)
        outcomes.append(result.verdict.outcome)
    return exit_status(outcomes)


class _Judge:
    def __init__(self, inputs: Inputs, run: Callable[[bytes], MdocResult]) -> None:
        self.inputs, self._run = inputs, run

    def __call__(self, data: bytes) -> MdocResult:
        return self._run(data)


def _judge_with_trust(args: argparse.Namespace, at: float | None) -> _Judge:
    import time

    from appliance.commands.mdoc_inputs import Inputs
    from appliance.core.credential.mdoc.session_crypto import DEFAULT_MAX_SESSION_DATA
    from appliance.core.verifier import Checkpoint
    from appliance.trust.source import load_trust_source

    trust = load_trust_source(args.trust_source)
    inputs = Inputs(args, "checkpoint", 20, DEFAULT_MAX_SESSION_DATA)
    now = at if at is not None else time.time()
    checkpoint = Checkpoint(check_staleness=False)
    return _Judge(inputs, lambda data: inputs.judge(data, trust, now, True, checkpoint))


def _judge_with_config(args: argparse.Namespace, at: float | None) -> _Judge:
    """The device's trust store, clock, checkpoint and audit (spec s.6, source ``cli``),
    through the one verification service, with the mdoc verifier in place of ``verify``."""
    from appliance.commands.mdoc_inputs import Inputs
    from appliance.commands.verify import cli_service
    from appliance.config import load_config

    config = load_config(args.config)
    inputs = Inputs(
        args, config.mdoc.request, config.mdoc.age_threshold, config.mdoc.max_response_bytes
    )
    cell: dict[str, Any] = {}

    def verifier(
        _label: str, trust: Any, now: float, *, clock_trusted: bool, checkpoint: Any
    ) -> Any:
        cell["result"] = inputs.judge(cell["data"], trust, now, clock_trusted, checkpoint)
        return cell["result"].verdict

    # The device's service (fails early with a clear message when nothing is installed).
    service = cli_service(config, args.config, at, "mdoc verify", verifier=verifier)

    def run(data: bytes) -> MdocResult:
        from appliance.core.credential.mdoc.verify import MdocFacts, MdocResult

        cell.clear()
        cell["data"] = data
        verdict = service.verify("mdoc-response", source="cli")
        result = cell.get("result")
        return result if result is not None else MdocResult(verdict, MdocFacts())

    return _Judge(inputs, run)
