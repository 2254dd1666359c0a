"""The `mdoc:` QR engagement (spec mdl-reader s.1, s.3.1) and V4 of s.9."""

from __future__ import annotations

import base64
import uuid

import cbor2
import pytest
from annexd import AnnexD
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.core.credential.mdoc.engagement import (
    BleMode,
    choose_ble,
    is_engagement,
    parse_engagement,
)
from appliance.core.errors import Rejection
from appliance.core.reasons import Reason
from appliance.tools.holder_mdoc import device_engagement, engagement_text

PERIPHERAL = uuid.UUID("11111111-2222-3333-4444-555555555555").bytes
CENTRAL = uuid.UUID("45efef74-2b2c-4837-a9a3-b0e1d05a6917").bytes


def _text(raw: bytes) -> str:
    return "mdoc:" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _reason(text: str) -> Reason:
    with pytest.raises(Rejection) as caught:
        parse_engagement(text)
    return caught.value.reason


def _with(item: dict, **changes: object) -> str:
    item = dict(item)
    for key, value in changes.items():
        item[int(key[1:])] = value
    return _text(cbor2.dumps(item))


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def base(key: ec.EllipticCurvePrivateKey) -> dict:
    return cbor2.loads(device_engagement(key.public_key(), peripheral_uuid=PERIPHERAL))


def test_v4_annex_d_engagement_parses_as_central_client_only(annexd: AnnexD) -> None:
    raw = annexd.bytes("device_engagement")
    engagement = parse_engagement(_text(raw))
    assert engagement.version == "1.0"
    assert engagement.device_engagement == raw
    assert engagement.e_device_key_bytes == annexd.bytes("e_device_key_bytes")
    assert engagement.e_device_key.public_numbers() == (
        annexd.public_key("e_device_key").public_numbers()
    )
    [option] = engagement.ble
    assert option.mode is BleMode.CENTRAL_CLIENT and option.service_uuid == CENTRAL
    assert choose_ble(engagement) == option
    with pytest.raises(Rejection) as caught:
        choose_ble(engagement, central_client_mode=False)
    assert caught.value.reason is Reason.MDOC_NO_SUPPORTED_TRANSPORT


def test_peripheral_server_mode_is_preferred_where_both_are_offered(
    key: ec.EllipticCurvePrivateKey,
) -> None:
    text = engagement_text(
        device_engagement(key.public_key(), peripheral_uuid=PERIPHERAL, central_uuid=CENTRAL)
    )
    engagement = parse_engagement(text)
    assert [o.mode for o in engagement.ble] == [BleMode.PERIPHERAL_SERVER, BleMode.CENTRAL_CLIENT]
    chosen = choose_ble(engagement)
    assert chosen.mode is BleMode.PERIPHERAL_SERVER and chosen.service_uuid == PERIPHERAL


def test_scheme_is_case_insensitive_and_padding_tolerated(annexd: AnnexD) -> None:
    raw = annexd.bytes("device_engagement")
    padded = "MDOC:" + base64.urlsafe_b64encode(raw).decode()
    assert padded.endswith("=") and is_engagement(padded)
    assert parse_engagement(padded).device_engagement == raw


@pytest.mark.parametrize("curve", [ec.SECP384R1(), ec.SECP521R1()])
def test_p384_and_p521_device_keys(curve: ec.EllipticCurve) -> None:
    key = ec.generate_private_key(curve)
    engagement = parse_engagement(
        engagement_text(device_engagement(key.public_key(), peripheral_uuid=PERIPHERAL))
    )
    assert engagement.e_device_key.curve.name == curve.name


def test_not_mdoc_and_too_long() -> None:
    assert _reason("LC1:ABC") is Reason.UNKNOWN_FORMAT
    assert _reason("mdoc" + "A" * 10) is Reason.UNKNOWN_FORMAT
    assert _reason("mdoc:" + "A" * 1020) is Reason.TOO_LARGE


@pytest.mark.parametrize("body", ["", "a+b/", "ab cd", "abc\u0e01", "A", "ab=c", "ab===", "gA"])
def test_bad_base64url_is_engagement_invalid(body: str) -> None:
    assert _reason("mdoc:" + body) is Reason.MDOC_ENGAGEMENT_INVALID


