"""Revocation structures: status-list bit order, hash sets from memory and from files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.core.errors import TrustDataError
from appliance.trust.revocation import HashSet, StatusList, build_bucket_index, write_hash_base


def test_status_list_bit_order_lsb_first() -> None:
    lst = StatusList(bytes([0b1011_1001, 0b0000_0001]), 1)
    assert [lst.status(i) for i in range(9)] == [1, 0, 0, 1, 1, 1, 0, 1, 1]
    assert lst.status(16) is None and lst.status(-1) is None
    two = StatusList(bytes([0b11_10_01_00]), 2)
    assert [two.status(i) for i in range(4)] == [0, 1, 2, 3]
    assert StatusList(bytes([0xA5]), 8).status(0) == 0xA5
    with pytest.raises(TrustDataError):
        StatusList(b"", 3)


@settings(max_examples=50, deadline=None)
@given(
    members=st.sets(st.binary(min_size=32, max_size=32), max_size=300),
    others=st.lists(st.binary(min_size=32, max_size=32), max_size=50),
)
def test_hash_set_membership(members: set[bytes], others: list[bytes]) -> None:
    s = HashSet.from_digests(members)
    assert all(m in s for m in members)
    for o in others:
        assert (o in s) == (o[:16] in {m[:16] for m in members})


def test_hash_set_from_files_with_deltas(tmp_path: Path) -> None:
    base = [hashlib.sha256(os.urandom(8)).digest() for _ in range(5000)]
    delta = [hashlib.sha256(os.urandom(8)).digest() for _ in range(30)]
    assert write_hash_base(base, tmp_path / "cti-base.bin") == 5000
    (tmp_path / "cti-d1.bin").write_bytes(b"".join(d[:16] for d in delta))
    s = HashSet.from_files(tmp_path / "cti-base.bin", [tmp_path / "cti-d1.bin"])
    assert len(s) == 5030
    assert all(h in s for h in base + delta)
    assert hashlib.sha256(b"not revoked").digest() not in s


def test_unsorted_base_is_refused() -> None:
    a, b = b"\xff" * 16, b"\x00" * 16
    with pytest.raises(TrustDataError, match="not sorted"):
        build_bucket_index(a + b)


def test_empty_sets() -> None:
    assert b"\x00" * 32 not in HashSet()
    assert len(HashSet()) == 0


def test_delta_only_revocations_read_each_file_once(tmp_path: Path, monkeypatch) -> None:
    """trust_store used to re-read a delta file once per 16-byte entry (issue 15)."""
    from appliance.trust import store

    entries = [bytes([i]) * 16 for i in range(50)]
    (tmp_path / "cti.delta1.bin").write_bytes(b"".join(entries))
    reads: list[Path] = []
    real = Path.read_bytes

    def counting(self: Path) -> bytes:
        reads.append(self)
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", counting)
    hashes = store._hash_set(tmp_path, {"base": None, "deltas": ["cti.delta1.bin"]})
    assert len(reads) == 1
    assert all(e in hashes for e in entries) and bytes([99]) * 16 not in hashes
