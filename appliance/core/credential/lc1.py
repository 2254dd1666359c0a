"""LC1: the project's licence credential (spec ``lc1-credential.md``).

CWT claims in a COSE_Sign1, zlib-compressed, Base45-encoded behind ``LC1:``.
"""

from __future__ import annotations

import re
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from appliance.core.credential.cose import (
    ALG_EDDSA,
    ALG_ES256,
    ARRAY_TYPES,
    HEADER_ALG,
    HEADER_KID,
    MAP_TYPES,
    Sign1,
    parse_sign1,
)
from appliance.core.credential.cwt import decode_claims, malformed
from appliance.core.credential.limits import INT64_MAX, INT64_MIN, MAX_PHOTO_BYTES
from appliance.core.credential.model import Credential, HolderKey, Opened
from appliance.core.credential.qrtext import decode_base45_zlib
from appliance.core.errors import CoseError, Rejection
from appliance.core.reasons import Reason

PREFIX = "LC1:"
KID_BYTES = 8
CTI_BYTES = 16
SUPPORTED_ALGS = (ALG_ES256, ALG_EDDSA)

CLAIM_ISS, CLAIM_EXP, CLAIM_NBF, CLAIM_IAT, CLAIM_CTI, CLAIM_CNF = 1, 4, 5, 6, 7, 8
CLAIM_STATUS, CLAIM_LICENCE = 65535, -65537

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


def open_sign1(cose_bytes: bytes) -> tuple[Sign1, int, bytes]:
    """Parse the issuer's COSE_Sign1 and its protected alg and kid (spec LC1 s.1)."""
    try:
        sign1 = parse_sign1(cose_bytes)
    except CoseError as e:
        raise Rejection(Reason.MALFORMED_STRUCTURE, str(e)) from e
    alg = sign1.protected_map.get(HEADER_ALG)
    kid = sign1.protected_map.get(HEADER_KID)
    if not isinstance(kid, bytes) or len(kid) != KID_BYTES:
        raise Rejection(Reason.MALFORMED_STRUCTURE, "protected kid missing or not 8 bytes")
    if alg is None or isinstance(alg, bool) or not isinstance(alg, int | str):
        raise Rejection(Reason.MALFORMED_STRUCTURE, "protected alg missing")
    if alg not in SUPPORTED_ALGS:
        raise Rejection(Reason.UNSUPPORTED_ALGORITHM, "alg is not ES256 or EdDSA")
    return sign1, alg, kid


def parse_claims(payload: bytes, profile: str = "LC1") -> Credential:
    """CWT claims -> Credential; anything off gives ``MALFORMED_CLAIMS`` (spec LC1 s.2, s.3)."""
    claims, iss = decode_claims(payload)
    cti = claims.get(CLAIM_CTI)
    if not isinstance(cti, bytes) or len(cti) != CTI_BYTES:
        raise malformed("cti missing or not 16 bytes")
    nbf = claims.get(CLAIM_NBF)
    licence = claims.get(CLAIM_LICENCE)
    if not isinstance(licence, MAP_TYPES):
        raise malformed("licence data missing")
    for key in licence:
        if type(key) is not str:
            raise malformed("licence data has a key that is not text")
    status_uri, status_idx = _status(claims.get(CLAIM_STATUS))
    cnf = claims.get(CLAIM_CNF)
    get = licence.get
    typ, no, nm = get("typ"), get("no"), get("nm")
    # type() checks, not isinstance: cbor2 only ever makes plain str, and this runs for
    # every verification (about 1 us less than helper calls per field).
    if type(typ) is not str or type(no) is not str or type(nm) is not str:
        raise malformed("licence typ, no or nm missing or not text")
    if not (typ and no and nm):
        raise malformed("licence typ, no or nm is empty")
    nml = get("nml")
    if nml is not None and type(nml) is not str:
        raise malformed("licence nml is not text")
    dob, vf, vu = get("dob"), get("vf"), get("vu")
    for name, value in (("dob", dob), ("vf", vf), ("vu", vu)):
        if value is not None and (type(value) is not str or not _DATE.match(value)):
            raise malformed(f"licence {name} is not YYYY-MM-DD")
    cls, ph, ext = get("cls"), get("ph"), get("ext")
    return Credential(
        profile=profile,
        iss=iss,
        exp=_int64(claims.get(CLAIM_EXP), "exp"),
        iat=_int64(claims.get(CLAIM_IAT), "iat"),
        nbf=None if nbf is None else _int64(nbf, "nbf"),
        cti=cti,
        typ=typ,
        no=no,
        nm=nm,
        nml=nml,
        dob=dob,
        cls=() if cls is None else _text_list(cls),
        vf=vf,
        vu=vu,
        ph=None if ph is None else _photo(ph),
        ext=() if ext is None else _text_map(ext),
        status_uri=status_uri,
        status_idx=status_idx,
        holder_key=None if cnf is None else parse_cnf(cnf),
    )


