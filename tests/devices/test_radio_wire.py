"""The kiosk <-> radio wire (issue 23, RADIO.md): frames bounded both ways, requests and
answers typed, anything else a clear ``WireError`` (a ``TransportFailed``), never more held
than a header and one message."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.core.credential.mdoc.engagement import BleMode, BleOption
from appliance.core.errors import (
    MessageTooLarge,
    TransportFailed,
    TransportTimeout,
    TransportUnavailable,
)
from appliance.devices import radio_wire as wire

LIMITS = wire.Limits.for_messages(1024)
UUID = bytes(range(16))


def _read(data: bytes, limits: wire.Limits = LIMITS) -> wire.Frame | None:
    async def go() -> wire.Frame | None:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await wire.read_frame(reader, limits)

    return asyncio.run(go())


def test_a_frame_round_trips_through_bytes_and_a_stream() -> None:
    raw = wire.encode({"op": "send"}, b"\x00message", LIMITS)
    decoded = wire.decode(raw + b"rest", LIMITS)
    assert decoded == (wire.Frame({"op": "send"}, b"\x00message"), b"rest")
    assert _read(raw) == wire.Frame({"op": "send"}, b"\x00message")
    assert wire.decode(raw[:-1], LIMITS) is None  # incomplete: wait for more


def test_clean_end_between_frames_is_none_inside_a_frame_an_error() -> None:
    assert _read(b"") is None
    raw = wire.encode({"op": "send"}, b"abc")
    for cut in (3, 9, len(raw) - 1):
        with pytest.raises(wire.WireError, match="ended inside"):
            _read(raw[:cut])


@pytest.mark.parametrize(
    ("prefix", "why"),
    [
        (struct.pack(">II", 0, 0), "header of 0 bytes"),
        (struct.pack(">II", 4097, 0), "header of 4097 bytes"),
        (struct.pack(">II", 2, 1024 + 4096 + 1), "body of 5121 bytes"),
        (b"\xff" * 8, "header of 4294967295 bytes"),
    ],
)
def test_lengths_past_the_limits_are_refused_before_reading_them(prefix: bytes, why: str) -> None:
    # Only the prefix is there: the refusal must not wait for (or allocate) the rest.
    with pytest.raises(wire.WireError, match=why):
        _read(prefix)


@pytest.mark.parametrize(
    "header",
    [b"not json", b"\xff\xfe", b"[1,2]", b'{"no":"op"}', b'{"op":1}', b"[" * 4000],
)
def test_a_header_that_is_not_an_object_with_an_op_is_refused(header: bytes) -> None:
    with pytest.raises(wire.WireError):
        _read(struct.pack(">II", len(header), 0) + header)


def test_encode_refuses_what_the_other_side_would_refuse() -> None:
    with pytest.raises(MessageTooLarge):
        wire.encode({"op": "send"}, b"x" * (LIMITS.max_body + 1), LIMITS)


@pytest.mark.parametrize(
    "option",
    [
        BleOption(BleMode.PERIPHERAL_SERVER, UUID, bytes(6)),
        BleOption(BleMode.PERIPHERAL_SERVER, UUID),
        BleOption(BleMode.CENTRAL_CLIENT, UUID),
    ],
)
def test_connect_carries_mode_uuid_ident_and_address(option: BleOption) -> None:
    ident = b"\x01" * 16 if option.mode is BleMode.CENTRAL_CLIENT else None
    frame = wire.decode(wire.encode(wire.connect_request(option, ident)), LIMITS)
    assert frame is not None
    assert wire.parse_request(frame[0]) == wire.Connect(option, ident)


def test_the_other_requests() -> None:
    def parse(header: dict, body: bytes = b"") -> wire.Request:
        return wire.parse_request(wire.Frame(header, body))

    assert parse({"op": "send"}, b"m") == wire.Send(b"m")
    assert parse({"op": "receive", "max_bytes": 9}) == wire.Receive(9)
    assert parse({"op": "close"}, b"t") == wire.Close(b"t")
    assert parse({"op": "close"}) == wire.Close(None)


@pytest.mark.parametrize(
    "header",
    [
        {"op": "dance"},
        {"op": "receive"},
        {"op": "receive", "max_bytes": 0},
        {"op": "receive", "max_bytes": True},
        {"op": "receive", "max_bytes": "9"},
        {"op": "connect", "mode": "telepathy", "service_uuid": UUID.hex()},
        {"op": "connect", "mode": "peripheral_server", "service_uuid": "zz"},
        {"op": "connect", "mode": "peripheral_server", "service_uuid": UUID.hex()[:-2]},
        {"op": "connect", "mode": "peripheral_server", "service_uuid": UUID.hex() * 3},
        {"op": "connect", "mode": "central_client", "service_uuid": UUID.hex(), "ident": None},
        {"op": "connect", "mode": "central_client", "service_uuid": UUID.hex(), "ident": "01"},
        {"op": "connect", "mode": "peripheral_server", "service_uuid": UUID.hex(), "address": 5},
    ],
)
def test_bad_requests_are_wire_errors(header: dict) -> None:
    with pytest.raises(wire.WireError):
        wire.parse_request(wire.Frame(header))


@pytest.mark.parametrize(
    ("exc", "kind", "cls"),
    [
        (TransportTimeout("t"), "timeout", TransportTimeout),
        (TransportFailed("f"), "failed", TransportFailed),
        (MessageTooLarge("l"), "too_large", MessageTooLarge),
        (TransportUnavailable("no controller hci0"), "unavailable", TransportUnavailable),
        (RuntimeError("a Bumble fault"), "failed", TransportFailed),
    ],
)
def test_error_kinds_map_one_to_one_onto_the_transport_exceptions(
    exc: Exception, kind: str, cls: type
) -> None:
    header, body = wire.error(exc)
    assert header["kind"] == kind
    with pytest.raises(cls, match=str(exc)) as raised:
        wire.answer_body(wire.Frame(header, body))
    assert type(raised.value) is cls


def test_answers() -> None:
    assert wire.answer_body(wire.Frame(*wire.ok(b"msg"))) == b"msg"
    for header in ({"op": "error", "kind": "weird"}, {"op": "error"}, {"op": "send"}):
        with pytest.raises(wire.WireError):
            wire.answer_body(wire.Frame(header))
    header, _ = wire.error(TransportFailed("x" * 10_000))
    assert len(json.dumps(header)) < 400  # a detail never grows a header past its bound


headers = st.dictionaries(
    st.text(max_size=8),
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=40)),
    max_size=5,
).map(lambda d: {**d, "op": "send"})


@settings(max_examples=200, deadline=None)
@given(headers, st.binary(max_size=2048))
def test_property_round_trip(header: dict, body: bytes) -> None:
    limits = wire.Limits.for_messages(0)
    try:
        raw = wire.encode(header, body, limits)
    except MessageTooLarge:
        assert len(body) > limits.max_body or len(json.dumps(header)) > limits.max_header
        return
    assert wire.decode(raw, limits) == (wire.Frame(header, body), b"")
    assert _read(raw, limits) == wire.Frame(header, body)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_property_any_bytes_are_a_frame_none_or_a_wire_error(data: bytes) -> None:
    """Garbage never raises anything else, and never yields more than the limits allow."""
    limits = wire.Limits(max_body=64, max_header=128)
    for attempt in (lambda: wire.decode(data, limits), lambda: _read(data, limits)):
        try:
            result = attempt()
        except wire.WireError:
            continue
        frame = result[0] if isinstance(result, tuple) else result
        if frame is not None:
            assert isinstance(frame.header.get("op"), str) and len(frame.body) <= 64
            with contextlib.suppress(wire.WireError):
                wire.parse_request(frame)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**32 - 1),
    st.integers(min_value=0, max_value=2**32 - 1),
)
def test_property_the_prefix_alone_decides_whether_lengths_are_taken(
    header_len: int, body_len: int
) -> None:
    ok = 0 < header_len <= LIMITS.max_header and body_len <= LIMITS.max_body
    try:
        assert wire.lengths(struct.pack(">II", header_len, body_len), LIMITS) == (
            header_len,
            body_len,
        )
        assert ok
    except wire.WireError:
        assert not ok
