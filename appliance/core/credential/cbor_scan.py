"""A bounded pre-scan of CBOR bytes, run before cbor2 decodes them (docs/adr/0008).

cbor2 builds Python objects for semantic tags while it decodes (tag 36 runs the e-mail
parser, 35 compiles a regex, 2/3 build bignums, 28/29 share references, ...), before any
hook could refuse them. This scan walks the encoded items once without building values and
refuses what no profile uses, so that cbor2 only ever sees plain data:

- tags outside the caller's sets (``root_tags`` around the top item, ``tags`` anywhere);
- reserved additional information, unassigned simple values, a stray break;
- map keys other than int, text or bytes, and duplicate keys (the same on every cbor2
  version from the floor in pyproject.toml: 5.6 has no ``allow_duplicate_keys``);
- nesting deeper than ``MAX_CBOR_DEPTH`` (arrays, maps and tags each count one level);
- more than ``MAX_CBOR_ITEMS`` items, and lengths running past the end.

Integers are at most 64 bits wide without tags 2/3. The cost is linear in the number of
items (string contents are skipped, not read), and the item cap bounds it.

It runs on every verification (several times per mdoc response), so one loop walks every
definite array and map of an item, nested ones on a stack, with the common heads read
inline: fixed-size scalars by a 256-entry table, strings below 64 KiB, small integer and
short text keys, and the tags an mdoc is made of around their strings (ADR 0008, "Speed").
Anything else, or anything wrong with these, takes the general path (``item``), one call
per item. tests/scan_reference.py keeps the first, one-call-per-item scan as the oracle of
what is refused; tests/scan_previous.py the scan before this loop as the oracle of its
messages, counts and tag-24 offsets (tests/security/test_sec_scan_sameness.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from appliance.core.credential.limits import MAX_CBOR_DEPTH, MAX_CBOR_ITEMS
from appliance.core.errors import CborShapeError

_BREAK = 0xFF
_EMBEDDED = 24  # the tag whose offsets ``spans`` notes (mdoc: the bytes signed or digested)
_NO_TAGS: frozenset[int] = frozenset()


def _fixed_sizes() -> tuple[int, ...]:
    """Whole-item size by initial byte for items needing no more checks than a bounds
    check: integers (1 to 9 bytes), strings of 0-23 bytes, false/true/null/undefined and
    floats. 0 marks every other byte (containers, tags, longer strings, the refused ones).
    A tuple: CPython indexes a tuple faster than bytes."""
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
    return tuple(sizes)


_FIXED = _fixed_sizes()
# The key a one-byte integer head stands for (0..23, -1..-24); None for every other byte.
_INT_KEYS: tuple[int | None, ...] = tuple(
    i if i < 24 else -1 - (i & 31) if 0x20 <= i < 0x38 else None for i in range(256)
)


def scan(
    data: bytes,
    *,
    root_tags: frozenset[int] = _NO_TAGS,
    tags: frozenset[int] = _NO_TAGS,
    max_items: int = MAX_CBOR_ITEMS,
    spans: list[tuple[int, int]] | None = None,
) -> int:
    """Check ``data`` starts with one acceptable CBOR item; return the offset after it.

    With a list as ``spans``, the (start, end) offsets of every tag-24 item are appended to
    it in the order the items start (the mdoc reader keeps those bytes as received)."""
    if max_items < 1:
        raise CborShapeError(f"more than {max_items} items")
    initial = data[0] if data else 0xFF
    if 0x80 <= initial < 0xC0 and initial & 31 < 28:  # a definite array or map
        pos = 1 if initial & 31 < 24 else 1 + (1 << ((initial & 31) - 24))  # after the head
        if pos > len(data):
            raise CborShapeError("truncated")
        length = initial & 31 if pos == 1 else int.from_bytes(data[1:pos], "big")
        is_map = initial >= 0xA0
        count = 2 * length if is_map else length
        if count > len(data) - pos:
            raise CborShapeError(f"{'map' if is_map else 'array'} longer than the bytes left")
        count += 1  # and the top item
        if count > max_items:
            raise CborShapeError(f"more than {max_items} items")
        return _walk(data, pos, 1, length, is_map, count, tags, max_items, spans, None)
    # Any other item by the general path; tags from ``root_tags`` may wrap it.
    return _Scan(data, tags, max_items, spans).item(0, 0, root_tags)


class _Scan:
    """One scan's state. Items are counted when their container's head is read (a
    definite array of n items adds n, a map 2n), one by one inside indefinite containers
    and strings, so the cap holds before the loop that would walk them."""

    __slots__ = ("count", "data", "max_items", "n", "spans", "tags")

    def __init__(
        self,
        data: bytes,
        tags: frozenset[int],
        max_items: int,
        spans: list[tuple[int, int]] | None,
    ) -> None:
        self.data, self.n, self.tags, self.spans = data, len(data), tags, spans
        self.max_items, self.count = max_items, 1  # the top item

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
        """One item of any kind (already counted); tags from ``allowed_tags`` may wrap it.
        The general path: every form, one call per item."""
        start = pos
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
        if major <= 5:  # an array or map: its items by the loop, or up to a break
            if info == 31:
                return self.indefinite(pos, depth + 1, major == 5)
            width = value if major == 4 else 2 * value
            if width > self.n - pos:
                raise CborShapeError(
                    f"{'array' if major == 4 else 'map'} longer than the bytes left"
                )
            self.add(width)
            return _walk(
                self.data, pos, depth + 1, value, major == 5, self.count, self.tags,
                self.max_items, self.spans, self,
            )  # fmt: skip
        if value not in allowed_tags:
            raise CborShapeError(f"tag {value} not allowed here")
        self.add(1)
        if value != _EMBEDDED or self.spans is None:
            return self.item(pos, depth + 1, allowed_tags)
        index = len(self.spans)
        self.spans.append((start, start))
        end = self.item(pos, depth + 1, allowed_tags)
        self.spans[index] = (start, end)
        return end

    def indefinite(self, pos: int, depth: int, is_map: bool) -> int:
        """The items or entries of an indefinite-length container, each counted as it is
        met, up to the break: the general path, one call per item (no profile uses them)."""
        data, n = self.data, self.n
        seen: set[object] = set()
        while True:
            if pos >= n:
                raise CborShapeError("truncated")
            if data[pos] == _BREAK:
                return pos + 1
            self.add(2 if is_map else 1)
            if is_map:
                pos, key = self.key(pos)
                if key in seen:
                    raise CborShapeError("duplicate map key")
                seen.add(key)
            if pos >= n:
                raise CborShapeError("truncated")
            size = _FIXED[data[pos]]  # read as the loop above reads it (its message)
            if size:
                pos += size
                if pos > n:
                    raise CborShapeError("truncated")
            else:
                pos = self.item(pos, depth, self.tags)

    def key(self, pos: int) -> tuple[int, object]:
        """A map key in any form: an integer, text or bytes (text as its raw bytes, bytes
        as ``(2, raw)``, so the two never collide); anything else is refused."""
        major, info, value, pos = self.head(pos)
        if major <= 1:
            return pos, value if major == 0 else -1 - value
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


def _walk(
    data: bytes,
    pos: int,
    depth: int,
    length: int,
    is_map: bool,
    count: int,
    tags: frozenset[int],
    max_items: int,
    spans: list[tuple[int, int]] | None,
    scanner: _Scan | None,
) -> int:
    """The ``length`` items of a definite array or map at ``depth`` from ``pos`` (``count``
    items counted so far); return the offset after them. The hot loop of every
    verification: definite arrays and maps inside are walked here too, each one's items
    (an iterator that keeps its place) and seen keys on a stack. Other forms take the
    general path, through ``scanner`` (made when first needed), whose count is kept in step.

    A read past the end is an ``IndexError``, turned into "truncated" below; the end of a
    fixed-size item is checked when the next byte is read, or on the way out."""
    n, fixed, int_keys = len(data), _FIXED, _INT_KEYS
    stack: list[tuple[Iterator[int], bool, set[object]]] = []
    items = iter(range(length))
    seen: set[object] = set()
    embedded = _EMBEDDED in tags
    key: object
    try:
        while True:
            for _ in items:
                initial = data[pos]
                if is_map:
                    if 0x60 <= initial < 0x78:  # short text: its raw bytes stand for it
                        end = pos + fixed[initial]
                        if end > n:
                            raise CborShapeError("string longer than the bytes left")
                        key, pos = data[pos + 1 : end], end
                    else:
                        key = int_keys[initial]
                        if key is not None:
                            pos += 1
                        elif initial == 0x18:  # an integer of 24 to 255
                            key, pos = data[pos + 1], pos + 2
                        elif initial < 0x40 and 24 <= initial & 31 < 28:  # a wider integer
                            end = pos + fixed[initial]
                            if end > n:
                                raise CborShapeError("truncated")
                            value = int.from_bytes(data[pos + 1 : end], "big")
                            key, pos = value if initial < 0x20 else -1 - value, end
                        else:
                            if scanner is None:
                                scanner = _Scan(data, tags, max_items, spans)
                            scanner.count = count
                            pos, key = scanner.key(pos)
                            count = scanner.count
                    if key in seen:
                        raise CborShapeError("duplicate map key")
                    seen.add(key)
                    initial = data[pos]
                size = fixed[initial]
                if size:
                    pos += size
                elif initial == 0x58 or initial == 0x78:  # a string of 24-255 bytes
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
                        count += 2 * inner
                    elif inner > n - pos:
                        raise CborShapeError("array longer than the bytes left")
                    else:
                        count += inner
                    if count > max_items:
                        raise CborShapeError(f"more than {max_items} items")
                    if inner:
                        stack.append((items, is_map, seen))
                        items, is_map, depth = iter(range(inner)), initial >= 0xA0, depth + 1
                        if is_map:
                            seen = set()
                        break
                elif (
                    initial == 0xD8
                    and embedded
                    and pos + 2 < n
                    and data[pos + 1] == _EMBEDDED
                    and 0x40 <= data[pos + 2] < 0x5A
                    and depth < MAX_CBOR_DEPTH
                ):  # an allowed tag 24 around a byte string of up to 64 KiB (mdoc)
                    count += 1  # the tag; its string was counted with its container
                    if count > max_items:
                        raise CborShapeError(f"more than {max_items} items")
                    end = data[pos + 2]
                    if end < 0x58:
                        end += pos + 3 - 0x40
                    elif end == 0x58:
                        end = pos + 4 + data[pos + 3]
                    else:
                        end = pos + 5 + (data[pos + 3] << 8 | data[pos + 4])
                    if end > n:
                        raise CborShapeError("string longer than the bytes left")
                    if spans is not None:
                        spans.append((pos, end))
                    pos = end
                elif initial == 0x59 or initial == 0x79:  # a string of 256 B to 64 KiB
                    pos += 3 + (data[pos + 1] << 8 | data[pos + 2])
                    if pos > n:
                        raise CborShapeError("string longer than the bytes left")
                else:
                    end = 0
                    if 0xC0 <= initial <= 0xD9 and depth < MAX_CBOR_DEPTH:
                        # Another allowed tag of 0 to 65535 around a definite string whose
                        # head (at most 3 bytes) and content are all there: 0 and 1004 in mdoc.
                        if initial < 0xD8:
                            tag, at = initial - 0xC0, pos + 1
                        elif initial == 0xD8:
                            tag, at = data[pos + 1], pos + 2
                        else:
                            tag, at = data[pos + 1] << 8 | data[pos + 2], pos + 3
                        if tag in tags and at + 2 < n and 0x40 <= data[at] < 0x80:
                            info = data[at] & 31
                            if info < 24:
                                end = at + 1 + info
                            elif info == 24:
                                end = at + 2 + data[at + 1]
                            elif info == 25:
                                end = at + 3 + (data[at + 1] << 8 | data[at + 2])
                            if end > n:
                                end = 0
                    if end:
                        count += 1
                        if count > max_items:
                            raise CborShapeError(f"more than {max_items} items")
                        if tag == _EMBEDDED and spans is not None:
                            spans.append((pos, end))
                        pos = end
                    else:  # anything else, or anything wrong with these: the general path
                        if scanner is None:
                            scanner = _Scan(data, tags, max_items, spans)
                        scanner.count = count
                        pos = scanner.item(pos, depth, tags)
                        count = scanner.count
            else:  # this array or map is done
                if not stack:
                    break
                items, is_map, seen = stack.pop()
                depth -= 1
    except IndexError:
        raise CborShapeError("truncated") from None
    if pos > n:  # a fixed-size item ran past the end
        raise CborShapeError("truncated")
    if scanner is not None:
        scanner.count = count
    return pos
