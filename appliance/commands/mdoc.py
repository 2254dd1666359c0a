"""appliance mdoc: ISO 18013-5 mobile driving licences (spec mdl-reader s.5).

``mdoc verify`` judges DeviceResponse files offline (no radio) with the same line format,
``--json`` and exit statuses as ``appliance verify``; ``mdoc read`` (the live session) is
registered beside it by its own function. Heavy imports stay inside the run functions, so
the CLI's start-up cost is unchanged.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.core.errors import AuditError, UsageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

    from appliance.core.credential.mdoc.engagement import Engagement
    from appliance.core.credential.mdoc.items_request import Request
    from appliance.core.credential.mdoc.verify import MdocResult

EXIT_PASS, EXIT_FAIL, EXIT_UNVERIFIABLE, EXIT_NO_AUDIT = 0, 1, 2, 74
MAX_FILE_BYTES = 4 * 1024 * 1024  # a hex file of a response at the largest configurable size
_HEX = re.compile(rb"[0-9a-fA-F\s]+")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "mdoc", help="ISO 18013-5 mobile driving licences (mDL)",
        description="Read and verify ISO/IEC 18013-5 mdoc (mDL) presentations.",
        epilog="example: appliance mdoc read --config /etc/appliance/appliance.toml")
    commands = p.add_subparsers(dest="mdoc_command", metavar="SUBCOMMAND")
    commands.required = True
    for add in SUBCOMMANDS:
        add(commands)


def register_verify(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "verify", help="verify DeviceResponse files offline",
        description="Verify ISO 18013-5 DeviceResponse (or, with --session-data, SessionData) "
        "files offline. One line per response: VERDICT REASON MDOC ISS DOCTYPE NUMBER. "
        "Exit 0 all PASS, 1 any FAIL, 2 any UNVERIFIABLE and none FAIL, 64 bad usage or "
        "unreadable trust data, keys or files, 74 (--config) the audit record could not be "
        "written. Files are CBOR bytes or hex text.",
        epilog="example: appliance mdoc verify --trust-source annexd-trust.json --at "
        "2021-01-01T00:00:00Z --session-transcript session_transcript_bytes.hex "
        "--reader-key e_reader_key.pem --request device_request.hex "
        "--response device_response.hex")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--trust-source", type=Path, metavar="FILE",
                     help="trust source JSON (authoring check: no staleness, not audited)")
    src.add_argument("--config", type=Path, metavar="FILE",
                     help="device configuration: use the synced trust store, audit")
    p.add_argument("--at", metavar="ISO8601", help="evaluate at this instant (clock trusted)")
    p.add_argument("--json", action="store_true", help="one JSON object per response")
    transcript = p.add_mutually_exclusive_group()
    transcript.add_argument("--engagement", metavar="TEXT",
                            help="the mdoc: text (or DeviceEngagement hex); the transcript is "
                            "built with a null handover and --reader-key's public key")
    transcript.add_argument("--session-transcript", type=Path, metavar="FILE",
                            help="SessionTranscriptBytes (#6.24 form), taken as given")
    p.add_argument("--reader-key", type=Path, metavar="FILE",
                   help="EReaderKey private key, PEM (PKCS#8 or SEC1)")
    asked = p.add_mutually_exclusive_group()
    asked.add_argument("--request", type=Path, metavar="FILE",
                       help="the DeviceRequest that was sent")
    p.add_argument("--request-profile", choices=("checkpoint", "age"),
                   help="what was asked and how it is decided (default: the device's "
                   "mdoc.request, else checkpoint)")
    p.add_argument("--age", type=int, metavar="NN",
                   help="age_over_NN threshold of the age profile (default 20)")
    p.add_argument("--session-data", action="store_true",
                   help="the files are SessionData messages: decrypt with SKDevice first")
    p.add_argument("--response", type=Path, action="append", required=True, metavar="FILE",
                   help="a DeviceResponse file; repeat for several")
    p.set_defaults(func=run_verify)


def register_read(commands: argparse._SubParsersAction) -> None:
    """``mdoc read`` (the live session) lives in its own module."""
    from appliance.commands.mdoc_read import register_read as register

    register(commands)


# Each adds one ``mdoc`` subcommand.
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [register_verify,
                                                                   register_read]


def read_bytes(path: Path, what: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """A file's bytes, or the bytes its hex text spells (only hex digits and whitespace)."""
    try:
        with Path(path).open("rb") as f:
            raw = f.read(limit + 1)
    except OSError as e:
        raise UsageError(f"cannot read {what} {path}: {e.strerror or e}") from e
    if len(raw) > limit:
        raise UsageError(f"{what} {path} is larger than {limit} bytes")
    if raw and _HEX.fullmatch(raw):
        digits = b"".join(raw.split())
        if len(digits) % 2 == 0:
            return bytes.fromhex(digits.decode())
    return raw


