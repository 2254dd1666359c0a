"""The reader's session state machine (spec mdl-reader s.3.1, s.3.3, s.3.4): V1 and V3 of
s.9 through ``ReaderSession``, and a live round trip with the holder's side."""

from __future__ import annotations

import datetime
import uuid

import cbor2
import pytest
from annexd import AnnexD
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.core.credential.mdoc import session_crypto as sc
from appliance.core.credential.mdoc.cbor import decode, decode_embedded
from appliance.core.credential.mdoc.engagement import parse_engagement
from appliance.core.credential.mdoc.items_request import (
    CHECKPOINT_ELEMENTS,
    reader_authentication_bytes,
)
from appliance.core.credential.mdoc.request import ReaderAuthKey
from appliance.core.credential.mdoc.session import ReaderSession
from appliance.core.errors import SessionClosed
from appliance.core.reasons import Reason
from appliance.tools.holder_mdoc import HolderSession, device_engagement, engagement_text

SERVICE = uuid.uuid4().bytes


def _annexd_session(annexd: AnnexD, reader_key: str = "e_reader_key") -> ReaderSession:
    transcript = annexd.bytes("session_transcript_bytes")
    parts = sc.transcript_parts(transcript)
    e_device = sc.e_device_key_from_engagement(parts.device_engagement.data)
    key = (
        annexd.private_key(reader_key)
        if reader_key == "e_reader_key"
        else ec.generate_private_key(ec.SECP256R1())
    )
    return ReaderSession(
        e_device,
        key,
        transcript,
        annexd.bytes("device_request"),
        e_reader_key_bytes=parts.e_reader_key.raw,
    )


def _verify_es256(public_key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> None:
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    public_key.verify(der, data, ec.ECDSA(hashes.SHA256()))


def test_v1_establishment_is_annex_d_byte_for_byte(annexd: AnnexD) -> None:
    session = _annexd_session(annexd)
    assert session.establishment() == annexd.bytes("session_establishment")


def test_v1_session_data_gives_the_device_response_then_counter_2_fails(annexd: AnnexD) -> None:
    session = _annexd_session(annexd)
    reply = session.receive(annexd.bytes("session_data"))
    assert reply == (annexd.bytes("device_response"), None, False)
    # The same message again is read with counter 2: a replay inside the session fails.
    again = session.receive(annexd.bytes("session_data"))
    assert again.response is None and again.reason is Reason.MDOC_SESSION_DECRYPT_FAILED


def test_v1_wrong_reader_key_fails_to_decrypt(annexd: AnnexD) -> None:
    session = _annexd_session(annexd, reader_key="another")
    reply = session.receive(annexd.bytes("session_data"))
    assert reply.reason is Reason.MDOC_SESSION_DECRYPT_FAILED


def test_v1_termination_is_annex_d(annexd: AnnexD) -> None:
    assert ReaderSession.termination() == annexd.bytes("session_termination")


def test_v3_annex_d_reader_auth_verifies_over_our_reader_authentication(annexd: AnnexD) -> None:
    request = decode(annexd.bytes("device_request"))
    doc_request = request["docRequests"][0]
    protected, _, payload, signature = doc_request["readerAuth"]
    assert payload is None
    detached = reader_authentication_bytes(
        annexd.bytes("session_transcript_bytes"), doc_request["itemsRequest"].raw
    )
    certificate = x509.load_der_x509_certificate(annexd.bytes("reader_cert.der"))
    to_sign = cbor2.dumps(["Signature1", protected, b"", detached])
    _verify_es256(certificate.public_key(), signature, to_sign)  # type: ignore[arg-type]


def _holder(curve: ec.EllipticCurve | None = None) -> tuple[HolderSession, str]:
    key = ec.generate_private_key(curve or ec.SECP256R1())
    cbor = device_engagement(key.public_key(), peripheral_uuid=SERVICE)
    return HolderSession(key, cbor), engagement_text(cbor)


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()])
def test_live_round_trip(curve: ec.EllipticCurve) -> None:
    holder, text = _holder(curve)
    session = ReaderSession.start(parse_engagement(text), "checkpoint")
    assert session.e_reader_key.curve.name == curve.name
    request = holder.open(session.establishment())
    assert request == session.device_request and holder.transcript == session.transcript
    items = decode_embedded(decode(request)["docRequests"][0]["itemsRequest"])
    elements = items["nameSpaces"]["org.iso.18013.5.1"]
    assert set(elements) == set(CHECKPOINT_ELEMENTS) and not any(elements.values())
    reply = session.receive(holder.seal(b"\xa0"))
    assert reply == (b"\xa0", None, False)


def test_age_profile_asks_one_element() -> None:
    holder, text = _holder()
    session = ReaderSession.start(parse_engagement(text), "age", age_threshold=18)
    items = decode_embedded(
        decode(holder.open(session.establishment()))["docRequests"][0]["itemsRequest"]
    )
    assert items["nameSpaces"] == {"org.iso.18013.5.1": {"age_over_18": False}}


