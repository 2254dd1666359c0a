"""A VICAL (ISO 18013-5 Annex C): a signed list of IACA certificates with their docTypes.

Read for authoring only (``appliance trust-source import-vical``); devices read their
trust data, never a VICAL. The signature is checked with the VICAL signer certificate the
operator gives, never with a certificate the VICAL carries (spec mdl-reader s.2): a list
signed by anyone could otherwise add roots. Each IACA is then checked as the trust-source
loader checks it; one that fails is reported and left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509

from appliance.core.credential.mdoc.cbor import TAG_SIGN1, Embedded, decode
from appliance.core.credential.mdoc.cose_key import verify_ecdsa
from appliance.core.credential.mdoc.device_auth import sig1_structure
from appliance.core.credential.mdoc.response import parse_cose
from appliance.core.errors import MdocCborError, Rejection, TrustDataError
from appliance.core.isotime import parse_instant
from appliance.trust.iaca import check_iaca

MAX_VICAL_BYTES = 16 * 1024 * 1024
MAX_VICAL_ITEMS = 200_000
# Tags a VICAL holds: tdate, biguint serial numbers (2), full-date, embedded CBOR, COSE_Sign1.
VICAL_TAGS = frozenset({0, 2, 1004, 24, TAG_SIGN1})


@dataclass(frozen=True)
class VicalEntry:
    der: bytes
    certificate: x509.Certificate
    doctypes: tuple[str, ...]
    country: str | None
    state: str | None
    authority: str | None


@dataclass(frozen=True)
class Vical:
    provider: str
    date: float
    entries: tuple[VicalEntry, ...]
    skipped: tuple[str, ...]  # why each left-out entry was refused


def read_vical(data: bytes, signer: x509.Certificate, now: float) -> Vical:
    """Verify and read a VICAL; ``TrustDataError`` when it cannot be trusted as a whole."""
    if len(data) > MAX_VICAL_BYTES:
        raise TrustDataError(f"VICAL larger than {MAX_VICAL_BYTES} bytes")
    try:
        envelope = parse_cose(
            decode(data, tags=VICAL_TAGS, max_items=MAX_VICAL_ITEMS), TAG_SIGN1, "VICAL"
        )
        if envelope.payload is None:
            raise TrustDataError("VICAL has a detached payload")
        if not verify_ecdsa(
            envelope.alg,
            signer.public_key(),
            sig1_structure(envelope.protected, envelope.payload),
            envelope.tag,
        ):
            raise TrustDataError(
                "VICAL signature does not verify with the given signer certificate"
            )
        body = decode(envelope.payload, tags=VICAL_TAGS, max_items=MAX_VICAL_ITEMS)
        if isinstance(body, Embedded):
            body = decode(body.data, tags=VICAL_TAGS, max_items=MAX_VICAL_ITEMS)
    except (MdocCborError, Rejection) as e:
        raise TrustDataError(f"VICAL is not a COSE_Sign1 of CBOR: {e}") from e
    if not isinstance(body, dict):
        raise TrustDataError("VICAL payload is not a map")
    version = body.get("version")
    if not isinstance(version, str) or not version.startswith("1."):
        raise TrustDataError("VICAL version is not 1.x")
    provider = body.get("vicalProvider")
    date = _tdate(body.get("date"), "date")
    if date > now:
        raise TrustDataError("VICAL date is in the future")
    if body.get("nextUpdate") is not None and _tdate(body["nextUpdate"], "nextUpdate") < now:
        raise TrustDataError("VICAL is past its nextUpdate: fetch the current one")
    infos = body.get("certificateInfos")
    if not isinstance(infos, list):
        raise TrustDataError("VICAL certificateInfos is not an array")
    entries, skipped = [], []
    for i, info in enumerate(infos):
        try:
            entries.append(_entry(info, f"certificateInfos[{i}]"))
        except TrustDataError as e:
            skipped.append(str(e))
    return Vical(
        provider if isinstance(provider, str) else "", date, tuple(entries), tuple(skipped)
    )


def _entry(info: Any, where: str) -> VicalEntry:
    if not isinstance(info, dict) or type(info.get("certificate")) is not bytes:
        raise TrustDataError(f"{where}: no certificate")
    doctypes = info.get("docType")
    if (
        not isinstance(doctypes, list)
        or not doctypes
        or not all(isinstance(d, str) and d for d in doctypes)
    ):
        raise TrustDataError(f"{where}: docType is not a non-empty array of text")
    der = info["certificate"]
    try:
        certificate = x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion) as e:
        raise TrustDataError(f"{where}: certificate is not DER X.509: {e}") from e
    check_iaca(certificate, where)
    return VicalEntry(
        der,
        certificate,
        tuple(doctypes),
        _text(info.get("issuingCountry")) or _name(certificate, "C"),
        _text(info.get("stateOrProvinceName")) or _name(certificate, "ST"),
        _text(info.get("issuingAuthority")),
    )


def _tdate(value: Any, name: str) -> float:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.timestamp()
    try:
        return parse_instant(value)
    except ValueError as e:
        raise TrustDataError(f"VICAL {name} is not a date-time") from e


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _name(certificate: x509.Certificate, short: str) -> str | None:
    from cryptography.x509.oid import NameOID

    oid = NameOID.COUNTRY_NAME if short == "C" else NameOID.STATE_OR_PROVINCE_NAME
    values = certificate.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None
