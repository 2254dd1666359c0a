"""SHC: SMART Health Cards (``shc:/`` numeric QR, compact JWS, raw DEFLATE, ES256).

Layers, outside in (docs/adr/0007):

- QR text ``shc:/`` + digits, two per character (value + 45 = ASCII). A multi-part card
  (``shc:/<i>/<n>/<digits>``, deprecated by the SHC specification) verifies only when
  every part arrives in one input, separated by whitespace, in any order; a lone part or
  an incomplete set is ``MALFORMED_ENCODING``.
- Compact JWS ``header.payload.signature``: header ``{"alg": "ES256", "zip": "DEF",
  "kid": <base64url RFC 7638 thumbprint>}``; signature raw r||s over the ASCII
  ``header.payload``. The trust source carries the issuer's keys as JWKs (docs/
  trust-source-extensions.md); the kid bytes are the decoded thumbprint.
- The payload is raw DEFLATE (RFC 1951) of the JSON claims. It is inflated (with the
  shared cap) only after the signature verified.
- Claims: ``iss`` (the issuer URL: the trust source issuer's ``iss``), ``nbf`` (also the
  issuance time; may be fractional), optional ``exp``, ``vc`` with a FHIR bundle.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from appliance.core.credential.cose import ALG_ES256
from appliance.core.credential.cwt import malformed
from appliance.core.credential.model import Credential, Opened
from appliance.core.errors import Rejection
from appliance.core.reasons import Reason

PREFIX = "shc:/"
PROFILE_NAME = "SHC"
MAX_TEXT_CHARS = 16_384  # a whole multi-part set; one part of version 22 holds 2,390 digits
MAX_CHUNKS = 10
KID_BYTES = 32
NO_EXPIRY = 253_402_300_799.0  # 9999-12-31T23:59:59Z: a card without ``exp``
MAX_EXT_FIELDS = 24
# FHIR JSON is verbose: a 3-part lab card inflates to 30 KB. Inflating happens only after
# the issuer's signature verified, so the cap guards memory, not attacker-chosen input.
MAX_INFLATED = 65_536

_TYPE_SUFFIXES = (("#immunization", "immunization"), ("#laboratory", "laboratory"))
# Chunk numbers are at most MAX_CHUNKS (two digits): a longer run is refused by the pattern,
# before int() could convert thousands of digits.
_CHUNK = re.compile(r"shc:/(?:(\d{1,2})/(\d{1,2})/)?(\d*)\Z")
_B64URL = re.compile(r"[A-Za-z0-9_-]*\Z")
_TWO = re.compile(r"\d\d")
_PAIRS = {f"{v:02d}": chr(v + 45) for v in range(ord("z") - 45 + 1)}  # "00" "-" .. "77" "z"


@dataclass(frozen=True, slots=True)
class JwsSigned:
    """A compact JWS in the shape the verifier reads from a COSE_Sign1."""

    signing_input: bytes  # ASCII "header.payload", as received
    payload: bytes  # the raw-DEFLATE payload bytes, still compressed
    signature: bytes
    protected_map: Mapping[str, Any] = field(default_factory=dict)
    unprotected: Mapping[Any, Any] = field(default_factory=dict)

    def to_be_signed(self) -> bytes:
        return self.signing_input


def numeric_to_jws(text: str) -> str:
    """``shc:/`` text (one code, or a complete whitespace-separated multi-part set) -> JWS."""
    if len(text) > MAX_TEXT_CHARS:
        raise Rejection(Reason.TOO_LARGE, "QR text too long")
    parts = text.split()
    if not parts or len(parts) > MAX_CHUNKS:
        raise Rejection(Reason.MALFORMED_ENCODING, "no code, or too many parts")
    chunks: dict[int, str] = {}
    total = None
    for part in parts:
        m = _CHUNK.match(part)
        if m is None:
            raise Rejection(Reason.MALFORMED_ENCODING, "not shc:/ followed by digits")
        index, count, digits = m.groups()
        if index is None:
            if len(parts) != 1:
                raise Rejection(Reason.MALFORMED_ENCODING, "a single-part code among others")
            return _digits_to_text(digits)
        i, n = int(index), int(count)
        if not 1 <= i <= n <= MAX_CHUNKS or (total is not None and n != total) or i in chunks:
            raise Rejection(Reason.MALFORMED_ENCODING, "inconsistent multi-part numbering")
        total = n
        chunks[i] = digits
    if len(chunks) != total:
        raise Rejection(
            Reason.MALFORMED_ENCODING, f"incomplete multi-part card: {len(chunks)} of {total}"
        )
    return _digits_to_text("".join(chunks[i] for i in range(1, total + 1)))


def _digits_to_text(digits: str) -> str:
    if not digits or len(digits) % 2:
        raise Rejection(Reason.MALFORMED_ENCODING, "odd or empty digit string")
    try:
        return "".join(map(_PAIRS.__getitem__, _TWO.findall(digits)))
    except KeyError as e:
        raise Rejection(Reason.MALFORMED_ENCODING, "digit pair above 77") from e


def b64url_decode(text: str) -> bytes:
    """Strict unpadded base64url (RFC 7515 s.2)."""
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json_object(data: bytes, what: str, reason: Reason) -> dict[str, Any]:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(pairs)
        if len(out) != len(pairs):
            raise ValueError("duplicate member")
        return out

    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (ValueError, RecursionError) as e:
        raise Rejection(reason, f"{what} is not JSON: {e}") from e
    if not isinstance(value, dict):
        raise Rejection(reason, f"{what} is not a JSON object")
    return value


def open_jws(jws: str) -> tuple[JwsSigned, bytes]:
    """Compact JWS -> (envelope, kid bytes), with the SHC header rules."""
    segments = jws.split(".")
    if len(segments) != 3:
        raise Rejection(Reason.MALFORMED_STRUCTURE, "not a compact JWS")
    try:
        header_bytes, payload, signature = (b64url_decode(s) for s in segments)
    except (ValueError, binascii.Error) as e:
        raise Rejection(Reason.MALFORMED_STRUCTURE, str(e)) from e
    header = _json_object(header_bytes, "JWS header", Reason.MALFORMED_STRUCTURE)
    if "crit" in header:
        raise Rejection(Reason.MALFORMED_STRUCTURE, "critical header parameters")
    if header.get("alg") != "ES256":
        raise Rejection(Reason.UNSUPPORTED_ALGORITHM, f"alg {header.get('alg')!r}")
    if header.get("zip") != "DEF":
        raise Rejection(Reason.MALFORMED_COMPRESSION, "zip is not DEF")
    kid_text = header.get("kid")
    try:
        kid = b64url_decode(kid_text) if isinstance(kid_text, str) else b""
    except (ValueError, binascii.Error):
        kid = b""
    if len(kid) != KID_BYTES:
        raise Rejection(Reason.MALFORMED_STRUCTURE, "kid is not a base64url SHA-256 thumbprint")
    signing_input = f"{segments[0]}.{segments[1]}".encode("ascii")
    return JwsSigned(signing_input, payload, signature, header), kid


def inflate_raw(data: bytes, limit: int = MAX_INFLATED) -> bytes:
    """Inflate raw DEFLATE (RFC 1951), stopping as soon as the output passes ``limit``."""
    d = zlib.decompressobj(wbits=-15)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as e:
        raise Rejection(Reason.MALFORMED_COMPRESSION, str(e)) from e
    if len(out) > limit:
        raise Rejection(Reason.TOO_LARGE, f"inflates past {limit} bytes")
    if not d.eof or d.unused_data:
        raise Rejection(Reason.MALFORMED_COMPRESSION, "truncated or trailing DEFLATE data")
    return out


def parse_claims(payload: bytes) -> Credential:
    """Compressed JWS payload -> Credential (called after the signature verified)."""
    claims = _json_object(inflate_raw(payload), "payload", Reason.MALFORMED_CLAIMS)
    iss = claims.get("iss")
    if not isinstance(iss, str) or not iss:
        raise malformed("iss missing")
    nbf = _number(claims.get("nbf"), "nbf")
    exp = NO_EXPIRY if claims.get("exp") is None else _number(claims.get("exp"), "exp")
    vc = claims.get("vc")
    if not isinstance(vc, Mapping):
        raise malformed("vc missing")
    types = vc.get("type")
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise malformed("vc.type is not a list of text")
    if "https://smarthealth.cards#health-card" not in types:
        raise malformed("not a health card")
    typ = next(
        (name for suffix, name in _TYPE_SUFFIXES if any(t.endswith(suffix) for t in types)),
        "health-card",
    )
    subject = vc.get("credentialSubject")
    bundle = subject.get("fhirBundle") if isinstance(subject, Mapping) else None
    entries = bundle.get("entry") if isinstance(bundle, Mapping) else None
    if not isinstance(entries, list):
        raise malformed("credentialSubject.fhirBundle.entry missing")
    resources: list[Mapping[str, Any]] = [
        r
        for e in entries
        if isinstance(e, Mapping)
        for r in (e.get("resource"),)
        if isinstance(r, Mapping)
    ]
    # A card need not hold a Patient (published example 02, a lab report, has none): the
    # name is then empty and the inspector says so.
    patient = next((r for r in resources if r.get("resourceType") == "Patient"), None)
    nm = "" if patient is None else _patient_name(patient)
    dob = None if patient is None else patient.get("birthDate")
    ext = _display_fields(resources)
    if patient is None:
        ext.insert(0, ("patient", "none in the card"))
    rid = vc.get("rid")
    if rid is not None and (not isinstance(rid, str) or not rid):
        raise malformed("vc.rid is not text")
    return Credential(
        profile=PROFILE_NAME,
        iss=iss,
        exp=exp,
        iat=nbf,
        nbf=nbf,
        # SHC revocation ids: revoked.cti_sha256 = SHA-256(utf8(rid)).
        cti=None if rid is None else rid.encode(),
        typ=typ,
        no=rid if rid is not None else "jws:" + hashlib.sha256(payload).hexdigest()[:16],
        nm=nm,
        dob=dob if isinstance(dob, str) else None,
        ext=tuple(ext),
    )


def _patient_name(patient: Mapping[str, Any]) -> str:
    names = patient.get("name")
    name = names[0] if isinstance(names, list) and names else None
    if not isinstance(name, Mapping):
        raise malformed("Patient has no name")
    family = name.get("family")
    given = name.get("given") or []
    if not isinstance(given, list) or not all(isinstance(g, str) for g in given):
        raise malformed("Patient given names are not text")
    if family is not None and not isinstance(family, str):
        raise malformed("Patient family name is not text")
    text = ", ".join(p for p in (family, " ".join(given)) if p)
    if not text:
        raise malformed("Patient name is empty")
    return text


def _display_fields(resources: list[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Immunizations and results as label/value pairs for the inspector."""
    out: list[tuple[str, str]] = []
    for r in resources:
        kind = r.get("resourceType")
        if kind == "Immunization":
            coding = _first_coding(r.get("vaccineCode"))
            performer = r.get("performer")
            actor = (
                performer[0].get("actor")
                if isinstance(performer, list) and performer and isinstance(performer[0], Mapping)
                else None
            )
            value = " ".join(
                str(v)
                for v in (
                    coding,
                    r.get("occurrenceDateTime"),
                    f"lot {r['lotNumber']}" if isinstance(r.get("lotNumber"), str) else None,
                    actor.get("display") if isinstance(actor, Mapping) else None,
                )
                if isinstance(v, str) and v
            )
            out.append(("immunization", value))
        elif kind == "Observation":
            value = " ".join(
                v
                for v in (
                    _first_coding(r.get("code")),
                    _first_coding(r.get("valueCodeableConcept")),
                    r.get("effectiveDateTime"),
                )
                if isinstance(v, str) and v
            )
            out.append(("observation", value))
        if len(out) >= MAX_EXT_FIELDS:
            break
    return out


def _first_coding(concept: Any) -> str | None:
    codings = concept.get("coding") if isinstance(concept, Mapping) else None
    coding = codings[0] if isinstance(codings, list) and codings else None
    if not isinstance(coding, Mapping):
        return None
    system, code = coding.get("system"), coding.get("code")
    if not isinstance(code, str):
        return None
    return f"{system.rsplit('/', 1)[-1]}:{code}" if isinstance(system, str) else code


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise malformed(f"{name} missing or not a number")
    if not 0 <= value <= NO_EXPIRY:  # also refuses NaN and infinities
        raise malformed(f"{name} outside the representable range")
    return float(value)


class ShcProfile:
    name = PROFILE_NAME
    prefix = PREFIX

    def open(self, text: str) -> Opened:
        envelope, kid = open_jws(numeric_to_jws(text))
        return Opened(self.name, envelope, ALG_ES256, kid, parse_claims)  # type: ignore[arg-type]


PROFILE = ShcProfile()
