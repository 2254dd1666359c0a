"""Property tests: issue -> verify round-trips; one flipped character never passes."""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from support import ISS, NOW, World

from appliance.core.credential.base45 import ALPHABET
from appliance.core.reasons import Outcome
from appliance.core.verifier import Checkpoint, verify
from appliance.tools.issuer import Claims, LicenceData, issue

AUTHORING = Checkpoint(check_staleness=False)
WORLD = World()
TRUST = WORLD.trust()

text_field = st.text(min_size=1, max_size=40)
date = st.dates().map(lambda d: d.isoformat()).filter(lambda s: len(s) == 10)
licences = st.builds(
    LicenceData,
    typ=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=4),
    no=text_field,
    nm=text_field,
    nml=st.none() | text_field,
    dob=st.none() | date,
    cls=st.lists(st.text(max_size=5), max_size=4),
    vf=st.none() | date,
    vu=st.none() | date,
    ph=st.none() | st.binary(max_size=300),
    ext=st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=licences,
    alg=st.sampled_from(["ES256", "EdDSA"]),
    lifetime=st.integers(min_value=0, max_value=20 * 365 * 86400),
)
def test_round_trip_passes_with_same_fields(data: LicenceData, alg: str, lifetime: int) -> None:
    key = WORLD.es256 if alg == "ES256" else WORLD.eddsa
    t = issue(key, Claims(ISS, data, iat=NOW - 60, exp=NOW + lifetime))
    v = verify(t, TRUST, NOW, checkpoint=AUTHORING)
    assert (v.outcome, str(v.reason)) == (Outcome.PASS, "OK")
    c = v.credential
    assert c is not None
    assert (c.typ, c.no, c.nm, c.nml, c.dob, c.vf, c.vu, c.ph) == (
        data.typ,
        data.no,
        data.nm,
        data.nml,
        data.dob,
        data.vf,
        data.vu,
        data.ph,
    )
    assert list(c.cls) == data.cls and dict(c.ext) == data.ext
    assert c.exp == NOW + lifetime and c.iss == ISS


VALID = WORLD.issue()
VALID_EDDSA = WORLD.issue(WORLD.eddsa)


@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from([VALID, VALID_EDDSA]),
    pos=st.integers(min_value=0),
    replacement=st.sampled_from([*list(ALPHABET.decode()), "a", "ก", "\x00"]),
)
def test_single_character_change_never_passes(base: str, pos: int, replacement: str) -> None:
    i = pos % len(base)
    assume(base[i] != replacement)
    mutated = base[:i] + replacement + base[i + 1 :]
    assert verify(mutated, TRUST, NOW, checkpoint=AUTHORING).outcome is not Outcome.PASS


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: "LC1:" + b.hex().upper()))
def test_arbitrary_text_gives_a_verdict(t: str) -> None:
    v = verify(t, TRUST, NOW)
    assert v.outcome is Outcome.FAIL


@settings(max_examples=200, deadline=None)
@given(tail=st.binary(min_size=1, max_size=8))
def test_any_trailing_bytes_after_the_cose_structure_are_refused(tail: bytes) -> None:
    """The cheap decoding path must still see bytes after the COSE_Sign1 (spec LC1 s.1)."""
    import zlib

    from appliance.core.credential.base45 import b45decode, b45encode

    cose = zlib.decompress(b45decode(VALID[4:]))
    mutated = "LC1:" + b45encode(zlib.compress(cose + tail))
    v = verify(mutated, TRUST, NOW, checkpoint=AUTHORING)
    assert str(v.reason) == "MALFORMED_STRUCTURE"
