"""The signed head of a device's log and the hub's signed acknowledgement of it.

The head rows of ``audit.db`` are plain SQLite: whoever can write the file can cut the
newest records off and move the head back. So the device signs its head (device id, log
id, seq, hash, time) with its key and sends it in every batch and heartbeat; the hub keeps
the highest head it has seen per log and raises an anomaly when a later one is below it.
The other way round, the hub signs what it stores (device id, log id, highest seq of the
batch, the hash it holds there) with its own key, which the device pins
(``[upload] hub_key``): only such an acknowledgement marks records uploaded, and only
records it covers are ever pruned. A fake hub, even on plain HTTP, can sign neither.

Shared by the device (``appliance_sync``) and the hub (``appliance_hub``), like
``appliance.audit.chain``.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from appliance.audit.chain import canonical
from appliance.audit.identity import DeviceIdentity, DevicePublicKey
from appliance.core.errors import DeviceKeyError, HubKeyError
from appliance.platform.secret_files import create_secret

log = logging.getLogger(__name__)

HEAD_TYPE = "appliance-audit-head-v1"
ACK_TYPE = "appliance-hub-ack-v1"
MAX_TEXT = 128  # ids, hashes, times and base64 signatures are all shorter


def head_message(device_id: str, log_id: str, seq: int, head: str, time: str) -> bytes:
    return canonical(
        {
            "type": HEAD_TYPE,
            "device_id": device_id,
            "log_id": log_id,
            "seq": int(seq),
            "hash": head,
            "time": time,
        }
    )


def ack_message(device_id: str, log_id: str, seq: int, head: str) -> bytes:
    return canonical(
        {"type": ACK_TYPE, "device_id": device_id, "log_id": log_id, "seq": int(seq), "hash": head}
    )


@dataclass(frozen=True)
class SignedHead:
    """The device's statement "my log ``log_id`` holds records 1..seq, the last one hash"."""

    device_id: str
    log_id: str
    seq: int
    hash: str
    time: str
    signature: str  # base64 Ed25519 by the device key

    def as_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "log_id": self.log_id,
            "seq": self.seq,
            "hash": self.hash,
            "time": self.time,
            "signature": self.signature,
        }

    def message(self) -> bytes:
        return head_message(self.device_id, self.log_id, self.seq, self.hash, self.time)

    def verify(self, key: DevicePublicKey) -> bool:
        return _verify(key, self.signature, self.message())

    @classmethod
    def parse(cls, value: Any) -> SignedHead:
        """A head from parsed JSON; ``ValueError`` naming the first bad field."""
        fields = _fields(value, ("device_id", "log_id", "hash", "time", "signature"), "head")
        return cls(
            fields["device_id"],
            fields["log_id"],
            _seq(value, "head"),
            fields["hash"],
            fields["time"],
            fields["signature"],
        )


def sign_head(
    identity: DeviceIdentity, device_id: str, log_id: str, seq: int, head: str, time: str
) -> SignedHead:
    signature = identity.sign(head_message(device_id, log_id, seq, head, time))
    return SignedHead(device_id, log_id, int(seq), head, time, base64.b64encode(signature).decode())


@dataclass(frozen=True)
class HubAck:
    """The hub's statement "I hold record ``seq`` of this log, with this hash"."""

    device_id: str
    log_id: str
    seq: int
    hash: str
    key_id: str
    signature: str  # base64 Ed25519 by the hub key

    def as_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "log_id": self.log_id,
            "seq": self.seq,
            "hash": self.hash,
            "key_id": self.key_id,
            "signature": self.signature,
        }

    def verify(self, key: DevicePublicKey) -> bool:
        return _verify(
            key, self.signature, ack_message(self.device_id, self.log_id, self.seq, self.hash)
        )

    @classmethod
    def parse(cls, value: Any) -> HubAck:
        """An acknowledgement from parsed JSON; ``ValueError`` naming the first bad field."""
        names = ("device_id", "log_id", "hash", "key_id", "signature")
        fields = _fields(value, names, "acknowledgement")
        return cls(
            fields["device_id"],
            fields["log_id"],
            _seq(value, "acknowledgement"),
            fields["hash"],
            fields["key_id"],
            fields["signature"],
        )


class HubSigner:
    """The hub's Ed25519 key: signs acknowledgements (``appliance hub keygen`` makes it)."""

    def __init__(self, key: ed25519.Ed25519PrivateKey) -> None:
        self._key = key
        self.public = DevicePublicKey(key.public_key())

    def ack(self, device_id: str, log_id: str, seq: int, head: str) -> HubAck:
        signature = self._key.sign(ack_message(device_id, log_id, seq, head))
        return HubAck(
            device_id,
            log_id,
            int(seq),
            head,
            self.public.key_id,
            base64.b64encode(signature).decode(),
        )

    @classmethod
    def load(cls, path: Path) -> HubSigner:
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise HubKeyError(f"cannot read the hub key {path}: {e.strerror or e}") from e
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as e:
            raise HubKeyError(f"{path} is not an unencrypted PEM private key") from e
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise HubKeyError(f"{path} is not an Ed25519 key")
        return cls(key)

    @classmethod
    def generate(cls, path: Path) -> HubSigner:
        """A new key written 0600 at ``path`` (refused if it exists) and its ``.pub``."""
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            if not create_secret(Path(path), pem):
                raise HubKeyError(f"{path} exists: not overwritten")
        except OSError as e:
            raise HubKeyError(f"cannot write the hub key {path}: {e.strerror or e}") from e
        signer = cls(key)
        pub = Path(f"{path}.pub")
        try:
            pub.write_text(signer.public.pem)
        except OSError as e:
            raise HubKeyError(f"cannot write {pub}: {e.strerror or e}") from e
        return signer


def load_hub_public(path: Path) -> DevicePublicKey:
    """The hub's public key a device pins (``[upload] hub_key``)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise HubKeyError(
            f"cannot read the hub key {path} ([upload] hub_key): {e.strerror or e}"
        ) from e
    try:
        return DevicePublicKey.from_pem(data, f"hub key {path}")
    except DeviceKeyError as e:
        raise HubKeyError(str(e)) from e


def pinned_hub_key(path: Path | None) -> DevicePublicKey | None:
    """``[upload] hub_key`` for the audit log, None when unset or unreadable (logged): the
    kiosk records on without it, only pruning (and upload, which checks it) waits."""
    if path is None:
        return None
    try:
        return load_hub_public(path)
    except HubKeyError as e:
        log.warning("audit log prunes nothing until the hub key is readable: %s", e)
        return None


def _verify(key: DevicePublicKey, signature: str, message: bytes) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    return key.verify(raw, message)


def _fields(value: Any, names: tuple[str, ...], what: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be an object")
    out = {}
    for name in names:
        text = value.get(name)
        if not isinstance(text, str) or not 0 < len(text) <= MAX_TEXT:
            raise ValueError(f"{what} {name} must be text of 1..{MAX_TEXT} characters")
        out[name] = text
    return out


def _seq(value: Mapping[str, Any], what: str) -> int:
    seq = value.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**63:
        raise ValueError(f"{what} seq must be an integer from 0 to 2^63-1")
    return seq
