"""COSE signature checks with cryptography: one function for issuer and holder keys."""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_SHA256 = hashes.SHA256()
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def verify_signature(alg: str, public_key: Any, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` (COSE form: raw r||s for ES256) verifies; never raises."""
    try:
        if alg == "EdDSA":
            public_key.verify(signature, message)
        elif alg == "ES256":
            if len(signature) != 64:
                return False
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            public_key.verify(der, message, _ECDSA_SHA256)
        elif alg == "PS256":
            public_key.verify(signature, message, _PSS, _SHA256)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
