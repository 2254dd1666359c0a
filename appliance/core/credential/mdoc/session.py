"""The reader's side of one mdoc session (spec mdl-reader s.3.1, s.3.3) as pure code.

A session is made from one parsed engagement: a fresh EReaderKey on the EDeviceKey's curve
(never reused, dropped at ``close``), the SessionTranscript with a null (QR) handover, the
session keys, and the DeviceRequest. It then turns messages into bytes and back, with no IO:
``establishment()`` is the first message to send, ``receive(message)`` reads each
SessionData from the holder (decrypting with SKDevice and the expected counter), and
``termination()`` is the closing ``{status: 20}``. The transport moves the bytes; the
verifier (``verify_mdoc_response``) judges the DeviceResponse that ``receive`` returns.

Outcomes at this layer are reason codes, never exceptions: a ``Reply`` holds either the
decrypted DeviceResponse or the step-0 reason that ends the session.
"""

from __future__ import annotations

from typing import NamedTuple

from cryptography.hazmat.primitives.asymmetric import ec

from appliance.core.credential.mdoc import session_crypto as sc
from appliance.core.credential.mdoc.cose_key import cose_key_bytes
from appliance.core.credential.mdoc.engagement import Engagement
from appliance.core.credential.mdoc.request import ReaderAuthKey, RequestProfile, device_request
from appliance.core.errors import (
    MdocCborError,
    SessionClosed,
    SessionDataTooLarge,
    SessionDecryptError,
)
from appliance.core.reasons import Reason

STATUS_REASONS = {
    sc.STATUS_ENCRYPTION_ERROR: Reason.MDOC_HOLDER_ERROR,
    sc.STATUS_DECODING_ERROR: Reason.MDOC_HOLDER_ERROR,
    sc.STATUS_TERMINATED: Reason.MDOC_DECLINED,
}


class Reply(NamedTuple):
    """One SessionData read: the DeviceResponse, or the reason the session ended."""

    response: bytes | None
    reason: Reason | None
    # The holder ended the session with this message (status 20 beside data, or alone).
    terminated: bool = False


class ReaderSession:
    """One session's keys and counters. Made by ``start`` (live) or directly from given
    parts (the Annex D vectors, whose transcript has an NFC handover)."""

    def __init__(
        self,
        e_device_key: ec.EllipticCurvePublicKey,
        e_reader_key: ec.EllipticCurvePrivateKey,
        session_transcript_bytes: bytes,
        device_request: bytes,
        *,
        e_reader_key_bytes: bytes | None = None,
        max_response_bytes: int = sc.DEFAULT_MAX_SESSION_DATA,
    ) -> None:
        self.transcript = session_transcript_bytes
        self.device_request = device_request
        self.e_reader_key_bytes = e_reader_key_bytes or sc.embed(
            cose_key_bytes(e_reader_key.public_key())
        )
        self.max_response_bytes = max_response_bytes
        self._e_reader_key: ec.EllipticCurvePrivateKey | None = e_reader_key
        self._keys: sc.SessionKeys | None = sc.session_keys(
            e_reader_key, e_device_key, session_transcript_bytes
        )
        self._sent = 0  # messages encrypted with SKReader
        self._received = 0  # messages decrypted with SKDevice

    @classmethod
    def start(
        cls,
        engagement: Engagement,
        profile: RequestProfile = "checkpoint",
        *,
        age_threshold: int = 20,
        reader_auth: ReaderAuthKey | None = None,
        e_reader_key: ec.EllipticCurvePrivateKey | None = None,
        max_response_bytes: int = sc.DEFAULT_MAX_SESSION_DATA,
    ) -> ReaderSession:
        """A live session: a fresh EReaderKey (unless one is given, for tests), the
        transcript ``[DeviceEngagementBytes, EReaderKeyBytes, null]`` and the request."""
        curve = engagement.e_device_key.curve
        key = e_reader_key or ec.generate_private_key(curve)
        key_bytes = sc.embed(cose_key_bytes(key.public_key()))
        transcript = sc.session_transcript_bytes(engagement.device_engagement_bytes(), key_bytes)
        request = device_request(transcript, profile, age_threshold, reader_auth)
        return cls(
            engagement.e_device_key,
            key,
            transcript,
            request,
            e_reader_key_bytes=key_bytes,
            max_response_bytes=max_response_bytes,
        )

    @property
    def e_reader_key(self) -> ec.EllipticCurvePrivateKey:
        """EReaderKey, for the verifier's EMacKey; gone after ``close``."""
        if self._e_reader_key is None:
            raise SessionClosed("session closed")
        return self._e_reader_key

    def establishment(self) -> bytes:
        """SessionEstablishment: EReaderKeyBytes and the DeviceRequest under SKReader."""
        data = sc.encrypt(
            self._session_keys().sk_reader, sc.READER, self._next_sent(), self.device_request
        )
        return sc.encode_session_establishment(self.e_reader_key_bytes, data)

    def receive(self, message: bytes) -> Reply:
        """One SessionData from the holder -> the DeviceResponse or a step-0 reason."""
        keys = self._session_keys()
        try:
            parsed = sc.parse_session_data(message, self.max_response_bytes)
        except SessionDataTooLarge:
            return Reply(None, Reason.TOO_LARGE)
        except MdocCborError:
            # Spec s.1: the SessionData layer fails as TOO_LARGE or SESSION_DECRYPT_FAILED.
            return Reply(None, Reason.MDOC_SESSION_DECRYPT_FAILED)
        terminated = parsed.status == sc.STATUS_TERMINATED
        if parsed.status is not None and not terminated:
            return Reply(None, STATUS_REASONS.get(parsed.status, Reason.MDOC_HOLDER_ERROR), True)
        if parsed.data is None:
            return Reply(None, Reason.MDOC_DECLINED, True)
        self._received += 1
        try:
            plain = sc.decrypt(keys.sk_device, sc.DEVICE, self._received, parsed.data)
        except (SessionDecryptError, ValueError):
            return Reply(None, Reason.MDOC_SESSION_DECRYPT_FAILED, terminated)
        return Reply(plain, None, terminated)

    @staticmethod
    def termination() -> bytes:
        """SessionData ``{status: 20}``: session termination (18013-5 s.9.1.1.4)."""
        return sc.encode_session_data(status=sc.STATUS_TERMINATED)

    def close(self) -> None:
        """Forget EReaderKey and the session keys (s.3.1: erased when the session ends)."""
        self._e_reader_key = None
        self._keys = None

    def _session_keys(self) -> sc.SessionKeys:
        if self._keys is None:
            raise SessionClosed("session closed")
        return self._keys

    def _next_sent(self) -> int:
        self._sent += 1
        return self._sent
