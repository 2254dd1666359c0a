"""Attack replays: no QR text stops or slows the verifier core (bounded decoding).

Each attack is checked twice: ``verify`` returns the specific verdict, and the profile's
own decoding rejects it with that reason (so the last-resort net in ``verify`` cannot be
what passes the test).
"""

from __future__ import annotations

import ast
import logging
import re
import zlib
from pathlib import Path

import cbor2
import pytest
from support import NOW, World, claims, cose, text

from appliance.core import verifier
from appliance.core.credential import hc1, lc1, shc
from appliance.core.credential.base45 import b45encode
from appliance.core.errors import Rejection
from appliance.core.reasons import Outcome, Reason
from appliance.core.verifier import Checkpoint, verify

REPO = Path(__file__).resolve().parents[2]
CHECK = Checkpoint(check_staleness=False)
KID = b"\x01" * 8


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def envelope(protected: bytes, unprotected: dict | None = None, payload: bytes = b"") -> bytes:
    return cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected or {}, payload, b"\x00" * 64]))


def qr(prefix: str, cose_bytes: bytes) -> str:
    return prefix + b45encode(zlib.compress(cose_bytes, 9))


def bignum_alg_text(prefix: str) -> str:
    """Attack 1: a protected alg that is a 4,817-digit bignum (tag 2), in a tiny QR text."""
    alg = cbor2.CBORTag(2, b"\xff" * 2000)
    return qr(prefix, envelope(cbor2.dumps({1: alg, 4: KID})))


def mime_header_text() -> str:
    """Attack 2: a MIME object (tag 36) in the protected header, costly for cbor2 to build."""
    body = "Content-Type: multipart/mixed; boundary=b\n\n" + "--b\n\n" * 3000
    return qr("LC1:", envelope(cbor2.dumps({1: -7, 4: KID, 5: cbor2.CBORTag(36, body)})))


def assert_rejected(profile, qr_text: str, reason: Reason) -> None:
    with pytest.raises(Rejection) as info:
        profile.open(qr_text)
    assert info.value.reason is reason


@pytest.mark.parametrize("prefix,profile", [("LC1:", lc1.PROFILE), ("HC1:", hc1.PROFILE)])
def test_bignum_alg_is_malformed_structure(world: World, prefix: str, profile) -> None:
    qr_text = bignum_alg_text(prefix)
    assert len(qr_text) < 100
    assert_rejected(profile, qr_text, Reason.MALFORMED_STRUCTURE)
    v = verify(qr_text, world.trust(), NOW, checkpoint=CHECK)
    assert (v.outcome, v.reason, v.profile) == (
        Outcome.FAIL,
        Reason.MALFORMED_STRUCTURE,
        prefix[:3],
    )


@pytest.mark.parametrize("alg", [2**63, -(2**63) - 1, 2**64 - 1, "A" * 200])
def test_alg_outside_int64_or_long_text_is_malformed_structure(world: World, alg) -> None:
    data = cose(world.es256, b"\xa0", protected={1: alg, 4: world.es256.kid})
    assert_rejected(lc1.PROFILE, text(data), Reason.MALFORMED_STRUCTURE)


@pytest.mark.parametrize("alg", [-35, 2**63 - 1, -(2**63), "ES256"])
def test_alg_in_range_but_unsupported_stays_unsupported(world: World, alg) -> None:
    data = cose(world.es256, b"\xa0", protected={1: alg, 4: world.es256.kid})
    assert_rejected(lc1.PROFILE, text(data), Reason.UNSUPPORTED_ALGORITHM)


@pytest.mark.parametrize("digits", ["1" * 4400 + "/1/", "1/" + "1" * 4400 + "/", "1" * 3 + "/9/"])
def test_shc_chunk_numbers_are_bounded_before_conversion(world: World, digits: str) -> None:
    qr_text = "shc:/" + digits + "00"
    assert_rejected(shc.PROFILE, qr_text, Reason.MALFORMED_ENCODING)
    v = verify(qr_text, world.trust(), NOW, checkpoint=CHECK)
    assert (v.outcome, v.reason) == (Outcome.FAIL, Reason.MALFORMED_ENCODING)


def test_base45_refuses_long_or_non_ascii_text_before_any_arithmetic() -> None:
    """b45decode is public (kiosk, holder tools): bounded by itself, not only by qrtext;
    a non-ASCII text was a UnicodeEncodeError, now the decoder's own error."""
    from appliance.core.credential.base45 import b45decode
    from appliance.core.errors import Base45Error

    for bad in ("00" * 60_000, "0\u0e01" * 3):
        with pytest.raises(Base45Error):
            b45decode(bad)
    assert b45decode(b45encode(b"\xff" * 2_900)) == b"\xff" * 2_900


