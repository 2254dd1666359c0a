"""``appliance trust-source`` actions for mdoc roots (spec mdl-reader s.2).

``add-iaca`` adds an IACA certificate with the docTypes it may vouch for, ``revoke-ds``
withdraws one document signer certificate, ``import-vical`` adds or replaces the IACAs of a
signed VICAL (ISO 18013-5 Annex C) after checking it with the given signer certificate.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.core.errors import UsageError

if TYPE_CHECKING:
    from cryptography import x509

    from appliance.trust.editor import TrustSourceEditor

MDL_DOCTYPE = "org.iso.18013.5.1.mDL"
MAX_CERT_BYTES = 64 * 1024


def register_mdoc_actions(action: Callable[[str, str, str], argparse.ArgumentParser]) -> None:
    a = action(
        "add-iaca",
        "add an mdoc issuer root (IACA certificate, PEM or DER)",
        "--iss US-UT --cert iaca.pem --doctypes org.iso.18013.5.1.mDL",
    )
    a.add_argument("--iss", required=True, help="issuing authority code, e.g. US-UT")
    a.add_argument("--name", help="the authority's name (default: the certificate's CN)")
    a.add_argument("--cert", type=Path, required=True, help="IACA certificate, PEM or DER")
    a.add_argument(
        "--doctypes",
        default=MDL_DOCTYPE,
        help=f"docTypes it may vouch for, comma-separated (default {MDL_DOCTYPE})",
    )
    a.set_defaults(func=run_add_iaca)
    a = action("revoke-ds", "withdraw one mdoc document signer certificate", "--cert ds.pem")
    g = a.add_mutually_exclusive_group(required=True)
    g.add_argument("--cert", type=Path, help="the DS certificate, PEM or DER")
    g.add_argument("--sha256", help="SHA-256 of the DS certificate DER, 64 hex digits")
    a.set_defaults(func=run_revoke_ds)
    a = action(
        "import-vical",
        "add or replace IACAs from a signed VICAL (Annex C)",
        "--vical aamva.vical --signer vical-signer.pem",
    )
    a.add_argument("--vical", type=Path, required=True, help="the VICAL file (COSE_Sign1)")
    a.add_argument(
        "--signer",
        type=Path,
        required=True,
        help="the VICAL signer's certificate, obtained separately (PEM or DER)",
    )
    a.add_argument(
        "--iss-from",
        choices=("country", "state"),
        default="country",
        help="name issuers by country (US) or country-state (US-UT)",
    )
    a.add_argument("--at", metavar="ISO8601", help="check the VICAL's dates at this instant")
    a.set_defaults(func=run_import_vical)


def _edit(args: argparse.Namespace) -> TrustSourceEditor:
    from appliance.trust.editor import TrustSourceEditor

    return TrustSourceEditor.open(args.file, create=args.create)


def load_certificate(path: Path, what: str) -> tuple[x509.Certificate, bytes]:
    """A certificate file (PEM or DER) -> (certificate, DER)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        with path.open("rb") as f:
            data = f.read(MAX_CERT_BYTES + 1)
    except OSError as e:
        raise UsageError(f"cannot read {what} {path}: {e.strerror or e}") from e
    try:
        cert = (
            x509.load_pem_x509_certificate(data)
            if b"-----BEGIN" in data
            else x509.load_der_x509_certificate(data)
        )
    except (ValueError, x509.InvalidVersion) as e:
        raise UsageError(f"{what} {path} is not a PEM or DER certificate") from e
    return cert, cert.public_bytes(Encoding.DER)


def _common_name(cert: x509.Certificate) -> str | None:
    from cryptography.x509.oid import NameOID

    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def run_add_iaca(args: argparse.Namespace) -> int:
    cert, der = load_certificate(args.cert, "IACA certificate")
    doctypes = [d.strip() for d in args.doctypes.split(",") if d.strip()]
    editor = _edit(args)
    kid = editor.add_iaca(args.iss, der, doctypes, args.name or _common_name(cert))
    editor.save(args.file)  # the loader's IACA checks run first: a bad root exits 64
    print(editor.describe_key(kid))
    return 0


def run_revoke_ds(args: argparse.Namespace) -> int:
    editor = _edit(args)
    if args.cert is not None:
        _, der = load_certificate(args.cert, "DS certificate")
        digest = editor.revoke_mdoc_ds(der)
    else:
        digest = args.sha256.strip().lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise UsageError("--sha256 must be 64 hex digits")
        revoked = editor.doc["revoked"].setdefault("mdoc_ds_sha256", [])
        if digest not in revoked:
            revoked.append(digest)
    editor.save(args.file)
    print(digest)
    return 0


def run_import_vical(args: argparse.Namespace) -> int:
    import time

    from appliance.commands.verify import parse_instant
    from appliance.trust.vical import MAX_VICAL_BYTES, read_vical

    signer, _ = load_certificate(args.signer, "VICAL signer certificate")
    try:
        with args.vical.open("rb") as f:
            data = f.read(MAX_VICAL_BYTES + 1)
    except OSError as e:
        raise UsageError(f"cannot read VICAL {args.vical}: {e.strerror or e}") from e
    now = parse_instant(args.at) if args.at else time.time()
    vical = read_vical(data, signer, now)
    editor = _edit(args)
    added = 0
    skipped = list(vical.skipped)
    for entry in vical.entries:
        iss = entry.country
        if args.iss_from == "state" and entry.country and entry.state:
            iss = f"{entry.country}-{entry.state}"
        if not iss:
            skipped.append(f"{_common_name(entry.certificate)}: no country to name it by")
            continue
        editor.add_iaca(
            iss, entry.der, list(entry.doctypes), entry.authority or _common_name(entry.certificate)
        )
        added += 1
    editor.save(args.file)
    for reason in skipped:
        print(f"appliance trust-source: skipped {reason}", file=sys.stderr)
    print(f"{added} IACA(s) added or replaced, {len(skipped)} skipped")
    return 0
