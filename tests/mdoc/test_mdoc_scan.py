"""The mdoc reader's pre-scan reads the common mdoc forms inline (tag 24 around a byte
string, tags 0 and 1004 around a text, strings of 256 B to 64 KiB) for speed (issue 23,
"Measured"), now inside the shared scan's one loop (``scan(spans=...)``). It must refuse
exactly what the scan before the rewrite refused (tests/scan_previous.py: its mdoc
subclass, itself checked against the general path), with the same message, count the same
items, end at the same offset, and note the same tag-24 spans.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from annexd import AnnexD
from hypothesis import HealthCheck, given, settings
from scan_previous import previous_scan

from appliance.core.credential.cbor_scan import scan
from appliance.core.credential.mdoc.cbor import MDOC_TAGS, Embedded, decode, embedded_content
from appliance.core.errors import CborShapeError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))
from structure import cbor_trees, dumps, mutants

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


def _run(data: bytes, tags: frozenset[int], root: frozenset[int], cap: int, new: bool):
    try:
        if new:
            spans: list[tuple[int, int]] = []
            end = scan(data, root_tags=root, tags=tags, max_items=cap, spans=spans)
            return ("ok", end, spans)
        end, _, noted = previous_scan(data, root_tags=root, tags=tags, max_items=cap, spans=True)
        return ("ok", end, noted)
    except CborShapeError as e:
        return ("refused", str(e))


def _count(data: bytes, tags: frozenset[int], root: frozenset[int]) -> int | None:
    try:
        return previous_scan(data, root_tags=root, tags=tags, max_items=8192, spans=True)[1]
    except CborShapeError:
        return None


def _same(data: bytes, tags: frozenset[int], root: frozenset[int], cap: int) -> None:
    """The same outcome, message, end and spans; for what passes, the same item count (a
    cap of exactly the count passes, one less is refused alike)."""
    caps = [cap]
    count = _count(data, tags, root) if cap == 8192 else None
    if count is not None:
        caps += [count, count - 1] if count > 1 else [count]
    for c in caps:
        assert _run(data, tags, root, c, True) == _run(data, tags, root, c, False), (
            data.hex(),
            sorted(tags),
            sorted(root),
            c,
        )


def test_the_inline_forms_agree_with_the_general_path_on_cut_and_mixed_pieces() -> None:
    rng = random.Random(23)
    for _ in range(20_000):
        data = b"".join(rng.choice(PIECES) for _ in range(rng.randint(1, 12)))
        if rng.random() < 0.3:  # near the depth limit
            data = b"\x81" * rng.randint(12, 17) + data
        tags = rng.choice(TAG_SETS)
        _same(data, tags, rng.choice((tags, frozenset())), rng.choice((1, 2, 3, 5, 8192)))


def test_the_annex_d_response_and_its_items_mutated(annexd: AnnexD) -> None:
    """The real mdoc messages, whole and with many mutants each: the response, its
    IssuerSignedItems and the MSO, as the reader scans each."""
    response = annexd.bytes("device_response")
    document = decode(response)["documents"][0]
    issuer_signed = document["issuerSigned"]
    items = [item.data for items in issuer_signed["nameSpaces"].values() for item in items]
    mso = embedded_content(issuer_signed["issuerAuth"][2])
    assert mso is not None and all(
        isinstance(i, Embedded) for i in issuer_signed["nameSpaces"]["org.iso.18013.5.1"]
    )
    rng = random.Random(18013)
    for data, tags in [
        (response, MDOC_TAGS),
        (mso, frozenset({0})),
        *((i, frozenset({0, 1004})) for i in items),
    ]:
        root = tags if tags is MDOC_TAGS else frozenset()
        _same(data, tags, root, 8192)
        for mutant in mutants(data, rng, 300 if data is response or data is mso else 60, PIECES):
            _same(mutant, tags, root, 8192)


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
