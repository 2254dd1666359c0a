"""Every reason code of spec LC1 s.8 reached, and the verdict order of s.5."""

from __future__ import annotations

import hashlib
import zlib

import cbor2
import pytest
from support import ISS, NOW, World, claims, cose, licence, text

from appliance.core.credential.base45 import b45encode
from appliance.core.reasons import Outcome, Reason
from appliance.core.snapshot import TrustSnapshot
from appliance.core.verifier import Checkpoint, verify
from appliance.tools.issuer import generate_key

AUTHORING = Checkpoint(check_staleness=False)


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def check(t: str, trust: TrustSnapshot, now: float = NOW, **kw: object) -> tuple[str, str]:
    kw.setdefault("checkpoint", AUTHORING)
    v = verify(t, trust, now, **kw)  # type: ignore[arg-type]
    return str(v.outcome), str(v.reason)


def payload(**overrides: object) -> bytes:
    return claims(**overrides).to_cbor()


def raw_claims(mapping: dict) -> bytes:
    return cbor2.dumps(mapping)


def good_map(**changes: object) -> dict:
    m = cbor2.loads(payload())
    for k, v in changes.items():
        key = {
            "iss": 1,
            "exp": 4,
            "nbf": 5,
            "iat": 6,
            "cti": 7,
            "cnf": 8,
            "status": 65535,
            "licence": -65537,
        }[k]
        if v is ...:
            m.pop(key, None)
        else:
            m[key] = v
    return m


# --- section 1: layers ------------------------------------------------------------------


def test_pass_es256_and_eddsa(world: World) -> None:
    assert check(world.issue(), world.trust()) == ("PASS", "OK")
    assert check(world.issue(world.eddsa), world.trust()) == ("PASS", "OK")


@pytest.mark.parametrize("t", ["", "XY1:ABC", "lc1:ABC", "https://example.org", " LC1:X"])
def test_unknown_format(world: World, t: str) -> None:
    assert check(t, world.trust()) == ("FAIL", "UNKNOWN_FORMAT")


def test_too_large_text(world: World) -> None:
    assert check("LC1:" + "0" * 4397, world.trust()) == ("FAIL", "TOO_LARGE")


def test_text_at_the_limit_is_not_too_large(world: World) -> None:
    # 4,400 characters exactly: decodes (and fails later), is not TOO_LARGE.
    assert check("LC1:" + "00" * 1198, world.trust())[1] != "TOO_LARGE"


def test_decompression_bomb_is_too_large_and_stops_early(world: World) -> None:
    bomb = zlib.compress(b"\x00" * 3_000_000, 9)
    assert len(bomb) < 3300
    assert check("LC1:" + b45encode(bomb), world.trust()) == ("FAIL", "TOO_LARGE")


@pytest.mark.parametrize("body", ["abc", "A", "AAAA", "GGW", ":::", "ÄÄÄ"])
def test_malformed_encoding(world: World, body: str) -> None:
    assert check("LC1:" + body, world.trust()) == ("FAIL", "MALFORMED_ENCODING")


def test_malformed_compression(world: World) -> None:
    valid = cose(world.es256, payload())
    assert check(text(valid, compress=False), world.trust()) == ("FAIL", "MALFORMED_COMPRESSION")
    truncated = zlib.compress(valid)[:-6]
    assert check("LC1:" + b45encode(truncated), world.trust()) == ("FAIL", "MALFORMED_COMPRESSION")
    corrupt = bytearray(zlib.compress(valid))
    corrupt[5] ^= 0xFF
    assert check("LC1:" + b45encode(bytes(corrupt)), world.trust())[1] in ("MALFORMED_COMPRESSION",)


