"""The mdoc reader's pre-scan reads the common mdoc forms inline (tag 24 around a byte
string, tags 0 and 1004 around a text, strings of 256 B to 64 KiB) for speed (issue 23,
"Measured"). It must refuse exactly what the shared scan refuses, with the same message,
count the same items, end at the same offset, and note the same tag-24 spans as the
general path that records each tag-24 item it walks.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from appliance.core.credential.cbor_scan import _Scan
from appliance.core.credential.mdoc.cbor import MDOC_TAGS, TAG_EMBEDDED, _SpanScan
from appliance.core.errors import CborShapeError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))
from structure import cbor_trees, dumps

TAG_SETS = (
    MDOC_TAGS,
    frozenset({0}),
    frozenset({0, 1004}),
    frozenset({24}),
    frozenset(),
)
# Pieces of the forms read inline, cut and whole, and of their neighbours.
PIECES = (
    b"\xd8\x18",
    b"\xc0",
    b"\xd9\x03\xec",
    b"\xd9\x03",
    b"\xd9\x00\x18",
    b"\x58",
    b"\x59",
    b"\x59\x00",
    b"\x59\x00\x02",
    b"\x79\x00\x01",
    b"\x79",
    b"\x78\x02",
    b"\x5a",
    b"\x41",
    b"\x40",
    b"\x57",
    b"\x60",
    b"\x61",
    b"\x77",
    b"\x00",
    b"\xff",
    b"\x81",
    b"\x82",
    b"\xa1",
    b"\x9f",
    b"\x5f",
    b"\x7f",
    b"\xd2",
    b"\xc1",
    b"a",
    b"\xf7",
    b"\xd9",
    b"\x03",
    b"\xec",
)
NEIGHBOUR_TAGS = (b"\xd9\x04\xec", b"\xd9\x03\xed", b"\xd8\x19", b"\xc1", b"\xd9\x00\x18")


class _General(_Scan):
    """The reference: every item by the shared scan, each tag-24 item's offsets noted."""

    __slots__ = ("spans",)

    def __init__(self, data: bytes, tags: frozenset[int], max_items: int) -> None:
        super().__init__(data, tags, max_items)
        self.spans: list[tuple[int, int]] = []

    def item(self, pos: int, depth: int, allowed_tags: frozenset[int]) -> int:
        if pos < self.n and self.data[pos] >> 5 == 6 and self.head(pos)[2] == TAG_EMBEDDED:
            index = len(self.spans)
            self.spans.append((pos, pos))
            end = super().item(pos, depth, allowed_tags)
            self.spans[index] = (pos, end)
            return end
        return super().item(pos, depth, allowed_tags)


def _run(cls: type[_Scan], data: bytes, tags: frozenset[int], root: frozenset[int], cap: int):
    scanner = cls(data, tags, cap)
    try:
        end = scanner.item(0, 0, root)
    except CborShapeError as e:
        return ("refused", str(e))
    return ("ok", end, scanner.count, scanner.spans)  # type: ignore[attr-defined]


def _same(data: bytes, tags: frozenset[int], root: frozenset[int], cap: int) -> None:
    assert _run(_SpanScan, data, tags, root, cap) == _run(_General, data, tags, root, cap), (
        data.hex(),
        sorted(tags),
        sorted(root),
        cap,
    )


def test_the_inline_forms_agree_with_the_general_path_on_cut_and_mixed_pieces() -> None:
    rng = random.Random(23)
    for _ in range(20_000):
        data = b"".join(rng.choice(PIECES) for _ in range(rng.randint(1, 12)))
        if rng.random() < 0.3:  # near the depth limit
            data = b"\x81" * rng.randint(12, 17) + data
        tags = rng.choice(TAG_SETS)
        _same(data, tags, rng.choice((tags, frozenset())), rng.choice((1, 2, 3, 5, 8192)))


def test_the_inline_forms_at_their_edges() -> None:
    for body in (b"", b"\xa0", b"x" * 23, b"x" * 24, b"x" * 255, b"x" * 256, b"x" * 65_535):
        for head in (b"", b"\x81", b"\x81" * 15, b"\x81" * 16):  # the depth limit is 16
            n = len(body)
            for string in (
                bytes((0x40 | n,)) if n < 24 else None,
                b"\x58" + bytes((n,)) if n < 256 else None,
                b"\x59" + n.to_bytes(2, "big"),
                b"\x5a" + n.to_bytes(4, "big"),
            ):
                if string is None:
                    continue
                for tag in (b"\xd8\x18", b"\xc0", b"\xd9\x03\xec", b"", *NEIGHBOUR_TAGS):
                    text = bytes((string[0] + 0x20,)) + string[1:]
                    for item in (tag + string + body, tag + text + body):
                        for cut in (len(head + item), len(head + item) - 1):
                            data = (head + item)[:cut]
                            for tags in TAG_SETS:
                                _same(data, tags, tags, 8192)
                                _same(data, tags, tags, 1)


@settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(tree=cbor_trees())
def test_the_inline_forms_agree_with_the_general_path_on_hostile_trees(tree: object) -> None:
    encoded = dumps(tree)
    if encoded is None:
        return
    for tags in TAG_SETS:
        _same(encoded, tags, tags, 8192)
