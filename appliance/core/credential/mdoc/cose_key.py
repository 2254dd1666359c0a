"""COSE_Key (RFC 9053 s.7.1, EC2) and ECDSA (ES256/384/512) with ``cryptography``, for mdoc.

EDeviceKey, EReaderKey and SDeviceKey travel as COSE_Key maps. P-256 is a MUST, P-384 and
P-521 are done too; any other curve or key type (X25519, Ed25519, brainpool, secp256k1) is
``UnsupportedCurve``: the spec makes that UNVERIFIABLE, not FAIL (s.4 step 1.1, [D5]).
"""

from __future__ import annotations

from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from appliance.core.errors import CoseKeyError, UnsupportedCurve

KTY, CRV, X, Y = 1, -1, -2, -3
KTY_EC2 = 2
CURVES: dict[int, type[ec.EllipticCurve]] = {1: ec.SECP256R1, 2: ec.SECP384R1, 3: ec.SECP521R1}
CURVE_IDS = {"secp256r1": 1, "secp384r1": 2, "secp521r1": 3}
_COORDINATE_BYTES = {"secp256r1": 32, "secp384r1": 48, "secp521r1": 66}
# COSE ECDSA algorithms: the curve each must be used with (RFC 9053 s.2.1 SHOULD, made a
# MUST here: an ES384 header over a P-256 key is refused) and its hash.
ECDSA_ALGS: dict[int, tuple[str, ec.ECDSA]] = {
    -7: ("secp256r1", ec.ECDSA(hashes.SHA256())),
    -35: ("secp384r1", ec.ECDSA(hashes.SHA384())),
    -36: ("secp521r1", ec.ECDSA(hashes.SHA512())),
}


def public_key_from_cose(key: Any) -> ec.EllipticCurvePublicKey:
    """A decoded COSE_Key map -> an EC public key on P-256/384/521; the point is checked."""
    if not isinstance(key, dict):
        raise CoseKeyError("COSE_Key is not a map")
    kty, crv = key.get(KTY), key.get(CRV)
    if type(kty) not in (int, str) or type(crv) not in (int, str):
        raise CoseKeyError("COSE_Key kty/crv missing or of the wrong type")
    if kty != KTY_EC2 or crv not in CURVES:
        raise UnsupportedCurve(f"key type {kty!r}, curve {crv!r}")
    curve = CURVES[crv]()
    size = (curve.key_size + 7) // 8
    x, y = key.get(X), key.get(Y)
    if type(x) is not bytes or len(x) != size:
        raise CoseKeyError("COSE_Key x is not a coordinate of the curve's size")
    if type(y) is bool:
        point = bytes((3 if y else 2,)) + x
    elif type(y) is bytes and len(y) == size:
        point = b"\x04" + x + y
    else:
        raise CoseKeyError("COSE_Key y is not a coordinate or a sign bit")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    except ValueError as e:
        raise CoseKeyError("COSE_Key point is not on its curve") from e


def cose_key_bytes(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """The COSE_Key map of an EC public key, CBOR-encoded ({1: 2, -1: crv, -2: x, -3: y})."""
    crv = CURVE_IDS.get(public_key.curve.name)
    if crv is None:
        raise UnsupportedCurve(public_key.curve.name)
    numbers = public_key.public_numbers()
    size = (public_key.curve.key_size + 7) // 8
    return cbor2.dumps(
        {
            KTY: KTY_EC2,
            CRV: crv,
            X: numbers.x.to_bytes(size, "big"),
            Y: numbers.y.to_bytes(size, "big"),
        }
    )


def ecdsa_alg_fits(alg: Any, public_key: Any) -> bool:
    """Whether COSE ``alg`` is ES256/384/512 on the curve of ``public_key``."""
    entry = ECDSA_ALGS.get(alg) if type(alg) is int else None
    return (
        entry is not None
        and isinstance(public_key, ec.EllipticCurvePublicKey)
        and public_key.curve.name == entry[0]
    )


def verify_ecdsa(alg: int, public_key: Any, message: bytes, signature: bytes) -> bool:
    """A COSE ECDSA signature (raw r||s, not DER) over ``message``; never raises."""
    if not ecdsa_alg_fits(alg, public_key):
        return False
    size = _COORDINATE_BYTES[ECDSA_ALGS[alg][0]]
    if len(signature) != 2 * size:
        return False
    der = encode_dss_signature(
        int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
    )
    try:
        public_key.verify(der, message, ECDSA_ALGS[alg][1])
    except (InvalidSignature, ValueError):
        return False
    return True
