"""The 18013-5 BLE framing (chunks of MTU - 3 with 0x01/0x00 prefixes) and the choice of
backend, without a radio (spec mdl-reader s.3.2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.config import MdocConfig
from appliance.core.errors import MessageTooLarge, TransportFailed, TransportUnavailable
from appliance.devices.mdoc_transport import (
    Deadlines,
    Reassembler,
    chunks,
    mdl_available,
    open_transport,
)


def test_chunks_fill_the_att_value_and_mark_the_last() -> None:
    parts = chunks(bytes(834), 515)  # the spec's probe: SessionEstablishment in 2 writes
    assert [len(p) for p in parts] == [512, 324]
    assert [p[0] for p in parts] == [1, 0]
    assert len(chunks(bytes(3587), 515)) == 8  # and SessionData in 8 notifications
    assert all(len(p) == 20 for p in chunks(bytes(1000), 23)[:-1])
    assert chunks(b"", 515) == [b"\x00"]


@given(st.binary(max_size=3000), st.integers(23, 600))
def test_reassembly_gives_the_message_back(message: bytes, mtu: int) -> None:
    joined = Reassembler(len(message))
    parts = chunks(message, mtu)
    assert [joined.feed(p) for p in parts[:-1]] == [None] * (len(parts) - 1)
    assert joined.feed(parts[-1]) == message
    assert not joined.started  # ready for the next message


def test_reassembly_refuses_bad_prefixes_and_too_much() -> None:
    for value in (b"", b"\x02abc", b"\xffabc"):
        with pytest.raises(TransportFailed):
            Reassembler(100).feed(value)
    joined = Reassembler(10)
    joined.feed(b"\x01" + bytes(10))
    with pytest.raises(MessageTooLarge):
        joined.feed(b"\x01" + bytes(1))


def test_deadlines_come_from_configuration() -> None:
    config = MdocConfig(
        scan_timeout_s=1,
        connect_timeout_s=2,
        connect_retries=3,
        discovery_timeout_s=4,
        first_response_timeout_s=5,
        chunk_gap_timeout_s=6,
        session_timeout_s=7,
    )
    assert Deadlines.from_config(config) == Deadlines(1, 2, 3, 4, 5, 6, 7)
    assert Deadlines.from_config(MdocConfig()) == Deadlines()  # the s.3.2 defaults


def test_mdl_off_is_said_and_refused() -> None:
    assert "off" in (mdl_available("none") or "")
    assert "unknown" in (mdl_available("bleak") or "")
    assert mdl_available("bumble:local") is None  # installed with the test extra
    with pytest.raises(TransportUnavailable):
        open_transport("none", Deadlines())
