"""HC1: the EU Digital COVID Certificate (eHealth Network DCC technical specification).

The construction LC1 reuses (CWT in COSE_Sign1, zlib, Base45 behind ``HC1:``), read with
the tolerances real DCCs need (docs/adr/0007):

- COSE_Sign1 untagged, tag 18, or the CWT tag 61 around tag 18;
- ``alg`` and ``kid`` from the protected header, else from the unprotected one (the
  protected value wins when both are present); ES256 or PS256 only;
- the kid is the first 8 bytes of SHA-256 over the document signer certificate (DSC), as
  the trust loader computes it. The verifier looks the kid up and never tries other keys:
  a kid naming no trusted DSC gives ``UNKNOWN_ISSUER``, a kid naming another trusted DSC
  than the signer's gives ``BAD_SIGNATURE``;
- compression optional (a Base45 body that is not a zlib stream is the COSE itself);
- CWT NumericDates (``exp`` 4, ``iat`` 6) may be CBOR floats;
- claim -260 ``{1: hcert}`` with exactly one of ``v`` / ``t`` / ``r``: its key is the
  credential ``typ``, its certificate identifier ``ci`` the credential ``no`` (and ``cti``);
- the DSC's extended key usage must allow that type (``key_allows``, called by the
  verifier): an EKU listing DCC OIDs must list the type's; without DCC OIDs, any type.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from appliance.core.credential.cose import (
    ALG_ES256,
    ALG_PS256,
    HEADER_ALG,
    HEADER_KID,
    Sign1,
    parse_sign1,
)
from appliance.core.credential.cwt import decode_claims, malformed
from appliance.core.credential.limits import INT64_MAX, INT64_MIN
from appliance.core.credential.model import Credential, Opened
from appliance.core.credential.qrtext import decode_base45_zlib
from appliance.core.errors import CoseError, Rejection
from appliance.core.reasons import Reason

if TYPE_CHECKING:
    from cryptography import x509

    from appliance.core.key_ring import IssuerKey

PREFIX = "HC1:"
PROFILE_NAME = "HC1"
SUPPORTED_ALGS = (ALG_ES256, ALG_PS256)
MAX_KID_BYTES = 64

CLAIM_ISS, CLAIM_EXP, CLAIM_IAT, CLAIM_HCERT = 1, 4, 6, -260
CERT_TYPES = ("v", "t", "r")
# The only CBOR tags an HC1 claims map may hold: dates as RFC 8949 tag 0 (date-time text)
# and RFC 8943 tag 1004 (full-date text), which some DCC encoders write (docs/adr/0008).
CLAIM_TAGS = frozenset({0, 1004})

# DCC extended key usage OIDs (DCC spec, "Document Signer Certificates"). Some member
# states issued DSCs with the mistyped arc 1.3.6.1.4.1.0.1847 that the spec's first
# edition printed; verifiers in production accept both spellings, and so do the vectors.
_EKU_ARCS = ("1.3.6.1.4.1.1847.2021.1", "1.3.6.1.4.1.0.1847.2021.1")
TYPE_EKU_OIDS: dict[str, frozenset[str]] = {
    typ: frozenset(f"{arc}.{n}" for arc in _EKU_ARCS) for typ, n in (("t", 1), ("v", 2), ("r", 3))
}
_ALL_DCC_OIDS = frozenset().union(*TYPE_EKU_OIDS.values())
_OID_EKU = "2.5.29.37"

# Scalar hcert fields shown to the inspector (label, key), per certificate type.
_ENTRY_FIELDS = {
    "v": ("tg", "vp", "mp", "ma", "dn", "sd", "dt", "co", "is"),
    "t": ("tg", "tt", "nm", "ma", "sc", "tr", "tc", "co", "is"),
    "r": ("tg", "fr", "df", "du", "co", "is"),
}


def open_sign1(cose_bytes: bytes) -> tuple[Sign1, int, bytes]:
    """COSE_Sign1 -> (sign1, alg, kid) with the DCC header rules."""
    try:
        sign1 = parse_sign1(cose_bytes, allow_cwt_tag=True)
    except CoseError as e:
        raise Rejection(Reason.MALFORMED_STRUCTURE, str(e)) from e
    alg = _header(sign1, HEADER_ALG)
    kid = _header(sign1, HEADER_KID)
    if not isinstance(kid, bytes) or not 0 < len(kid) <= MAX_KID_BYTES:
        raise Rejection(Reason.MALFORMED_STRUCTURE, "kid missing or not a byte string")
    if alg is None or isinstance(alg, bool) or not isinstance(alg, int | str):
        raise Rejection(Reason.MALFORMED_STRUCTURE, "alg missing")
    if alg not in SUPPORTED_ALGS:
        raise Rejection(Reason.UNSUPPORTED_ALGORITHM, "alg is not ES256 or PS256")
    return sign1, alg, kid


def _header(sign1: Sign1, label: int) -> Any:
    value = sign1.protected_map.get(label)
    return sign1.unprotected.get(label) if value is None else value


def parse_claims(payload: bytes) -> Credential:
    """CWT claims with an hcert -> Credential; anything off gives ``MALFORMED_CLAIMS``."""
    claims, iss = decode_claims(payload, tags=CLAIM_TAGS)
    wrapper = claims.get(CLAIM_HCERT)
    hcert = wrapper.get(1) if isinstance(wrapper, Mapping) else None
    if not isinstance(hcert, Mapping):
        raise malformed("claim -260 is not {1: hcert}")
    typ, entry = certificate_entry(hcert)
    ci = entry.get("ci")
    if not isinstance(ci, str) or not ci:
        raise malformed("certificate identifier ci missing")
    nm, nml = _names(hcert.get("nam"))
    dob = hcert.get("dob")
    if dob is not None and not isinstance(dob, str):
        raise malformed("dob is not text")
    ext = [("ver", hcert["ver"])] if isinstance(hcert.get("ver"), str) else []
    for key in _ENTRY_FIELDS[typ]:
        value = entry.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            ext.append((key, str(value)))
    return Credential(
        profile=PROFILE_NAME,
        iss=iss,
        exp=_numeric_date(claims.get(CLAIM_EXP), "exp"),
        iat=_numeric_date(claims.get(CLAIM_IAT), "iat"),
        nbf=None,
        # The UCI's UTF-8 as cti: revoked.cti_sha256 = SHA-256(ci), whose first 16 bytes
        # are the DCC revocation "UCI" hash.
        cti=ci.encode(),
        typ=typ,
        no=ci,
        nm=nm,
        nml=nml,
        dob=dob or None,
        vf=_date_or_none(entry.get("df")) if typ == "r" else None,
        vu=_date_or_none(entry.get("du")) if typ == "r" else None,
        ext=tuple(ext),
    )


def certificate_entry(hcert: Mapping[Any, Any]) -> tuple[str, Mapping[Any, Any]]:
    """The one v/t/r group (``null`` groups count as absent) and its first entry."""
    present = [t for t in CERT_TYPES if hcert.get(t) is not None]
    if len(present) != 1:
        raise malformed(f"hcert holds {len(present)} of v/t/r, not exactly one")
    typ = present[0]
    group = hcert[typ]
    if not isinstance(group, list | tuple) or not group or not isinstance(group[0], Mapping):
        raise malformed(f"hcert {typ} is not a non-empty array of maps")
    return typ, group[0]


def _names(nam: Any) -> tuple[str, str | None]:
    """``nm`` = "fn, gn" as printed (falling back to the transliteration), ``nml`` = "fnt, gnt"."""
    if not isinstance(nam, Mapping):
        raise malformed("nam missing")
    parts = {k: nam.get(k) for k in ("fn", "gn", "fnt", "gnt")}
    if any(v is not None and not isinstance(v, str) for v in parts.values()):
        raise malformed("nam fields are not text")
    printed = ", ".join(v for v in (parts["fn"], parts["gn"]) if v)
    latin = ", ".join(v for v in (parts["fnt"], parts["gnt"]) if v)
    if not printed and not latin:
        raise malformed("no name")
    return printed or latin, latin or None


def _numeric_date(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise malformed(f"{name} missing or not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise malformed(f"{name} is not finite")
    if not INT64_MIN <= value <= INT64_MAX:
        raise malformed(f"{name} outside the signed 64-bit range")
    return value


def _date_or_none(value: Any) -> str | None:
    if isinstance(value, str) and len(value) >= 10 and value[4] == "-" and value[7] == "-":
        return value[:10]
    return None


# --- key usage: the DSC's extended key usage against the certificate type ---------------


def key_allows(key: IssuerKey, credential: Credential) -> bool:
    """The DSC's EKU allows the type: any type unless it lists a DCC OID, then the type's.

    This is the rule of the EU reference verifier and of the German Corona-Warn-App: an EKU
    with only other purposes (TLS client, e-mail, ...) restricts nothing. An EKU that
    cannot be read allows nothing.
    """
    if key.certificate is None:
        return True
    try:
        ekus = extended_key_usage(key.certificate)
    except ValueError:
        return False
    if ekus is None or not ekus & _ALL_DCC_OIDS:
        return True
    return bool(ekus & TYPE_EKU_OIDS.get(credential.typ, frozenset()))


@lru_cache(maxsize=4096)
def extended_key_usage(cert: x509.Certificate) -> frozenset[str] | None:
    """The EKU OIDs in dotted form, or None without the extension; ValueError if unreadable.

    Some deployed DSCs are not strict DER elsewhere in their extensions (an explicit
    ``cA FALSE`` in BasicConstraints), which cryptography refuses to parse; the EKU is
    then read from the DER directly.
    """
    from cryptography import x509  # here: the x509 module costs every LC1 check ~80 ms

    try:
        ext = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return None
    except ValueError:
        from cryptography.hazmat.primitives.serialization import Encoding

        return _eku_from_der(cert.public_bytes(Encoding.DER))
    return frozenset(oid.dotted_string for oid in ext.value)


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the DER item at ``pos``."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if not 0 < n <= 4:
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise ValueError("DER item runs past its container")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out, pos = [], start
    while pos < end:
        item = _tlv(data, pos)
        out.append(item)
        pos = item[2]
    return out


def _oid_text(body: bytes) -> str:
    arcs, value = [], 0
    for b in body:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in (first, arcs[0] - 40 * first, *arcs[1:]))


def _eku_from_der(der: bytes) -> frozenset[str] | None:
    try:
        _, cert_start, cert_end = _tlv(der, 0)
        _, tbs_start, tbs_end = _children(der, cert_start, cert_end)[0]
        for tag, start, _end in _children(der, tbs_start, tbs_end):
            if tag != 0xA3:  # [3] EXPLICIT Extensions
                continue
            _, seq_start, seq_end = _tlv(der, start)
            for _, ext_start, ext_end in _children(der, seq_start, seq_end):
                fields = _children(der, ext_start, ext_end)
                if _oid_text(der[fields[0][1] : fields[0][2]]) != _OID_EKU:
                    continue
                _, val_start, _ = fields[-1]  # extnValue OCTET STRING
                _, eku_start, eku_end = _tlv(der, val_start)
                return frozenset(
                    _oid_text(der[s:e]) for _, s, e in _children(der, eku_start, eku_end)
                )
    except IndexError as e:
        raise ValueError("unreadable certificate extensions") from e
    return None


# --- EU DCC revocation (hash lists): the three hashes of a DCC --------------------------


def revocation_hashes(sign1: Sign1, alg: int, credential: Credential) -> dict[str, bytes]:
    """UCI, COUNTRYCODEUCI and SIGNATURE hashes (first 128 bits of SHA-256) of a DCC.

    COUNTRYCODEUCI uses the issuing country ``co`` of the v/t/r entry. For ES256 the
    SIGNATURE hash covers only r (the first half of the signature).
    """
    co = dict(credential.ext).get("co", "")
    signature = sign1.signature[:32] if alg == ALG_ES256 else sign1.signature
    return {
        "UCI": hashlib.sha256(credential.no.encode()).digest()[:16],
        "COUNTRYCODEUCI": hashlib.sha256((co + credential.no).encode()).digest()[:16],
        "SIGNATURE": hashlib.sha256(signature).digest()[:16],
    }


class Hc1Profile:
    name = PROFILE_NAME
    prefix = PREFIX

    def open(self, text: str) -> Opened:
        cose = decode_base45_zlib(text, PREFIX, compression_required=False)
        sign1, alg, kid = open_sign1(cose)
        return Opened(self.name, sign1, alg, kid, parse_claims, key_allows=key_allows)


PROFILE = Hc1Profile()