def load_reader_key(path: Path) -> ec.EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    data = read_bytes(path, "reader key", 64 * 1024)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise UsageError(f"--reader-key {path} is not an unencrypted PEM private key") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise UsageError(f"--reader-key {path} is not an EC private key")
    return key


def parse_engagement_arg(text: str) -> Engagement:
    """``--engagement``: an ``mdoc:`` text, or the DeviceEngagement as hex, read by the
    live reader's own parser (spec s.1); a refusal is a usage error naming its reason."""
    import base64

    from appliance.core.credential.mdoc.engagement import is_engagement, parse_engagement
    from appliance.core.errors import Rejection

    text = text.strip()
    if not is_engagement(text):
        try:
            raw = bytes.fromhex("".join(text.split()))
        except ValueError as e:
            raise UsageError("--engagement is neither an mdoc: text nor hex") from e
        text = "mdoc:" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
    try:
        return parse_engagement(text)
    except Rejection as e:
        raise UsageError(f"--engagement is refused: {e.reason}") from e


class _Inputs:
    """What every response of one command line is judged with."""

    def __init__(self, args: argparse.Namespace, default_profile: str, default_age: int,
                 max_bytes: int) -> None:
        from appliance.core.credential.mdoc import session_crypto as sc
        from appliance.core.credential.mdoc.cose_key import cose_key_bytes
        from appliance.core.errors import CoseKeyError, MdocCborError, UnsupportedCurve

        self.reader_key = load_reader_key(args.reader_key) if args.reader_key else None
        self.profile = args.request_profile or default_profile
        self.age = args.age if args.age is not None else default_age
        if not 0 <= self.age <= 99:
            raise UsageError("--age must be 0 to 99")
        self.max_bytes = max_bytes
        engagement: Engagement | None = None
        if args.session_transcript is not None:
            self.transcript = read_bytes(args.session_transcript, "session transcript")
        elif args.engagement is not None:
            if self.reader_key is None:
                raise UsageError("--engagement needs --reader-key (its public key is in the "
                                 "transcript)")
            engagement = parse_engagement_arg(args.engagement)
            self.transcript = sc.session_transcript_bytes(
                engagement.device_engagement_bytes(),
                sc.embed(cose_key_bytes(self.reader_key.public_key())))
        else:
            raise UsageError("give --session-transcript FILE or --engagement TEXT")
        try:
            parts = sc.transcript_parts(self.transcript)
        except MdocCborError as e:
            raise UsageError(f"the session transcript is not SessionTranscriptBytes: {e}") from e
        self.e_device_key: Any = None
        if args.session_data:
            if self.reader_key is None:
                raise UsageError("--session-data needs --reader-key")
            if engagement is not None:
                self.e_device_key = engagement.e_device_key
            else:
                try:
                    self.e_device_key = sc.e_device_key_from_engagement(
                        parts.device_engagement.data)
                except (MdocCborError, CoseKeyError, UnsupportedCurve) as e:
                    raise UsageError(f"no usable EDeviceKey in the engagement: {e}") from e
        self.request = self._request(args.request)

    def _request(self, path: Path | None) -> Request:
        from appliance.core.credential.mdoc.items_request import (
            device_request_from_bytes,
            profile_request,
        )
        from appliance.core.errors import Rejection

        if path is None:
            return profile_request(self.profile, self.age)
        try:
            return device_request_from_bytes(read_bytes(path, "request"))
        except Rejection as e:
            raise UsageError(f"--request {path} is not a DeviceRequest: {e}") from e

    def check_device_auth(self, response: bytes, path: Path) -> None:
        """Exit 64 when a response authenticates by MAC and there is no reader key."""
        if self.reader_key is not None:
            return
        from appliance.core.credential.mdoc.cbor import decode
        from appliance.core.errors import MdocCborError

        try:
            item = decode(response)
        except MdocCborError:
            return  # the verdict will say MDOC_MALFORMED
        documents = item.get("documents") if isinstance(item, dict) else None
        for document in documents if isinstance(documents, list) else ():
            device_signed = document.get("deviceSigned") if isinstance(document, dict) else None
            auth = device_signed.get("deviceAuth") if isinstance(device_signed, dict) else None
            if isinstance(auth, dict) and "deviceMac" in auth:
                raise UsageError(f"{path} authenticates with deviceMac: give --reader-key")

    def judge(self, data: bytes, trust: Any, now: float, clock_trusted: bool,
              checkpoint: Any) -> MdocResult:
        from appliance.core.credential.mdoc.verify import verify_mdoc, verify_mdoc_session_data

        common: dict[str, Any] = {
            "trust": trust, "now": now, "request": self.request, "profile": self.profile,
            "age_threshold": self.age, "clock_trusted": clock_trusted,
            "checkpoint": checkpoint, "utc_offset_s": _local_offset(now),
        }
        if self.e_device_key is not None:
            assert self.reader_key is not None
            return verify_mdoc_session_data(
                data, e_device_key=self.e_device_key, session_transcript_bytes=self.transcript,
                e_reader_key=self.reader_key, max_response_bytes=self.max_bytes, **common)
        return verify_mdoc(data, session_transcript_bytes=self.transcript,
                           e_reader_key=self.reader_key, max_response_bytes=self.max_bytes,
                           **common)


