"""The ISO 18013-5 Annex D vectors from the shared data (never copied into the repository)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec


class AnnexD:
    """Read access to ``../shared/data/mdl-annexd``: ``annexd.bytes("device_response")``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        return self.root / name

    def bytes(self, name: str) -> bytes:
        return bytes.fromhex((self.root / f"{name}.hex").read_text().strip())

    def private_key(self, name: str) -> ec.EllipticCurvePrivateKey:
        d = int.from_bytes(self.bytes(f"{name}_d"), "big")
        return ec.derive_private_key(d, ec.SECP256R1())

    def public_key(self, name: str) -> ec.EllipticCurvePublicKey:
        x, y = self.bytes(f"{name}_x"), self.bytes(f"{name}_y")
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + x + y)


def annexd_from(shared_data: Path) -> AnnexD:
    root = shared_data / "mdl-annexd"
    if not root.is_dir():
        pytest.skip(f"Annex D vectors not found at {root}")
    return AnnexD(root)
