"""Device authentication (spec mdl-reader s.4 step 7): what binds a response to a session.

``DeviceAuthenticationBytes = #6.24(bstr .cbor ["DeviceAuthentication", SessionTranscript,
docType, DeviceNameSpacesBytes])``, built from the transcript and DeviceNameSpacesBytes as
received. ``deviceMac`` is a detached COSE_Mac0 (alg 5, HMAC 256/256) under EMacKey;
``deviceSignature`` a detached COSE_Sign1 with SDeviceKey. A copied response fails here,
because EMacKey and the transcript come from this session's EReaderKey.
"""

from __future__ import annotations

import hmac
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.core.credential.mdoc.cbor import Embedded, decode, embedded_content
from appliance.core.credential.mdoc.cose_key import verify_ecdsa
from appliance.core.credential.mdoc.response import CoseMessage, Document, malformed
from appliance.core.credential.mdoc.session_crypto import emac_key, embed

ALG_HMAC_256 = 5


def device_authentication_bytes(
    session_transcript_bytes: bytes, doc_type: str, device_name_spaces_bytes: bytes
) -> bytes:
    content = embedded_content(session_transcript_bytes)
    if content is None:
        transcript = decode(session_transcript_bytes)
        if not isinstance(transcript, Embedded):
            raise malformed("SessionTranscriptBytes is not #6.24(bstr)")
        content = transcript.data
    return embed(
        b"\x84\x74DeviceAuthentication" + content + cbor2.dumps(doc_type) + device_name_spaces_bytes
    )


def mac0_structure(protected: bytes, payload: bytes) -> bytes:
    return b"\x84\x64MAC0" + cbor2.dumps(protected) + b"\x40" + cbor2.dumps(payload)


def sig1_structure(protected: bytes, payload: bytes) -> bytes:
    return b"\x84\x6aSignature1" + cbor2.dumps(protected) + b"\x40" + cbor2.dumps(payload)


def mac_tag(key: bytes, protected: bytes, payload: bytes) -> bytes:
    return hmac.digest(key, mac0_structure(protected, payload), "sha256")


def device_auth_kind(document: Document) -> str | None:
    """``mac`` or ``signature`` when exactly one is present, else None."""
    if (document.device_mac is None) == (document.device_signature is None):
        return None
    return "mac" if document.device_mac is not None else "signature"


def device_auth_ok(
    document: Document,
    device_key: ec.EllipticCurvePublicKey,
    session_transcript_bytes: bytes,
    e_reader_key: Any,
) -> bool:
    """Whether the one device authentication present verifies; never raises on bad input
    beyond ``Rejection(MDOC_MALFORMED)`` for a transcript that is not ``#6.24``."""
    kind = device_auth_kind(document)
    if kind is None:
        return False
    payload = device_authentication_bytes(
        session_transcript_bytes, document.doc_type, document.device_name_spaces.raw
    )
    if kind == "signature":
        sig = document.device_signature
        assert sig is not None
        return _detached(sig) and verify_ecdsa(
            sig.alg, device_key, sig1_structure(sig.protected, payload), sig.tag
        )
    mac = document.device_mac
    assert mac is not None
    if not _detached(mac) or mac.alg != ALG_HMAC_256 or len(mac.tag) != 32:
        return False
    if (
        not isinstance(e_reader_key, ec.EllipticCurvePrivateKey)
        or e_reader_key.curve.name != device_key.curve.name
    ):
        return False
    key = emac_key(e_reader_key, device_key, session_transcript_bytes)
    return hmac.compare_digest(mac_tag(key, mac.protected, payload), mac.tag)


def _detached(message: CoseMessage) -> bool:
    return message.payload is None
