"""``appliance issuer keygen|issue``: agencies test their QR codes before rollout."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from appliance.commands.argtypes import (
    iso_day,
    iso_instant,
    non_negative_int,
    valid_days,
)
from appliance.core.errors import UsageError

LICENCE_HELP = {
    "typ": "licence type code, e.g. DL (required)",
    "no": "licence number as printed (required)",
    "nm": "holder name as printed, any script (required)",
    "nml": "holder name in Latin script",
    "dob": "date of birth, YYYY-MM-DD",
    "vf": "valid from as printed, YYYY-MM-DD (display only: --nbf/--iat decide)",
    "vu": "valid until as printed, YYYY-MM-DD (display only: --exp decides)",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "issuer",
        help="issuer tools: signing keys and LC1 credentials",
        description="Issuer tools for agencies testing their QR codes before rollout.",
        epilog="example: appliance issuer keygen --alg ES256 --out dlt.pem --iss TH-DLT "
        "--types DL --trust-source trust.json",
    )
    sub = p.add_subparsers(dest="issuer_command", metavar="ACTION", required=True)

    k = sub.add_parser(
        "keygen",
        help="new signing key (0600); prints the kid",
        description="A new issuer signing key (0600) and its trust source "
        "entry (KEY.trust.json); prints the key id.",
        epilog="example: appliance issuer keygen --alg ES256 --out dlt.pem "
        "--iss TH-DLT --types DL --trust-source trust.json",
    )
    k.add_argument(
        "--alg", choices=("ES256", "EdDSA"), required=True, help="ES256 (P-256) or EdDSA (Ed25519)"
    )
    k.add_argument("--out", type=Path, required=True, help="private key file (PEM, 0600)")
    k.add_argument("--iss", default="TH-DLT", help="issuing authority code")
    k.add_argument("--name", help="issuing authority name")
    k.add_argument("--types", default="", help="licence types the key may sign, comma-separated")
    k.add_argument(
        "--not-before",
        type=iso_instant,
        default="2024-01-01T00:00:00Z",
        help="key valid from (ISO 8601)",
    )
    k.add_argument(
        "--not-after",
        type=iso_instant,
        default="2034-01-01T00:00:00Z",
        help="key valid until (ISO 8601)",
    )
    k.add_argument(
        "--trust-source",
        type=Path,
        help="also add the key to this trust source "
        "(created if absent, and then said so on stderr)",
    )
    k.set_defaults(func=run_keygen)

    i = sub.add_parser(
        "issue",
        help="sign an LC1 credential; prints the QR text",
        description="Sign an LC1 credential (spec LC1 s.2-s.3) and print its "
        "QR text. Every field is checked before signing.",
        epilog="example: appliance issuer issue --key dlt.pem --iss TH-DLT "
        "--typ DL --no 63-0012345 --nm 'Somchai Jaidee' --cls B "
        "--valid-days 1825 --png licence.png",
    )
    i.add_argument("--key", type=Path, required=True, help="issuer private key (PEM)")
    i.add_argument("--iss", required=True, help="issuing authority code, e.g. TH-DLT")
    i.add_argument(
        "--licence-json",
        type=Path,
        help="licence fields as JSON (typ, no, nm, nml, dob, cls, vf, vu, ext)",
    )
    for name, text in LICENCE_HELP.items():
        i.add_argument(
            f"--{name}", help=text, type=iso_day if name in ("dob", "vf", "vu") else None
        )
    i.add_argument("--cls", action="append", default=[], help="class (repeatable)")
    i.add_argument(
        "--ext",
        action="append",
        default=[],
        metavar="LABEL=VALUE",
        help="another printed field, shown as label and value (repeatable)",
    )
    i.add_argument("--photo", type=Path, help="JPEG/WebP portrait, at most 2,048 bytes")
    i.add_argument("--iat", type=iso_instant, help="issued at (ISO 8601; default now)")
    i.add_argument("--exp", type=iso_instant, help="expiry (ISO 8601; default --valid-days)")
    i.add_argument(
        "--valid-days",
        type=valid_days,
        default=365.0,
        help="expiry this many days after --iat (default 365, at most 36525)",
    )
    i.add_argument("--nbf", type=iso_instant, help="not before (ISO 8601)")
    i.add_argument("--cti", help="credential id, 32 hex digits (default random)")
    i.add_argument("--status-uri", help="status list URI (with --status-idx)")
    i.add_argument(
        "--status-idx", type=non_negative_int, help="the credential's index in the status list"
    )
    i.add_argument("--holder-key", type=Path, help="holder public key PEM: adds cnf (LP1)")
    i.add_argument("--out", type=Path, help="also write the QR text to this file")
    i.add_argument("--png", type=Path, help="also write a QR code PNG (segno)")
    i.set_defaults(func=run_issue)


def run_keygen(args: argparse.Namespace) -> int:
    from appliance.tools.issuer import generate_key, save_private_key

    if args.out.exists():
        raise UsageError(f"{args.out} exists; refusing to overwrite a signing key")
    key = generate_key(args.alg)
    save_private_key(key, args.out)
    types = [t for t in args.types.split(",") if t]
    entry = key.trust_entry(args.not_before, args.not_after, types)
    entry_path = args.out.with_name(args.out.name + ".trust.json")
    entry_path.write_text(
        json.dumps({"iss": args.iss, "name": args.name or args.iss, "key": entry}, indent=1) + "\n"
    )
    if args.trust_source is not None:
        from appliance.trust.editor import TrustSourceEditor

        created = not args.trust_source.exists()
        editor = TrustSourceEditor.open(args.trust_source, create=True)
        editor.add_key(args.iss, entry, args.name)
        editor.save(args.trust_source)
        if created:
            print(f"new trust source: {args.trust_source}", file=sys.stderr)
    print(key.kid.hex())
    print(f"private key: {args.out} (0600); trust source entry: {entry_path}", file=sys.stderr)
    return 0


def run_issue(args: argparse.Namespace) -> int:
    from appliance.tools.issuer import Claims, LicenceData, epoch, issue, load_private_key

    fields: dict = {}
    if args.licence_json is not None:
        try:
            fields = json.loads(args.licence_json.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise UsageError(f"cannot read licence JSON {args.licence_json}: {e}") from e
        if not isinstance(fields, dict):
            raise UsageError("licence JSON must be an object")
        for name in ("dob", "vf", "vu"):  # bounded like the options that set them
            if isinstance(fields.get(name), str):
                try:
                    iso_day(fields[name])
                except argparse.ArgumentTypeError as e:
                    raise UsageError(f"{args.licence_json}: {name} {e}") from e
                except ValueError as e:
                    raise UsageError(f"{args.licence_json}: {name} is not a YYYY-MM-DD date") from e
    for name in ("typ", "no", "nm", "nml", "dob", "vf", "vu"):
        if getattr(args, name) is not None:
            fields[name] = getattr(args, name)
    if args.cls:
        fields["cls"] = args.cls
    if args.ext:
        try:
            fields["ext"] = dict(item.split("=", 1) for item in args.ext)
        except ValueError as e:
            raise UsageError("--ext takes LABEL=VALUE") from e
    if args.photo is not None:
        try:
            fields["ph"] = args.photo.read_bytes()
        except OSError as e:
            raise UsageError(f"cannot read --photo {args.photo}: {e.strerror or e}") from e
    try:
        licence = LicenceData.from_mapping(fields)
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from e
    if (args.status_uri is None) != (args.status_idx is None):
        raise UsageError("give both --status-uri and --status-idx, or neither")
    try:
        iat = epoch(args.iat) if args.iat else int(time.time())
        exp = epoch(args.exp) if args.exp else int(iat + args.valid_days * 86400)
        nbf = epoch(args.nbf) if args.nbf else None
        cti = bytes.fromhex(args.cti) if args.cti else None
    except ValueError as e:
        raise UsageError(f"bad time or cti: {e}") from e
    if cti is not None and len(cti) != 16:
        raise UsageError("--cti must be 32 hex digits")
    holder = None
    if args.holder_key is not None:
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        from appliance.tools.holder import cose_key

        try:
            holder = cose_key(load_pem_public_key(args.holder_key.read_bytes()))
        except (OSError, ValueError) as e:
            raise UsageError(f"cannot read holder public key {args.holder_key}: {e}") from e
    claims = Claims(
        iss=args.iss,
        licence=licence,
        iat=iat,
        exp=exp,
        nbf=nbf,
        status_uri=args.status_uri,
        status_idx=args.status_idx,
        holder_cose_key=holder,
    )
    if cti is not None:
        claims.cti = cti
    if claims.exp <= claims.iat or (nbf is not None and nbf >= claims.exp):
        raise UsageError("--exp must be after --iat and --nbf")
    text = issue(load_private_key(args.key), claims)
    write_outputs(text, args.out, args.png)
    print(text)
    return 0


def write_outputs(text: str, out: Path | None, png: Path | None) -> None:
    if out is not None:
        out.write_text(text + "\n")
    if png is not None:
        import segno

        segno.make(text, error="m", micro=False).save(str(png), scale=6, border=4)
