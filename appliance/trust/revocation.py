"""Revocation data that loads in constant time and answers in about a microsecond.

Two structures, both usable over ``mmap`` so that a 100-million-entry status list or a
10-million-hash revocation set costs no parse at load and only the pages touched:

- ``StatusList``: the Token Status List byte array (spec LC1 s.4), ``bits`` per entry.
- ``HashSet``: sorted 16-byte SHA-256 prefixes with a bucket index (the first 20 bits of a
  hash name its bucket), plus small in-memory deltas, so that new revocations arrive as
  append-only deltas instead of a rewritten base (docs/trust-store-format.md).
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from appliance.core.errors import TrustDataError

HASH_PREFIX_BYTES = 16
INDEX_BITS = 20
_BUCKETS = 1 << INDEX_BITS
_INDEX_ENTRY = struct.Struct("<I")
INDEX_BYTES = (_BUCKETS + 1) * _INDEX_ENTRY.size
CHUNK_RECORDS = 1 << 16  # 1 MiB read at a time when indexing a base file


class StatusList:
    """Read-only Token Status List: status of index ``i`` per spec LC1 s.4."""

    __slots__ = ("_data", "_mask", "_per_byte", "bits")

    def __init__(self, data: bytes | mmap.mmap | memoryview, bits: int) -> None:
        if bits not in (1, 2, 4, 8):
            raise TrustDataError(f"status list bits must be 1, 2, 4 or 8, not {bits}")
        self._data = data
        self.bits = bits
        self._mask = (1 << bits) - 1
        self._per_byte = 8 // bits

    def __len__(self) -> int:
        return len(self._data) * self._per_byte

    def to_bytes(self) -> bytes:
        """The raw byte array (for publishing)."""
        return bytes(self._data)

    def status(self, index: int) -> int | None:
        """The status value, or ``None`` for an index past the end."""
        if index < 0:
            return None
        byte, slot = divmod(index, self._per_byte)
        if byte >= len(self._data):
            return None
        return (self._data[byte] >> (slot * self.bits)) & self._mask

    @classmethod
    def from_file(cls, path: Path, bits: int) -> StatusList:
        return cls(_map_file(path), bits)


class HashSet:
    """Membership of SHA-256 digests in a sorted base file plus in-memory deltas."""

    __slots__ = ("_base", "_count", "_delta", "_index")

    def __init__(
        self,
        base: bytes | mmap.mmap = b"",
        index: bytes | mmap.mmap | None = None,
        delta: Iterable[bytes] = (),
    ) -> None:
        if len(base) % HASH_PREFIX_BYTES:
            raise TrustDataError("revoked-hash base is not a whole number of 16-byte entries")
        self._base = base
        self._count = len(base) // HASH_PREFIX_BYTES
        if not self._count:
            index = b""  # nothing to look up: no index to build (and no numpy to import)
        elif index is None:
            index = build_bucket_index(base)
        if self._count and len(index) != (_BUCKETS + 1) * _INDEX_ENTRY.size:
            raise TrustDataError("revoked-hash bucket index has the wrong size")
        self._index = index
        self._delta = frozenset(d[:HASH_PREFIX_BYTES] for d in delta)

    def __len__(self) -> int:
        return self._count + len(self._delta)

    def __contains__(self, digest: bytes) -> bool:
        key = digest[:HASH_PREFIX_BYTES]
        if key in self._delta:
            return True
        if not self._count:
            return False
        bucket = int.from_bytes(key[:3], "big") >> (24 - INDEX_BITS)
        lo = _INDEX_ENTRY.unpack_from(self._index, bucket * 4)[0]
        hi = _INDEX_ENTRY.unpack_from(self._index, bucket * 4 + 4)[0]
        # A bucket holds ~10 entries at 10 million hashes: one slice and a C-level find
        # beat a Python binary search; a match must start on an entry boundary.
        chunk = self._base[lo * HASH_PREFIX_BYTES : hi * HASH_PREFIX_BYTES]
        at = chunk.find(key)
        while at != -1:
            if at % HASH_PREFIX_BYTES == 0:
                return True
            at = chunk.find(key, at + 1)
        return False

    @classmethod
    def from_digests(cls, digests: Iterable[bytes]) -> HashSet:
        """An in-memory set (a trust source file: authoring and tests), held as a frozenset
        of prefixes like the deltas; the sorted base and its index are for synced files."""
        return cls(delta=digests)

    @classmethod
    def from_files(cls, base_path: Path, deltas: Iterable[Path] = ()) -> HashSet:
        """Map a base file and its ``.idx`` companion; read the (small) delta files."""
        base = _map_file(base_path)
        index = _map_file(base_path.with_suffix(".idx"))
        return cls(base, index, read_deltas(deltas))


def read_deltas(paths: Iterable[Path]) -> list[bytes]:
    """The 16-byte entries of (small) delta files, each file read once."""
    delta: list[bytes] = []
    for p in paths:
        raw = p.read_bytes()
        if len(raw) % HASH_PREFIX_BYTES:
            raise TrustDataError(f"{p.name}: not a whole number of 16-byte entries")
        delta.extend(raw[i : i + HASH_PREFIX_BYTES] for i in range(0, len(raw), HASH_PREFIX_BYTES))
    return delta


def build_bucket_index(
    sorted_base: bytes | mmap.mmap | memoryview, chunk_records: int = CHUNK_RECORDS
) -> bytes:
    """Offsets (in entries) of each 20-bit bucket in a sorted base; ``_BUCKETS + 1`` of them.

    Counted ``chunk_records`` at a time, so the work arrays stay small whatever the size of
    the base (an in-memory base is already resident; files go through ``index_file``).
    """
    counter = _BucketCounter()
    view = memoryview(sorted_base).cast("B")
    step = max(1, chunk_records) * HASH_PREFIX_BYTES
    for start in range(0, len(view) - len(view) % HASH_PREFIX_BYTES, step):
        counter.add(view[start : start + step])
    return counter.index()


def index_file(base: Path, chunk_records: int = CHUNK_RECORDS) -> bytes:
    """The bucket index of a sorted base file, read in fixed-size chunks.

    Never maps or reads the whole file: a 160 MB base costs one ``chunk_records`` buffer
    and the 4 MiB index (issue 14, a full sync within 96 MB).
    """
    counter = _BucketCounter()
    buf = bytearray(max(1, chunk_records) * HASH_PREFIX_BYTES)
    view = memoryview(buf)
    try:
        with base.open("rb", buffering=0) as f:
            while True:
                got = read_full(f, view)
                if got % HASH_PREFIX_BYTES:
                    raise TrustDataError(f"{base.name} is not a whole number of 16-byte entries")
                if got:
                    counter.add(view[:got])
                if got < len(view):
                    break
    except OSError as e:
        raise TrustDataError(f"cannot read {base.name}: {e.strerror or e}") from e
    return counter.index()


def read_full(f: Any, view: memoryview) -> int:
    """Fill ``view`` from ``f`` (short reads retried); fewer bytes only at end of file."""
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    return got


class _BucketCounter:
    """Counts records per bucket over consecutive chunks of a sorted base.

    The base must be ascending by bucket, across chunk boundaries too; each chunk adds its
    counts to one ``uint32`` array, which a cumulative sum turns into the index.
    """

    def __init__(self) -> None:
        import numpy as np  # only for building; lookups stay in pure Python

        self._np = np
        self._counts = np.zeros(_BUCKETS + 1, dtype="<u4")
        self._last = 0
        self._total = 0

    def add(self, chunk: bytes | memoryview) -> None:
        np = self._np
        n = len(chunk) // HASH_PREFIX_BYTES
        if n == 0:
            return
        records = np.frombuffer(chunk, dtype=np.uint8, count=n * HASH_PREFIX_BYTES)
        records = records.reshape(n, HASH_PREFIX_BYTES)
        top = (
            (records[:, 0].astype(np.uint32) << 16)
            | (records[:, 1].astype(np.uint32) << 8)
            | records[:, 2].astype(np.uint32)
        ) >> (24 - INDEX_BITS)
        first, last = int(top[0]), int(top[-1])
        if first < self._last or np.any(top[1:] < top[:-1]):
            raise TrustDataError("revoked-hash base is not sorted")
        # Sorted, so the chunk's buckets are first..last: count in that window only.
        self._counts[first + 1 : last + 2] += np.bincount(top - first).astype("<u4")
        self._last = last
        self._total += n
        if self._total >= 1 << 32:
            raise TrustDataError("revoked-hash base has too many entries")

    def index(self) -> bytes:
        np = self._np
        np.cumsum(self._counts, out=self._counts)
        return self._counts.tobytes()


def write_hash_base(digests: Iterable[bytes], path: Path) -> int:
    """Write a sorted base and its index; returns the number of entries."""
    base = b"".join(sorted({d[:HASH_PREFIX_BYTES] for d in digests}))
    path.write_bytes(base)
    path.with_suffix(".idx").write_bytes(build_bucket_index(base))
    return len(base) // HASH_PREFIX_BYTES


def _map_file(path: Path) -> bytes | mmap.mmap:
    try:
        with path.open("rb") as f:
            size = f.seek(0, 2)
            if size == 0:
                return b""
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as e:
        raise TrustDataError(f"cannot map {path}: {e.strerror or e}") from e
