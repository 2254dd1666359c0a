"""Generated mdocs (spec mdl-reader s.9: N12, N14, N16-N18, N20) and every other reason of
s.4.1 the verifier decides, in the order of s.4."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import zlib

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from issuer_support import NOW, TestIaca, checkpoint_elements
from mdoc_cases import Session, World, mutate

from appliance.core.credential.mdoc.device_auth import sig1_structure
from appliance.core.credential.mdoc.items_request import MDL_NAMESPACE, profile_request
from appliance.core.credential.mdoc.session_crypto import embed
from appliance.core.credential.mdoc.verify import MdocResult
from appliance.core.reasons import Outcome, Reason
from appliance.core.verifier import Checkpoint
from appliance.tools.issuer_mdoc import sign_es
from appliance.trust.source import snapshot_from_document

DAY = dt.timedelta(days=1)


def _expect(result: MdocResult, outcome: Outcome, reason: Reason) -> None:
    assert (result.verdict.outcome, result.verdict.reason) == (outcome, reason)


@pytest.fixture
def world() -> World:
    return World()


def test_generated_checkpoint_mdoc_passes_with_mac_and_signature(world: World) -> None:
    mdoc = world.issue()
    _expect(world.verify(world.response(mdoc)), Outcome.PASS, Reason.OK)
    result = world.verify(world.response(mdoc, mac=False))  # N20, valid
    _expect(result, Outcome.PASS, Reason.OK)
    assert result.facts.device_auth == "signature"
    cred = result.verdict.credential
    assert cred is not None and cred.no == "UT-123" and cred.nm == "Jane Doe"
    assert cred.cls == ("B",) and cred.ph == b"\xff\xd8\xff\xe0jpeg" and cred.cti is not None


def test_n20_device_signature_over_another_transcript(world: World) -> None:
    response = world.response(mac=False)
    other = World(iaca=world.iaca, holder_key=world.holder_key, ds=world.ds)
    _expect(other.verify(response, trust=world.trust()), Outcome.FAIL, Reason.MDOC_BAD_DEVICE_AUTH)


def test_neither_or_both_device_authentications(world: World) -> None:
    mdoc = world.issue()
    mac = cbor2.loads(world.response(mdoc))["documents"][0]["deviceSigned"]["deviceAuth"]

    def both(item: dict) -> None:
        item["documents"][0]["deviceSigned"]["deviceAuth"].update(mac)

    def neither(item: dict) -> None:
        item["documents"][0]["deviceSigned"]["deviceAuth"] = {}

    signed = world.response(mdoc, mac=False)
    _expect(world.verify(mutate(signed, both)), Outcome.FAIL, Reason.MDOC_BAD_DEVICE_AUTH)
    _expect(world.verify(mutate(signed, neither)), Outcome.FAIL, Reason.MDOC_BAD_DEVICE_AUTH)


def test_n12_unsupported_device_key_curve(world: World) -> None:
    k1 = ec.generate_private_key(ec.SECP256K1()).public_key().public_numbers()
    cose = {1: 2, -1: 8, -2: k1.x.to_bytes(32, "big"), -3: k1.y.to_bytes(32, "big")}
    mdoc = world.issue(device_key_cose=cose)
    _expect(
        world.verify(world.response(mdoc, mac=False)),
        Outcome.UNVERIFIABLE,
        Reason.MDOC_UNSUPPORTED_ALGORITHM,
    )


def test_unsupported_digest_algorithm_and_p384_signer(world: World) -> None:
    _expect(
        world.verify(world.response(world.issue(digest_algorithm="SHA3-256"))),
        Outcome.UNVERIFIABLE,
        Reason.MDOC_UNSUPPORTED_ALGORITHM,
    )
    world.ds = world.iaca.document_signer(curve=ec.SECP384R1())
    _expect(
        world.verify(world.response(world.issue(digest_algorithm="SHA-384"))),
        Outcome.PASS,
        Reason.OK,
    )


def test_n14_non_minimal_item_heads_pass(world: World) -> None:
    mdoc = world.issue(non_minimal_heads=True)
    raw = mdoc.item(MDL_NAMESPACE, "family_name")
    assert raw[2] == 0x5A  # a 4-byte length head for a short item
    response = world.response(mdoc)
    assert raw in response  # carried as issued
    _expect(world.verify(response), Outcome.PASS, Reason.OK)


@pytest.mark.parametrize("kind", ["no_eku", "other_country", "ca", "no_digital_signature"])
def test_n16_ds_profile(world: World, kind: str) -> None:
    world.ds = world.iaca.document_signer(
        eku=kind != "no_eku",
        country="XX" if kind == "other_country" else None,
        ca=kind == "ca",
        digital_signature=kind != "no_digital_signature",
    )
    _expect(world.verify(world.response()), Outcome.FAIL, Reason.MDOC_DS_CERT_INVALID)


def test_ds_state_must_match_an_iaca_state() -> None:
    world = World(iaca=TestIaca.create(state="North"))
    _expect(world.verify(world.response()), Outcome.PASS, Reason.OK)
    world.ds = world.iaca.document_signer(state="South")
    _expect(world.verify(world.response()), Outcome.FAIL, Reason.MDOC_DS_CERT_INVALID)


def _age(world: World, elements: dict, threshold: int = 20) -> MdocResult:
    mdoc = world.issue({MDL_NAMESPACE: elements})
    return world.verify(world.response(mdoc), profile="age", age_threshold=threshold)


def test_n17_age_profile(world: World) -> None:
    _expect(_age(world, {"age_over_20": False}), Outcome.FAIL, Reason.MDOC_AGE_NOT_MET)
    result = _age(world, {"age_over_21": True})
    _expect(result, Outcome.PASS, Reason.OK)
    assert result.facts.age_over == ((21, True),) and result.facts.elements == ()
    _expect(_age(world, {"family_name": "Doe"}), Outcome.UNVERIFIABLE, Reason.MDOC_ELEMENT_MISSING)
    _expect(
        _age(world, {"age_over_18": True}), Outcome.UNVERIFIABLE, Reason.MDOC_ELEMENT_MISSING
    )  # true below NN says nothing
    _expect(
        _age(world, {"age_over_25": False}), Outcome.UNVERIFIABLE, Reason.MDOC_ELEMENT_MISSING
    )  # false above NN says nothing


def test_age_profile_keeps_no_pseudonym(world: World) -> None:
    result = _age(world, {"age_over_20": True, "document_number": "UT-123"})
    _expect(result, Outcome.PASS, Reason.OK)
    cred = result.verdict.credential
    assert cred is not None and cred.cti is None and cred.no == ""  # not asked: dropped


def _status_world(world: World, value: int) -> tuple[World, MdocResult]:
    uri = "https://status.example/mdl/1"
    mdoc = world.issue(status={"status_list": {"idx": 3, "uri": uri}})
    data = bytes([value << 6])  # 2 bits per entry: index 3 is the top two bits of byte 0
    lst = base64.urlsafe_b64encode(zlib.compress(data)).rstrip(b"=").decode()
    trust = world.trust(status_lists=[{"uri": uri, "bits": 2, "lst": lst}])
    return world, world.verify(world.response(mdoc), trust=trust)


@pytest.mark.parametrize(
    ("value", "outcome", "reason"),
    [
        (0, Outcome.PASS, Reason.OK),
        (1, Outcome.FAIL, Reason.REVOKED),
        (2, Outcome.FAIL, Reason.SUSPENDED),
        (3, Outcome.FAIL, Reason.STATUS_OTHER),
    ],
)
def test_n18_status_list(world: World, value: int, outcome: Outcome, reason: Reason) -> None:
    _expect(_status_world(world, value)[1], outcome, reason)


def test_status_unknown_as_policy_says_and_after_type_not_accepted(world: World) -> None:
    mdoc = world.issue(status={"status_list": {"idx": 0, "uri": "https://nowhere/1"}})
    response = world.response(mdoc)
    _expect(world.verify(response), Outcome.UNVERIFIABLE, Reason.STATUS_UNKNOWN)
    not_accepted = Checkpoint(check_staleness=False, accepted_types=frozenset({"DL"}))
    _expect(world.verify(response, checkpoint=not_accepted), Outcome.FAIL, Reason.TYPE_NOT_ACCEPTED)


def test_iaca_revoked_expired_and_doctype_not_allowed(world: World) -> None:
    response = world.response()
    doc = world.iaca.trust_document(status="revoked")
    _expect(
        world.verify(response, trust=snapshot_from_document(doc)),
        Outcome.FAIL,
        Reason.ISSUER_KEY_REVOKED,
    )
    doc = world.iaca.trust_document(doctypes=["org.iso.23220.photoid.1"])
    _expect(
        world.verify(response, trust=snapshot_from_document(doc)),
        Outcome.FAIL,
        Reason.TYPE_NOT_ALLOWED_FOR_KEY,
    )
    doc = world.iaca.trust_document()
    doc["issuers"][0]["keys"][0]["not_after"] = (NOW - DAY).strftime("%Y-%m-%dT%H:%M:%SZ")
    _expect(
        world.verify(response, trust=snapshot_from_document(doc)),
        Outcome.FAIL,
        Reason.ISSUER_KEY_EXPIRED,
    )


def test_signed_outside_ds_validity(world: World) -> None:
    world.ds = world.iaca.document_signer(not_before=NOW - 10 * DAY)
    mdoc = world.issue(signed=NOW - 20 * DAY, valid_until=NOW + DAY)
    _expect(
        world.verify(world.response(mdoc)), Outcome.FAIL, Reason.MDOC_SIGNED_OUTSIDE_DS_VALIDITY
    )


def test_licence_expired_in_checkpoint_only(world: World) -> None:
    elements = checkpoint_elements(expiry_date=cbor2.CBORTag(1004, "2026-11-30"))
    elements[MDL_NAMESPACE]["age_over_20"] = True
    response = world.response(world.issue(elements))
    _expect(world.verify(response), Outcome.FAIL, Reason.MDOC_LICENCE_EXPIRED)
    _expect(world.verify(response, profile="age"), Outcome.PASS, Reason.OK)


def test_checkpoint_needs_portrait_and_number(world: World) -> None:
    mdoc = world.issue()
    names = [n for n in checkpoint_elements()[MDL_NAMESPACE] if n != "portrait"]
    response = world.response(
        mdoc, disclose={MDL_NAMESPACE: names}, errors={MDL_NAMESPACE: {"portrait": 0}}
    )
    _expect(world.verify(response), Outcome.UNVERIFIABLE, Reason.MDOC_ELEMENT_MISSING)


def test_clock_untrusted_and_stale_trust(world: World) -> None:
    response = world.response()
    _expect(
        world.verify(response, clock_trusted=False), Outcome.UNVERIFIABLE, Reason.CLOCK_UNTRUSTED
    )
    _expect(
        world.verify(response, checkpoint=Checkpoint()),
        Outcome.UNVERIFIABLE,
        Reason.TRUST_DATA_STALE,
    )  # a trust source file has no publication time


def test_remote_policy_comes_first(world: World) -> None:
    trust = world.trust(policy={"disabled_devices": ["dev-1"]})
    result = world.verify(
        b"not even cbor",
        trust=trust,
        checkpoint=Checkpoint(check_staleness=False, device_id="dev-1"),
    )
    _expect(result, Outcome.UNVERIFIABLE, Reason.DEVICE_DISABLED)


def test_request_asks_another_doctype(world: World) -> None:
    request = profile_request("checkpoint")._replace(doc_type="org.iso.23220.photoid.1")
    _expect(
        world.verify(world.response(), request=request), Outcome.FAIL, Reason.MDOC_DOCTYPE_MISMATCH
    )


def test_unasked_elements_are_dropped_but_still_digest_checked(world: World) -> None:
    elements = checkpoint_elements()
    elements[MDL_NAMESPACE]["sex"] = 2
    result = world.verify(world.response(world.issue(elements)))
    _expect(result, Outcome.PASS, Reason.OK)
    assert "sex" not in result.facts.elements


def test_short_random_is_a_digest_mismatch(world: World) -> None:
    body = cbor2.dumps(
        {
            "digestID": 0,
            "random": b"\x00" * 8,
            "elementIdentifier": "family_name",
            "elementValue": "Doe",
        }
    )
    raw = b"\xd8\x18" + cbor2.dumps(body)
    ds = world.signer()
    mdoc = ds.issue({MDL_NAMESPACE: {"x": 1}}, world.holder_key.public_key())
    mdoc.items[MDL_NAMESPACE] = [raw]
    # Re-sign an MSO whose digest 0 is this item's, so only the short random is wrong.
    mso = cbor2.loads(cbor2.loads(mdoc.issuer_auth[2]).value)
    mso["valueDigests"][MDL_NAMESPACE] = {0: hashlib.sha256(raw).digest()}
    payload = embed(cbor2.dumps(mso))
    mdoc.issuer_auth[2] = payload
    mdoc.issuer_auth[3] = sign_es(ds.key, sig1_structure(mdoc.issuer_auth[0], payload))
    _expect(
        world.verify(world.response(mdoc), profile="age"), Outcome.FAIL, Reason.MDOC_DIGEST_MISMATCH
    )


def test_mac_without_reader_key_fails_device_auth(world: World) -> None:
    from appliance.core.credential.mdoc.verify import verify_mdoc

    result = verify_mdoc(
        world.response(),
        session_transcript_bytes=world.session.transcript,
        e_reader_key=None,
        trust=world.trust(),
        now=NOW.timestamp(),
        checkpoint=Checkpoint(check_staleness=False),
    )
    _expect(result, Outcome.FAIL, Reason.MDOC_BAD_DEVICE_AUTH)


def test_p384_session_keys(world: World) -> None:
    world.holder_key = ec.generate_private_key(ec.SECP384R1())
    world.session = Session(ec.generate_private_key(ec.SECP384R1()))
    _expect(world.verify(world.response()), Outcome.PASS, Reason.OK)
    _expect(world.verify(world.response(mac=False)), Outcome.PASS, Reason.OK)


def test_the_order_of_spec_s4(world: World) -> None:
    """Where two steps would decide, the earlier one does (spec mdl-reader s.4)."""
    uri = "https://status.example/mdl/2"
    revoked_list = base64.urlsafe_b64encode(zlib.compress(bytes([0b01]))).rstrip(b"=").decode()
    revoked = world.trust(status_lists=[{"uri": uri, "bits": 1, "lst": revoked_list}])
    stale = Checkpoint()  # a trust source file has no publication time: stale
    old = checkpoint_elements(expiry_date=cbor2.CBORTag(1004, "2020-01-01"))
    # Step 1 (device authentication) before step 2 (clock).
    mdoc = world.issue()
    other = World(iaca=world.iaca, holder_key=world.holder_key, ds=world.ds)
    _expect(
        other.verify(world.response(mdoc), trust=world.trust(), clock_trusted=False),
        Outcome.FAIL,
        Reason.MDOC_BAD_DEVICE_AUTH,
    )
    # Step 3 (licence expiry) before step 4 (status list).
    listed = world.issue(old, status={"status_list": {"idx": 0, "uri": uri}})
    _expect(
        world.verify(world.response(listed), trust=revoked),
        Outcome.FAIL,
        Reason.MDOC_LICENCE_EXPIRED,
    )
    # Step 4 (status list) before step 5 (stale trust data).
    listed = world.issue(status={"status_list": {"idx": 0, "uri": uri}})
    _expect(
        world.verify(world.response(listed), trust=revoked, checkpoint=stale),
        Outcome.FAIL,
        Reason.REVOKED,
    )
    # Step 5 (stale) before step 7 (unknown status).
    unknown = world.issue(status={"status_list": {"idx": 0, "uri": "https://nowhere/2"}})
    _expect(
        world.verify(world.response(unknown), checkpoint=stale),
        Outcome.UNVERIFIABLE,
        Reason.TRUST_DATA_STALE,
    )
    # Step 6: acceptance before what the profile needs.
    response = world.response(mdoc, disclose={MDL_NAMESPACE: ["family_name"]})
    not_accepted = Checkpoint(check_staleness=False, accepted_types=frozenset({"DL"}))
    _expect(world.verify(response, checkpoint=not_accepted), Outcome.FAIL, Reason.TYPE_NOT_ACCEPTED)
    _expect(world.verify(response), Outcome.UNVERIFIABLE, Reason.MDOC_ELEMENT_MISSING)


def test_two_documents_of_the_requested_doctype_are_malformed(world: World) -> None:
    def twice(item: dict) -> None:
        item["documents"].append(item["documents"][0])

    _expect(world.verify(mutate(world.response(), twice)), Outcome.FAIL, Reason.MDOC_MALFORMED)


def test_a_namespace_the_mso_does_not_list_is_a_digest_mismatch(world: World) -> None:
    elements = checkpoint_elements()
    elements["org.example.unsigned"] = {"x": 1}
    mdoc = world.issue(elements)
    del mdoc.items["org.example.unsigned"]  # the MSO lists it; take it out of the MSO instead
    mso = cbor2.loads(cbor2.loads(mdoc.issuer_auth[2]).value)
    extra = mso["valueDigests"].pop("org.example.unsigned")
    payload = embed(cbor2.dumps(mso))
    mdoc.issuer_auth[2] = payload
    mdoc.issuer_auth[3] = sign_es(world.signer().key, sig1_structure(mdoc.issuer_auth[0], payload))
    _expect(world.verify(world.response(mdoc)), Outcome.PASS, Reason.OK)
    body = cbor2.dumps(
        {
            "digestID": next(iter(extra)),
            "random": bytes(16),
            "elementIdentifier": "x",
            "elementValue": 1,
        }
    )
    response = world.response(
        mdoc, extra_items={"org.example.unsigned": [b"\xd8\x18" + cbor2.dumps(body)]}
    )
    _expect(world.verify(response), Outcome.FAIL, Reason.MDOC_DIGEST_MISMATCH)


def test_device_signed_elements_are_ignored(world: World) -> None:
    """Elements in deviceSigned.nameSpaces are not issuer-signed: version 1 ignores them
    (s.4 step 7), while the device authentication still covers their bytes."""
    device_spaces = embed(cbor2.dumps({MDL_NAMESPACE: {"family_name": "Mallory"}}))
    result = world.verify(world.response(device_name_spaces=device_spaces))
    _expect(result, Outcome.PASS, Reason.OK)
    assert result.verdict.credential is not None and "Mallory" not in result.verdict.credential.nm