def run_verify(args: argparse.Namespace) -> int:
    if args.trust_source is None and args.config is None:
        raise UsageError("give --trust-source FILE or --config FILE")
    from appliance.commands.verify import parse_instant

    at = parse_instant(args.at) if args.at else None
    try:
        return _verify_all(args, at)
    except AuditError as e:
        sys.stdout.flush()
        print(f"appliance mdoc verify: could not audit: {e}", file=sys.stderr)
        return EXIT_NO_AUDIT


def _verify_all(args: argparse.Namespace, at: float | None) -> int:
    from appliance.core.reasons import Outcome

    judge = _judge_with_trust(args, at) if args.trust_source is not None \
        else _judge_with_config(args, at)
    responses = [(path, read_bytes(path, "response")) for path in args.response]
    for path, data in responses:
        if not args.session_data:
            judge.inputs.check_device_auth(data, path)
    worst = EXIT_PASS
    for _, data in responses:
        result = judge(data)
        print_result(result, args.json, judge.inputs)
        if result.verdict.outcome is Outcome.FAIL:
            worst = EXIT_FAIL
        elif result.verdict.outcome is Outcome.UNVERIFIABLE and worst == EXIT_PASS:
            worst = EXIT_UNVERIFIABLE
    return worst


class _Judge:
    def __init__(self, inputs: _Inputs, run: Callable[[bytes], MdocResult]) -> None:
        self.inputs, self._run = inputs, run

    def __call__(self, data: bytes) -> MdocResult:
        return self._run(data)


def _judge_with_trust(args: argparse.Namespace, at: float | None) -> _Judge:
    import time

    from appliance.core.credential.mdoc.session_crypto import DEFAULT_MAX_SESSION_DATA
    from appliance.core.verifier import Checkpoint
    from appliance.trust.source import load_trust_source

    trust = load_trust_source(args.trust_source)
    inputs = _Inputs(args, "checkpoint", 20, DEFAULT_MAX_SESSION_DATA)
    now = at if at is not None else time.time()
    checkpoint = Checkpoint(check_staleness=False)
    return _Judge(inputs, lambda data: inputs.judge(data, trust, now, True, checkpoint))


