"""V1 (spec mdl-reader s.9): session keys, SessionEstablishment and SessionData of Annex D."""

from __future__ import annotations

import pytest
from annexd import AnnexD
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.core.credential.mdoc import session_crypto as sc
from appliance.core.credential.mdoc.cbor import decode
from appliance.core.credential.mdoc.cose_key import cose_key_bytes
from appliance.core.errors import SessionDataTooLarge, SessionDecryptError


def _keys(annexd: AnnexD) -> sc.SessionKeys:
    transcript = annexd.bytes("session_transcript_bytes")
    engagement = sc.transcript_parts(transcript).device_engagement.data
    e_device = sc.e_device_key_from_engagement(engagement)
    return sc.session_keys(annexd.private_key("e_reader_key"), e_device, transcript)


def test_session_keys_are_those_of_annex_d(annexd: AnnexD) -> None:
    keys = _keys(annexd)
    assert keys.sk_reader.hex().startswith("58d277d8") and keys.sk_reader.hex().endswith("dfc9")
    assert keys.sk_device.hex().startswith("81d170e0") and keys.sk_device.hex().endswith("f409")
    # The holder derives the same keys from its half of each pair.
    transcript = annexd.bytes("session_transcript_bytes")
    holder = sc.session_keys(
        annexd.private_key("e_device_key"), annexd.public_key("e_reader_key"), transcript
    )
    assert holder == keys


def test_session_establishment_decrypts_to_the_device_request(annexd: AnnexD) -> None:
    message = decode(annexd.bytes("session_establishment"))
    transcript = sc.transcript_parts(annexd.bytes("session_transcript_bytes"))
    assert message["eReaderKey"].raw == transcript.e_reader_key.raw
    plain = sc.decrypt(_keys(annexd).sk_reader, sc.READER, 1, message["data"])
    assert plain == annexd.bytes("device_request")
    rebuilt = sc.encode_session_establishment(transcript.e_reader_key.raw, message["data"])
    assert rebuilt == annexd.bytes("session_establishment")


def test_session_data_decrypts_to_the_device_response(annexd: AnnexD) -> None:
    session_data = sc.parse_session_data(annexd.bytes("session_data"))
    assert session_data.status is None and session_data.data is not None
    plain = sc.decrypt(_keys(annexd).sk_device, sc.DEVICE, 1, session_data.data)
    assert plain == annexd.bytes("device_response")


@pytest.mark.parametrize("change", ["counter", "key", "identifier", "bit"])
def test_wrong_counter_key_or_bytes_are_rejected(annexd: AnnexD, change: str) -> None:
    keys = _keys(annexd)
    data = sc.parse_session_data(annexd.bytes("session_data")).data
    assert data is not None
    key, identifier, counter = keys.sk_device, sc.DEVICE, 1
    if change == "counter":
        counter = 2
    elif change == "key":
        key = keys.sk_reader
    elif change == "identifier":
        identifier = sc.READER
    else:
        data = data[:100] + bytes((data[100] ^ 1,)) + data[101:]
    with pytest.raises(SessionDecryptError):
        sc.decrypt(key, identifier, counter, data)


def test_session_termination_is_status_20(annexd: AnnexD) -> None:
    assert sc.parse_session_data(annexd.bytes("session_termination")) == (None, 20)
    assert sc.encode_session_data(status=20) == annexd.bytes("session_termination")


def test_session_data_over_the_limit_is_too_large(annexd: AnnexD) -> None:
    with pytest.raises(SessionDataTooLarge):
        sc.parse_session_data(annexd.bytes("session_data"), max_bytes=1000)


def test_encrypt_round_trip_and_transcript_building(annexd: AnnexD) -> None:
    reader = ec.generate_private_key(ec.SECP256R1())
    device = ec.generate_private_key(ec.SECP256R1())
    engagement = sc.embed(b"\xa1\x00\x631.0")
    transcript = sc.session_transcript_bytes(
        engagement, sc.embed(cose_key_bytes(reader.public_key()))
    )
    parts = sc.transcript_parts(transcript)
    assert parts.device_engagement.raw == engagement and parts.handover is None
    keys = sc.session_keys(reader, device.public_key(), transcript)
    sealed = sc.encrypt(keys.sk_reader, sc.READER, 7, b"request")
    assert sc.decrypt(keys.sk_reader, sc.READER, 7, sealed) == b"request"
    assert sc.emac_key(reader, device.public_key(), transcript) == sc.emac_key(
        device, reader.public_key(), transcript
    )


def test_ble_ident_of_the_annex_d_device_key(annexd: AnnexD) -> None:
    assert sc.ble_ident(annexd.bytes("e_device_key_bytes")).hex() == (
        "8da0b7a85919f05673054ea996bbd124"
    )


@pytest.mark.parametrize("length", [16, 32, 33, 64, 100])
@pytest.mark.parametrize("salt", [b"", b"salt", bytes(range(40))])
def test_hkdf_is_rfc_5869(length: int, salt: bytes) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    ikm, info = bytes(range(22)), b"SKDevice"
    expected = HKDF(algorithm=hashes.SHA256(), length=length, salt=salt or None, info=info).derive(
        ikm
    )
    assert sc.hkdf_sha256(ikm, salt, info, length) == expected
