"""``appliance trust-source``: build or extend a trust source file without editing JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.commands.argtypes import non_negative_int, positive_float, positive_int
from appliance.core.errors import UsageError

if TYPE_CHECKING:
    from appliance.trust.editor import TrustSourceEditor


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "trust-source",
        help="build or extend a trust source file",
        description="Build or extend a trust source (spec LC1 s.4) without editing JSON; "
        "a file that does not exist is refused (exit 64) unless --create is given.",
        epilog="example: appliance trust-source revoke-licence trust.json --iss TH-DLT "
        "--typ DL --no 63-0012345",
    )
    sub = p.add_subparsers(dest="ts_command", metavar="ACTION", required=True)

    def action(name: str, help_text: str, example: str) -> argparse.ArgumentParser:
        a = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=f"example: appliance trust-source {name} trust.json {example}",
        )
        a.add_argument("file", type=Path, metavar="TRUST.json", help="trust source file")
        a.add_argument(
            "--create",
            action="store_true",
            help="start a new trust source if TRUST.json does not exist "
            "(without it a missing file is an error: a misspelt name must not "
            "start a new trust source)",
        )
        return a

    a = action(
        "add-key",
        "add an issuer key (entry written by 'issuer keygen')",
        "--entry dlt.pem.trust.json",
    )
    a.add_argument("--entry", type=Path, required=True, help="KEY.trust.json from issuer keygen")
    a.add_argument(
        "--profiles",
        help="credential formats the key may sign, comma-separated "
        "(LC1, HC1, SHC); default: the entry's own, else by key form",
    )
    a.set_defaults(func=run_add_key)
    a = action("key-status", "mark a key active or revoked", "--kid 1f2e... --status revoked")
    a.add_argument("--kid", required=True, help="key id in hex, as 'issuer keygen' printed it")
    a.add_argument(
        "--status",
        choices=("active", "revoked"),
        required=True,
        help="active, or revoked: every credential it signed then FAILs",
    )
    a.set_defaults(func=run_key_status)
    a = action(
        "revoke-credential",
        "revoke one credential (by QR text or cti)",
        "--cti 0123456789abcdef0123456789abcdef",
    )
    g = a.add_mutually_exclusive_group(required=True)
    g.add_argument("--text", help="the credential's LC1 QR text")
    g.add_argument("--cti", help="credential id, 32 hex digits")
    a.set_defaults(func=run_revoke_credential)
    a = action(
        "revoke-licence",
        "revoke every credential of one licence",
        "--iss TH-DLT --typ DL --no 63-0012345",
    )
    a.add_argument("--iss", required=True, help="issuing authority code, e.g. TH-DLT")
    a.add_argument("--typ", required=True, help="licence type code, e.g. DL")
    a.add_argument("--no", required=True, help="licence number as printed")
    a.set_defaults(func=run_revoke_licence)
    a = action(
        "set-status",
        "set one status-list entry (creates the list if new)",
        "--uri https://status.example/dl/1 --index 42 --value 1",
    )
    a.add_argument("--uri", required=True, help="status list URI, as credentials name it")
    a.add_argument(
        "--index",
        type=non_negative_int,
        required=True,
        help="entry index (the credential's status idx)",
    )
    a.add_argument(
        "--value", type=non_negative_int, required=True, help="0 valid, 1 revoked, 2 suspended"
    )
    a.add_argument(
        "--bits",
        type=int,
        choices=(1, 2, 4, 8),
        default=2,
        help="bits per entry of a new list (default 2)",
    )
    a.set_defaults(func=run_set_status)
    a = action("set-policy", "set policy values", "--max-age-hours 72")
    a.add_argument(
        "--max-age-hours",
        type=positive_float,
        help="trust data older than this gives UNVERIFIABLE on a device",
    )
    a.add_argument(
        "--unknown-status",
        choices=("fail", "unverifiable", "pass"),
        help="verdict for a status index past the end of its list",
    )
    a.add_argument(
        "--clock-skew-s",
        type=non_negative_int,
        help="tolerance for iat/nbf in the future, in seconds",
    )
    a.add_argument(
        "--presentation-window-s",
        type=positive_int,
        help="how old a live LP1 presentation may be, in seconds",
    )
    a.add_argument("--require-presentation-types", help="comma-separated licence types")
    a.add_argument(
        "--min-software-version",
        metavar="VERSION",
        help="PEP 440 version: devices below it verify nothing (SOFTWARE_OUTDATED); "
        "'' removes the minimum",
    )
    a.add_argument(
        "--disable-device",
        action="append",
        default=[],
        metavar="DEVICE_ID",
        help="this device verifies nothing (DEVICE_DISABLED); repeatable",
    )
    a.add_argument(
        "--enable-device",
        action="append",
        default=[],
        metavar="DEVICE_ID",
        help="take a device off the disabled list; repeatable",
    )
    a.set_defaults(func=run_set_policy)
    from appliance.commands.trust_source_mdoc import register_mdoc_actions

    register_mdoc_actions(action)  # add-iaca, revoke-ds, import-vical (spec mdl-reader s.2)


def _edit(args: argparse.Namespace) -> TrustSourceEditor:
    from appliance.trust.editor import TrustSourceEditor

    return TrustSourceEditor.open(args.file, create=args.create)


def _warn_unknown_issuer(editor: TrustSourceEditor, iss: str, path: Path) -> None:
    """A revocation under an issuer the file does not list is kept (it may be added
    later) but is most likely a typo: say so on stderr."""
    if not editor.has_issuer(iss):
        print(
            f"appliance trust-source: warning: issuer {iss!r} is not in {path}; the "
            "revocation is recorded but matches no licence until that issuer is added",
            file=sys.stderr,
        )


def run_add_key(args: argparse.Namespace) -> int:
    try:
        entry = json.loads(args.entry.read_text())
        iss, key = entry["iss"], entry["key"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"{args.entry} is not a key entry from 'issuer keygen': {e}") from e
    profiles = None
    if args.profiles is not None:
        profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    editor = _edit(args)
    editor.add_key(iss, key, entry.get("name"), profiles)
    editor.save(args.file)
    print(editor.describe_key(key["kid"]))
    return 0


def run_key_status(args: argparse.Namespace) -> int:
    editor = _edit(args)
    editor.set_key_status(args.kid, args.status)
    editor.save(args.file)
    print(editor.describe_key(args.kid))
    return 0


def run_revoke_credential(args: argparse.Namespace) -> int:
    iss = None
    if args.cti:
        try:
            cti = bytes.fromhex(args.cti)
        except ValueError as e:
            raise UsageError("--cti must be hex") from e
    else:
        cti, iss = _cti_of(args.text)
    editor = _edit(args)
    if iss is not None:
        _warn_unknown_issuer(editor, iss, args.file)
    editor.revoke_cti(cti)
    editor.save(args.file)
    return 0


def _cti_of(text: str) -> tuple[bytes, str | None]:
    """The cti and issuer of an LC1 text, read without checking its signature (authoring
    only)."""
    from appliance.core.credential import lc1
    from appliance.core.credential.qrtext import decode_base45_zlib
    from appliance.core.errors import Rejection

    try:
        sign1, _, _ = lc1.open_sign1(decode_base45_zlib(text, lc1.PREFIX))
        cred = lc1.parse_claims(sign1.payload)
    except Rejection as e:
        raise UsageError(f"--text is not a readable LC1 credential: {e.reason}") from e
    assert cred.cti is not None
    return cred.cti, cred.iss


def run_revoke_licence(args: argparse.Namespace) -> int:
    editor = _edit(args)
    _warn_unknown_issuer(editor, args.iss, args.file)
    editor.revoke_licence(args.iss, args.typ, args.no)
    editor.save(args.file)
    return 0


def run_set_status(args: argparse.Namespace) -> int:
    from appliance.trust.source import MAX_STATUS_LIST_BYTES

    # The editor grows the list up to the index: refuse one that loading would refuse
    # (an index of 10**12 would otherwise allocate terabytes). 8-bit entries: one byte each.
    if args.index >= MAX_STATUS_LIST_BYTES:
        raise UsageError(
            f"--index {args.index} is beyond the largest status list "
            f"({MAX_STATUS_LIST_BYTES:,} entries)"
        )
    editor = _edit(args)
    editor.set_status(args.uri, args.index, args.value, args.bits)
    editor.save(args.file)
    return 0


def run_set_policy(args: argparse.Namespace) -> int:
    editor = _edit(args)
    types = None
    if args.require_presentation_types is not None:
        types = [t for t in args.require_presentation_types.split(",") if t]
    editor.set_policy(
        max_age_hours=args.max_age_hours,
        unknown_status=args.unknown_status,
        clock_skew_s=args.clock_skew_s,
        presentation_window_s=args.presentation_window_s,
        require_presentation_types=types,
    )
    _set_remote_policy(editor.doc["policy"], args)
    editor.save(args.file)  # validated by the verifier's loader first
    return 0


def _set_remote_policy(policy: dict, args: argparse.Namespace) -> None:
    """Remote policy (spec LC1 s.4): minimum version and disabled devices, in place."""
    overlap = set(args.disable_device) & set(args.enable_device)
    if overlap:
        raise UsageError(f"both disabled and enabled: {', '.join(sorted(overlap))}")
    if args.min_software_version == "":
        policy.pop("min_software_version", None)
    elif args.min_software_version is not None:
        policy["min_software_version"] = args.min_software_version
    if args.disable_device or args.enable_device:
        current = policy.get("disabled_devices", [])
        listed = list(current) if isinstance(current, list) else []
        listed += [d for d in args.disable_device if d not in listed]
        policy["disabled_devices"] = [d for d in listed if d not in set(args.enable_device)]
