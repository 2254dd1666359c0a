"""The revoked-hash bucket index built in bounded chunks (issue 14) equals the one-piece index.

The reference is the former one-piece construction (every record's bucket in one array, a
``searchsorted`` per bucket), kept here so the chunked build is checked against an
independent computation, on random data and across chunk boundaries.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.core.errors import TrustDataError
from appliance.trust.revocation import (
    INDEX_BITS,
    INDEX_BYTES,
    HashSet,
    build_bucket_index,
    index_file,
)
from appliance.trust.signed import check_index


def one_piece(base: bytes) -> bytes:
    """Offsets of each bucket computed over the whole base at once (the reference)."""
    count = len(base) // 16
    records = np.frombuffer(base, dtype=np.uint8).reshape(count, 16)
    top = (
        (records[:, 0].astype(np.uint32) << 16)
        | (records[:, 1].astype(np.uint32) << 8)
        | records[:, 2].astype(np.uint32)
    ) >> (24 - INDEX_BITS)
    offsets = np.searchsorted(top, np.arange((1 << INDEX_BITS) + 1, dtype=np.uint32))
    return offsets.astype("<u4").tobytes()


# Prefixes crowded into a few buckets (first bytes from a small alphabet) and spread ones,
# so that buckets hold several records and chunks end inside and between buckets.
_prefix = st.one_of(
    st.tuples(
        st.sampled_from([b"\x00\x00", b"\x00\x01", b"\x7f\xff", b"\xff\xff"]),
        st.binary(min_size=14, max_size=14),
    ).map(lambda t: t[0] + t[1]),
    st.binary(min_size=16, max_size=16),
)


def _base(prefixes: set[bytes]) -> bytes:
    return b"".join(sorted(prefixes))


@settings(max_examples=60, deadline=None)
@given(prefixes=st.sets(_prefix, max_size=400), chunk=st.integers(min_value=1, max_value=64))
def test_chunked_index_equals_one_piece_index(prefixes: set[bytes], chunk: int) -> None:
    base = _base(prefixes)
    chunked = build_bucket_index(base, chunk_records=chunk)
    whole = build_bucket_index(base, chunk_records=len(prefixes) + 1)
    assert chunked == whole
    if prefixes:
        assert chunked == one_piece(base)
    assert len(chunked) == INDEX_BYTES


def test_file_index_with_small_chunks_crosses_boundaries(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    records = np.unique(rng.integers(0, 256, size=(5003, 16), dtype=np.uint8), axis=0)
    # Several records per bucket at the chunk edges: repeat the first two bytes.
    records[:600, :2] = 0
    records = np.unique(records, axis=0)
    base = records.tobytes()
    path = tmp_path / "base.bin"
    path.write_bytes(base)
    reference = one_piece(base)
    for chunk in (1, 7, 64, len(records), len(records) - 1, len(records) + 5):
        assert index_file(path, chunk_records=chunk) == reference, chunk
    s = HashSet(base, index_file(path, chunk_records=13))
    assert all(bytes(r) in s for r in records[::97])


def test_empty_base_file_has_the_all_zero_index(tmp_path: Path) -> None:
    path = tmp_path / "base.bin"
    path.write_bytes(b"")
    assert index_file(path, chunk_records=3) == bytes(INDEX_BYTES)


def test_unsorted_across_a_chunk_boundary_is_refused(tmp_path: Path) -> None:
    # Each chunk of 2 records is sorted on its own; the second chunk starts below the first.
    base = b"\x80" * 16 + b"\x90" * 16 + b"\x10" * 16 + b"\x20" * 16
    path = tmp_path / "base.bin"
    path.write_bytes(base)
    with pytest.raises(TrustDataError, match="not sorted"):
        index_file(path, chunk_records=2)
    with pytest.raises(TrustDataError, match="not sorted"):
        build_bucket_index(base, chunk_records=2)


def test_partial_trailing_record_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "base.bin"
    path.write_bytes(b"\x01" * 16 + b"\x02" * 5)
    with pytest.raises(TrustDataError, match="16-byte"):
        index_file(path, chunk_records=4)


def _installed(tmp_path: Path, n: int = 3000) -> tuple[Path, Path]:
    rng = np.random.default_rng(11)
    records = np.unique(rng.integers(0, 256, size=(n, 16), dtype=np.uint8), axis=0)
    base = tmp_path / "base-000001.bin"
    base.write_bytes(records.tobytes())
    idx = base.with_suffix(".idx")
    idx.write_bytes(index_file(base))
    return base, idx


def test_check_index_accepts_the_derived_index_in_small_chunks(tmp_path: Path) -> None:
    base, idx = _installed(tmp_path)
    check_index(base, idx, chunk_records=5)
    check_index(base, idx)


@pytest.mark.parametrize("edit", ["down", "up", "truncate", "extend"])
def test_check_index_refuses_an_edited_index(tmp_path: Path, edit: str) -> None:
    base, idx = _installed(tmp_path)
    index = bytearray(idx.read_bytes())
    values = np.frombuffer(bytes(index), dtype="<u4")
    b = int(np.argmax(values[1:] > values[:-1])) + 1  # a bucket boundary that moves a record
    if edit in ("down", "up"):
        moved = int(values[b]) + (1 if edit == "up" else -1)
        index[b * 4 : b * 4 + 4] = moved.to_bytes(4, "little")
    elif edit == "truncate":
        del index[-4:]
    else:
        index += b"\x00" * 4
    idx.write_bytes(bytes(index))
    with pytest.raises(TrustDataError, match="index does not match"):
        check_index(base, idx, chunk_records=7)


def test_check_index_refuses_an_index_of_another_base(tmp_path: Path) -> None:
    base, idx = _installed(tmp_path)
    other = tmp_path / "other.bin"
    raw = base.read_bytes()
    other.write_bytes(raw[16:])  # one record fewer
    with pytest.raises(TrustDataError, match="index does not match"):
        check_index(other, idx, chunk_records=7)


@settings(max_examples=40, deadline=None)
@given(
    prefixes=st.sets(_prefix, min_size=1, max_size=300),
    chunk=st.integers(min_value=1, max_value=40),
    data=st.data(),
)
def test_check_index_on_random_bases_and_edits(
    tmp_path_factory: pytest.TempPathFactory, prefixes: set[bytes], chunk: int, data: st.DataObject
) -> None:
    tmp = tmp_path_factory.mktemp("idx")
    base = tmp / "base.bin"
    base.write_bytes(_base(prefixes))
    idx = tmp / "base.idx"
    index = one_piece(base.read_bytes())
    idx.write_bytes(index)
    check_index(base, idx, chunk_records=chunk)
    values = np.frombuffer(index, dtype="<u4").copy()
    bucket = data.draw(st.integers(min_value=1, max_value=len(values) - 2), label="bucket")
    moved = data.draw(st.integers(min_value=0, max_value=len(prefixes)), label="value")
    if moved == values[bucket]:
        return
    values[bucket] = moved
    idx.write_bytes(values.tobytes())
    with pytest.raises(TrustDataError, match="index does not match"):
        check_index(base, idx, chunk_records=chunk)