def test_structure_rules(world: World) -> None:
    k = world.es256
    p = payload()
    trust = world.trust()
    cases = {
        "other tag": cose(k, p, tag=98),
        "CWT tag 61": cbor2.dumps(cbor2.CBORTag(61, cbor2.loads(cose(k, p)))),
        "trailing bytes": cose(k, p) + b"\x00",
        "three items": cbor2.dumps(cbor2.CBORTag(18, [b"", {}, p])),
        "not an array": cbor2.dumps({"a": 1}),
        "kid only unprotected": cose(k, p, protected={1: -7}, unprotected={4: k.kid}),
        "alg only unprotected": cose(k, p, protected={4: k.kid}, unprotected={1: -7}),
        "kid of 7 bytes": cose(k, p, protected={1: -7, 4: k.kid[:7]}),
        "kid as text": cose(k, p, protected={1: -7, 4: k.kid.hex()}),
        "protected not a map": cose(k, p, protected=cbor2.dumps([1, 2])),
        "duplicate header keys": cose(
            k, p, protected=b"\xa3\x01\x26\x04\x48" + k.kid + b"\x01\x26"
        ),
        "too deep": cose(k, p, unprotected={99: [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}),
        "payload not bytes": cbor2.dumps(
            cbor2.CBORTag(18, [cbor2.dumps({1: -7, 4: k.kid}), {}, {"x": 1}, b"s"])
        ),
        "garbage": b"\xff\xff\xff",
    }
    for name, data in cases.items():
        assert check(text(data), trust) == ("FAIL", "MALFORMED_STRUCTURE"), name


def test_untagged_sign1_is_accepted(world: World) -> None:
    assert check(text(cose(world.es256, payload(), tag=None)), world.trust()) == ("PASS", "OK")


@pytest.mark.parametrize("alg", [-35, -37, 1, "ES256"])
def test_unsupported_algorithm(world: World, alg: object) -> None:
    data = cose(world.es256, payload(), protected={1: alg, 4: world.es256.kid})
    assert check(text(data), world.trust()) == ("FAIL", "UNSUPPORTED_ALGORITHM")


def test_unknown_issuer(world: World) -> None:
    stranger = generate_key("ES256")
    assert check(world.issue(stranger), world.trust()) == ("FAIL", "UNKNOWN_ISSUER")


def test_bad_signature_cases(world: World) -> None:
    k = world.es256
    p = payload()
    trust = world.trust()
    other = generate_key("ES256")
    cases = {
        "other key, trusted kid": cose(other, p, protected={1: -7, 4: k.kid}),
        "alg differs from key": cose(world.eddsa, p, protected={1: -7, 4: world.eddsa.kid}),
        "short signature": cose(k, p, signature=b"\x01" * 63),
        "DER signature": cose(k, p, signature=bytes(70)),
        "zero signature": cose(k, p, signature=bytes(64)),
        "flipped payload": None,
    }
    good = cbor2.loads(cose(k, p))
    flipped = bytearray(good.value[2])
    flipped[-1] ^= 1
    cases["flipped payload"] = cbor2.dumps(
        cbor2.CBORTag(18, [good.value[0], {}, bytes(flipped), good.value[3]])
    )
    for name, data in cases.items():
        assert check(text(data), trust) == ("FAIL", "BAD_SIGNATURE"), name


def test_signature_is_over_received_bytes_not_a_re_encoding(world: World) -> None:
    # Non-canonical CBOR (a 1-byte length written in 2 bytes) still verifies as received.
    k = world.eddsa
    protected = b"\xa2\x01\x27\x04\x58\x08" + k.kid  # bstr length written long-form
    assert check(text(cose(k, payload(), protected=protected)), world.trust()) == ("PASS", "OK")


# --- section 2/3: claims --------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"exp": ...},
        {"iat": ...},
        {"cti": ...},
        {"licence": ...},
        {"exp": "2027"},
        {"exp": True},
        {"exp": 2**63},
        {"iat": -(2**63) - 1},
        {"exp": 1.5},
        {"cti": b"short"},
        {"cti": "x" * 16},
        {"iss": 7},
        {"nbf": "x"},
        {"licence": {"typ": "DL", "no": "1"}},
        {"licence": {"typ": 1, "no": "1", "nm": "n"}},
        {"licence": {"typ": "DL", "no": "1", "nm": "n", "dob": "1990/01/02"}},
        {"licence": {"typ": "DL", "no": "1", "nm": "n", "cls": "B"}},
        {"licence": {"typ": "DL", "no": "1", "nm": "n", "ph": b"x" * 2049}},
        {"licence": {"typ": "DL", "no": "1", "nm": "n", "ext": {"a": 1}}},
        {"licence": {"typ": "DL", "no": "1", "nm": "n", 7: "x"}},
        {"status": {"status_list": {"idx": -1, "uri": "u"}}},
        {"status": {"status_list": {"idx": 1}}},
        {"status": {"other": 1}},
        {"cnf": {1: {1: 2, -1: 1, -2: b"x" * 32}}},
        {"cnf": {1: {1: 1, -1: 6, -2: b"x" * 31}}},
        {"cnf": {1: {1: 4, -1: b"k"}}},
        {"cnf": "key"},
    ],
)
def test_malformed_claims(world: World, change: dict) -> None:
    data = cose(world.es256, raw_claims(good_map(**change)))
    assert check(text(data), world.trust()) == ("FAIL", "MALFORMED_CLAIMS")


