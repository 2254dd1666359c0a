"""The publisher's role keys: Ed25519 in ``KEYDIR/<role>.pem`` (PKCS#8, mode 0600).

Signing happens on the publisher only; these keys never reach a device.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from securesystemslib.signer import CryptoSigner

from appliance.core.errors import SyncError


def generate_signer() -> CryptoSigner:
    return CryptoSigner.generate_ed25519()


def save_signer(signer: CryptoSigner, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(signer.private_bytes)
        f.flush()
        os.fsync(f.fileno())


def load_signer(keys: Path, role: str) -> CryptoSigner:
    path = keys / f"{role}.pem"
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as e:
        raise SyncError(f"cannot read {role} key {path}: {e.strerror or e}") from e
    except (ValueError, TypeError) as e:
        raise SyncError(f"{path} is not an unencrypted PEM private key") from e
    return CryptoSigner(private)
