"""mdoc session cryptography (ISO 18013-5 s.9.1.1, spec mdl-reader s.3.3 and s.4 step 7).

Pure functions of bytes and keys, no IO: the live session (BLE reader, holder simulator) and
the offline verifier (``appliance mdoc verify --session-data``) use the same ones.

- ``SessionTranscriptBytes = #6.24(bstr .cbor [DeviceEngagementBytes, EReaderKeyBytes, Handover])``
- ``SKReader``/``SKDevice = HKDF-SHA256(ECDH(EReaderKey, EDeviceKey), SHA-256(transcript),
  "SKReader"/"SKDevice", 32)``; AES-256-GCM, empty AAD, IV = 8-byte identifier (0 reader,
  1 mdoc) || 4-byte big-endian counter from 1 per direction.
- ``EMacKey = HKDF-SHA256(ECDH(EReaderKey, SDeviceKey), SHA-256(transcript), "EMacKey", 32)``
  (the same on the holder's side with the other halves of the two key pairs).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, NamedTuple

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from appliance.core.credential.mdoc.cbor import Embedded, decode, decode_embedded
from appliance.core.credential.mdoc.cose_key import public_key_from_cose
from appliance.core.errors import (
    CoseKeyError,
    MdocCborError,
    SessionDataTooLarge,
    SessionDecryptError,
)

READER, DEVICE = 0, 1  # the 8-byte IV identifiers: messages from the reader, from the mdoc
MAX_COUNTER = 2**32 - 1
DEFAULT_MAX_SESSION_DATA = 256 * 1024  # mdoc.max_response_bytes (spec s.1)
STATUS_ENCRYPTION_ERROR, STATUS_DECODING_ERROR, STATUS_TERMINATED = 10, 11, 20


class SessionKeys(NamedTuple):
    sk_reader: bytes
    sk_device: bytes


class SessionData(NamedTuple):
    """A decoded SessionData: ``data`` (ciphertext) and/or ``status``."""

    data: bytes | None
    status: int | None


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """RFC 5869 HKDF-SHA256 with the standard library's HMAC: the same bytes as
    cryptography's ``HKDF`` (tests compare them), a few microseconds cheaper per call."""
    if not 0 < length <= 255 * 32:
        raise ValueError("HKDF-SHA256 length out of range")
    prk = hmac.digest(salt or bytes(32), ikm, "sha256")
    okm, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.digest(prk, block + info + bytes((counter,)), "sha256")
        okm += block
    return okm[:length]


def transcript_salt(session_transcript_bytes: bytes) -> bytes:
    """SHA-256 of SessionTranscriptBytes (the ``#6.24`` form, as received or built)."""
    return hashlib.sha256(session_transcript_bytes).digest()


def ecdh(private_key: ec.EllipticCurvePrivateKey, public_key: ec.EllipticCurvePublicKey) -> bytes:
    """The shared secret (x coordinate); ``ValueError`` when the curves differ."""
    return private_key.exchange(ec.ECDH(), public_key)


def session_keys(
    private_key: ec.EllipticCurvePrivateKey,
    peer_public_key: ec.EllipticCurvePublicKey,
    session_transcript_bytes: bytes,
) -> SessionKeys:
    """SKReader and SKDevice (reader: EReaderKey.priv + EDeviceKey.pub; holder: the reverse)."""
    z = ecdh(private_key, peer_public_key)
    salt = transcript_salt(session_transcript_bytes)
    return SessionKeys(hkdf_sha256(z, salt, b"SKReader"), hkdf_sha256(z, salt, b"SKDevice"))


def emac_key(
    private_key: ec.EllipticCurvePrivateKey,
    peer_public_key: ec.EllipticCurvePublicKey,
    session_transcript_bytes: bytes,
) -> bytes:
    """EMacKey (reader: EReaderKey.priv + SDeviceKey.pub; holder: SDeviceKey.priv +
    EReaderKey.pub)."""
    z = ecdh(private_key, peer_public_key)
    return hkdf_sha256(z, transcript_salt(session_transcript_bytes), b"EMacKey")


def ble_ident(e_device_key_bytes: bytes) -> bytes:
    """The BLE Ident value (central client mode): HKDF(EDeviceKeyBytes, "BLEIdent", 16)."""
    return hkdf_sha256(e_device_key_bytes, b"", b"BLEIdent", 16)


def nonce(identifier: int, counter: int) -> bytes:
    if not 1 <= counter <= MAX_COUNTER:
        raise ValueError("message counter out of range")
    return identifier.to_bytes(8, "big") + counter.to_bytes(4, "big")


def encrypt(key: bytes, identifier: int, counter: int, plaintext: bytes) -> bytes:
    """AES-256-GCM with the 18013-5 IV, empty AAD; ciphertext || 16-byte tag."""
    return AESGCM(key).encrypt(nonce(identifier, counter), plaintext, None)


