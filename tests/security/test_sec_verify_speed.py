"""The verifier's speed after the hostile-input work, kept without weakening a check.

Speed itself is measured in benchmarks/ (bench_verify, bench_cli), never asserted as wall
time here. What is asserted is what makes it fast and what must not change:

- the CBOR pre-scan refuses and accepts exactly what the scan of ADR 0008 as first written
  does (tests/scan_reference.py), on hostile trees, random bytes and cut-off inputs, for
  every tag set and item cap a profile uses;
- the COSE envelope fast path reads exactly what the pre-scan and cbor2 read;
- the scan spends no Python call per scalar item (one per nested container): the first scan
  made a call per item and per head, 52 for a licence's claims and over 1,000 for a flat array;
- ``appliance verify TEXT`` loads one command module and one credential profile, not all
  seventeen commands and four profiles.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from unittest import mock

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scan_reference import reference_scan
from support import World

from appliance.core.credential import cose
from appliance.core.credential.cbor_scan import scan
from appliance.core.credential.cose import CWT_SIGN1_TAGS, MAX_ENVELOPE_ITEMS, SIGN1_TAGS
from appliance.core.credential.lc1 import PROFILE
from appliance.core.credential.qrtext import decode_base45_zlib
from appliance.core.errors import CborShapeError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))
from structure import cbor_trees, dumps

from appliance.core.errors import CoseError

SHORT = settings(
    max_examples=400,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
# (root_tags, tags, max_items) as the profiles call the scan (cose.py, cwt.py, hc1.py).
MODES = (
    (frozenset(), frozenset(), 1_024),
    (SIGN1_TAGS, frozenset(), MAX_ENVELOPE_ITEMS),
    (CWT_SIGN1_TAGS, frozenset(), MAX_ENVELOPE_ITEMS),
    (frozenset(), frozenset({0, 1004}), 1_024),
    (frozenset(), frozenset(), 3),
    (frozenset({18}), frozenset({1, 2}), 64),
)


def _outcome(fn, data: bytes, mode) -> int | None:
    """The offset after the item, or None when the scan refuses the bytes."""
    root_tags, tags, max_items = mode
    try:
        return fn(data, root_tags=root_tags, tags=tags, max_items=max_items)
    except CborShapeError:
        return None


def _agree(data: bytes) -> None:
    for mode in MODES:
        assert _outcome(scan, data, mode) == _outcome(reference_scan, data, mode), (data, mode)


@SHORT
@given(tree=cbor_trees(), cut=st.integers(0, 2**16), flip=st.integers(0, 2**16))
def test_scan_agrees_with_the_reference_on_hostile_trees(tree, cut: int, flip: int) -> None:
    data = dumps(tree)
    if data is None:
        return
    _agree(data)
    _agree(data[: cut % (len(data) + 1)])
    if data:  # one byte changed: heads, lengths and breaks land in odd places
        i = flip % len(data)
        _agree(data[:i] + bytes(((data[i] + 1 + flip // len(data)) % 256,)) + data[i + 1 :])


@SHORT
@given(data=st.binary(max_size=64))
def test_scan_agrees_with_the_reference_on_random_bytes(data: bytes) -> None:
    _agree(data)


# Hand-picked edges: every head form of every major type, breaks where they may and may
# not stand, duplicate keys spelt differently, depth and item caps exactly at the limit.
EDGES = [
    b"",
    b"\x18",
    b"\x18\x01",
    b"\x1b" + bytes(8),
    b"\x1c",
    b"\x1f",
    b"\x3f",
    b"\xdf",
    b"\x5f\x41a\x41b\xff",
    b"\x5f\x61a\xff",
    b"\x5f\x5f\xff\xff",
    b"\x7f\x61a\x61b\xff",
    b"\x9f\x01\x02\xff",
    b"\x9f\x01",
    b"\xbf\x01\x02\xff",
    b"\xbf\x01\xff",
    b"\xbf\xff",
    b"\xa1\x01\xff",
    b"\xff",
    b"\xf7",
    b"\xf8\x20",
    b"\xf3",
    b"\xf9\x00\x00",
    b"\xfb" + bytes(7),
    b"\xa2\x61a\x01\x7f\x61a\xff\x02",
    b"\xa2\x41a\x01\x61a\x02",
    b"\xa2\x01\x01\x01\x02",
    b"\xa2\x20\x01\x39\x00\x00\x02",
    b"\xa2\x18\x01\x01\x01\x02",
    b"\xa1\xf4\x01",
    b"\xa1\x81\x01\x01",
    b"\xa1\xc1\x01\x01",
    b"\xc1\x01",
    b"\xd2\x84\x40\xa0\x40\x40",
    b"\xd8\x3d\xd2\x80",
    b"\xd2\xd8\x3d\x80",
    b"\x81\xd2\x80",
    b"\x9a\xff\xff\xff\xff",
    b"\xbb" + b"\xff" * 8,
    b"\x78\x05abc",
    b"\x58",
    b"\x82\x01",
    b"\x81" * 16 + b"\x01",
    b"\x81" * 15 + b"\x01",
    b"\x81" * 17 + b"\x01",
    b"\xa1\x01" * 15 + b"\x01",
    b"\xa1\x01" * 16 + b"\x01",
    b"\xd2" * 15 + b"\x80",
    b"\x84" + b"\x01" * 4,
    b"\x83" + b"\x01" * 3,
    b"\x99\x03\xff" + b"\x01" * 1023,
    b"\x99\x03\xfe" + b"\x01" * 1022,
    b"\x9f" + b"\x01" * 1023 + b"\xff",
    b"\x9f" + b"\x01" * 1024 + b"\xff",
    b"\xbf" + b"\x01\x02" * 511 + b"\xff",
    b"\xbf" + b"\x01\x02" * 512 + b"\xff",
    b"\x80\x00",
    b"\xa0\xff",
]


@pytest.mark.parametrize("data", EDGES, ids=[d[:12].hex() or "empty" for d in EDGES])
def test_scan_agrees_with_the_reference_on_edges(data: bytes) -> None:
    _agree(data)


def _calls(data: bytes, **kwargs) -> int:
    """Python-level calls the scan makes (a deterministic count, not a wall time)."""
    calls = 0

    def count(frame, event, arg) -> None:
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(count)
    try:
        scan(data, **kwargs)
    finally:
        sys.setprofile(None)
    return calls


def test_scan_makes_no_call_per_scalar_item() -> None:
    """The first scan made one method call per item (plus one per head it parsed): 52 for
    a licence's claims. Now: a few calls for the top item, then one per nested container."""
    world = World()
    payload = PROFILE.open(world.issue()).sign1.payload
    containers = 3  # claims map, licence map, cls array
    assert _calls(payload) <= 5 + containers
    assert _calls(cbor2.dumps(list(range(1_023)))) <= 6
    assert _calls(cbor2.dumps({i: "x" * (i % 30) for i in range(500)})) <= 6


