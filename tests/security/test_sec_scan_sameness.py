"""The CBOR pre-scan after its one-loop rewrite (issue 23, "Measured") refuses and accepts
exactly what it did before, with the same messages, and agrees with cbor2's own view.

- Against the scan as it was (tests/scan_previous.py): the same outcome, message, end
  offset, item count (the smallest cap that passes) and tag-24 offsets, on hostile trees
  cut and changed, random bytes, pieces of the inline forms, and real payloads mutated, for
  every tag set and cap a profile uses. Speed is measured in benchmarks/, never here.
- Against cbor2 and the rules of ADR 0008: what the scan accepts, cbor2 (every semantic
  decoder stepped aside, text read without UTF-8 errors) reads to the same offset, and
  the value breaks none of the rules; what the scan refuses, cbor2 refuses or the value
  breaks the rule the message names.
"""

from __future__ import annotations

import io
import random
import sys
from pathlib import Path
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scan_previous import previous_scan
from support import World

from appliance.core.credential.cbor_scan import scan
from appliance.core.credential.cose import CWT_SIGN1_TAGS, MAX_ENVELOPE_ITEMS, SIGN1_TAGS
from appliance.core.credential.lc1 import PROFILE
from appliance.core.credential.limits import MAX_CBOR_DEPTH
from appliance.core.credential.qrtext import decode_base45_zlib
from appliance.core.errors import CborShapeError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))
from structure import cbor_trees, dumps, mutants

SHORT = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
MDOC = frozenset({0, 24, 17, 18, 1004})
# (root_tags, tags, max_items, note tag-24 offsets) as the profiles and the mdoc reader call it.
MODES = (
    (frozenset(), frozenset(), 1_024, False),
    (SIGN1_TAGS, frozenset(), MAX_ENVELOPE_ITEMS, False),
    (CWT_SIGN1_TAGS, frozenset(), MAX_ENVELOPE_ITEMS, False),
    (frozenset(), frozenset({0, 1004}), 1_024, False),
    (frozenset(), frozenset(), 3, False),
    (frozenset({18}), frozenset({1, 2}), 64, False),
    (MDOC, MDOC, 8_192, True),
    (frozenset(), frozenset({0, 1004}), 8_192, True),
    (frozenset({24}), frozenset({24}), 5, True),
    (frozenset(), frozenset({24, 0}), 40, False),
)
PIECES = (
    *(b"\xd8\x18", b"\xc0", b"\xd9\x03\xec", b"\xd9\x03", b"\xd9\x00\x18", b"\xd8\x00"),
    *(b"\x58", b"\x59", b"\x59\x00", b"\x59\x00\x02", b"\x79\x00\x01", b"\x78\x02", b"\x5a"),
    *(b"\x41", b"\x40", b"\x57", b"\x60", b"\x61", b"\x62a", b"\x77", b"\x00", b"\x17"),
    *(b"\x18", b"\x18\x20", b"\x38", b"\x19\x01", b"\x1a", b"\x3a\x00\x01\x00\x00", b"\x1c"),
    *(b"\x20", b"\x37", b"\x38\x18", b"\x39\x00\x00", b"\x18\x18", b"\x3b" + bytes(8)),
    *(b"\xff", b"\x80", b"\x81", b"\x82", b"\xa0", b"\xa1", b"\xa2", b"\x98\x01", b"\xb8"),
    *(b"\x9f", b"\xbf", b"\x5f", b"\x7f", b"\xd2", b"\xc1", b"\xf7", b"\xf8", b"\xf9\x00"),
)


def _new(data: bytes, mode: tuple[Any, ...]) -> tuple[Any, ...]:
    root_tags, tags, cap, note = mode
    spans: list[tuple[int, int]] | None = [] if note else None
    try:
        end = scan(data, root_tags=root_tags, tags=tags, max_items=cap, spans=spans)
    except CborShapeError as e:
        return ("refused", str(e))
    return ("ok", end, spans)


def _old(data: bytes, mode: tuple[Any, ...]) -> tuple[tuple[Any, ...], int]:
    root_tags, tags, cap, note = mode
    try:
        end, count, spans = previous_scan(
            data, root_tags=root_tags, tags=tags, max_items=cap, spans=note
        )
    except CborShapeError as e:
        return ("refused", str(e)), 0
    return ("ok", end, spans), count


