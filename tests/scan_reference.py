"""The CBOR pre-scan as first written (ADR 0008): the oracle the fast scan must agree with.

One method call per item, so slow, but plainly the rules of ADR 0008; tests compare
``appliance.core.credential.cbor_scan.scan`` against it on hostile and random bytes.
"""

from __future__ import annotations

from appliance.core.credential.limits import MAX_CBOR_DEPTH, MAX_CBOR_ITEMS
from appliance.core.errors import CborShapeError

_BREAK = 0xFF
_NO_TAGS: frozenset[int] = frozenset()


def reference_scan(
    data: bytes,
    *,
    root_tags: frozenset[int] = _NO_TAGS,
    tags: frozenset[int] = _NO_TAGS,
    max_items: int = MAX_CBOR_ITEMS,
) -> int:
    """Check ``data`` starts with one acceptable CBOR item; return the offset after it."""
    return _Scan(data, root_tags, tags, max_items).item(0, 0, True)


class _Scan:
    __slots__ = ("count", "data", "max_items", "n", "root_tags", "tags")

    def __init__(
        self, data: bytes, root_tags: frozenset[int], tags: frozenset[int], max_items: int
    ) -> None:
        self.data, self.n = data, len(data)
        self.root_tags, self.tags = root_tags, tags
        self.max_items, self.count = max_items, 0

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

    def counted(self) -> None:
        self.count += 1
        if self.count > self.max_items:
            raise CborShapeError(f"more than {self.max_items} items")

    def item(self, pos: int, depth: int, root: bool = False) -> int:
        self.count += 1
        if self.count > self.max_items:
            raise CborShapeError(f"more than {self.max_items} items")
        if pos < self.n:  # fast path: a one-byte head (small int, short string)
            initial = self.data[pos]
            if initial < 0x78 and initial & 31 < 24:
                if initial < 0x40:
                    return pos + 1
                end = pos + 1 + (initial & 31)
                if end > self.n:
                    raise CborShapeError("string longer than the bytes left")
                return end
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
            if info == 31:
                while self.more(pos):
                    pos = self.item(pos, depth + 1)
                return pos + 1
            if value > self.n - pos:
                raise CborShapeError("array longer than the bytes left")
            for _ in range(value):
                pos = self.item(pos, depth + 1)
            return pos
        if major == 5:
            return self.map(pos, depth, info, value)
        if value not in (self.root_tags if root else self.tags):
            raise CborShapeError(f"tag {value} not allowed here")
        return self.item(pos, depth + 1, root)

    def more(self, pos: int) -> bool:
        """True while an indefinite-length container has items before its break."""
        if pos >= self.n:
            raise CborShapeError("truncated")
        return self.data[pos] != _BREAK

    def string(self, pos: int, major: int, info: int, length: int) -> tuple[int, bytes]:
        """Skip a byte or text string; return the offset after it and its raw bytes."""
        if info != 31:
            end = pos + length
            if end > self.n:
                raise CborShapeError("string longer than the bytes left")
            return end, self.data[pos:end]
        chunks = []
        while self.more(pos):
            self.counted()
            chunk_major, chunk_info, length, pos = self.head(pos)
            if chunk_major != major or chunk_info == 31:
                raise CborShapeError("bad chunk in an indefinite-length string")
            pos, chunk = self.string(pos, major, chunk_info, length)
            chunks.append(chunk)
        return pos + 1, b"".join(chunks)

    def map(self, pos: int, depth: int, info: int, length: int) -> int:
        if info != 31 and 2 * length > self.n - pos:
            raise CborShapeError("map longer than the bytes left")
        seen: set[object] = set()
        remaining = length
        while self.more(pos) if info == 31 else remaining > 0:
            remaining -= 1
            self.counted()
            major, key_info, value, pos = self.head(pos)
            key: object
            if major == 0:
                key = value
            elif major == 1:
                key = -1 - value
            elif major <= 3:
                pos, raw = self.string(pos, major, key_info, value)
                key = (major, raw)
            else:
                raise CborShapeError("map key is not an integer, text or bytes")
            if key in seen:
                raise CborShapeError("duplicate map key")
            seen.add(key)
            pos = self.item(pos, depth + 1)
        return pos + 1 if info == 31 else pos