def test_scan_still_walks_containers_in_containers() -> None:
    """The call bound above is per container: nesting still runs (and is still capped)."""
    nested = b"\x81" * 16 + b"\x01"  # 16 levels: the limit
    assert scan(nested) == len(nested)
    with pytest.raises(CborShapeError, match="deeper"):
        scan(b"\x81" + nested)
    with pytest.raises(CborShapeError, match="deeper"):
        scan(b"\xa1\x01" * 17 + b"\x01")


CHILD = """
import sys
from appliance.cli import main
status = main(sys.argv[1:])
print(status, " ".join(sorted(sys.modules)))
"""


def test_verify_of_a_text_loads_one_command_and_one_profile(tmp_path: Path) -> None:
    world = World()
    world.editor.save(tmp_path / "trust.json")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            "verify",
            "--trust-source",
            str(tmp_path / "trust.json"),
            "--at",
            "2027-01-15T08:00:00Z",
            world.issue(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    status, _, names = proc.stdout.strip().rpartition("\n")[2].partition(" ")
    loaded = set(names.split())
    assert int(status) == 0 and "PASS" in proc.stdout
    commands = {m for m in loaded if m.startswith("appliance.commands.")}
    assert commands <= {"appliance.commands.verify", "appliance.commands.argtypes"}, commands
    profiles = {m for m in loaded if m.rpartition(".")[2] in ("lc1", "lp1", "hc1", "shc")}
    assert profiles == {"appliance.core.credential.lc1"}, profiles


def test_other_commands_and_help_still_see_every_command(tmp_path: Path) -> None:
    """Building one command's parser must not hide the others from help or usage errors."""
    run = [sys.executable, "-m", "appliance.cli"]
    helped = subprocess.run(
        [*run, "--help"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    for command in ("verify", "decode", "issuer", "trust-source", "selftest"):
        assert command in helped
    wrong = subprocess.run(
        [*run, "verfy", "x"], capture_output=True, text=True, timeout=60, check=False
    )
    assert wrong.returncode == 64 and "invalid choice" in wrong.stderr
    assert "trust-source" in wrong.stderr
    sub = subprocess.run(
        [*run, "-v", "verify", "--help"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "--trust-source" in sub


def _sign1(data: bytes, allow_cwt_tag: bool) -> tuple[str, object]:
    try:
        s = cose.parse_sign1(data, allow_cwt_tag=allow_cwt_tag)
    except CoseError:
        return "error", None
    return "ok", (s.protected, dict(s.protected_map), dict(s.unprotected), s.payload, s.signature)


def _general_sign1(data: bytes, allow_cwt_tag: bool) -> tuple[str, object]:
    """The pre-scan and cbor2 path, with the envelope fast path stepped aside."""
    with mock.patch.object(cose, "_common_envelope", lambda _d: None):
        return _sign1(data, allow_cwt_tag)


COMMON_HEADER = b"\xa2\x01\x26\x04\x48" + bytes(range(8))
envelopes = st.builds(
    lambda head, protected, unprotected, payload, sig_head, signature, tail, cut: (
        head + protected + unprotected + payload + sig_head + signature + tail
    )[:cut],
    st.sampled_from(
        [
            b"\xd2\x84",
            b"\x84",
            b"\xd2\x83",
            b"\x85",
            b"\xd8\x3d\xd2\x84",
            b"\xd3\x84",
            b"\x9f",
            b"\xd2\x9f",
        ]
    ),
    st.sampled_from(
        [
            b"\x4d" + COMMON_HEADER,
            b"\x40",
            b"\x4d" + COMMON_HEADER[:-1] + b"\x00",
            b"\x58\x0d" + COMMON_HEADER,
            b"\x43\xa1\x01\x26",
            b"\x4c" + COMMON_HEADER,
            b"\x41\xa0",
            b"\x5f\x4d" + COMMON_HEADER + b"\xff",
        ]
    ),
    st.sampled_from(
        [b"\xa0", b"\xa1\x01\x26", b"\xa1\x04\x41x", b"\x80", b"\xbf\xff", b"\xa1\x01\xc1\x00"]
    ),
    st.integers(0, 300).map(lambda n: cbor2.dumps(bytes(n))),
    st.sampled_from([b"\x58\x40", b"\x58\x3f", b"\x58\x41", b"\x59\x00\x40", b"\x60"]),
    st.sampled_from([bytes(64), bytes(63), bytes(65)]),
    st.sampled_from([b"", b"\x00", b"\xff"]),
    st.integers(0, 400),
)


@SHORT
@given(data=envelopes, allow_cwt_tag=st.booleans())
def test_envelope_fast_path_reads_what_the_general_path_reads(
    data: bytes, allow_cwt_tag: bool
) -> None:
    """The envelope fast path is a second reader of attacker bytes: it must agree."""
    assert _sign1(data, allow_cwt_tag) == _general_sign1(data, allow_cwt_tag)


def test_envelope_fast_path_takes_the_common_envelope() -> None:
    world = World()
    raw = decode_base45_zlib(world.issue(), "LC1:")
    taken = cose._common_envelope(raw)
    assert taken is not None and taken == cose.parse_sign1(raw)
    assert cose._common_envelope(raw + b"\x00") is None
    assert cose._common_envelope(raw[:-1]) is None


def test_each_prefix_names_the_module_of_its_profile() -> None:
    """find_profile loads a module by prefix: the table must match what each module says."""
    from appliance.core.credential import registry

    for prefix, module in registry.PROFILE_PREFIXES:
        assert registry._profile(module).prefix == prefix
        assert registry.find_profile(prefix + "X") is registry._profile(module)
    assert registry.find_profile("XYZ:") is None
    assert [p.prefix for p in registry.profiles()] == [p for p, _ in registry.PROFILE_PREFIXES]