def _judge_with_config(args: argparse.Namespace, at: float | None) -> _Judge:
    """The device's trust store, clock, checkpoint and audit (spec s.6, source ``cli``),
    through the one verification service, with the mdoc verifier in place of ``verify``."""
    from appliance.commands.verify import _require_enrolled
    from appliance.config import load_config
    from appliance.kiosk.compose import build_service
    from appliance.trust.clock import FixedClock

    config = load_config(args.config)
    _require_enrolled(config, args.config)
    inputs = _Inputs(args, config.mdoc.request, config.mdoc.age_threshold,
                     config.mdoc.max_response_bytes)
    cell: dict[str, Any] = {}

    def verifier(_label: str, trust: Any, now: float, *, clock_trusted: bool,
                 checkpoint: Any) -> Any:
        cell["result"] = inputs.judge(cell["data"], trust, now, clock_trusted, checkpoint)
        return cell["result"].verdict

    # The device's service (fails early with a clear message when nothing is installed).
    service = build_service(config, clock=FixedClock(at) if at is not None else None,
                            verifier=verifier)

    def run(data: bytes) -> MdocResult:
        from appliance.core.credential.mdoc.verify import MdocFacts, MdocResult

        cell.clear()
        cell["data"] = data
        verdict = service.verify("mdoc-response", source="cli")
        result = cell.get("result")
        return result if result is not None else MdocResult(verdict, MdocFacts())

    return _Judge(inputs, run)


def print_result(result: MdocResult, as_json: bool, inputs: _Inputs | None = None) -> None:
    """One line (or JSON object) per response, spec s.5.1."""
    print(json.dumps(result_json(result, inputs), ensure_ascii=False) if as_json
          else result_line(result))


def result_line(result: MdocResult) -> str:
    verdict, facts = result
    fields = [str(verdict.outcome), str(verdict.reason), "MDOC", verdict.iss or "-",
              facts.doc_type or "-", facts.document_number or "-"]
    return "\t".join(_one_line(f) for f in fields)


def result_json(result: MdocResult, inputs: _Inputs | None = None) -> dict[str, Any]:
    from appliance.core.credential.mdoc.elements import age_met
    from appliance.core.isotime import format_utc

    verdict, facts = result
    out: dict[str, Any] = {"verdict": str(verdict.outcome), "reason": str(verdict.reason),
                           "profile": "MDOC"}
    if verdict.iss is not None:
        out["iss"] = verdict.iss
    if verdict.kid is not None:
        out["kid"] = verdict.kid.hex()
    if facts.doc_type is not None:
        out["doctype"] = facts.doc_type
    if facts.document_number is not None:
        out["no"] = facts.document_number
    if facts.valid_until is not None:
        with contextlib.suppress(ValueError):  # a date out of datetime's range: left out
            out["valid_until"] = format_utc(facts.valid_until)
    if facts.device_auth is not None:
        out["device_auth"] = facts.device_auth
    if facts.disclosed is not None:
        out["elements"] = list(facts.elements)
    if inputs is not None and inputs.profile == "age" and facts.age_over:
        met = age_met(facts.age_over, inputs.age)
        if met is not None:
            out["age_over"] = {str(inputs.age): met}
    return out


def _one_line(text: str) -> str:
    """Credential text in a tab-separated line: no tabs, newlines or other controls."""
    return "".join(c if c.isprintable() else "?" for c in text) or "-"


def _local_offset(now: float) -> int:
    """This machine's UTC offset at ``now``, for the local date of ``expiry_date``."""
    from datetime import datetime

    try:
        offset = datetime.fromtimestamp(now).astimezone().utcoffset()
    except (OverflowError, OSError, ValueError):
        return 0
    return int(offset.total_seconds()) if offset is not None else 0
