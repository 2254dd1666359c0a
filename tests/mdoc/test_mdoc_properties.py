"""Property tests of the mdoc parsers and verifier: total (only their declared errors, or a
verdict), bounded (limits refuse before work), and byte-exact (short, derandomized runs; the
long structure-aware run is atheris, tests/fuzz/fuzz_mdoc.py)."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mdoc_cases import AUTHORING, World

from appliance.core.credential.cbor_scan import scan
from appliance.core.credential.mdoc import session_crypto as sc
from appliance.core.credential.mdoc.cbor import Embedded, decode
from appliance.core.credential.mdoc.items_request import (
    device_request_from_bytes,
    items_request_from_bytes,
)
from appliance.core.credential.mdoc.response import parse_device_response, parse_document
from appliance.core.errors import MdocCborError, Rejection
from appliance.core.reasons import Outcome, Reason

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))
from mdoc_structure import PLACES, responses
from structure import cbor_trees, dumps

from appliance.core.errors import SessionDataTooLarge

SHORT = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
WORLD = World()
TRUST = WORLD.trust()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def net() -> Iterator[_Records]:
    """The verifier's last-resort net: a fault it catches is a bug found."""
    handler = _Records()
    logger = logging.getLogger("appliance.core.credential.mdoc.verify")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def _clean_verdict(response: bytes, net: _Records) -> None:
    net.records.clear()
    verdict = WORLD.verify(response, trust=TRUST, checkpoint=AUTHORING).verdict
    assert isinstance(verdict.reason, Reason) and isinstance(verdict.outcome, Outcome)
    assert not net.records, [r.getMessage() for r in net.records]


@SHORT
@given(data=st.binary(max_size=600))
def test_reader_raises_only_its_error(data: bytes) -> None:
    with contextlib.suppress(MdocCborError):
        decode(data)


@SHORT
@given(tree=cbor_trees())
def test_reader_accepts_what_the_scan_accepts_and_cbor2_reads(tree: object) -> None:
    encoded = dumps(tree)
    if encoded is None:
        return
    try:
        scan(
            encoded,
            tags=frozenset({0, 1004, 24, 17, 18}),
            root_tags=frozenset({0, 1004, 24, 17, 18}),
            max_items=8192,
        )
    except ValueError:
        with pytest.raises(MdocCborError):
            decode(encoded)
        return
    try:
        decode(encoded)
    except MdocCborError as e:  # only the rules the scan leaves to the reader
        assert any(w in str(e) for w in ("not valid CBOR", "undefined", "tag")), e


@SHORT
@given(data=st.binary(max_size=400))
def test_message_parsers_raise_only_their_errors(data: bytes) -> None:
    for parse in (parse_device_response, device_request_from_bytes, items_request_from_bytes):
        try:
            parse(data)
        except Rejection as r:
            assert r.reason is Reason.MDOC_MALFORMED
    with contextlib.suppress(MdocCborError, SessionDataTooLarge):
        sc.parse_session_data(data)
    with contextlib.suppress(MdocCborError):
        sc.transcript_parts(data)


@SHORT
@given(tree=cbor_trees())
def test_document_parser_on_hostile_trees(tree: object) -> None:
    try:
        parse_document(tree)
    except Rejection as r:
        assert r.reason is Reason.MDOC_MALFORMED


@SHORT
@given(data=st.binary(max_size=2_000))
def test_verify_is_total_on_bytes(data: bytes, net: _Records) -> None:
    _clean_verdict(data, net)


@settings(SHORT, max_examples=len(PLACES) * 20)
@given(response=responses(WORLD))
def test_verify_is_total_on_hostile_structures(response: bytes, net: _Records) -> None:
    _clean_verdict(response, net)


@SHORT
@given(position=st.integers(0, 10**6), bit=st.integers(0, 7))
def test_every_bit_flip_of_a_valid_response_fails_or_passes_cleanly(
    position: int, bit: int, net: _Records
) -> None:
    response = bytearray(VALID)
    position %= len(response)
    response[position] ^= 1 << bit
    net.records.clear()
    verdict = WORLD.verify(bytes(response), trust=TRUST).verdict
    assert not net.records
    # A flipped bit gives a PASS only where nothing signed or MACed changed: the unsigned
    # top-level version text (another 1.x).
    if verdict.outcome is Outcome.PASS:
        flipped, valid = decode(bytes(response)), decode(VALID)
        assert flipped.pop("version").startswith("1.")
        valid.pop("version")
        assert flipped == valid


VALID = WORLD.response()


def test_limits_refuse_before_work() -> None:
    wide = b"\x9a" + (200_000).to_bytes(4, "big") + b"\x00" * 200_000
    with pytest.raises(MdocCborError, match="items"):
        decode(wide)
    deep = b"\x81" * 17 + b"\x00"
    with pytest.raises(MdocCborError, match="deeper"):
        decode(deep)
    with pytest.raises(MdocCborError, match="duplicate"):
        decode(b"\xa2\x61a\x00\x61a\x01")
    with pytest.raises(MdocCborError, match="tag 2 "):
        decode(b"\xc2\x41\x01")
    with pytest.raises(MdocCborError, match="not valid CBOR"):  # text that is not UTF-8
        decode(b"\x62\xff\xfe")
    result = WORLD.verify(VALID, max_response_bytes=len(VALID) - 1)
    assert result.verdict.reason is Reason.TOO_LARGE


def test_embedded_items_keep_their_received_bytes() -> None:
    non_minimal = b"\xd8\x18\x5a\x00\x00\x00\x01\xa0"
    item = decode(b"\x81" + non_minimal)
    assert item == [Embedded(non_minimal, b"\xa0")]
    indefinite = b"\xd8\x18\x5f\x41\xa0\xff"  # valid CBOR, never re-encoded
    assert decode(indefinite) == Embedded(indefinite, b"\xa0")


def test_every_bit_of_the_ds_certificate(net: _Records) -> None:
    """cryptography reads certificate fields lazily and hostile DER raised KeyError and
    InvalidVersion from inside the checks (found by the bit-flip property above): every
    flip of the DS certificate now ends in a verdict, none in the net, none in a PASS."""
    der = WORLD.signer().der
    start = VALID.index(der)
    for position in range(start, start + len(der)):
        for bit in range(8):
            response = bytearray(VALID)
            response[position] ^= 1 << bit
            net.records.clear()
            verdict = WORLD.verify(bytes(response), trust=TRUST).verdict
            assert not net.records and verdict.outcome is not Outcome.PASS, (position, bit)
