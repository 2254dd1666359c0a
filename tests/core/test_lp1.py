"""LP1 holder-bound presentations: every reason code, the verdict order, hostile inputs."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import NOW, World, licence, text

from appliance.core.credential.cose import Sign1
from appliance.core.snapshot import TrustSnapshot
from appliance.core.verifier import Checkpoint, verify
from appliance.tools.holder import cose_key, credential_bytes, present
from appliance.tools.issuer import generate_key

AUTHORING = Checkpoint(check_staleness=False)


@pytest.fixture(scope="module")
def world() -> World:
    return World()


@pytest.fixture(scope="module", params=["ES256", "EdDSA"])
def holder(request: pytest.FixtureRequest):
    return generate_key(request.param)


def bound(world: World, holder, **kw) -> str:
    return world.issue(holder_cose_key=cose_key(holder.private_key.public_key()), **kw)


def check(t: str, trust: TrustSnapshot, now: float = NOW, **kw: object) -> tuple[str, str]:
    kw.setdefault("checkpoint", AUTHORING)
    v = verify(t, trust, now, **kw)  # type: ignore[arg-type]
    return str(v.outcome), str(v.reason)


def test_live_presentation_passes_and_is_marked_live(world: World, holder) -> None:
    v = verify(present(bound(world, holder), holder, NOW), world.trust(), NOW, checkpoint=AUTHORING)
    assert (str(v.outcome), str(v.reason), v.profile, v.live) == ("PASS", "OK", "LP1", True)
    assert v.to_json()["profile"] == "LP1"


def test_window_and_future(world: World, holder) -> None:
    p = present(bound(world, holder), holder, NOW)
    trust = world.trust()
    assert check(p, trust, NOW + 90) == ("PASS", "OK")
    assert check(p, trust, NOW + 91) == ("FAIL", "PRESENTATION_EXPIRED")
    assert check(p, trust, NOW - 300) == ("PASS", "OK")
    assert check(p, trust, NOW - 301) == ("FAIL", "PRESENTATION_TIME_INVALID")


@settings(max_examples=40, deadline=None)
@given(w=st.integers(min_value=0, max_value=90))
def test_property_passes_inside_window_fails_just_outside(w: int) -> None:
    world, key = _PROPERTY_WORLD
    p = present(_PROPERTY_CRED, key, NOW)
    assert check(p, world.trust(), NOW + w) == ("PASS", "OK")
    assert check(p, world.trust(), NOW + 91 + w)[1] == "PRESENTATION_EXPIRED"


_PROPERTY_WORLD = (World(), generate_key("ES256"))
_PROPERTY_CRED = _PROPERTY_WORLD[0].issue(
    holder_cose_key=cose_key(_PROPERTY_WORLD[1].private_key.public_key())
)


def test_window_from_policy(holder) -> None:
    w = World()
    w.editor.set_policy(presentation_window_s=10)
    p = present(bound(w, holder), holder, NOW)
    assert check(p, w.trust(), NOW + 10) == ("PASS", "OK")
    assert check(p, w.trust(), NOW + 11) == ("FAIL", "PRESENTATION_EXPIRED")


def test_holder_key_missing(world: World, holder) -> None:
    assert check(present(world.issue(), holder, NOW), world.trust()) == (
        "FAIL",
        "HOLDER_KEY_MISSING",
    )


def test_foreign_holder_key_fails(world: World, holder) -> None:
    thief = generate_key(holder.alg)
    assert check(present(bound(world, holder), thief, NOW), world.trust()) == (
        "FAIL",
        "BAD_HOLDER_SIGNATURE",
    )


def test_wrong_key_type_for_alg(world: World) -> None:
    ed = generate_key("EdDSA")
    cred = bound(world, ed)
    es = generate_key("ES256")
    assert check(present(cred, es, NOW), world.trust()) == ("FAIL", "BAD_HOLDER_SIGNATURE")


def test_swapped_credential_fails(world: World, holder) -> None:
    """A presentation made for one credential, re-wrapped around another of the same holder."""
    a = bound(world, holder, licence=licence(no="A1"))
    b = bound(world, holder, licence=licence(no="B2"))
    pres_a = cbor2.loads(_inflate(present(a, holder, NOW)))[1]
    swapped = cbor2.dumps([credential_bytes(b), pres_a])
    assert check(text(swapped, prefix="LP1:"), world.trust()) == ("FAIL", "BAD_HOLDER_SIGNATURE")


def test_expired_licence_stays_expired_in_fresh_presentation(world: World, holder) -> None:
    cred = bound(world, holder, exp=NOW - 10_000)
    assert check(present(cred, holder, NOW), world.trust()) == ("FAIL", "EXPIRED")


def test_forged_holder_signature_fails_on_valid_licence(world: World, holder) -> None:
    p = present(bound(world, holder), holder, NOW)
    cred, pres = cbor2.loads(_inflate(p))
    tag = cbor2.loads(pres)
    body = list(tag.value)
    body[3] = bytes(64)
    forged = cbor2.dumps([cred, cbor2.dumps(cbor2.CBORTag(18, body))])
    assert check(text(forged, prefix="LP1:"), world.trust()) == ("FAIL", "BAD_HOLDER_SIGNATURE")


def test_unverifiable_licence_still_checks_holder(world: World, holder) -> None:
    p = present(bound(world, holder), holder, NOW)
    assert check(p, world.trust(), clock_trusted=False) == ("UNVERIFIABLE", "CLOCK_UNTRUSTED")
    thief = generate_key(holder.alg)
    assert check(present(bound(world, holder), thief, NOW), world.trust(), clock_trusted=False) == (
        "FAIL",
        "BAD_HOLDER_SIGNATURE",
    )


def test_presentation_required_refuses_static_code(holder) -> None:
    w = World()
    w.editor.set_policy(require_presentation_types=["DL"])
    cred = bound(w, holder)
    assert check(cred, w.trust()) == ("FAIL", "PRESENTATION_REQUIRED")
    assert check(present(cred, holder, NOW), w.trust()) == ("PASS", "OK")
    assert check(w.issue(licence=licence(typ="BP")), w.trust()) == ("PASS", "OK")
    # decided after step 1 (signature) but before expiry
    assert check(w.issue(exp=NOW - 9999), w.trust()) == ("FAIL", "PRESENTATION_REQUIRED")


def test_device_configuration_adds_required_types(world: World) -> None:
    device = Checkpoint(require_presentation_types=frozenset({"DL"}), check_staleness=False)
    assert check(world.issue(), world.trust(), checkpoint=device) == (
        "FAIL",
        "PRESENTATION_REQUIRED",
    )


def _signed_presentation(key, payload: dict, protected: dict | None = None) -> bytes:
    prot = cbor2.dumps(
        protected if protected is not None else {1: -7 if key.alg == "ES256" else -8}
    )
    body = cbor2.dumps(payload)
    sig = key.sign(Sign1(prot, {}, {}, body, b"").to_be_signed())
    return cbor2.dumps(cbor2.CBORTag(18, [prot, {}, body, sig]))


def test_hostile_presentations(world: World, holder) -> None:
    cred = credential_bytes(bound(world, holder))
    h = hashlib.sha256(cred).digest()
    good = {1: "LP1", 2: NOW, 3: h, 4: b"n" * 12}
    trust = world.trust()
    cases = {
        "oversized nonce": ({**good, 4: b"n" * 17}, "MALFORMED_CLAIMS"),
        "short nonce": ({**good, 4: b"n" * 7}, "MALFORMED_CLAIMS"),
        "wrong type tag": ({**good, 1: "LP2"}, "MALFORMED_CLAIMS"),
        "time as text": ({**good, 2: "now"}, "MALFORMED_CLAIMS"),
        "hash of another credential": (
            {**good, 3: hashlib.sha256(b"x").digest()},
            "BAD_HOLDER_SIGNATURE",
        ),
    }
    for name, (payload, reason) in cases.items():
        t = text(cbor2.dumps([cred, _signed_presentation(holder, payload)]), prefix="LP1:")
        assert check(t, trust) == ("FAIL", reason), name


@pytest.mark.parametrize(
    "outer",
    [
        [],
        [b"x"],
        [b"a", b"b", b"c"],
        {"a": 1},
        [b"x", "y"],
        "text",
    ],
)
def test_truncated_or_misshapen_arrays(world: World, outer: object) -> None:
    assert check(text(cbor2.dumps(outer), prefix="LP1:"), world.trust()) == (
        "FAIL",
        "MALFORMED_STRUCTURE",
    )


def test_presentation_without_alg_is_malformed_structure(world: World, holder) -> None:
    cred = credential_bytes(bound(world, holder))
    pres = _signed_presentation(
        holder, {1: "LP1", 2: NOW, 3: hashlib.sha256(cred).digest(), 4: b"n" * 8}, protected={}
    )
    assert check(text(cbor2.dumps([cred, pres]), prefix="LP1:"), world.trust()) == (
        "FAIL",
        "MALFORMED_STRUCTURE",
    )


def test_stale_data_presentation_is_unverifiable(holder) -> None:
    w = World()
    stale = replace(w.trust(), published_at=NOW - 100 * 3600)
    p = present(bound(w, holder), holder, NOW)
    assert check(p, stale, checkpoint=Checkpoint()) == ("UNVERIFIABLE", "TRUST_DATA_STALE")


def _inflate(t: str) -> bytes:
    import zlib

    from appliance.core.credential.base45 import b45decode

    return zlib.decompress(b45decode(t[4:]))
