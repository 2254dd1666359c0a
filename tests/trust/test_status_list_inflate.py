"""Status lists inflate in bounded pieces (issue 14): a 10:1 or 1000:1 list never lands in
memory whole, and the length the manifest signs is still enforced exactly."""

from __future__ import annotations

import io
import os
import zlib
from pathlib import Path

import pytest

from appliance.core.errors import TrustDataError
from appliance.trust.signed import check_inflated, inflate_pieces

MIB = 1 << 20


@pytest.mark.parametrize("size", [0, 1, MIB - 1, MIB, MIB + 1, 3 * MIB, 3 * MIB + 7])
@pytest.mark.parametrize("kind", ["zeros", "random", "mixed"])
def test_pieces_are_bounded_and_exact(size: int, kind: str) -> None:
    if kind == "zeros":
        raw = bytes(size)
    elif kind == "random":
        raw = os.urandom(size)
    else:
        raw = (os.urandom(size // 3) + bytes(size))[:size]
    pieces = list(inflate_pieces(io.BytesIO(zlib.compress(raw, 9)), size, "list"))
    assert all(0 < len(p) <= MIB for p in pieces)
    assert b"".join(pieces) == raw


def test_longer_or_shorter_than_signed_is_refused() -> None:
    raw = bytes(2 * MIB + 5)
    wire = zlib.compress(raw)
    with pytest.raises(TrustDataError, match="inflates past"):
        list(inflate_pieces(io.BytesIO(wire), len(raw) - 1, "list"))
    with pytest.raises(TrustDataError, match="inflates to"):
        list(inflate_pieces(io.BytesIO(wire), len(raw) + 1, "list"))
    with pytest.raises(TrustDataError, match="inflates to"):
        list(inflate_pieces(io.BytesIO(wire[:-10]), len(raw), "list"))
    with pytest.raises(TrustDataError, match="does not inflate"):
        list(inflate_pieces(io.BytesIO(b"not zlib at all"), 10, "list"))


def test_check_inflated_compares_piece_by_piece(tmp_path: Path) -> None:
    raw = bytes(3 * MIB) + b"\x01"
    wire, inflated = tmp_path / "s.bin.zz", tmp_path / "s.bin"
    wire.write_bytes(zlib.compress(raw))
    inflated.write_bytes(raw)
    check_inflated(wire, inflated, len(raw))
    inflated.write_bytes(raw[:-1] + b"\x02")
    with pytest.raises(TrustDataError, match="does not match"):
        check_inflated(wire, inflated, len(raw))
    inflated.write_bytes(raw + b"\x00")
    with pytest.raises(TrustDataError, match="does not match"):
        check_inflated(wire, inflated, len(raw))
