"""A bounded, total CBOR reader for mdoc structures that keeps the bytes as received.

ISO 18013-5 signs, MACs and digests *encoded* items (``#6.24(bstr)``: IssuerSignedItemBytes,
the MSO, DeviceNameSpacesBytes, DeviceEngagementBytes, ...). A decoder that builds objects
and a verifier that re-encodes them passes minimally encoded test vectors and fails real
wallets that are not (spec mdl-reader s.1 "Byte-exactness"; docs/adr/0010). So each tag-24
item is read as an ``Embedded`` holding the whole encoded item (tag head, bstr head and
content, exactly as received) and the embedded CBOR bytes.

The limits are those of every other profile: the input first passes the bounded pre-scan of
``cbor_scan`` (depth 16, item count, duplicate keys, key types, tags from the mdoc set,
lengths inside the input, ADR 0008); only then does this reader build values, so its
recursion and work are bounded by what the scan allowed. Text must be valid UTF-8.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from appliance.core.credential.cbor_scan import CborShapeError, scan

TAG_TDATE, TAG_FULL_DATE, TAG_EMBEDDED, TAG_MAC0, TAG_SIGN1 = 0, 1004, 24, 17, 18
# The tags an mdoc message may hold anywhere; where each may stand is the parsers' check.
MDOC_TAGS = frozenset({TAG_TDATE, TAG_FULL_DATE, TAG_EMBEDDED, TAG_MAC0, TAG_SIGN1})
# Items per decode: an mDL with a portrait and privileges holds a few hundred.
MAX_MDOC_ITEMS = 8_192


class MdocCborError(ValueError):
    """The bytes are not one acceptable CBOR item (spec reason MDOC_MALFORMED)."""


class Embedded(NamedTuple):
    """``#6.24(bstr .cbor X)``: ``raw`` is the item as received, ``data`` the embedded CBOR."""

    raw: bytes
    data: bytes


class Tagged(NamedTuple):
    """Tag 0 (tdate text), 1004 (full-date text), 17 or 18 (COSE) and its value."""

    tag: int
    value: Any


def decode(
    data: bytes, *, tags: frozenset[int] = MDOC_TAGS, max_items: int = MAX_MDOC_ITEMS
) -> Any:
    """The one CBOR item spanning all of ``data``; ``MdocCborError`` otherwise."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MdocCborError("not bytes")
    data = bytes(data)
    try:
        end = scan(data, root_tags=tags, tags=tags, max_items=max_items)
    except CborShapeError as e:
        raise MdocCborError(str(e)) from e
    if end != len(data):
        raise MdocCborError("bytes after the CBOR item")
    value, _ = _Reader(data).item(0)
    return value


def decode_embedded(item: Any, *, tags: frozenset[int] = MDOC_TAGS,
                    max_items: int = MAX_MDOC_ITEMS) -> Any:
    """The CBOR inside an ``Embedded`` item (refusing anything else)."""
    if not isinstance(item, Embedded):
        raise MdocCborError("expected #6.24(bstr)")
    return decode(item.data, tags=tags, max_items=max_items)


class _Reader:
    """Builds values from bytes the scan has accepted (so heads are well formed and in
    bounds, depth is at most 16 and the tags are allowed ones)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def head(self, pos: int) -> tuple[int, int, int, int]:
        initial = self.data[pos]
        major, info = initial >> 5, initial & 31
        pos += 1
        if info < 24:
            return major, info, info, pos
        if info < 28:
            end = pos + (1 << (info - 24))
            return major, info, int.from_bytes(self.data[pos:end], "big"), end
        return major, info, -1, pos  # 31: indefinite (the scan refused 28-30)

    def item(self, pos: int) -> tuple[Any, int]:
        start = pos
        major, info, value, pos = self.head(pos)
        if major == 0:
            return value, pos
        if major == 1:
            return -1 - value, pos
        if major == 2:
            return self.string(pos, info, value)
        if major == 3:
            raw, pos = self.string(pos, info, value)
            try:
                return raw.decode("utf-8"), pos
            except UnicodeDecodeError:
                raise MdocCborError("text is not valid UTF-8") from None
        if major == 4:
            out: list[Any] = []
            while (value < 0 and self.data[pos] != 0xFF) or len(out) < value:
                element, pos = self.item(pos)
                out.append(element)
            return out, pos + 1 if value < 0 else pos
        if major == 5:
            entries: dict[Any, Any] = {}
            count = 0
            while (value < 0 and self.data[pos] != 0xFF) or count < value:
                key, pos = self.item(pos)
                entries[key], pos = self.item(pos)
                count += 1
            return entries, pos + 1 if value < 0 else pos
        if major == 6:
            return self.tagged(start, pos, value)
        return self.simple(info, pos)

    def string(self, pos: int, info: int, length: int) -> tuple[bytes, int]:
        if info != 31:
            return self.data[pos:pos + length], pos + length
        chunks = []
        while self.data[pos] != 0xFF:
            _, chunk_info, chunk_length, pos = self.head(pos)
            chunk, pos = self.string(pos, chunk_info, chunk_length)
            chunks.append(chunk)
        return b"".join(chunks), pos + 1

    def tagged(self, start: int, pos: int, tag: int) -> tuple[Any, int]:
        value, end = self.item(pos)
        if tag == TAG_EMBEDDED:
            if type(value) is not bytes:
                raise MdocCborError("tag 24 must wrap a byte string")
            return Embedded(self.data[start:end], value), end
        if tag in (TAG_TDATE, TAG_FULL_DATE) and type(value) is not str:
            raise MdocCborError(f"tag {tag} must wrap text")
        return Tagged(tag, value), end

    def simple(self, info: int, pos: int) -> tuple[Any, int]:
        if info == 20:
            return False, pos
        if info == 21:
            return True, pos
        if info == 22:
            return None, pos
        if info == 23:
            raise MdocCborError("undefined is not an mdoc value")
        fmt = {25: ">e", 26: ">f", 27: ">d"}[info]
        width = struct.calcsize(fmt)
        return struct.unpack(fmt, self.data[pos - width:pos])[0], pos