@pytest.mark.parametrize(
    "raw",
    [
        b"\xa1\x00",  # truncated
        cbor2.dumps({0: "1.0"}) + b"\x00",  # trailing byte
        b"\xa2\x00\x631.0\x00\x631.0",  # duplicate key
        cbor2.dumps([0, "1.0"]),  # not a map
        cbor2.dumps(cbor2.CBORTag(1, 0)),  # a tag outside the engagement's set
        b"\x81" * 20 + b"\x00",  # deeper than 16
    ],
)
def test_malformed_cbor_is_engagement_invalid(raw: bytes) -> None:
    assert _reason(_text(raw)) is Reason.MDOC_ENGAGEMENT_INVALID


def test_field_errors_are_engagement_invalid(base: dict, key: ec.EllipticCurvePrivateKey) -> None:
    security = base[1]
    cases = [
        _with(base, k0="2.0"),
        _with(base, k0=1),
        _with(base, k0="1" * 17),
        _with(base, k1=None),
        _with(base, k1=[1]),
        _with(base, k1=[2, security[1]]),
        _with(base, k1=[1, security[1].value]),  # the key bytes without tag 24
        _with(base, k1=[1, cbor2.CBORTag(24, b"\xa1\x01\x02")]),  # EC2 without crv/x/y
        _with(base, k2={}),
        _with(base, k2=[[2, 1]]),
        _with(base, k2=[[2, 1, []]]),
        _with(base, k2=[[2, 1, {0: 1, 1: False}]]),
        _with(base, k2=[[2, 1, {0: True, 1: False, 10: b"short"}]]),
        _with(base, k2=[[2, 1, {0: True, 1: False, 10: PERIPHERAL, 20: b"\x01"}]]),
    ]
    x = key.public_key().public_numbers().x.to_bytes(32, "big")
    off_curve = cbor2.dumps({1: 2, -1: 1, -2: x, -3: bytes(32)})
    cases.append(_with(base, k1=[1, cbor2.CBORTag(24, off_curve)]))
    assert [_reason(text) for text in cases] == [Reason.MDOC_ENGAGEMENT_INVALID] * len(cases)


@pytest.mark.parametrize(
    "cose_key",
    [
        {1: 1, -1: 4, -2: bytes(32)},  # OKP X25519
        {1: 1, -1: 5, -2: bytes(56)},  # OKP X448
        {1: 2, -1: 8, -2: bytes(32), -3: bytes(32)},  # brainpoolP256r1
    ],
)
def test_other_curves_are_unsupported(base: dict, cose_key: dict) -> None:
    text = _with(base, k1=[1, cbor2.CBORTag(24, cbor2.dumps(cose_key))])
    assert _reason(text) is Reason.MDOC_UNSUPPORTED_CURVE


def test_no_usable_ble_option_is_no_supported_transport(base: dict) -> None:
    for methods in (
        None,
        [[1, 1, {}]],
        [[2, 1, {0: False, 1: False}]],
        [[2, 2, {0: True, 1: False, 10: PERIPHERAL}]],
        [[2, 1, {0: True, 1: False}]],
    ):  # a mode without its UUID
        item = dict(base)
        if methods is None:
            del item[2]
        else:
            item[2] = methods
        engagement = parse_engagement(_text(cbor2.dumps(item)))
        with pytest.raises(Rejection) as caught:
            choose_ble(engagement)
        assert caught.value.reason is Reason.MDOC_NO_SUPPORTED_TRANSPORT


def test_unknown_keys_and_other_methods_are_ignored(base: dict) -> None:
    item = dict(base)
    item[5] = [["origin"]]
    item[2] = [[1, 1, {"nfc": 1}], *base[2]]
    engagement = parse_engagement(_text(cbor2.dumps(item)))
    assert choose_ble(engagement).service_uuid == PERIPHERAL


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=800))
def test_any_bytes_give_an_engagement_or_one_reason(raw: bytes) -> None:
    try:
        parse_engagement(_text(raw))
    except Rejection as e:
        assert e.reason in (
            Reason.MDOC_ENGAGEMENT_INVALID,
            Reason.MDOC_UNSUPPORTED_CURVE,
            Reason.TOO_LARGE,
        )


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_annex_d_engagement_never_escapes(annexd: AnnexD, data: st.DataObject) -> None:
    raw = bytearray(annexd.bytes("device_engagement"))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(raw)))
    try:
        parse_engagement(_text(bytes(raw[:cut])))
    except Rejection as e:
        assert e.reason in (Reason.MDOC_ENGAGEMENT_INVALID, Reason.MDOC_UNSUPPORTED_CURVE)