def test_payload_not_a_map_is_malformed_claims(world: World) -> None:
    for body in (cbor2.dumps([1, 2]), b"\xff", cbor2.dumps({1: "a"}) + b"\x00"):
        assert check(text(cose(world.es256, body)), world.trust()) == ("FAIL", "MALFORMED_CLAIMS")


def test_unknown_claims_are_ignored(world: World) -> None:
    data = cose(world.es256, raw_claims({**good_map(), 99: "x", -70000: [1]}))
    assert check(text(data), world.trust()) == ("PASS", "OK")


def test_issuer_mismatch_and_missing_iss(world: World) -> None:
    assert check(world.issue(iss="TH-DBD"), world.trust()) == ("FAIL", "ISSUER_MISMATCH")
    data = cose(world.es256, raw_claims(good_map(iss=...)))
    assert check(text(data), world.trust()) == ("FAIL", "ISSUER_MISMATCH")


# --- section 4: keys and revocation -------------------------------------------------------


def test_issuer_key_revoked() -> None:
    w = World()
    w.editor.set_key_status(w.es256.kid.hex(), "revoked")
    assert check(w.issue(), w.trust()) == ("FAIL", "ISSUER_KEY_REVOKED")
    assert check(w.issue(w.eddsa), w.trust()) == ("PASS", "OK")


def test_issuer_key_expired_when_iat_outside_key_window() -> None:
    w = World()
    entry = w.es256.trust_entry(not_before="2027-01-01T00:00:00Z", not_after="2027-01-10T00:00:00Z")
    w.editor.add_key(ISS, entry)
    assert check(w.issue(iat=NOW - 86400 * 30), w.trust()) == ("FAIL", "ISSUER_KEY_EXPIRED")
    assert check(w.issue(iat=NOW - 86400 * 8), w.trust()) == ("PASS", "OK")


def test_type_not_allowed_for_key() -> None:
    w = World()
    w.editor.add_key(ISS, w.es256.trust_entry(types=["DL"]))
    assert check(w.issue(licence=licence(typ="BP")), w.trust()) == (
        "FAIL",
        "TYPE_NOT_ALLOWED_FOR_KEY",
    )
    assert check(w.issue(licence=licence(typ="DL")), w.trust()) == ("PASS", "OK")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (0, ("PASS", "OK")),
        (1, ("FAIL", "REVOKED")),
        (2, ("FAIL", "SUSPENDED")),
        (3, ("FAIL", "STATUS_OTHER")),
    ],
)
def test_status_list_values(value: int, reason: tuple[str, str]) -> None:
    w = World()
    w.editor.set_status("https://status.example/dl/2", 77, value, bits=2)
    t = w.issue(status_uri="https://status.example/dl/2", status_idx=77)
    assert check(t, w.trust()) == reason


@pytest.mark.parametrize(
    ("policy", "verdict"),
    [
        ("unverifiable", "UNVERIFIABLE"),
        ("fail", "FAIL"),
        ("pass", "PASS"),
    ],
)
def test_status_unknown_follows_policy(policy: str, verdict: str) -> None:
    w = World()
    w.editor.set_status("https://status.example/dl/2", 3, 0)
    w.editor.set_policy(unknown_status=policy)
    past_end = w.issue(status_uri="https://status.example/dl/2", status_idx=10_000)
    unknown_uri = w.issue(status_uri="https://status.example/other", status_idx=1)
    assert check(past_end, w.trust()) == (verdict, "STATUS_UNKNOWN")
    assert check(unknown_uri, w.trust()) == (verdict, "STATUS_UNKNOWN")


def test_revoked_by_cti_and_by_licence() -> None:
    w = World()
    cti = bytes(range(16))
    w.editor.revoke_cti(cti)
    assert check(w.issue(cti=cti), w.trust()) == ("FAIL", "REVOKED")
    assert check(w.issue(), w.trust()) == ("PASS", "OK")
    w.editor.revoke_licence(ISS, "DL", "63001234")
    assert check(w.issue(), w.trust()) == ("FAIL", "REVOKED")
    assert check(w.issue(licence=licence(no="63001235")), w.trust()) == ("PASS", "OK")
    assert hashlib.sha256(cti).hexdigest() in w.editor.doc["revoked"]["cti_sha256"]


