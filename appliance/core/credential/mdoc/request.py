"""The DeviceRequest the reader sends (spec mdl-reader s.3.4), with optional readerAuth.

The profiles and ItemsRequest are ``items_request``'s (the verifier reads the same ones back);
this module adds what only the live reader does: the DeviceRequest around one DocRequest and,
with a reader key ([D4]), ``readerAuth``: COSE_Sign1 ES256, x5chain = the reader certificate,
detached payload, signed over ReaderAuthenticationBytes of this session's transcript.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from appliance.core.credential.mdoc.items_request import (
    DEFAULT_AGE_THRESHOLD,
    encode_items_request,
    profile_request,
    reader_authentication_bytes,
)

RequestProfile = Literal["checkpoint", "age"]
ALG_ES256 = -7
HEADER_ALG, HEADER_X5CHAIN = 1, 33


class ReaderAuthKey(NamedTuple):
    """The device's reader certificate (DER, EKU 1.0.18013.5.1.6) and its P-256 key."""

    certificate: bytes
    private_key: ec.EllipticCurvePrivateKey


def device_request(
    session_transcript_bytes: bytes,
    profile: RequestProfile = "checkpoint",
    age_threshold: int = DEFAULT_AGE_THRESHOLD,
    reader_auth: ReaderAuthKey | None = None,
) -> bytes:
    """DeviceRequest 1.0 with one DocRequest for the profile's elements (intent to retain
    false); with ``reader_auth``, a detached ES256 readerAuth bound to the transcript."""
    items = encode_items_request(profile_request(profile, age_threshold))
    doc_request = b"\xa1\x6citemsRequest" + items
    if reader_auth is not None:
        signed = sign_reader_auth(reader_auth, session_transcript_bytes, items)
        doc_request = b"\xa2\x6citemsRequest" + items + b"\x6areaderAuth" + signed
    return b"\xa2\x67version\x631.0\x6bdocRequests\x81" + doc_request


def sign_reader_auth(
    key: ReaderAuthKey, session_transcript_bytes: bytes, items_request_bytes: bytes
) -> bytes:
    """readerAuth ``[<<{1: -7}>>, {33: cert}, null, r||s]`` over ReaderAuthenticationBytes."""
    protected = cbor2.dumps({HEADER_ALG: ALG_ES256})
    payload = reader_authentication_bytes(session_transcript_bytes, items_request_bytes)
    to_sign = cbor2.dumps(["Signature1", protected, b"", payload])
    r, s = decode_dss_signature(key.private_key.sign(to_sign, ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return cbor2.dumps([protected, {HEADER_X5CHAIN: key.certificate}, None, signature])
