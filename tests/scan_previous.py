"""The CBOR pre-scan as it was before its one-loop rewrite (commit a324419): the oracle of
its messages, counts and tag-24 offsets.

``cbor_scan`` (one loop for every definite container, the common heads inline) must refuse
and accept exactly what this refuses and accepts, with the same message, the same item
count and the same offsets: tests/security/test_sec_scan_sameness.py and
tests/mdoc/test_mdoc_scan.py compare the two. ``_SpanScan`` was the mdoc reader's
subclass (appliance/core/credential/mdoc/cbor.py), now folded into ``scan(spans=...)``.
tests/scan_reference.py keeps the first, one-call-per-item scan as the oracle of the rules.
"""

from __future__ import annotations

from appliance.core.credential.limits import MAX_CBOR_DEPTH
from appliance.core.errors import CborShapeError

TAG_TDATE, TAG_FULL_DATE, TAG_EMBEDDED = 0, 1004, 24


def previous_scan(
    data: bytes,
    *,
    root_tags: frozenset[int],
    tags: frozenset[int],
    max_items: int,
    spans: bool = False,
) -> tuple[int, int, list[tuple[int, int]] | None]:
    """(offset after the item, items counted, tag-24 offsets when ``spans``) as the scan
    before the rewrite found them (``_SpanScan`` when ``spans``); ``CborShapeError`` as it
    raised it."""
    if max_items < 1:
        raise CborShapeError(f"more than {max_items} items")
    scanner = _SpanScan(data, tags, max_items) if spans else _Scan(data, tags, max_items)
    end = scanner.item(0, 0, root_tags)
    return end, scanner.count, scanner.spans if isinstance(scanner, _SpanScan) else None


_BREAK = 0xFF


def _fixed_sizes() -> bytes:
    """Whole-item size by initial byte for items needing no more checks than a bounds
    check: integers (1 to 9 bytes), strings of 0-23 bytes, false/true/null/undefined and
    floats. 0 marks every other byte (containers, tags, longer strings, the refused ones)."""
    sizes = bytearray(256)
    for major in (0, 1):
        for info in range(24):
            sizes[major << 5 | info] = 1
        for info in range(24, 28):
            sizes[major << 5 | info] = 1 + (1 << (info - 24))
    for major in (2, 3):
        for info in range(24):
            sizes[major << 5 | info] = 1 + info
    for info in (20, 21, 22, 23):
        sizes[0xE0 | info] = 1
    for info in (25, 26, 27):
        sizes[0xE0 | info] = 1 + (1 << (info - 24))
    return bytes(sizes)


_FIXED = _fixed_sizes()


