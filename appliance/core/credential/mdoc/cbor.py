"""A bounded, total CBOR reader for mdoc structures that keeps the bytes as received.

ISO 18013-5 signs, MACs and digests *encoded* items (``#6.24(bstr)``: IssuerSignedItemBytes,
the MSO, DeviceNameSpacesBytes, DeviceEngagementBytes, ...). A decoder that builds objects
and a verifier that re-encodes them passes minimally encoded test vectors and fails real
wallets that are not (spec mdl-reader s.1 "Byte-exactness"; docs/adr/0011). So each tag-24
item is read as an ``Embedded`` holding the whole encoded item (tag head, bstr head and
content, exactly as received) and the embedded CBOR bytes.

The limits are those of every other profile: the input first passes the bounded pre-scan of
``cbor_scan`` (depth 16, item count, duplicate keys, key types, tags from the mdoc set,
lengths inside the input, ADR 0008), which here also notes where each tag-24 item starts
and ends; only then does cbor2 decode it (in C), and a walk over the containers puts the
noted bytes into each ``Embedded`` (tag-24 items cannot nest inside one another at one
level, so their order in the bytes is their order in the tree). Tags 0 and 1004 come back
as ``datetime`` and ``date``, 17 and 18 as ``Tagged``. Text must be valid UTF-8.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import cbor2

from appliance.core.credential.cbor_scan import scan
from appliance.core.credential.cose import MAP_TYPES
from appliance.core.errors import CborShapeError, MdocCborError

TAG_TDATE, TAG_FULL_DATE, TAG_EMBEDDED, TAG_MAC0, TAG_SIGN1 = 0, 1004, 24, 17, 18
# The tags an mdoc message may hold anywhere; where each may stand is the parsers' check.
MDOC_TAGS = frozenset({TAG_TDATE, TAG_FULL_DATE, TAG_EMBEDDED, TAG_MAC0, TAG_SIGN1})
PLAIN_TAGS = frozenset({TAG_TDATE, TAG_FULL_DATE})
# Items per decode: an mDL with a portrait and privileges holds a few hundred.
MAX_MDOC_ITEMS = 8_192


class Embedded(NamedTuple):
    """``#6.24(bstr .cbor X)``: ``raw`` is the item as received, ``data`` the embedded CBOR."""

    raw: bytes
    data: bytes


class Tagged(NamedTuple):
    """Tag 17 or 18 (COSE_Mac0, COSE_Sign1) and its value (any other tag an allowed set
    lets through that cbor2 has no decoder for, likewise)."""

    tag: int
    value: Any


