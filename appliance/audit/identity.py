"""The device's own Ed25519 key: signs audit checkpoints and upload batches.

The private key lives in ``{secrets_dir}/device_ed25519.pem`` (0600, root-only); its public
half is copied to ``{state_dir}/device_ed25519.pub`` so unprivileged processes and
``appliance audit verify`` can check signatures. Provisioning (Ansible) runs
``appliance device keygen --config FILE`` and enrols the printed public key at the hub.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from appliance.config import Config
from appliance.core.errors import DeviceKeyError
from appliance.platform.files import write_atomic
from appliance.platform.secret_files import create_secret

log = logging.getLogger(__name__)

PRIVATE_NAME = "device_ed25519.pem"
PUBLIC_NAME = "device_ed25519.pub"


@dataclass(frozen=True)
class DevicePublicKey:
    key: ed25519.Ed25519PublicKey

    @property
    def pem(self) -> str:
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    @property
    def key_id(self) -> str:
        """First 16 hex digits of SHA-256 over the raw public key."""
        raw = self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return hashlib.sha256(raw).hexdigest()[:16]

    def verify(self, signature: bytes, message: bytes | bytearray) -> bool:
        try:
            self.key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    @classmethod
    def from_pem(cls, pem: bytes | str, where: str = "public key") -> DevicePublicKey:
        data = pem.encode() if isinstance(pem, str) else pem
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as e:
            raise DeviceKeyError(f"{where} is not a PEM public key") from e
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise DeviceKeyError(f"{where} is not an Ed25519 public key")
        return cls(key)


@dataclass(frozen=True)
class DeviceIdentity:
    device_id: str
    private_key: ed25519.Ed25519PrivateKey

    @property
    def public(self) -> DevicePublicKey:
        return DevicePublicKey(self.private_key.public_key())

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


def private_key_path(config: Config) -> Path:
    return config.paths.secrets_dir / PRIVATE_NAME


def public_key_path(config: Config) -> Path:
    return config.paths.state_dir / PUBLIC_NAME


def load_identity(config: Config) -> DeviceIdentity:
    path = private_key_path(config)
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise DeviceKeyError(
            f"no device key at {path}: run 'appliance device keygen --config FILE'"
        ) from e
    except OSError as e:
        raise DeviceKeyError(f"cannot read device key {path}: {e.strerror or e}") from e
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise DeviceKeyError(f"{path} is not an unencrypted PEM private key") from e
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise DeviceKeyError(f"{path} is not an Ed25519 key")
    return DeviceIdentity(config.device.id, key)


def ensure_identity(config: Config) -> tuple[DeviceIdentity, bool]:
    """Load the device key, creating it (0600) when absent; returns (identity, created)."""
    path = private_key_path(config)
    created = False
    if not path.exists():
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            created = create_secret(path, pem)  # False: another process made it first
        except OSError as e:
            raise DeviceKeyError(f"cannot create device key {path}: {e.strerror or e}") from e
    if created:
        log.warning("created a new device key at %s: enrol its public key at the hub", path)
    identity = load_identity(config)
    _write_public(config, identity.public)
    return identity, created


def load_public(config: Config) -> DevicePublicKey:
    """The device public key: from the private key when readable, else the state copy."""
    try:
        return load_identity(config).public
    except DeviceKeyError:
        path = public_key_path(config)
        try:
            return DevicePublicKey.from_pem(path.read_bytes(), str(path))
        except OSError as e:
            raise DeviceKeyError(
                f"no device key at {private_key_path(config)} nor public key at {path}"
            ) from e


def _write_public(config: Config, public: DevicePublicKey) -> None:
    path = public_key_path(config)
    pem = public.pem
    try:
        if path.exists() and path.read_text() == pem:
            return
        write_atomic(path, pem.encode(), mode=0o644, make_parents=True)
    except OSError as e:
        raise DeviceKeyError(f"cannot write device public key {path}: {e.strerror or e}") from e
