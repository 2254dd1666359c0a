"""The CBOR header fast path (cose._common_header) against the general path (issue 15).

The fast path reads the one protected header every LC1 encoder writes, ``{1: -7|-8,
4: h'<8 bytes>'}``, without a decoder call. It is a second reader of attacker bytes, so on
every input it must give exactly what the general path (pre-scan, cbor2, header checks)
gives, or step aside (None). Measured when this test was written (x86-64, 2 shared
cores, loaded): parse_sign1 about 6.5 us with the fast path, 8.4 us without, of a verify()
of about 170 us: it is kept only while this property holds.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import cbor2
from hypothesis import example, given, settings
from hypothesis import strategies as st

from appliance.core.credential import cose
from appliance.core.errors import CoseError

ALG_BYTES = [0x26, 0x27, 0x25, 0x28, 0x20, 0x00, 0x17, 0x18, 0x38, 0x39, 0x60, 0xF6]


def _general(protected: bytes) -> tuple[str, Any]:
    """What the general path makes of a protected header: the map, or the error."""
    with mock.patch.object(cose, "_common_header", lambda _p: None):
        return _parse(protected)


def _parse(protected: bytes) -> tuple[str, Any]:
    envelope = cbor2.dumps(cbor2.CBORTag(cose.TAG_SIGN1, [protected, {}, b"payload", b"sig"]))
    try:
        return "ok", dict(cose.parse_sign1(envelope).protected_map)
    except CoseError as e:
        return "error", type(e)


# Headers close to the common form: every byte of it varied, one at a time or together.
near_common = st.builds(
    lambda head, n, alg, kid_key, kid_head, kid, tail: (
        bytes([head, n, alg, kid_key, kid_head]) + kid + tail
    ),
    st.sampled_from([0xA2, 0xA1, 0xA3, 0xBF, 0x82]),
    st.sampled_from([0x01, 0x04, 0x02, 0x21, 0x61]),
    st.sampled_from(ALG_BYTES),
    st.sampled_from([0x04, 0x01, 0x05, 0x24]),
    st.sampled_from([0x48, 0x47, 0x49, 0x40, 0x68, 0x58]),
    st.one_of(st.binary(min_size=8, max_size=8), st.binary(max_size=10)),
    st.one_of(st.just(b""), st.sampled_from([b"\x00", b"\xff", b"\x01\x26"])),
)
encoded_maps = st.builds(
    cbor2.dumps,
    st.dictionaries(
        st.sampled_from([1, 4, 5, -1, "1"]),
        st.one_of(st.integers(-40, 40), st.binary(max_size=10), st.text(max_size=3)),
        max_size=3,
    ),
)


@settings(max_examples=600, deadline=None)
@given(st.one_of(near_common, encoded_maps, st.binary(max_size=16)))
@example(b"\xa2\x01\x26\x04\x48" + b"\x00" * 8)  # the common ES256 header
@example(b"\xa2\x01\x27\x04\x48" + b"\xff" * 8)  # the common EdDSA header
@example(b"\xa2\x01\x26\x04\x48" + b"\x00" * 7)  # one kid byte short
@example(b"\xa2\x04\x48" + b"\x00" * 8 + b"\x01\x26")  # the same map, keys reversed
def test_fast_path_agrees_with_the_general_path(protected: bytes) -> None:
    fast = cose._common_header(protected)
    general = _general(protected)
    if fast is not None:
        assert general == ("ok", fast)
        assert type(fast[cose.HEADER_KID]) is bytes and type(fast[cose.HEADER_ALG]) is int
    assert _parse(protected) == general


def test_every_single_byte_change_of_the_common_header() -> None:
    """Exhaustive where it matters: each of the 13 bytes set to each of 256 values, and the
    header one byte shorter or longer; the fast path and the general path agree on all."""
    common = bytearray(b"\xa2\x01\x26\x04\x48" + bytes(range(1, 9)))
    cases = [bytes(common[:-1]), bytes(common) + b"\x00"]
    for i in range(len(common)):
        for value in range(256):
            changed = bytearray(common)
            changed[i] = value
            cases.append(bytes(changed))
    for protected in cases:
        fast = cose._common_header(protected)
        if fast is not None:
            assert _general(protected) == ("ok", fast), protected.hex()


def test_the_fast_path_is_taken_for_what_issuers_write() -> None:
    """Otherwise this test would pass vacuously and the fast path would not pay."""
    for alg in (cose.ALG_ES256, cose.ALG_EDDSA):
        protected = cbor2.dumps({cose.HEADER_ALG: alg, cose.HEADER_KID: b"\x07" * 8})
        assert cose._common_header(protected) == {1: alg, 4: b"\x07" * 8}
