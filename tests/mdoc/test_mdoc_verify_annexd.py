"""V2 and the Annex D mutations of spec mdl-reader s.9 (N1-N11, N13, N15, N19) in the core."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from annexd import AnnexD
from cryptography.hazmat.primitives.asymmetric import ec
from issuer_support import TestIaca
from mdoc_cases import AUTHORING, mutate

from appliance.core.credential.mdoc import session_crypto as sc
from appliance.core.credential.mdoc.items_request import device_request_from_bytes
from appliance.core.credential.mdoc.verify import (
    MdocResult,
    verify_mdoc,
    verify_mdoc_response,
    verify_mdoc_session_data,
)
from appliance.core.isotime import parse_instant
from appliance.core.reasons import Outcome, Reason
from appliance.core.snapshot import TrustSnapshot
from appliance.core.verifier import Checkpoint
from appliance.trust.source import load_trust_source, snapshot_from_document

AT = "2021-01-01T00:00:00Z"


def _verify(
    annexd: AnnexD,
    response: bytes | None = None,
    *,
    at: str = AT,
    trust: TrustSnapshot | None = None,
    reader: Any = None,
    **kw: Any,
) -> MdocResult:
    return verify_mdoc(
        annexd.bytes("device_response") if response is None else response,
        session_transcript_bytes=annexd.bytes("session_transcript_bytes"),
        e_reader_key=reader or annexd.private_key("e_reader_key"),
        trust=trust or load_trust_source(annexd.path("annexd-trust.json")),
        now=parse_instant(at),
        request=device_request_from_bytes(annexd.bytes("device_request")),
        checkpoint=AUTHORING,
        **kw,
    )


def _expect(result: MdocResult, outcome: Outcome, reason: Reason) -> None:
    assert (result.verdict.outcome, result.verdict.reason) == (outcome, reason)


def test_v2_annex_d_response_passes(annexd: AnnexD) -> None:
    result = _verify(annexd)
    _expect(result, Outcome.PASS, Reason.OK)
    verdict, facts = result
    assert verdict.profile == "MDOC" and verdict.iss == "US-UT" and verdict.live
    assert verdict.kid is not None and verdict.kid.hex() == "6bdac7eb36008baf"
    assert facts.doc_type == "org.iso.18013.5.1.mDL" and facts.document_number == "123456789"
    assert facts.device_auth == "mac" and len(facts.elements) == 6
    assert verdict.credential is not None and verdict.credential.no == "123456789"


def test_v2_annex_d_session_data_passes(annexd: AnnexD) -> None:
    transcript = annexd.bytes("session_transcript_bytes")
    engagement = sc.transcript_parts(transcript).device_engagement.data
    result = verify_mdoc_session_data(
        annexd.bytes("session_data"),
        e_device_key=sc.e_device_key_from_engagement(engagement),
        session_transcript_bytes=transcript,
        e_reader_key=annexd.private_key("e_reader_key"),
        trust=load_trust_source(annexd.path("annexd-trust.json")),
        now=parse_instant(AT),
        request=device_request_from_bytes(annexd.bytes("device_request")),
        checkpoint=AUTHORING,
    )
    _expect(result, Outcome.PASS, Reason.OK)


def _session_data(annexd: AnnexD, message: bytes, counter: int = 1) -> MdocResult:
    transcript = annexd.bytes("session_transcript_bytes")
    return verify_mdoc_session_data(
        message,
        e_device_key=annexd.public_key("e_device_key"),
        session_transcript_bytes=transcript,
        e_reader_key=annexd.private_key("e_reader_key"),
        counter=counter,
        trust=load_trust_source(annexd.path("annexd-trust.json")),
        now=parse_instant(AT),
        checkpoint=AUTHORING,
    )


def test_n1_changed_family_name_is_a_digest_mismatch(annexd: AnnexD) -> None:
    response = annexd.bytes("device_response")
    assert response.count(b"elementValuecDoe") == 1
    result = _verify(annexd, response.replace(b"elementValuecDoe", b"elementValuecDoa"))
    _expect(result, Outcome.FAIL, Reason.MDOC_DIGEST_MISMATCH)
    # The issuer signature held: the docType is known (the audit's licence_type), no
    # element value is (the digests did not).
    cred = result.verdict.credential
    assert cred is not None and cred.typ == "org.iso.18013.5.1.mDL"
    assert (cred.no, cred.nm, cred.ph) == ("", "", None)
    assert result.facts.document_number is None


def test_n2_extra_element_with_unknown_digest_id(annexd: AnnexD) -> None:
    extra = sc.embed(
        cbor2.dumps(
            {
                "digestID": 999,
                "random": bytes(16),
                "elementIdentifier": "given_name",
                "elementValue": "X",
            }
        )
    )

    def add(item: dict) -> None:
        from appliance.core.credential.mdoc.cbor import Embedded

        spaces = item["documents"][0]["issuerSigned"]["nameSpaces"]
        spaces["org.iso.18013.5.1"].append(Embedded(extra, b""))

    _expect(
        _verify(annexd, mutate(annexd.bytes("device_response"), add)),
        Outcome.FAIL,
        Reason.MDOC_DIGEST_MISMATCH,
    )


def _flip_last(data: bytes) -> bytes:
    return data[:-1] + bytes((data[-1] ^ 1,))


def test_n3_issuer_signature_bit_flipped(annexd: AnnexD) -> None:
    def flip(item: dict) -> None:
        auth = item["documents"][0]["issuerSigned"]["issuerAuth"]
        auth[3] = _flip_last(auth[3])

    _expect(
        _verify(annexd, mutate(annexd.bytes("device_response"), flip)),
        Outcome.FAIL,
        Reason.MDOC_BAD_ISSUER_SIGNATURE,
    )


def test_n4_another_iaca_with_the_same_subject_is_unknown(annexd: AnnexD) -> None:
    impostor = TestIaca.create(cn="utopia iaca", country="US")
    trust = snapshot_from_document(impostor.trust_document(iss="US-UT"))
    result = _verify(annexd, trust=trust)
    _expect(result, Outcome.FAIL, Reason.MDOC_ISSUER_UNKNOWN)
    assert result.verdict.kid is None


def test_n5_no_iaca_in_trust_data(annexd: AnnexD) -> None:
    _expect(
        _verify(annexd, trust=snapshot_from_document({"issuers": []})),
        Outcome.FAIL,
        Reason.MDOC_ISSUER_UNKNOWN,
    )


@pytest.mark.parametrize(
    ("at", "reason"),
    [
        ("2021-10-01T14:00:00Z", Reason.EXPIRED),  # N6
        ("2021-10-01T06:00:00Z", Reason.MDOC_DS_EXPIRED),  # N7
        ("2020-10-01T12:00:00Z", Reason.NOT_YET_VALID),  # N8
    ],
)
def test_n6_n7_n8_time(annexd: AnnexD, at: str, reason: Reason) -> None:
    _expect(_verify(annexd, at=at), Outcome.FAIL, reason)


def test_n9_device_mac_bit_flipped(annexd: AnnexD) -> None:
    def flip(item: dict) -> None:
        mac = item["documents"][0]["deviceSigned"]["deviceAuth"]["deviceMac"]
        mac[3] = _flip_last(mac[3])

    _expect(
        _verify(annexd, mutate(annexd.bytes("device_response"), flip)),
        Outcome.FAIL,
        Reason.MDOC_BAD_DEVICE_AUTH,
    )


def test_n10_replayed_response_under_another_reader_key(annexd: AnnexD) -> None:
    _expect(
        _verify(annexd, reader=ec.generate_private_key(ec.SECP256R1())),
        Outcome.FAIL,
        Reason.MDOC_BAD_DEVICE_AUTH,
    )


def test_n11_document_doctype_swapped(annexd: AnnexD) -> None:
    def swap(item: dict) -> None:
        item["documents"][0]["docType"] = "org.iso.23220.photoid.1"

    _expect(
        _verify(annexd, mutate(annexd.bytes("device_response"), swap)),
        Outcome.FAIL,
        Reason.MDOC_DOCTYPE_MISMATCH,
    )


def test_n12_es384_header_over_an_es256_signature(annexd: AnnexD) -> None:
    def es384(item: dict) -> None:
        item["documents"][0]["issuerSigned"]["issuerAuth"][0] = cbor2.dumps({1: -35})

    _expect(
        _verify(annexd, mutate(annexd.bytes("device_response"), es384)),
        Outcome.UNVERIFIABLE,
        Reason.MDOC_UNSUPPORTED_ALGORITHM,
    )


def test_n13_too_large_deep_trailing_duplicate(annexd: AnnexD) -> None:
    response = annexd.bytes("device_response")
    _expect(_verify(annexd, max_response_bytes=len(response) - 1), Outcome.FAIL, Reason.TOO_LARGE)
    deep = cbor2.dumps({"version": "1.0", "status": 0, "x": cbor2.loads(b"\x81" * 16 + b"\x00")})
    _expect(_verify(annexd, deep), Outcome.FAIL, Reason.MDOC_MALFORMED)
    _expect(_verify(annexd, response + b"\x00"), Outcome.FAIL, Reason.MDOC_MALFORMED)
    assert response[0] == 0xA3  # {version, documents, status}
    duplicate = b"\xa4" + response[1:] + b"\x66status\x00"
    _expect(_verify(annexd, duplicate), Outcome.FAIL, Reason.MDOC_MALFORMED)


def test_n15_holder_status_declined_and_truncated(annexd: AnnexD) -> None:
    def status_10(item: dict) -> None:
        item["status"] = 10

    _expect(
        _verify(annexd, mutate(annexd.bytes("device_response"), status_10)),
        Outcome.UNVERIFIABLE,
        Reason.MDOC_HOLDER_ERROR,
    )
    _expect(
        _session_data(annexd, annexd.bytes("session_termination")),
        Outcome.UNVERIFIABLE,
        Reason.MDOC_DECLINED,
    )
    _expect(
        _verify(annexd, annexd.bytes("device_response")[:-40]), Outcome.FAIL, Reason.MDOC_MALFORMED
    )


def test_n19_session_data_counter_2_or_bit_flipped(annexd: AnnexD) -> None:
    message = annexd.bytes("session_data")
    _expect(
        _session_data(annexd, message, counter=2), Outcome.FAIL, Reason.MDOC_SESSION_DECRYPT_FAILED
    )
    _expect(
        _session_data(annexd, message[:-1] + bytes((message[-1] ^ 1,))),
        Outcome.FAIL,
        Reason.MDOC_SESSION_DECRYPT_FAILED,
    )


def test_session_data_status_11_is_a_holder_error(annexd: AnnexD) -> None:
    _expect(
        _session_data(annexd, sc.encode_session_data(status=11)),
        Outcome.UNVERIFIABLE,
        Reason.MDOC_HOLDER_ERROR,
    )


def test_no_document_is_not_returned(annexd: AnnexD) -> None:
    def empty(item: dict) -> None:
        item["documents"] = []
        item["documentErrors"] = [{"org.iso.18013.5.1.mDL": 0}]

    _expect(
        _verify(annexd, mutate(annexd.bytes("device_response"), empty)),
        Outcome.UNVERIFIABLE,
        Reason.MDOC_NOT_RETURNED,
    )


def test_ds_listed_as_revoked(annexd: AnnexD) -> None:
    import hashlib
    import json

    doc = json.loads(annexd.path("annexd-trust.json").read_text())
    doc["revoked"] = {"mdoc_ds_sha256": [hashlib.sha256(annexd.bytes("ds_cert.der")).hexdigest()]}
    _expect(
        _verify(annexd, trust=snapshot_from_document(doc)), Outcome.FAIL, Reason.MDOC_DS_REVOKED
    )


def test_verify_mdoc_response_is_the_verdict_alone(annexd: AnnexD) -> None:
    verdict = verify_mdoc_response(
        annexd.bytes("device_response"),
        session_transcript_bytes=annexd.bytes("session_transcript_bytes"),
        e_reader_key=annexd.private_key("e_reader_key"),
        trust=load_trust_source(annexd.path("annexd-trust.json")),
        now=parse_instant(AT),
        request=device_request_from_bytes(annexd.bytes("device_request")),
        checkpoint=AUTHORING,
    )
    assert (verdict.outcome, verdict.reason) == (Outcome.PASS, Reason.OK)


def test_v3_reader_auth_verifies_over_reader_authentication_bytes(annexd: AnnexD) -> None:
    from appliance.core.credential.mdoc.items_request import verify_reader_auth

    transcript = annexd.bytes("session_transcript_bytes")
    request = device_request_from_bytes(annexd.bytes("device_request"))
    assert request.items_request_bytes is not None
    assert request.items_request_bytes.endswith(annexd.bytes("items_request"))
    assert verify_reader_auth(request, transcript) == annexd.bytes("reader_cert.der")
    # Bound to the session: another transcript, or another ItemsRequest, does not verify.
    other = sc.session_transcript_bytes(sc.embed(b"\xa0"), sc.embed(b"\xa0"))
    assert verify_reader_auth(request, other) is None
    changed = request._replace(
        items_request_bytes=sc.embed(annexd.bytes("items_request")[:-1] + b"\xf5")
    )
    assert verify_reader_auth(changed, transcript) is None


def test_remote_policy_comes_before_the_session_layer(annexd: AnnexD) -> None:
    import json

    doc = json.loads(annexd.path("annexd-trust.json").read_text())
    doc["policy"]["disabled_devices"] = ["kiosk-1"]
    result = verify_mdoc_session_data(
        annexd.bytes("session_termination"),
        e_device_key=annexd.public_key("e_device_key"),
        session_transcript_bytes=annexd.bytes("session_transcript_bytes"),
        e_reader_key=annexd.private_key("e_reader_key"),
        trust=snapshot_from_document(doc),
        now=parse_instant(AT),
        checkpoint=Checkpoint(check_staleness=False, device_id="kiosk-1"),
    )
    _expect(result, Outcome.UNVERIFIABLE, Reason.DEVICE_DISABLED)
