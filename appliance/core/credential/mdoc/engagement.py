"""The holder's QR device engagement (`mdoc:` text, spec mdl-reader s.1 and s.3.1).

Pure and total: ``parse_engagement`` turns hostile QR text into an ``Engagement`` or raises
``Rejection`` with one reason code, each limit checked before the work it bounds. The bytes
the session signs over stay exactly as received: ``device_engagement`` is the base64url-decoded
DeviceEngagement (it goes into the SessionTranscript unchanged) and ``e_device_key_bytes`` the
``#6.24`` item of the EDeviceKey (the BLE Ident is derived from it).

``choose_ble`` picks the BLE mode the reader will use: peripheral server mode where the holder
offers it, central client mode otherwise if the configuration allows it ([D2]).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from appliance.core.credential.mdoc.cbor import TAG_EMBEDDED, Embedded, decode
from appliance.core.credential.mdoc.cose_key import public_key_from_cose
from appliance.core.credential.mdoc.session_crypto import embed
from appliance.core.errors import CoseKeyError, MdocCborError, Rejection, UnsupportedCurve
from appliance.core.reasons import Reason

SCHEME = "mdoc:"
MAX_TEXT_CHARS = 1_024
MAX_ENGAGEMENT_BYTES = 768
MAX_ENGAGEMENT_ITEMS = 256
MAX_VERSION_CHARS = 16
CIPHER_SUITE_1 = 1
RETRIEVAL_BLE, RETRIEVAL_BLE_VERSION = 2, 1
# BleOptions keys (18013-5 s.8.2.2.2)
BLE_PERIPHERAL_SERVER, BLE_CENTRAL_CLIENT = 0, 1
BLE_PERIPHERAL_UUID, BLE_CENTRAL_UUID, BLE_PERIPHERAL_ADDRESS = 10, 11, 20
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


class BleMode(StrEnum):
    # The holder's role names: in peripheral server mode the reader is the GATT client.
    PERIPHERAL_SERVER = "peripheral_server"
    CENTRAL_CLIENT = "central_client"


@dataclass(frozen=True, slots=True)
class BleOption:
    """One usable BLE mode the holder offered, with its 16-byte service UUID."""

    mode: BleMode
    service_uuid: bytes
    # Peripheral server mode only, optional: the holder's 6-byte BLE address.
    address: bytes | None = None


@dataclass(frozen=True, slots=True)
class Engagement:
    device_engagement: bytes  # DeviceEngagement CBOR as received
    e_device_key_bytes: bytes  # EDeviceKeyBytes, the #6.24 item as received
    e_device_key: ec.EllipticCurvePublicKey
    version: str
    ble: tuple[BleOption, ...]  # in the holder's order

    def device_engagement_bytes(self) -> bytes:
        """``DeviceEngagementBytes = #6.24(bstr .cbor DeviceEngagement)`` for the transcript."""
        return embed(self.device_engagement)


def is_engagement(text: str) -> bool:
    """True for QR text in the `mdoc:` scheme (compared case-insensitively, RFC 3986 s.3.1)."""
    return text[: len(SCHEME)].lower() == SCHEME


def parse_engagement(text: str) -> Engagement:
    """`mdoc:` QR text -> Engagement, or ``Rejection`` (UNKNOWN_FORMAT, TOO_LARGE,
    MDOC_ENGAGEMENT_INVALID, MDOC_UNSUPPORTED_CURVE)."""
    if not is_engagement(text):
        raise Rejection(Reason.UNKNOWN_FORMAT, "not an mdoc: engagement")
    if len(text) > MAX_TEXT_CHARS:
        raise Rejection(Reason.TOO_LARGE, "engagement text too long")
    raw = _base64url(text[len(SCHEME) :])
    try:
        item = decode(raw, tags=frozenset({TAG_EMBEDDED}), max_items=MAX_ENGAGEMENT_ITEMS)
    except MdocCborError as e:
        raise _invalid(f"DeviceEngagement: {e}") from e
    if not isinstance(item, dict):
        raise _invalid("DeviceEngagement is not a map")
    version = _version(item.get(0))
    key_bytes, key = _security(item.get(1))
    return Engagement(raw, key_bytes, key, version, _retrieval(item.get(2)))