class _Scan:
    """One scan's state. Items are counted when their container's head is read (a
    definite array of n items adds n, a map 2n), one by one inside indefinite containers
    and strings, so the cap holds before the loop that would walk them."""

    __slots__ = ("count", "data", "max_items", "n", "tags")

    def __init__(self, data: bytes, tags: frozenset[int], max_items: int) -> None:
        self.data, self.n = data, len(data)
        self.tags, self.max_items, self.count = tags, max_items, 1  # the top item

    def add(self, items: int) -> None:
        self.count += items
        if self.count > self.max_items:
            raise CborShapeError(f"more than {self.max_items} items")

    def head(self, pos: int) -> tuple[int, int, int, int]:
        """(major type, additional info, argument, offset after the head)."""
        if pos >= self.n:
            raise CborShapeError("truncated")
        initial = self.data[pos]
        major, info = initial >> 5, initial & 31
        pos += 1
        if info < 24:
            return major, info, info, pos
        if info < 28:
            end = pos + (1 << (info - 24))
            if end > self.n:
                raise CborShapeError("truncated")
            return major, info, int.from_bytes(self.data[pos:end], "big"), end
        if info == 31 and major in (2, 3, 4, 5, 7):
            return major, info, -1, pos
        raise CborShapeError("reserved additional information")

    def item(self, pos: int, depth: int, allowed_tags: frozenset[int]) -> int:
        """One item of any kind (already counted); tags from ``allowed_tags`` may wrap it."""
        major, info, value, pos = self.head(pos)
        if major <= 1:
            return pos
        if major <= 3:
            return self.string(pos, major, info, value)[0]
        if major == 7:
            if 20 <= info <= 23 or 25 <= info <= 27:
                return pos
            raise CborShapeError("unassigned simple value or stray break")
        if depth >= MAX_CBOR_DEPTH:
            raise CborShapeError(f"nested deeper than {MAX_CBOR_DEPTH}")
        if major == 4:
            if info != 31:
                if value > self.n - pos:
                    raise CborShapeError("array longer than the bytes left")
                self.add(value)
            return self.items(pos, depth + 1, value, False)
        if major == 5:
            if info != 31:
                if 2 * value > self.n - pos:
                    raise CborShapeError("map longer than the bytes left")
                self.add(2 * value)
            return self.items(pos, depth + 1, value, True)
        if value not in allowed_tags:
            raise CborShapeError(f"tag {value} not allowed here")
        self.add(1)
        return self.item(pos, depth + 1, allowed_tags)

    def items(self, pos: int, depth: int, length: int, is_map: bool) -> int:
        """The ``length`` items of an array or entries of a map (-1: up to a break), each
        at ``depth``; return the offset after them. The hot loop of every verification."""
        data, n, fixed = self.data, self.n, _FIXED
        seen: set[object] = set()
        while length:
            if pos >= n:
                raise CborShapeError("truncated")
            initial = data[pos]
            if length < 0:
                if initial == _BREAK:
                    return pos + 1
                self.add(2 if is_map else 1)
            else:
                length -= 1
            if is_map:
                key: object
                if initial < 0x40:  # an integer key, of any head width
                    info = initial & 31
                    if info < 24:
                        value, pos = info, pos + 1
                    elif info < 28:
                        end = pos + 1 + (1 << (info - 24))
                        if end > n:
                            raise CborShapeError("truncated")
                        value, pos = int.from_bytes(data[pos + 1 : end], "big"), end
                    else:
                        raise CborShapeError("reserved additional information")
                    key = value if initial < 0x20 else -1 - value
                elif 0x60 <= initial < 0x78:  # short text: its raw bytes stand for it
                    end = pos + 1 + (initial & 31)
                    if end > n:
                        raise CborShapeError("string longer than the bytes left")
                    key, pos = data[pos + 1 : end], end
                else:
                    pos, key = self.key(pos)
                if key in seen:
                    raise CborShapeError("duplicate map key")
                seen.add(key)
                if pos >= n:
                    raise CborShapeError("truncated")
                initial = data[pos]
            size = fixed[initial]
            if size:
                pos += size
                if pos > n:
                    raise CborShapeError("truncated")
            elif initial == 0x58 or initial == 0x78:  # a string of 24-255 bytes
                if pos + 1 >= n:
                    raise CborShapeError("truncated")
                pos += 2 + data[pos + 1]
                if pos > n:
                    raise CborShapeError("string longer than the bytes left")
            elif 0x80 <= initial < 0x98 or 0xA0 <= initial < 0xB8:  # a short container
                if depth >= MAX_CBOR_DEPTH:
                    raise CborShapeError(f"nested deeper than {MAX_CBOR_DEPTH}")
                inner, pos = initial & 31, pos + 1
                if initial >= 0xA0:
                    if 2 * inner > n - pos:
                        raise CborShapeError("map longer than the bytes left")
                    self.count += 2 * inner
                elif inner > n - pos:
                    raise CborShapeError("array longer than the bytes left")
                else:
                    self.count += inner
                if self.count > self.max_items:
                    raise CborShapeError(f"more than {self.max_items} items")
                pos = self.items(pos, depth + 1, inner, initial >= 0xA0)
            else:
                pos = self.item(pos, depth, self.tags)
        return pos

    def key(self, pos: int) -> tuple[int, object]:
        """A map key in any other form: text or bytes (text as its raw bytes, bytes as
        ``(2, raw)``, so the two never collide); anything else is refused."""
        major, info, value, pos = self.head(pos)
        if major == 2 or major == 3:
            pos, raw = self.string(pos, major, info, value)
            return pos, raw if major == 3 else (2, raw)
        raise CborShapeError("map key is not an integer, text or bytes")

    def string(self, pos: int, major: int, info: int, length: int) -> tuple[int, bytes]:
        """Skip a byte or text string; return the offset after it and its raw bytes."""
        if info != 31:
            end = pos + length
            if end > self.n:
                raise CborShapeError("string longer than the bytes left")
            return end, self.data[pos:end]
        chunks: list[bytes] = []
        while True:
            if pos >= self.n:
                raise CborShapeError("truncated")
            if self.data[pos] == _BREAK:
                return pos + 1, b"".join(chunks)
            self.add(1)
            chunk_major, chunk_info, length, pos = self.head(pos)
            if chunk_major != major or chunk_info == 31:
                raise CborShapeError("bad chunk in an indefinite-length string")
            pos, chunk = self.string(pos, major, chunk_info, length)
            chunks.append(chunk)