def test_each_session_has_a_fresh_reader_key() -> None:
    _, text = _holder()
    engagement = parse_engagement(text)
    one, two = ReaderSession.start(engagement), ReaderSession.start(engagement)
    assert one.e_reader_key_bytes != two.e_reader_key_bytes
    assert one.transcript != two.transcript


def test_transcript_embeds_the_engagement_as_received() -> None:
    _, text = _holder()
    engagement = parse_engagement(text)
    session = ReaderSession.start(engagement)
    parts = sc.transcript_parts(session.transcript)
    assert parts.device_engagement.data == engagement.device_engagement
    assert parts.e_reader_key.raw == session.e_reader_key_bytes and parts.handover is None


def _reader_auth_key() -> ReaderAuthKey:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reader")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return ReaderAuthKey(cert.public_bytes(Encoding.DER), key)


def test_reader_auth_is_sent_and_verifies_over_this_session() -> None:
    holder, text = _holder()
    auth = _reader_auth_key()
    session = ReaderSession.start(parse_engagement(text), reader_auth=auth)
    doc_request = decode(holder.open(session.establishment()))["docRequests"][0]
    protected, unprotected, payload, signature = doc_request["readerAuth"]
    assert decode(protected) == {1: -7} and unprotected == {33: auth.certificate}
    assert payload is None
    detached = reader_authentication_bytes(session.transcript, doc_request["itemsRequest"].raw)
    to_sign = cbor2.dumps(["Signature1", protected, b"", detached])
    _verify_es256(auth.private_key.public_key(), signature, to_sign)
    other = reader_authentication_bytes(
        ReaderSession.start(parse_engagement(text)).transcript, doc_request["itemsRequest"].raw
    )
    with pytest.raises(InvalidSignature):
        _verify_es256(
            auth.private_key.public_key(),
            signature,
            cbor2.dumps(["Signature1", protected, b"", other]),
        )


def _live() -> tuple[ReaderSession, HolderSession]:
    holder, text = _holder()
    session = ReaderSession.start(parse_engagement(text), max_response_bytes=4096)
    holder.open(session.establishment())
    return session, holder


@pytest.mark.parametrize(
    ("message", "reason", "terminated"),
    [
        (sc.encode_session_data(status=10), Reason.MDOC_HOLDER_ERROR, True),
        (sc.encode_session_data(status=11), Reason.MDOC_HOLDER_ERROR, True),
        (sc.encode_session_data(status=20), Reason.MDOC_DECLINED, True),
        (sc.encode_session_data(status=5), Reason.MDOC_HOLDER_ERROR, True),
        (b"\xff not cbor", Reason.MDOC_SESSION_DECRYPT_FAILED, False),
        (cbor2.dumps({"other": 1}), Reason.MDOC_SESSION_DECRYPT_FAILED, False),
        (cbor2.dumps({"data": "text"}), Reason.MDOC_SESSION_DECRYPT_FAILED, False),
        (sc.encode_session_data(data=bytes(5000)), Reason.TOO_LARGE, False),
        (sc.encode_session_data(data=bytes(100)), Reason.MDOC_SESSION_DECRYPT_FAILED, False),
    ],
)
def test_replies_without_a_response(message: bytes, reason: Reason, terminated: bool) -> None:
    session, _ = _live()
    assert session.receive(message) == (None, reason, terminated)


def test_wrong_counter_from_the_holder() -> None:
    session, holder = _live()
    assert session.receive(holder.seal(b"\xa0", counter=2)).reason is (
        Reason.MDOC_SESSION_DECRYPT_FAILED
    )


def test_data_with_status_20_is_a_response_and_the_end() -> None:
    session, holder = _live()
    assert session.receive(holder.seal(b"\xa0", status=20)) == (b"\xa0", None, True)


def test_close_forgets_the_keys() -> None:
    session, holder = _live()
    session.close()
    with pytest.raises(SessionClosed):
        session.e_reader_key  # noqa: B018
    with pytest.raises(SessionClosed):
        session.receive(holder.seal(b"\xa0"))


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=600),
        st.builds(
            lambda d, s: sc.encode_session_data(data=d, status=s),
            st.one_of(st.none(), st.binary(max_size=64)),
            st.one_of(st.none(), st.integers(0, 2**32)),
        ),
    )
)
def test_any_holder_message_gives_a_reply_never_an_exception(message: bytes) -> None:
    session, holder = _live()
    reply = session.receive(message)
    assert (reply.response is None) != (reply.reason is None)
    # The session is still usable: the real answer (counter 2 if one was consumed) is read
    # or refused with a reason, never raises.
    assert session.receive(holder.seal(b"\xa0")).reason in (
        None,
        Reason.MDOC_SESSION_DECRYPT_FAILED,
    )