def decode(
    data: bytes, *, tags: frozenset[int] = MDOC_TAGS, max_items: int = MAX_MDOC_ITEMS
) -> Any:
    """The one CBOR item spanning all of ``data``; ``MdocCborError`` otherwise."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MdocCborError("not bytes")
    data = bytes(data)
    if max_items < 1:
        raise MdocCborError("no items allowed")
    spans: list[tuple[int, int]] = []
    try:
        end = scan(data, root_tags=tags, tags=tags, max_items=max_items, spans=spans)
    except CborShapeError as e:
        raise MdocCborError(str(e)) from e
    if end != len(data):
        raise MdocCborError("bytes after the CBOR item")
    try:
        value = cbor2.loads(data)
    except (cbor2.CBORError, ValueError, OverflowError) as e:  # e.g. text that is not UTF-8
        raise MdocCborError(f"not valid CBOR: {e}") from e
    return _Walk(data, spans).value(value)


def embedded_content(data: bytes) -> bytes | None:
    """The content of ``data`` when it is exactly one definite ``#6.24(bstr)`` with minimal
    heads (the common form of SessionTranscriptBytes and the MSO payload), else None: the
    caller then takes ``decode``. Reads heads only, so it cannot disagree with ``decode``."""
    if data[:2] != b"\xd8\x18" or len(data) < 3:
        return None
    initial = data[2]
    if 0x40 <= initial < 0x58:
        start, length = 3, initial - 0x40
    elif initial == 0x58 and len(data) > 3 and data[3] >= 24:
        start, length = 4, data[3]
    elif initial == 0x59 and len(data) > 4 and int.from_bytes(data[3:5], "big") >= 256:
        start, length = 5, int.from_bytes(data[3:5], "big")
    else:
        return None
    return data[start:] if start + length == len(data) else None


def decode_embedded(
    item: Any, *, tags: frozenset[int] = MDOC_TAGS, max_items: int = MAX_MDOC_ITEMS
) -> Any:
    """The CBOR inside an ``Embedded`` item (refusing anything else)."""
    if not isinstance(item, Embedded):
        raise MdocCborError("expected #6.24(bstr)")
    return decode(item.data, tags=tags, max_items=max_items)


def decode_plain(
    data: bytes, *, tags: frozenset[int] = frozenset(), max_items: int = MAX_MDOC_ITEMS
) -> Any:
    """Embedded CBOR whose parts are not signed again on their own (the MSO, an
    IssuerSignedItem, DeviceNameSpaces): the same pre-scan, then cbor2, without the span
    notes and the walk (docs/adr/0011). ``tags`` may only hold 0 and 1004, which come back
    as ``datetime`` and ``date`` (an invalid one is an ``MdocCborError``)."""
    return decode_plain_many((data,), tags=tags, max_items=max_items)[0]


def decode_plain_many(
    datas: Sequence[bytes], *, tags: frozenset[int] = frozenset(), max_items: int = MAX_MDOC_ITEMS
) -> list[Any]:
    """``decode_plain`` of each of ``datas``: each is pre-scanned on its own (its own item
    count, depth, tags, no trailing bytes), then cbor2 reads them all in one call as the
    items of one array (the scan refuses the tags that could link items: 25, 28, 29, 256)."""
    if not tags <= PLAIN_TAGS:
        raise ValueError("decode_plain reads tags 0 and 1004 only")
    if max_items < 1:
        raise MdocCborError("no items allowed")
    for data in datas:
        try:
            end = scan(data, tags=tags, max_items=max_items)
        except CborShapeError as e:
            raise MdocCborError(f"not acceptable CBOR: {e}") from e
        if end != len(data):
            raise MdocCborError("bytes after the CBOR item")
    count = len(datas)
    try:
        if count == 1:  # no array around one: no copy of its bytes
            return [cbor2.loads(datas[0])]
        head = bytes((0x80 | count,)) if count < 24 else b"\x9a" + count.to_bytes(4, "big")
        values = cbor2.loads(head + b"".join(datas))
    except (cbor2.CBORError, ValueError, OverflowError) as e:  # e.g. text that is not UTF-8
        raise MdocCborError(f"not valid CBOR: {e}") from e
    if type(values) is not list or len(values) != count:  # cannot happen after the scans
        raise MdocCborError("not valid CBOR")
    return values


_LEAVES = frozenset({bytes, str, int, bool, float, type(None)})


class _Walk:
    """cbor2's tree -> the mdoc reader's: tag 24 -> ``Embedded`` with its noted bytes,
    17/18 (and any other tag left as a ``CBORTag``) -> ``Tagged``, tuples and frozen maps
    (cbor2 6 inside tags) -> lists and dicts; ``undefined`` is refused."""

    __slots__ = ("data", "index", "spans")

    def __init__(self, data: bytes, spans: list[tuple[int, int]]) -> None:
        self.data, self.spans, self.index = data, spans, 0

    def value(self, value: Any) -> Any:
        kind = type(value)
        if kind is list:  # cbor2's own lists are changed in place: no copy per container
            spans = self.spans
            for i, v in enumerate(value):
                if type(v) in _LEAVES:
                    continue
                if (  # an array of #6.24 (IssuerSignedItemBytes): read here, no call each
                    type(v) is cbor2.CBORTag
                    and v.tag == TAG_EMBEDDED
                    and type(v.value) is bytes
                    and self.index < len(spans)
                ):
                    start, end = spans[self.index]
                    self.index += 1
                    value[i] = Embedded(self.data[start:end], v.value)
                else:
                    value[i] = self.value(v)
            return value
        if kind is dict:  # values only: the keys (and so the size) stay
            for k, v in value.items():
                if type(v) not in _LEAVES:
                    value[k] = self.value(v)
            return value
        if kind is tuple:
            return [v if type(v) in _LEAVES else self.value(v) for v in value]
        if isinstance(value, MAP_TYPES):
            return {k: v if type(v) in _LEAVES else self.value(v) for k, v in value.items()}
        if kind is cbor2.CBORTag:
            if value.tag != TAG_EMBEDDED:
                return Tagged(value.tag, self.value(value.value))
            if type(value.value) is not bytes or self.index >= len(self.spans):
                raise MdocCborError("tag 24 must wrap a byte string")
            start, end = self.spans[self.index]
            self.index += 1
            return Embedded(self.data[start:end], value.value)
        if value is cbor2.undefined:
            raise MdocCborError("undefined is not an mdoc value")
        return value
