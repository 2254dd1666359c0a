"""The trust high-water mark: the highest trust data this device has ever installed.

Whoever can re-point ``trust/current`` can point it back at an older version that is still
genuine (signed, listed as installed): its revocations and remote policy (a device disabled
since) are gone, yet every signature checks (issue 21). Signatures cannot tell old from
new, so the device remembers what it has seen: after every install sync writes the mark
(version, root version, publication time, TUF targets version and the hashes of the
version's signed targets and snapshot metadata) to ``<trust_dir>-high-water.json``, next to
the trust directory, not inside the one an attacker re-points. The loader refuses data
below it; sync re-points ``current`` at the highest installed version before any network
step, so a device cut off from the network is repaired too.

Order: (root version, trust version). A root rotation may legitimately bring a lower trust
version (recovery from a compromised online key, ``sync/client.py``); within one root the
version only grows. Written by sync only; an unreadable mark refuses loading until sync
rewrites it (failing closed: deleting or garbling it must not reopen the rollback). With
no mark at all (deleted, or a device not yet synced by this release), the TUF metadata sync
keeps stands in: the installed version whose signed manifest it names is the floor.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from appliance.core.errors import TrustDataError
from appliance.core.isotime import format_utc, instant_or_none
from appliance.platform.files import write_atomic
from appliance.trust.signed import (
    MAX_METADATA_BYTES,
    SIGNED,
    WIRE_MANIFEST,
    SignedTargets,
    file_sha256,
)

SUFFIX = "-high-water.json"
TUF_DIR = "tuf"  # sync's TUF metadata cache, beside the trust directory (SyncClient)
MAX_MARK_BYTES = 4096
FORMAT = 1


@dataclass(frozen=True, slots=True)
class Mark:
    """What identifies one installed version, in the order versions may follow each other."""

    root_version: int
    version: int
    published: float
    dir: str
    targets_version: int
    targets_sha256: str
    snapshot_sha256: str

    def key(self) -> tuple[int, int]:
        return self.root_version, self.version


def high_water_path(trust_dir: Path) -> Path:
    """``state/trust`` -> ``state/trust-high-water.json``: beside the trust directory."""
    trust_dir = Path(trust_dir)
    return trust_dir.parent / f"{trust_dir.name}{SUFFIX}"


def mark_of(version_dir: Path, signed: SignedTargets, wire: dict[str, Any]) -> Mark:
    """The mark of a version whose signed metadata (``signed``) and manifest were checked."""
    published = instant_or_none(wire.get("published"))
    if published is None:
        raise TrustDataError(f"{version_dir.name}: the signed manifest has no publication time")
    return Mark(
        root_version=signed.root_version,
        version=int(wire["version"]),
        published=published,
        dir=version_dir.name,
        targets_version=signed.targets_version,
        targets_sha256=file_sha256(version_dir / SIGNED / "targets.json")[1],
        snapshot_sha256=file_sha256(version_dir / SIGNED / "snapshot.json")[1],
    )


def below(mark: Mark, floor: Mark) -> str | None:
    """Why ``mark`` may not be loaded on a device whose high-water mark is ``floor``."""
    if mark.key() < floor.key():
        return (
            f"version {mark.version} (root {mark.root_version}) is older than version "
            f"{floor.version} (root {floor.root_version}), installed before (rollback)"
        )
    if mark.key() == floor.key() and (mark.targets_sha256, mark.snapshot_sha256) != (
        floor.targets_sha256,
        floor.snapshot_sha256,
    ):
        return (
            f"version {mark.version} does not carry the signed metadata recorded when "
            "it was installed"
        )
    if mark.published < floor.published:
        return (
            f"version {mark.version} was published before version {floor.version}, "
            "installed before (rollback)"
        )
    return None


def read_mark(trust_dir: Path) -> Mark | None:
    """The device's mark; None before sync first wrote one, ``TrustDataError`` when garbled.

    An empty file is the placeholder provisioning creates, owned by sync, so that no other
    user of the shared state folder can plant a mark first: it reads as "no mark yet".
    """
    path = high_water_path(trust_dir)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_MARK_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise TrustDataError(f"trust high-water mark {path} unreadable: {e.strerror or e}") from e
    if not raw:
        return None
    garbled = TrustDataError(f"trust high-water mark {path} is garbled: run 'appliance sync'")
    try:
        data: Any = json.loads(raw) if len(raw) <= MAX_MARK_BYTES else None
        published = instant_or_none(data["published"])
        fields = {name: data[name] for name in ("root_version", "version", "targets_version")}
        texts = {name: data[name] for name in ("dir", "targets_sha256", "snapshot_sha256")}
    except (ValueError, TypeError, KeyError):
        raise garbled from None
    if (
        published is None
        or data.get("format") != FORMAT
        or not all(type(v) is int for v in fields.values())
        or not all(isinstance(v, str) for v in texts.values())
    ):
        raise garbled
    return Mark(published=published, **fields, **texts)


def tuf_manifest_sha256(trust_dir: Path) -> str | None:
    """The SHA-256 that the TUF targets metadata sync keeps (``tuf/targets.json``, beside
    ``trust/``) gives the trust manifest: which version the device's metadata calls current.

    Read, not verified: it only picks which installed version to compare with, and that
    version counts only after its own signed metadata checks under the pinned root. A
    forged file can name another genuine installed version, never lower the floor.
    """
    path = Path(trust_dir).parent / TUF_DIR / "targets.json"
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_METADATA_BYTES + 1)
        digest = json.loads(raw)["signed"]["targets"][WIRE_MANIFEST]["hashes"]["sha256"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return digest if isinstance(digest, str) and len(raw) <= MAX_METADATA_BYTES else None


def write_mark(trust_dir: Path, mark: Mark) -> None:
    """Record ``mark`` (sync only, after it switched ``current``); ``OSError`` on failure."""
    data = {**asdict(mark), "format": FORMAT, "published": format_utc(mark.published)}
    write_atomic(
        high_water_path(trust_dir),
        json.dumps(data, indent=1, sort_keys=True).encode(),
        sync_folder=True,
    )