def test_mime_tag_in_protected_header_is_refused_before_decoding(world: World) -> None:
    qr_text = mime_header_text()
    assert len(qr_text) < 250
    assert_rejected(lc1.PROFILE, qr_text, Reason.MALFORMED_STRUCTURE)
    v = verify(qr_text, world.trust(), NOW, checkpoint=CHECK)
    assert (v.outcome, v.reason) == (Outcome.FAIL, Reason.MALFORMED_STRUCTURE)


# Registered tags cbor2 decodes into objects (or resolves as references).
SEMANTIC = {
    0: "2026-01-01T00:00:00Z",
    1: 5,
    2: b"\x01",
    3: b"\x01",
    4: [-1, 5],
    5: [1, 3],
    21: b"x",
    22: b"x",
    23: b"x",
    24: b"\xa0",
    25: 0,
    28: [1],
    29: 0,
    30: [1, 2],
    32: "http://x",
    33: "eA",
    34: "eA==",
    35: "a+",
    36: "X: a\n\nb",
    37: b"\x00" * 16,
    256: [1],
    258: [1, 2],
    1004: "2026-01-01",
    55799: 1,
}


@pytest.mark.parametrize("tag", sorted(SEMANTIC))
def test_tags_inside_headers_are_malformed_structure(world: World, tag: int) -> None:
    hostile = cbor2.CBORTag(tag, SEMANTIC[tag])
    k = world.es256
    in_protected = cose(k, b"\xa0", protected={1: -7, 4: k.kid, 99: hostile})
    in_unprotected = cose(k, b"\xa0", unprotected={99: hostile})
    for data in (in_protected, in_unprotected):
        assert_rejected(lc1.PROFILE, text(data), Reason.MALFORMED_STRUCTURE)


@pytest.mark.parametrize("tag", sorted(SEMANTIC))
def test_tags_inside_lc1_claims_are_malformed_claims(world: World, tag: int) -> None:
    """A claims map signed by a trusted key, with an extra claim holding a tag."""
    payload = cbor2.loads(claims().to_cbor())
    payload[99] = cbor2.CBORTag(tag, SEMANTIC[tag])
    qr_text = text(cose(world.es256, cbor2.dumps(payload)))
    v = verify(qr_text, world.trust(), NOW, checkpoint=CHECK)
    assert (v.outcome, v.reason) == (Outcome.FAIL, Reason.MALFORMED_CLAIMS)
    del payload[99]
    v = verify(text(cose(world.es256, cbor2.dumps(payload))), world.trust(), NOW, checkpoint=CHECK)
    assert (v.outcome, v.reason) == (Outcome.PASS, Reason.OK)


def test_header_with_too_many_entries_is_malformed_structure(world: World) -> None:
    k = world.es256
    protected = {1: -7, 4: k.kid, **{100 + i: i for i in range(40)}}
    assert_rejected(
        lc1.PROFILE, text(cose(k, b"\xa0", protected=protected)), Reason.MALFORMED_STRUCTURE
    )


def test_unexpected_fault_in_a_profile_is_a_verdict_logged_once(
    world: World, monkeypatch, caplog
) -> None:
    """The last-resort net: a bug in a profile's decoding gives a verdict, not an exception,
    and one log record that does not carry the text."""

    class Broken:
        name, prefix = "LC1", "LC1:"

        def open(self, qr_text: str):
            raise ZeroDivisionError("a bug")

    monkeypatch.setattr(verifier, "find_profile", lambda _text: Broken())
    secret = "LC1:SECRET-NAME-63001234"
    with caplog.at_level(logging.DEBUG, logger="appliance.core.verifier"):
        v = verify(secret, world.trust(), NOW, checkpoint=CHECK)
    assert (v.outcome, v.reason, v.profile) == (Outcome.FAIL, Reason.MALFORMED_STRUCTURE, "LC1")
    records = [r for r in caplog.records if r.name == "appliance.core.verifier"]
    assert len(records) == 1
    logged = records[0].getMessage() + (caplog.text or "")
    assert "SECRET" not in logged and "63001234" not in logged


# --- attack 3: the cbor2 floor in pyproject.toml must be true ------------------------------

# Keyword arguments cbor2 5.6.0 (the floor) accepts for decoding; 5.9 lacks
# allow_duplicate_keys, 5.6 lacks max_depth: using either made every LC1 MALFORMED_STRUCTURE.
FLOOR = "5.6"
FLOOR_DECODER_KWARGS = {"tag_hook", "object_hook", "str_errors"}


def test_pyproject_floor_is_the_one_checked_here() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(r'"cbor2>=([0-9.]+)"', pyproject).group(1) == FLOOR


def test_credential_code_uses_only_decoder_options_of_the_cbor2_floor() -> None:
    used: list[tuple[str, str]] = []
    for path in sorted((REPO / "appliance" / "credential").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "cbor2"
                and node.func.attr in ("loads", "load", "CBORDecoder")
            ):
                used += [(path.name, kw.arg or "**") for kw in node.keywords]
    assert [u for u in used if u[1] not in FLOOR_DECODER_KWARGS] == []