class _SpanScan(_Scan):
    """mdoc/cbor.py's scan: the tag-24 offsets noted, the mdoc forms read inline."""

    __slots__ = ("spans",)

    def __init__(self, data: bytes, tags: frozenset[int], max_items: int) -> None:
        super().__init__(data, tags, max_items)
        self.spans: list[tuple[int, int]] = []

    def item(self, pos: int, depth: int, allowed_tags: frozenset[int]) -> int:
        data, n = self.data, self.n
        if pos + 2 >= n:
            return self.general(pos, depth, allowed_tags)
        initial = data[pos]
        if initial < 0xC0:  # not a tag
            if initial == 0x59 or initial == 0x79:
                end = pos + 3 + (data[pos + 1] << 8 | data[pos + 2])
                if end <= n:
                    return end
            return _Scan.item(self, pos, depth, allowed_tags)
        if initial == 0xC0:
            tag, at = TAG_TDATE, pos + 1
        elif initial == 0xD8 and data[pos + 1] == TAG_EMBEDDED:
            tag, at = TAG_EMBEDDED, pos + 2
        elif initial == 0xD9 and data[pos + 1] == 0x03 and data[pos + 2] == 0xEC:
            tag, at = TAG_FULL_DATE, pos + 3
        else:
            return self.general(pos, depth, allowed_tags)
        if depth >= MAX_CBOR_DEPTH or tag not in allowed_tags or at >= n:
            return self.general(pos, depth, allowed_tags)
        # The tagged item: a definite string (bytes for 24, text for 0 and 1004) whose
        # head is at most 3 bytes and whose end lies inside the input.
        length = data[at] - (0x40 if tag == TAG_EMBEDDED else 0x60)
        if 0 <= length < 24:
            end = at + 1 + length
        elif length == 24 and at + 1 < n:
            end = at + 2 + data[at + 1]
        elif length == 25 and at + 2 < n:
            end = at + 3 + (data[at + 1] << 8 | data[at + 2])
        else:
            return self.general(pos, depth, allowed_tags)
        if end > n:
            return self.general(pos, depth, allowed_tags)
        self.count += 1  # the tag; its string was counted with the tag's container
        if self.count > self.max_items:
            raise CborShapeError(f"more than {self.max_items} items")
        if tag == TAG_EMBEDDED:
            self.spans.append((pos, end))
        return end

    def general(self, pos: int, depth: int, allowed_tags: frozenset[int]) -> int:
        """Any item, by the shared scan; a tag-24 item's offsets are noted."""
        if pos >= self.n or self.data[pos] >> 5 != 6 or self.head(pos)[2] != TAG_EMBEDDED:
            return super().item(pos, depth, allowed_tags)
        index = len(self.spans)
        self.spans.append((pos, pos))
        end = super().item(pos, depth, allowed_tags)
        self.spans[index] = (pos, end)
        return end
