"""A withdrawn mdoc document signer stays withdrawn whatever the bytes of its certificate.

Attack (found by the bit-flip property of tests/mdoc/test_mdoc_properties.py): the holder
rewrites the DS certificate in issuerAuth's x5chain with another BER/DER spelling of the same
certificate (the signature BIT STRING's unused-bits byte 0x00 -> 0x01). cryptography accepts
it and the signature still verifies (TBS and signature value unchanged), but its SHA-256 is
no longer the one in ``revoked.mdoc_ds_sha256``: the revoked signer PASSed. Before the fix:
PASS OK; after: FAIL (the certificate is not in DER).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mdoc"))

from mdoc_cases import World

from appliance.core.reasons import Outcome, Reason


def _respelled(der: bytes) -> bytes:
    """The same certificate with the signature BIT STRING's unused-bits byte set to 1."""
    from cryptography import x509

    signature = x509.load_der_x509_certificate(der).signature
    at = len(der) - len(signature) - 3  # 03 <length> 00 <signature>
    assert der[at : at + 3] == bytes((0x03, len(signature) + 1, 0x00))
    return der[: at + 2] + b"\x01" + der[at + 3 :]


def test_respelled_revoked_ds_certificate_does_not_pass() -> None:
    world = World()
    original = world.signer().der
    response = world.response()
    respelled = response.replace(original, _respelled(original))
    assert respelled != response
    trust = world.trust(revoked={"mdoc_ds_sha256": [hashlib.sha256(original).hexdigest()]})
    assert world.verify(response, trust=trust).verdict.reason is Reason.MDOC_DS_REVOKED
    verdict = world.verify(respelled, trust=trust).verdict
    assert verdict.outcome is Outcome.FAIL
    assert verdict.reason in (Reason.MDOC_MALFORMED, Reason.MDOC_DS_REVOKED)