# --- section 5/6: time, staleness, checkpoint -------------------------------------------


def test_expiry_and_not_yet_valid_with_skew(world: World) -> None:
    t = world.issue(exp=NOW - 300)
    assert check(t, world.trust()) == ("PASS", "OK")  # within the 300 s skew
    assert check(world.issue(exp=NOW - 301), world.trust()) == ("FAIL", "EXPIRED")
    assert check(world.issue(nbf=NOW + 301), world.trust()) == ("FAIL", "NOT_YET_VALID")
    assert check(world.issue(nbf=NOW + 300), world.trust()) == ("PASS", "OK")
    assert check(world.issue(iat=NOW + 301), world.trust()) == ("FAIL", "NOT_YET_VALID")


def test_clock_untrusted_comes_after_signature_before_expiry(world: World) -> None:
    trust = world.trust()
    assert check(world.issue(exp=NOW - 9999), trust, clock_trusted=False) == (
        "UNVERIFIABLE",
        "CLOCK_UNTRUSTED",
    )
    stranger = generate_key("EdDSA")
    assert check(world.issue(stranger), trust, clock_trusted=False) == ("FAIL", "UNKNOWN_ISSUER")


def _synced(w: World, published_at: float) -> TrustSnapshot:
    from dataclasses import replace

    return replace(w.trust(), published_at=published_at, version=7)


def test_trust_data_stale_order() -> None:
    w = World()
    fresh, stale = _synced(w, NOW - 3600), _synced(w, NOW - 73 * 3600)
    device = Checkpoint()
    assert check(w.issue(), fresh, checkpoint=device) == ("PASS", "OK")
    assert check(w.issue(), stale, checkpoint=device) == ("UNVERIFIABLE", "TRUST_DATA_STALE")
    # expiry and revocation are decided before staleness
    assert check(w.issue(exp=NOW - 9999), stale, checkpoint=device) == ("FAIL", "EXPIRED")
    w.editor.set_status("u", 1, 1)
    stale = _synced(w, NOW - 73 * 3600)
    assert check(w.issue(status_uri="u", status_idx=1), stale, checkpoint=device) == (
        "FAIL",
        "REVOKED",
    )
    # staleness before STATUS_UNKNOWN and TYPE_NOT_ACCEPTED
    t = w.issue(status_uri="u", status_idx=999)
    assert check(t, stale, checkpoint=device) == ("UNVERIFIABLE", "TRUST_DATA_STALE")
    picky = Checkpoint(accepted_types=frozenset({"BP"}))
    assert check(w.issue(), stale, checkpoint=picky) == ("UNVERIFIABLE", "TRUST_DATA_STALE")


def test_type_not_accepted_comes_before_unknown_status(world: World) -> None:
    picky = Checkpoint(accepted_types=frozenset({"BP"}), check_staleness=False)
    assert check(world.issue(), world.trust(), checkpoint=picky) == ("FAIL", "TYPE_NOT_ACCEPTED")
    assert check(world.issue(licence=licence(typ="BP")), world.trust(), checkpoint=picky) == (
        "PASS",
        "OK",
    )
    w = World()
    w.editor.set_status("u", 5, 0)
    w.editor.set_policy(unknown_status="fail")
    t = w.issue(status_uri="u", status_idx=5000)
    # Spec LC1 s.5 as corrected 2026-12-07: step 6 (type) before step 7 (unknown status).
    assert check(t, w.trust(), checkpoint=picky) == ("FAIL", "TYPE_NOT_ACCEPTED")
    w.editor.set_policy(unknown_status="pass")
    assert check(t, w.trust(), checkpoint=picky) == ("FAIL", "TYPE_NOT_ACCEPTED")


def test_expired_and_revoked_gives_expired() -> None:
    w = World()
    cti = bytes(16)
    w.editor.revoke_cti(cti)
    assert check(w.issue(cti=cti, exp=NOW - 9999), w.trust()) == ("FAIL", "EXPIRED")


def test_verify_is_total_on_odd_inputs(world: World) -> None:
    for t in ["LC1:", "LC1:" + "0" * 3, "LP1:", "LP1:00", "\x00" * 10, "LC1:\u0e01\u0e02"]:
        v = verify(t, world.trust(), NOW)
        assert v.outcome is Outcome.FAIL
        assert isinstance(v.reason, Reason)