def parse_cnf(cnf: Any) -> HolderKey:
    """Claim 8: ``{1: COSE_Key}``, P-256 (ES256) or Ed25519 (EdDSA) only (spec LP1 s.1)."""
    if not isinstance(cnf, MAP_TYPES) or set(cnf) != {1} or not isinstance(cnf[1], MAP_TYPES):
        raise malformed("cnf is not {1: COSE_Key}")
    key = cnf[1]
    try:
        if key.get(1) == 2 and set(key) == {1, -1, -2, -3} and key[-1] == 1:
            x, y = key[-2], key[-3]
            if not (isinstance(x, bytes) and isinstance(y, bytes) and len(x) == len(y) == 32):
                raise malformed("cnf EC2 coordinates are not 32 bytes")
            numbers = ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
            )
            return HolderKey("ES256", numbers.public_key())
        if key.get(1) == 1 and set(key) == {1, -1, -2} and key[-1] == 6:
            x = key[-2]
            if not isinstance(x, bytes) or len(x) != 32:
                raise malformed("cnf OKP key is not 32 bytes")
            return HolderKey("EdDSA", ed25519.Ed25519PublicKey.from_public_bytes(x))
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise malformed(f"cnf key invalid: {e}") from e
    raise malformed("cnf key is neither EC2 P-256 nor OKP Ed25519")


def _status(value: Any) -> tuple[str | None, int | None]:
    if value is None:
        return None, None
    entry = value.get("status_list") if isinstance(value, MAP_TYPES) else None
    if not isinstance(entry, MAP_TYPES):
        raise malformed("status claim is not {'status_list': {...}}")
    idx, uri = entry.get("idx"), entry.get("uri")
    if isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx <= INT64_MAX:
        raise malformed("status_list idx is not an unsigned integer")
    if not isinstance(uri, str):
        raise malformed("status_list uri is not text")
    return uri, idx


def _int64(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise malformed(f"{name} missing or not an integer")
    if not INT64_MIN <= value <= INT64_MAX:
        raise malformed(f"{name} outside the signed 64-bit range")
    return value


def _text_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, ARRAY_TYPES) or not all(isinstance(v, str) for v in value):
        raise malformed("licence cls is not a list of text")
    return tuple(value)


def _text_map(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, MAP_TYPES) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise malformed("licence ext is not a map of text to text")
    return tuple(value.items())


def _photo(value: Any) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, bytes) or len(value) > MAX_PHOTO_BYTES:
        raise malformed("licence ph is not a byte string of at most 2,048 bytes")
    return value


class Lc1Profile:
    name = "LC1"
    prefix = PREFIX

    def open(self, text: str) -> Opened:
        sign1, alg, kid = open_sign1(decode_base45_zlib(text, PREFIX))
        return Opened(self.name, sign1, alg, kid, parse_claims)


PROFILE = Lc1Profile()