def choose_ble(engagement: Engagement, *, central_client_mode: bool = True) -> BleOption:
    """The BLE option the reader uses: peripheral server mode first ([D2]); else central
    client mode where it is enabled; else ``Rejection(MDOC_NO_SUPPORTED_TRANSPORT)``."""
    for wanted in (BleMode.PERIPHERAL_SERVER, BleMode.CENTRAL_CLIENT):
        if wanted is BleMode.CENTRAL_CLIENT and not central_client_mode:
            continue
        for option in engagement.ble:
            if option.mode is wanted:
                return option
    raise Rejection(Reason.MDOC_NO_SUPPORTED_TRANSPORT, "no BLE mode this reader can use")


def _invalid(detail: str) -> Rejection:
    return Rejection(Reason.MDOC_ENGAGEMENT_INVALID, detail)


def _base64url(body: str) -> bytes:
    """RFC 4648 s.5 without padding (a trailing ``=`` run tolerated), nothing else."""
    if not body.isascii() or _BASE64URL.fullmatch(body) is None:
        raise _invalid("not base64url")
    body = body.rstrip("=")
    if len(body) * 3 // 4 > MAX_ENGAGEMENT_BYTES:
        raise _invalid("engagement too long")
    if len(body) % 4 == 1:
        raise _invalid("base64url length impossible")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as e:
        raise _invalid("not base64url") from e
    if not raw:
        raise _invalid("empty engagement")
    return raw


def _version(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_VERSION_CHARS:
        raise _invalid("version missing or not short text")
    if value.split(".", 1)[0] != "1":
        raise _invalid("DeviceEngagement major version is not 1")
    return value


def _security(value: Any) -> tuple[bytes, ec.EllipticCurvePublicKey]:
    """``[1, EDeviceKeyBytes]`` -> (the #6.24 item as received, the public key)."""
    if not isinstance(value, list) or len(value) != 2:
        raise _invalid("Security is not [cipher suite, EDeviceKeyBytes]")
    suite, key_item = value
    if type(suite) is not int or suite != CIPHER_SUITE_1:
        raise _invalid("cipher suite is not 1")
    if not isinstance(key_item, Embedded):
        raise _invalid("EDeviceKeyBytes is not #6.24(bstr)")
    try:
        cose_key = decode(key_item.data, tags=frozenset(), max_items=32)
        return key_item.raw, public_key_from_cose(cose_key)
    except UnsupportedCurve as e:
        raise Rejection(Reason.MDOC_UNSUPPORTED_CURVE, str(e)) from e
    except (MdocCborError, CoseKeyError) as e:
        raise _invalid(f"EDeviceKey: {e}") from e


def _retrieval(value: Any) -> tuple[BleOption, ...]:
    """DeviceRetrievalMethods -> the usable BLE options; other methods are skipped.
    Absent (e.g. an NFC-only engagement): no options, so no supported transport."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _invalid("DeviceRetrievalMethods is not an array")
    options: list[BleOption] = []
    for method in value:
        if not isinstance(method, list) or len(method) != 3:
            raise _invalid("retrieval method is not [type, version, options]")
        kind, version, opts = method
        if type(kind) is not int or type(version) is not int:
            raise _invalid("retrieval method type/version not integers")
        if kind != RETRIEVAL_BLE or version != RETRIEVAL_BLE_VERSION:
            continue
        if not isinstance(opts, dict):
            raise _invalid("BleOptions is not a map")
        options.extend(_ble_options(opts))
    return tuple(options)


def _ble_options(opts: dict[Any, Any]) -> list[BleOption]:
    peripheral, central = opts.get(BLE_PERIPHERAL_SERVER), opts.get(BLE_CENTRAL_CLIENT)
    if type(peripheral) is not bool or type(central) is not bool:
        raise _invalid("BleOptions mode flags are not booleans")
    address = opts.get(BLE_PERIPHERAL_ADDRESS)
    if address is not None and (type(address) is not bytes or len(address) != 6):
        raise _invalid("BLE peripheral address is not 6 bytes")
    found: list[BleOption] = []
    for enabled, mode, key in (
        (peripheral, BleMode.PERIPHERAL_SERVER, BLE_PERIPHERAL_UUID),
        (central, BleMode.CENTRAL_CLIENT, BLE_CENTRAL_UUID),
    ):
        uuid = opts.get(key)
        if uuid is not None and (type(uuid) is not bytes or len(uuid) != 16):
            raise _invalid("BLE service UUID is not 16 bytes")
        if enabled and uuid is not None:
            peer = address if mode is BleMode.PERIPHERAL_SERVER else None
            found.append(BleOption(mode, uuid, peer))
    return found