def decrypt(key: bytes, identifier: int, counter: int, ciphertext: bytes) -> bytes:
    """The plaintext, or ``SessionDecryptError`` (wrong key, counter or bytes)."""
    try:
        return AESGCM(key).decrypt(nonce(identifier, counter), ciphertext, None)
    except (InvalidTag, ValueError) as e:
        raise SessionDecryptError("session message does not decrypt") from e


def parse_session_data(message: bytes, max_bytes: int = DEFAULT_MAX_SESSION_DATA) -> SessionData:
    """SessionData ``{? "data": bstr, ? "status": uint}`` (unknown keys ignored).

    ``SessionDataTooLarge`` over ``max_bytes``; ``MdocCborError`` for anything else wrong.
    """
    if len(message) > max_bytes:
        raise SessionDataTooLarge(f"SessionData over {max_bytes} bytes")
    item = decode(message, tags=frozenset(), max_items=64)
    if not isinstance(item, dict):
        raise MdocCborError("SessionData is not a map")
    data, status = item.get("data"), item.get("status")
    if data is not None and type(data) is not bytes:
        raise MdocCborError("SessionData data is not a byte string")
    if status is not None and (type(status) is not int or status < 0):
        raise MdocCborError("SessionData status is not an unsigned integer")
    if data is None and status is None:
        raise MdocCborError("SessionData holds neither data nor status")
    return SessionData(data, status)


def encode_session_data(data: bytes | None = None, status: int | None = None) -> bytes:
    out: dict[str, Any] = {}
    if data is not None:
        out["data"] = data
    if status is not None:
        out["status"] = status
    return cbor2.dumps(out)


def encode_session_establishment(e_reader_key_bytes: bytes, data: bytes) -> bytes:
    """``{"eReaderKey": EReaderKeyBytes, "data": encrypted DeviceRequest}``; the key bytes
    are the ``#6.24`` form (as they stand in the transcript) and are written unchanged."""
    return b"\xa2\x6aeReaderKey" + e_reader_key_bytes + b"\x64data" + cbor2.dumps(data)


def embed(cbor_bytes: bytes) -> bytes:
    """``#6.24(bstr)`` around encoded CBOR, minimal heads: the ``...Bytes`` form."""
    return b"\xd8\x18" + _bstr_head(len(cbor_bytes)) + cbor_bytes


def session_transcript_bytes(
    device_engagement_bytes: bytes, e_reader_key_bytes: bytes, handover: Any = None
) -> bytes:
    """SessionTranscriptBytes from the two ``#6.24`` items as they are (QR handover: null)."""
    handover_bytes = cbor2.dumps(handover)
    body = b"\x83" + device_engagement_bytes + e_reader_key_bytes + handover_bytes
    return embed(body)


class TranscriptParts(NamedTuple):
    device_engagement: Embedded  # DeviceEngagementBytes, raw as received
    e_reader_key: Embedded  # EReaderKeyBytes
    handover: Any


def transcript_parts(session_transcript_bytes: bytes) -> TranscriptParts:
    """The three parts of SessionTranscriptBytes; ``MdocCborError`` if it is not one."""
    outer = decode(session_transcript_bytes)
    inner = decode_embedded(outer)
    if not isinstance(inner, list) or len(inner) != 3:
        raise MdocCborError("SessionTranscript is not an array of three")
    engagement, reader_key, handover = inner
    if not isinstance(engagement, Embedded) or not isinstance(reader_key, Embedded):
        raise MdocCborError("SessionTranscript items are not #6.24 byte strings")
    return TranscriptParts(engagement, reader_key, handover)


def e_device_key_from_engagement(device_engagement: bytes) -> ec.EllipticCurvePublicKey:
    """EDeviceKey from DeviceEngagement CBOR (``1: [cipher suite 1, EDeviceKeyBytes]``).

    ``MdocCborError``/``CoseKeyError`` for a malformed engagement, ``UnsupportedCurve``.
    """
    item = decode(device_engagement)
    security = item.get(1) if isinstance(item, dict) else None
    if not isinstance(security, list) or len(security) < 2 or security[0] != 1:
        raise MdocCborError("DeviceEngagement security is not [1, EDeviceKeyBytes]")
    try:
        return public_key_from_cose(decode_embedded(security[1], tags=frozenset()))
    except CoseKeyError as e:
        raise MdocCborError(str(e)) from e


def _bstr_head(n: int) -> bytes:
    if n < 24:
        return bytes((0x40 | n,))
    if n < 0x100:
        return bytes((0x58, n))
    if n < 0x10000:
        return b"\x59" + n.to_bytes(2, "big")
    return b"\x5a" + n.to_bytes(4, "big")
