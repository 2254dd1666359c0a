"""Holder side of LP1: the reference a wallet app follows, and what our demo and tests use.

A phone keeps its key in secure hardware; this reference keeps it in a 0600 PEM file.
"""

from __future__ import annotations

import hashlib
import os

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from appliance.core.credential.cose import HEADER_ALG, encode_sign1
from appliance.core.credential.lc1 import PREFIX as LC1_PREFIX
from appliance.core.credential.lp1 import KEY_HASH, KEY_NONCE, KEY_TIME, KEY_TYPE, PAYLOAD_TYPE
from appliance.core.credential.lp1 import PREFIX as LP1_PREFIX
from appliance.core.credential.qrtext import decode_base45_zlib
from appliance.core.errors import PresentationError, Rejection
from appliance.tools.issuer import ALG_IDS, SigningKey, qr_text


def cose_key(public_key: object) -> dict[int, object]:
    """The COSE_Key for claim ``cnf`` (spec LP1 s.1)."""
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        from cryptography.hazmat.primitives import serialization

        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {1: 1, -1: 6, -2: raw}
    if isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name == "secp256r1":
        numbers = public_key.public_numbers()
        return {1: 2, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
    raise PresentationError("holder keys must be P-256 or Ed25519")


def credential_bytes(lc1_text: str) -> bytes:
    """The issuer's COSE_Sign1 bytes inside an ``LC1:`` text."""
    if not lc1_text.startswith(LC1_PREFIX):
        raise PresentationError("the credential must be an LC1: text")
    try:
        return decode_base45_zlib(lc1_text.strip(), LC1_PREFIX)
    except Rejection as e:
        raise PresentationError(f"the credential text does not decode: {e}") from e


def check_bound_to(lc1_text: str, key: SigningKey) -> None:
    """Refuse a key that is not the credential's ``cnf`` key (spec LP1 s.1).

    A verifier would FAIL such a presentation anyway; saying so here keeps a wallet or an
    operator from handing out an LP1 signed with, say, the issuer's key. The signature is
    not checked: the holder tool has no trust data, only the text it was given.
    """
    from appliance.core.credential import lc1
    from appliance.core.errors import Rejection

    try:
        sign1, _, _ = lc1.open_sign1(credential_bytes(lc1_text))
        bound = lc1.parse_claims(sign1.payload).holder_key
    except Rejection as e:
        raise PresentationError(
            f"the credential is not a readable LC1 credential: {e.reason}"
        ) from e
    if bound is None:
        raise PresentationError(
            "the credential has no holder key (cnf): "
            "issue it with 'appliance issuer issue --holder-key KEY.pub'"
        )
    if cose_key(bound.public_key) != cose_key(key.private_key.public_key()):
        raise PresentationError("this key is not the credential's holder key (cnf)")


def present(lc1_text: str, key: SigningKey, at: int, nonce: bytes | None = None) -> str:
    """A fresh ``LP1:`` text signed by the holder key at time ``at``."""
    credential = credential_bytes(lc1_text)
    payload = cbor2.dumps(
        {
            KEY_TYPE: PAYLOAD_TYPE,
            KEY_TIME: int(at),
            KEY_HASH: hashlib.sha256(credential).digest(),
            KEY_NONCE: nonce if nonce is not None else os.urandom(12),
        }
    )
    presentation = encode_sign1({HEADER_ALG: ALG_IDS[key.alg]}, payload, key.sign)
    return qr_text(LP1_PREFIX, cbor2.dumps([credential, presentation]))
