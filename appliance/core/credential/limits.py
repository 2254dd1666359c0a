"""Size, depth and count limits of spec LC1 s.1, each enforced before the work it bounds."""

from __future__ import annotations

import zlib

from appliance.core.errors import InflateError, InflateTooLarge

MAX_TEXT_CHARS = 4_400
MAX_BASE45_DECODED = 3_300
MAX_INFLATED = 16_384
MAX_CBOR_DEPTH = 16
# Items in one CBOR decode (pre-scan, cbor_scan.py): a DCC claims map holds about 60.
MAX_CBOR_ITEMS = 1_024
MAX_PHOTO_BYTES = 2_048
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def inflate_capped(data: bytes, limit: int = MAX_INFLATED) -> bytes:
    """Inflate an RFC 1950 stream, stopping as soon as the output would pass ``limit``."""
    if not data or data[0] != 0x78:
        raise InflateError("not a zlib stream")
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as e:
        raise InflateError(str(e)) from e
    if len(out) > limit:
        raise InflateTooLarge(f"inflates past {limit} bytes")
    if not d.eof:
        raise InflateError("truncated zlib stream")
    if d.unused_data:
        raise InflateError("bytes after the zlib stream")
    return out