def same(data: bytes, modes: tuple[tuple[Any, ...], ...] = MODES) -> None:
    """The same outcome, message, offsets and spans under each mode; for what passes, the
    same count (it passes with a cap of exactly its count and is refused below it)."""
    for mode in modes:
        old, count = _old(data, mode)
        assert _new(data, mode) == old, (data.hex(), mode)
        if count:
            for cap in (count, count - 1):
                capped = (mode[0], mode[1], cap, mode[3])
                assert _new(data, capped) == _old(data, capped)[0], (data.hex(), capped)


def check(data: bytes) -> None:
    """``same`` and, where this cbor2 can give its view, ``agrees_with_cbor2`` in every mode."""
    same(data)
    if CBOR2_VIEW:
        for mode in MODES:
            agrees_with_cbor2(data, mode)


@SHORT
@given(tree=cbor_trees(), cut=st.integers(0, 2**16), flip=st.integers(0, 2**16))
def test_the_same_as_before_on_hostile_trees(tree: Any, cut: int, flip: int) -> None:
    data = dumps(tree)
    if data is None:
        return
    same(data)
    same(data[: cut % (len(data) + 1)])
    if data:
        i = flip % len(data)
        same(data[:i] + bytes(((data[i] + 1 + flip // len(data)) % 256,)) + data[i + 1 :])


@SHORT
@given(data=st.binary(max_size=48))
def test_the_same_as_before_on_random_bytes(data: bytes) -> None:
    same(data)


@SHORT
@given(pieces=st.lists(st.sampled_from(PIECES), min_size=1, max_size=14), deep=st.integers(0, 17))
def test_the_same_as_before_on_pieces_of_the_inline_forms(pieces: list[bytes], deep: int) -> None:
    data = b"".join(pieces)
    same(data)
    same(b"\x81" * deep + data)  # near and past the depth limit
    same(b"\xa1\x01" * min(deep, 9) + data)


def test_the_same_as_before_on_a_licence_mutated() -> None:
    """The LC1 envelope and claims of a real credential, and many mutants of each."""
    world = World()
    envelope = decode_base45_zlib(world.issue(), "LC1:")
    payload = PROFILE.open(world.issue()).sign1.payload
    rng = random.Random(23)
    for data in (envelope, payload):
        same(data)
        for mutant in mutants(data, rng, 400, PIECES):
            same(mutant)
            same(mutants(mutant, rng, 1, PIECES)[0])


@pytest.mark.parametrize("depth", [14, 15, 16, 17])
def test_the_same_as_before_at_every_edge_of_depth_and_width(depth: int) -> None:
    inners = (b"\x01", b"\x80", b"\xa0", b"\xc0\x60", b"\xd8\x18\x40", b"\x59\x00\x00")
    tagged = (b"\xc0\x63abc", b"\xd8\x18\x43abc", b"\xd9\x03\xec\x6a2019-10-20", b"\xc1\x41x")
    for inner in (*inners, *tagged, *(t + b"\x00" for t in tagged)):
        for wrap in (b"\x81", b"\xa1\x01", b"\xa1\x61a", b"\xc0", b"\xd8\x18", b"\x9f"):
            check(wrap * depth + inner)
    for width in (0, 1, 23, 24, 255, 256, 511, 512, 1_023, 1_024, 1_025):
        for head in (0x80, 0xA0):
            body = b"\x00" * (width * (2 if head == 0xA0 else 1))
            for length in (bytes((head | width,)) if width < 24 else None,):
                if length is not None:
                    check(length + body)
            check(bytes((head | 25,)) + width.to_bytes(2, "big") + body)
            check(bytes((head | 26,)) + width.to_bytes(4, "big") + body[:-1])


def _head(major: int, value: int, width: int) -> bytes:
    """A head of ``width`` argument bytes (0: in the initial byte), minimal or not."""
    if width == 0:
        return bytes((major << 5 | value,))
    return bytes((major << 5 | {1: 24, 2: 25, 4: 26, 8: 27}[width],)) + value.to_bytes(width, "big")


INT_KEYS = (0, 1, 23, 24, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32, 2**64 - 1)


def test_the_same_as_before_on_integer_keys_of_every_width_and_sign() -> None:
    """k and -1-k are different keys; k spelt in two widths is the same key twice."""
    for k in INT_KEYS:
        widths = [w for w in (0, 1, 2, 4, 8) if (w == 0 and k < 24) or (w and k < 256**w)]
        for w in widths:
            positive, negative = _head(0, k, w), _head(1, k, w)
            check(b"\xa2" + positive + b"\x00" + negative + b"\x00")
            check(b"\xa2" + negative + b"\x00" + positive + b"\x00")
            check(b"\xa1" + positive + b"\x00")
            for other in widths:
                check(b"\xa2" + positive + b"\x00" + _head(0, k, other) + b"\x00")
                check(b"\xa2" + negative + b"\x00" + _head(1, k, other) + b"\x00")
                check(b"\xbf" + negative + b"\x00" + _head(1, k, other) + b"\x00\xff")
    for text in (b"", b"a", b"k" * 23, b"k" * 24, b"k" * 255, b"k" * 256):
        n = len(text)
        spellings = [
            _head(3, n, w) + text
            for w in (0, 1, 2, 4)
            if (w or n < 24) and n < 256**w + 24 * (w == 0)
        ]
        spellings.append(b"\x7f" + _head(3, n, 0 if n < 24 else 2) + text + b"\xff")
        spellings.append(
            b"\x7f"
            + (_head(3, 1, 0) + text[:1] + _head(3, n - 1, 2) + text[1:] if n else b"")
            + b"\xff"
        )
        for one in spellings:
            check(b"\xa2" + one + b"\x00" + bytes((0x40 | min(n, 23),)) + text[:23] + b"\x00")
            for other in spellings:
                check(b"\xa2" + one + b"\x00" + other + b"\x00")
                check(b"\xa3\x00\x00" + one + b"\x80" + other + b"\x00")
    for k in range(48):  # every one-byte key beside every other, and text beside bytes
        check(b"\xa2" + bytes((k,)) + b"\x00" + bytes(((k + 1) % 48,)) + b"\x00")
        check(
            b"\xa2"
            + bytes((0x60 | k % 24,))
            + b"k" * (k % 24)
            + b"\x01"
            + bytes((0x40 | k % 24,))
            + b"k" * (k % 24)
            + b"\x01"
        )


def test_the_same_as_before_on_many_containers_side_by_side() -> None:
    """Width, not nesting: a container closed gives its level back (17 and more siblings,
    then a deep one), in arrays and maps, with tags and empty containers between."""
    for depth in (13, 14, 15):
        nested: object = 0
        for _ in range(depth):
            nested = [nested]
        for sibling in ([0], {0: 0}, [[0]], cbor2.CBORTag(24, b"\x00"), [], {}):
            for width in (16, 17, 20, 40):
                check(cbor2.dumps([sibling] * width + [nested]))
                check(cbor2.dumps({i: sibling for i in range(width)} | {-1: nested}))
                check(cbor2.dumps([[sibling] * width, nested]))


# cbor2's own view: each tag cbor2 6 decodes itself comes back as read, so nothing is built;
# text that is not UTF-8 is kept (the scan never reads text).
SEMANTIC_TAGS = (0, 1, 2, 3, 4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261)
_RAW_TAGS = {
    tag: (lambda t: lambda value, immutable: cbor2.CBORTag(t, value))(tag)
    for tag in (*SEMANTIC_TAGS, 1004, 43000, 55799)
}


def _cbor2_has_options() -> bool:
    """The options the view needs came with cbor2 5.7/5.9; the floor (5.6) lacks them."""
    try:
        cbor2.CBORDecoder(io.BytesIO(b""), semantic_decoders={}, allow_duplicate_keys=False)
    except TypeError:
        return False
    return True


CBOR2_VIEW = _cbor2_has_options()
needs_cbor2_options = pytest.mark.skipif(
    not CBOR2_VIEW, reason="this cbor2 has no semantic_decoders/allow_duplicate_keys"
)


def _cbor2_view(data: bytes) -> tuple[Any, int] | None:
    """(value, offset after it) as cbor2 reads the first item, or None when it refuses."""
    decoder = cbor2.CBORDecoder(
        io.BytesIO(data),
        semantic_decoders=_RAW_TAGS,
        str_errors="surrogateescape",
        allow_duplicate_keys=False,
        max_depth=10_000,
        read_size=1,
    )
    try:
        return decoder.decode(), decoder.fp.tell()
    except (cbor2.CBORError, ValueError, OverflowError, RecursionError):
        return None


def _broken_rules(
    value: Any, root_tags: frozenset[int], tags: frozenset[int], cap: int
) -> set[str]:
    """The rules of ADR 0008 the decoded value breaks (duplicate keys, lengths and heads
    are cbor2's own refusals): words the scan's message holds for each."""
    broken: set[str] = set()
    count = 0

    def walk(v: Any, depth: int, allowed: frozenset[int]) -> None:
        nonlocal count
        count += 1
        if isinstance(v, cbor2.CBORSimpleValue):
            broken.add("simple value")
        if not isinstance(v, list | tuple | dict | cbor2.frozendict | cbor2.CBORTag):
            return  # (cbor2 gives tuples and frozen maps inside tags and as keys)
        if depth >= MAX_CBOR_DEPTH:
            broken.add("deeper")
            return
        if isinstance(v, cbor2.CBORTag):
            if v.tag not in allowed:
                broken.add(f"tag {v.tag} not allowed")
            walk(v.value, depth + 1, allowed)
            return
        for k, item in v.items() if isinstance(v, dict | cbor2.frozendict) else ():
            if type(k) not in (int, str, bytes):
                broken.add("map key")
            walk(k, depth + 1, tags)
            walk(item, depth + 1, tags)
        for item in v if isinstance(v, list | tuple) else ():
            walk(item, depth + 1, tags)

    walk(value, 0, root_tags)
    if count > cap:
        broken.add("more than")
    return broken


def agrees_with_cbor2(data: bytes, mode: tuple[Any, ...]) -> None:
    root_tags, tags, cap, _ = mode
    outcome = _new(data, mode)
    view = _cbor2_view(data)
    if outcome[0] == "ok":
        assert view is not None and view[1] == outcome[1], (data.hex(), mode, outcome)
        assert not _broken_rules(view[0], root_tags, tags, cap), (data.hex(), mode)
        return
    message = outcome[1]
    if view is None:
        return  # both refuse: a length, head, break, chunk or duplicate key cbor2 also refuses
    broken = _broken_rules(view[0], root_tags, tags, cap)
    chunked = b"\x5f" in data or b"\x7f" in data  # chunks count, unseen in cbor2's value
    assert any(rule in message for rule in broken) or (chunked and "more than" in message), (
        data.hex(),
        mode,
        message,
        broken,
    )


@needs_cbor2_options
@SHORT
@given(tree=cbor_trees(), cut=st.integers(0, 2**16), flip=st.integers(0, 2**16))
def test_agrees_with_cbor2_and_the_rules_on_hostile_trees(tree: Any, cut: int, flip: int) -> None:
    data = dumps(tree)
    if data is None:
        return
    for variant in (data, data[: cut % (len(data) + 1)]):
        for mode in MODES:
            agrees_with_cbor2(variant, mode)
    if data:
        i = flip % len(data)
        changed = data[:i] + bytes(((data[i] + 1 + flip // len(data)) % 256,)) + data[i + 1 :]
        for mode in MODES:
            agrees_with_cbor2(changed, mode)


@needs_cbor2_options
@SHORT
@given(pieces=st.lists(st.sampled_from(PIECES), min_size=1, max_size=14))
def test_agrees_with_cbor2_and_the_rules_on_pieces(pieces: list[bytes]) -> None:
    for mode in MODES:
        agrees_with_cbor2(b"".join(pieces), mode)


@needs_cbor2_options
def test_agrees_with_cbor2_and_the_rules_on_a_licence_mutated() -> None:
    payload = PROFILE.open(World().issue()).sign1.payload
    rng = random.Random(2)
    for mutant in [payload, *mutants(payload, rng, 600, PIECES)]:
        for mode in MODES:
            agrees_with_cbor2(mutant, mode)
