"""The phone's side of an mdoc session, for the holder simulator of tests and the demo.

A wallet shows a QR device engagement, decrypts the reader's SessionEstablishment and answers
with a DeviceResponse under SKDevice. This module is that protocol as plain functions and one
``HolderSession`` class, with the misbehaviours a live reader must survive (spec mdl-reader
s.9 and issue 23) chosen by ``Misbehaviour``; ``holder_ble`` carries it over Bumble's GATT.
It never runs in the kiosk: a real phone plays this part there.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.core.credential.mdoc import session_crypto as sc
from appliance.core.credential.mdoc.cbor import Embedded, decode
from appliance.core.credential.mdoc.cose_key import cose_key_bytes, public_key_from_cose
from appliance.core.credential.mdoc.engagement import (
    BLE_CENTRAL_CLIENT,
    BLE_CENTRAL_UUID,
    BLE_PERIPHERAL_SERVER,
    BLE_PERIPHERAL_UUID,
    RETRIEVAL_BLE,
    RETRIEVAL_BLE_VERSION,
    SCHEME,
)

# The wallet itself: (DeviceRequest, SessionTranscriptBytes, EReaderKey public) -> the
# DeviceResponse CBOR (its deviceMac needs the transcript and the reader's key).
Wallet = Callable[[bytes, bytes, ec.EllipticCurvePublicKey], bytes]


class Misbehaviour(StrEnum):
    NONE = "none"
    DRIP = "drip"  # every chunk after ``delay_s``
    STALL = "stall"  # reads the request, never answers
    STALL_MID = "stall_mid"  # half the response, then silence
    DISCONNECT_MID = "disconnect_mid"  # half the response, then drops the link
    DISCONNECT_AFTER = "disconnect_after"  # the whole response, then drops the link at once
    OVERSIZED = "oversized"  # a SessionData far above the reader's limit
    MALFORMED = "malformed"  # SessionData that is not CBOR
    BAD_CHUNK = "bad_chunk"  # a chunk whose first byte is neither 0x00 nor 0x01
    WRONG_COUNTER = "wrong_counter"  # encrypted with counter 2
    STATUS_10 = "status_10"
    STATUS_11 = "status_11"
    STATUS_20 = "status_20"
    REPLAY = "replay"  # a DeviceResponse made for another session, sealed for this one
    REPLAY_SEALED = "replay_sealed"  # another session's SessionData, bytes unchanged
    WRONG_SERVICE = "wrong_service"  # advertises the engagement's UUID, serves another


@dataclass(frozen=True)
class Behaviour:
    misbehaviour: Misbehaviour = Misbehaviour.NONE
    delay_s: float = 0.0  # DRIP: pause before each chunk
    mtu: int = 515  # the largest ATT MTU the phone accepts (23: the BLE minimum)
    oversized_bytes: int = 300_000


def device_engagement(
    e_device_key: ec.EllipticCurvePublicKey,
    *,
    peripheral_uuid: bytes | None = None,
    central_uuid: bytes | None = None,
    version: str = "1.0",
) -> bytes:
    """DeviceEngagement CBOR offering BLE in the modes whose UUID is given."""
    options: dict[int, object] = {
        BLE_PERIPHERAL_SERVER: peripheral_uuid is not None,
        BLE_CENTRAL_CLIENT: central_uuid is not None,
    }
    if peripheral_uuid is not None:
        options[BLE_PERIPHERAL_UUID] = peripheral_uuid
    if central_uuid is not None:
        options[BLE_CENTRAL_UUID] = central_uuid
    key_bytes = cbor2.CBORTag(24, cose_key_bytes(e_device_key))
    return cbor2.dumps(
        {0: version, 1: [1, key_bytes], 2: [[RETRIEVAL_BLE, RETRIEVAL_BLE_VERSION, options]]}
    )


def engagement_text(device_engagement_cbor: bytes) -> str:
    """The QR text: ``mdoc:`` + base64url without padding."""
    return SCHEME + base64.urlsafe_b64encode(device_engagement_cbor).rstrip(b"=").decode()


class HolderSession:
    """One session on the phone: EDeviceKey, the engagement it showed, and the counters."""

    def __init__(self, e_device_key: ec.EllipticCurvePrivateKey, engagement_cbor: bytes) -> None:
        self.e_device_key = e_device_key
        self.engagement_cbor = engagement_cbor
        self.transcript: bytes | None = None
        self.e_reader_key: ec.EllipticCurvePublicKey | None = None
        self._keys: sc.SessionKeys | None = None
        self._sent = 0

    def open(self, establishment: bytes) -> bytes:
        """SessionEstablishment -> the DeviceRequest (raises on anything wrong)."""
        message = decode(establishment)
        reader_key = message.get("eReaderKey") if isinstance(message, dict) else None
        if not isinstance(reader_key, Embedded) or type(message.get("data")) is not bytes:
            raise ValueError("not a SessionEstablishment")
        self.e_reader_key = public_key_from_cose(decode(reader_key.data))
        self.transcript = sc.session_transcript_bytes(
            sc.embed(self.engagement_cbor), reader_key.raw
        )
        self._keys = sc.session_keys(self.e_device_key, self.e_reader_key, self.transcript)
        return sc.decrypt(self._keys.sk_reader, sc.READER, 1, message["data"])

    def seal(
        self, device_response: bytes, *, counter: int | None = None, status: int | None = None
    ) -> bytes:
        """SessionData ``{data}`` (optionally with ``status``) under SKDevice."""
        if self._keys is None:
            raise ValueError("no session yet")
        self._sent += 1
        data = sc.encrypt(self._keys.sk_device, sc.DEVICE, counter or self._sent, device_response)
        return sc.encode_session_data(data=data, status=status)


def answer(
    session: HolderSession,
    establishment: bytes,
    wallet: Wallet,
    behaviour: Behaviour,
    replay: tuple[bytes, bytes] | None = None,
) -> tuple[bytes | None, bytes | None]:
    """(the SessionData the phone sends for ``establishment`` under ``behaviour``, or None
    when it never answers; the DeviceResponse inside it, if any). ``replay``: the
    (DeviceResponse, SessionData) of another session, for the replay misbehaviours."""
    request = session.open(establishment)
    kind = behaviour.misbehaviour
    if kind is Misbehaviour.STALL:
        return None, None
    if kind in (Misbehaviour.STATUS_10, Misbehaviour.STATUS_11, Misbehaviour.STATUS_20):
        return sc.encode_session_data(status=int(kind.value.rsplit("_", 1)[1])), None
    if kind is Misbehaviour.MALFORMED:
        return b"\xff\x00 not cbor", None
    if kind is Misbehaviour.OVERSIZED:
        return sc.encode_session_data(data=bytes(behaviour.oversized_bytes)), None
    if kind is Misbehaviour.REPLAY_SEALED and replay is not None:
        return replay[1], None
    if kind is Misbehaviour.REPLAY and replay is not None:
        return session.seal(replay[0]), replay[0]
    assert session.transcript is not None and session.e_reader_key is not None
    response = wallet(request, session.transcript, session.e_reader_key)
    if kind is Misbehaviour.WRONG_COUNTER:
        return session.seal(response, counter=2), response
    return session.seal(response), response
