"""The authority's publisher: a trust source in, a signed TUF repository of static files out.

Layout of the repository directory (serve it with any web server or CDN)::

    metadata/1.root.json ... N.root.json   every root version (devices walk the chain)
    metadata/timestamp.json                the only file rewritten in place (by rename)
    metadata/N.snapshot.json, N.targets.json
    targets/<sha256>.<name>                content-addressed target files

Consistent snapshots: every file but ``timestamp.json`` is immutable, so a device that
reads while a new version is published still sees one coherent version. Each part of the
trust data is its own target, so a change fetches only what changed (docs/adr/0006):

    manifest.json                          version, publication time, policy, part names
    issuers.json                           {"issuers": [...]} as in the trust source
    status/<sha256(uri)[:32]>.bin.zz       each status list, raw bytes zlib-compressed
    revoked/<set>/base-<gen>.bin           sorted 16-byte hash prefixes (compacted base)
    revoked/<set>/delta-<gen>-<seq>.bin    sorted prefixes added since the base, append-only

Revocations have random hashes, so any sharding by hash would touch every shard; instead
new revocations go into a small new delta file and the base is compacted only when the
deltas grow past a threshold or an entry is removed.

Keys live in KEYDIR as ``<role>.pem`` (Ed25519, PKCS#8, mode 0600); ``rotate`` moves a
replaced key to ``KEYDIR/retired/``. Signing happens on the publisher only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import shutil
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from securesystemslib.exceptions import StorageError
from tuf.api.metadata import (
    SPECIFICATION_VERSION,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization import DeserializationError

from appliance.core.errors import SyncError
from appliance.platform.files import write_atomic
from appliance_sync.publisher_keys import generate_signer, load_signer, save_signer
from appliance_sync.trust_parts import DIGEST, HASH_SETS, TrustParts, status_id

log = logging.getLogger(__name__)

ROLES = (Root.type, Targets.type, Snapshot.type, Timestamp.type)
MANIFEST_TARGET = "manifest.json"
ISSUERS_TARGET = "issuers.json"
WIRE_FORMAT = 1
DEFAULT_EXPIRES_HOURS = 72.0
DEFAULT_ROOT_EXPIRES_DAYS = 365.0
MAX_DELTA_FILES = 64
MAX_DELTA_ENTRIES = 100_000  # devices hold deltas in memory: about 10 MB at most
MIN_DELTA_ENTRIES = 1024
KEEP_VERSIONS = 5
SPEC_VERSION = ".".join(SPECIFICATION_VERSION)


# -- Repository files ---------------------------------------------------------------------


def _write_atomic(path: Path, data: bytes) -> None:
    write_atomic(path, data, make_parents=True)


def _expiry(hours: float, now: datetime) -> datetime:
    return (now + timedelta(hours=hours)).replace(microsecond=0)


class Repository:
    """Reads and writes the repository directory; all state lives in its files."""

    def __init__(self, repo: Path, keys: Path) -> None:
        self.repo = repo
        self.keys = keys
        self.metadata_dir = repo / "metadata"
        self.targets_dir = repo / "targets"

    # reading

    def root_version(self) -> int:
        versions = [
            int(p.name.split(".")[0])
            for p in self.metadata_dir.glob("*.root.json")
            if p.name.split(".")[0].isdigit()
        ]
        if not versions:
            raise SyncError(f"{self.repo} is not a repository: run 'appliance publish init'")
        return max(versions)

    def root(self) -> Metadata[Root]:
        return Metadata.from_file(str(self.metadata_dir / f"{self.root_version()}.root.json"))

    def timestamp(self) -> Metadata[Timestamp]:
        return Metadata.from_file(str(self.metadata_dir / "timestamp.json"))

    def snapshot(self) -> Metadata[Snapshot]:
        version = self.timestamp().signed.snapshot_meta.version
        return Metadata.from_file(str(self.metadata_dir / f"{version}.snapshot.json"))

    def targets(self) -> Metadata[Targets]:
        version = self.snapshot().signed.meta["targets.json"].version
        return Metadata.from_file(str(self.metadata_dir / f"{version}.targets.json"))

    def target_path(self, info: TargetFile) -> Path:
        dirname, _, basename = info.path.rpartition("/")
        name = f"{info.hashes['sha256']}.{basename}"
        return self.targets_dir / dirname / name if dirname else self.targets_dir / name

    def read_target(self, info: TargetFile) -> bytes:
        return self.target_path(info).read_bytes()

    def published(self) -> bool:
        return (self.metadata_dir / "timestamp.json").exists()

    # writing

    def add_target(self, path: str, data: bytes) -> TargetFile:
        info = TargetFile(len(data), {"sha256": hashlib.sha256(data).hexdigest()}, path)
        dest = self.target_path(info)
        if not dest.exists():
            _write_atomic(dest, data)
        return info

    def write_root(self, root: Metadata[Root]) -> None:
        data = root.to_bytes()
        _write_atomic(self.metadata_dir / f"{root.signed.version}.root.json", data)
        _write_atomic(self.metadata_dir / "root.json", data)

    def publish_targets(
        self, targets: dict[str, TargetFile], expires_hours: float, now: datetime
    ) -> int:
        """Sign new targets, snapshot and timestamp (in that order); returns the version."""
        if self.published():
            version, snap_version, ts_version = (
                self.targets().signed.version + 1,
                self.snapshot().signed.version + 1,
                self.timestamp().signed.version + 1,
            )
        else:
            version = snap_version = ts_version = 1
        expires = _expiry(expires_hours, now)
        tgt = Metadata(
            Targets(
                version=version, spec_version=SPEC_VERSION, expires=expires, targets=dict(targets)
            )
        )
        tgt.sign(load_signer(self.keys, Targets.type))
        tgt_bytes = tgt.to_bytes()
        _write_atomic(self.metadata_dir / f"{version}.targets.json", tgt_bytes)
        snap = Metadata(
            Snapshot(
                version=snap_version,
                spec_version=SPEC_VERSION,
                expires=expires,
                meta={
                    "targets.json": MetaFile(
                        version, len(tgt_bytes), {"sha256": hashlib.sha256(tgt_bytes).hexdigest()}
                    )
                },
            )
        )
        snap.sign(load_signer(self.keys, Snapshot.type))
        snap_bytes = snap.to_bytes()
        _write_atomic(self.metadata_dir / f"{snap_version}.snapshot.json", snap_bytes)
        ts = Metadata(
            Timestamp(
                version=ts_version,
                spec_version=SPEC_VERSION,
                expires=expires,
                snapshot_meta=MetaFile(
                    snap_version,
                    len(snap_bytes),
                    {"sha256": hashlib.sha256(snap_bytes).hexdigest()},
                ),
            )
        )
        ts.sign(load_signer(self.keys, Timestamp.type))
        _write_atomic(self.metadata_dir / "timestamp.json", ts.to_bytes())
        return version

    def prune(self, keep: int = KEEP_VERSIONS) -> int:
        """Delete targets and metadata older than the newest ``keep`` versions; never roots."""
        newest = self.targets().signed.version
        kept: set[Path] = set()
        for v in range(max(1, newest - keep + 1), newest + 1):
            try:
                t = Metadata[Targets].from_file(str(self.metadata_dir / f"{v}.targets.json"))
            except (StorageError, DeserializationError):  # pruned or never written
                continue
            kept.update(self.target_path(info) for info in t.signed.targets.values())
        removed = 0
        for p in self.targets_dir.rglob("*"):
            if p.is_file() and p not in kept:
                p.unlink()
                removed += 1
        snap_newest = self.timestamp().signed.snapshot_meta.version
        for p in self.metadata_dir.glob("*.json"):
            num, _, role = p.name.partition(".")
            if num.isdigit() and (
                (role == "targets.json" and int(num) <= newest - keep)
                or (role == "snapshot.json" and int(num) <= snap_newest - keep)
            ):
                p.unlink()
                removed += 1
        return removed


# -- Commands: init, update, rotate -------------------------------------------------------


def init_repository(
    repo: Path,
    keys: Path,
    root_out: Path,
    *,
    expires_hours: float = DEFAULT_EXPIRES_HOURS,
    root_expires_days: float = DEFAULT_ROOT_EXPIRES_DAYS,
    now: datetime | None = None,
) -> int:
    """New keys, root v1 and an empty first version; writes the root devices pin."""
    now = now or datetime.now(UTC)
    if (repo / "metadata").exists() and any((repo / "metadata").iterdir()):
        raise SyncError(f"{repo} already holds a repository")
    for role in ROLES:
        if (keys / f"{role}.pem").exists():
            raise SyncError(f"{keys / (role + '.pem')} exists: refusing to overwrite a key")
    root = Root(expires=_expiry(root_expires_days * 24, now), consistent_snapshot=True)
    for role in ROLES:
        signer = generate_signer()
        save_signer(signer, keys / f"{role}.pem")
        root.add_key(signer.public_key, role)
    meta = Metadata(root)
    meta.sign(load_signer(keys, Root.type))
    r = Repository(repo, keys)
    r.write_root(meta)
    _write_atomic(root_out, meta.to_bytes())
    return update_repository(repo, keys, TrustParts(), expires_hours=expires_hours, now=now)


def update_repository(
    repo: Path,
    keys: Path,
    parts: TrustParts,
    *,
    expires_hours: float = DEFAULT_EXPIRES_HOURS,
    now: datetime | None = None,
    keep: int = KEEP_VERSIONS,
) -> int:
    """Publish ``parts`` as the next version; returns the new version number."""
    now = now or datetime.now(UTC)
    r = Repository(repo, keys)
    r.root_version()  # a repository at all?
    old_targets: dict[str, TargetFile] = {}
    old_manifest = None
    if r.published():
        old_targets = dict(r.targets().signed.targets)
        old_manifest = json.loads(r.read_target(old_targets[MANIFEST_TARGET]))
    next_version = (r.targets().signed.version + 1) if old_manifest is not None else 1
    targets: dict[str, TargetFile] = {}

    def add(path: str, data: bytes) -> str:
        targets[path] = r.add_target(path, data)
        return path

    manifest: dict[str, Any] = {
        "format": WIRE_FORMAT,
        "version": next_version,
        "published": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "policy": parts.policy,
        "issuers": add(
            ISSUERS_TARGET,
            json.dumps({"issuers": parts.issuers}, indent=1, sort_keys=True).encode(),
        ),
        "status_lists": [],
        "revoked": {},
    }
    for uri, bits, raw in parts.status_lists:
        path = add(f"status/{status_id(uri)}.bin.zz", zlib.compress(raw, 9))
        manifest["status_lists"].append(
            {"uri": uri, "bits": bits, "target": path, "length": len(raw)}
        )
    for name in HASH_SETS:
        previous = (old_manifest or {}).get("revoked", {}).get(name)
        entry, files = _plan_hash_set(
            name, previous, parts.revoked.get(name), lambda p: r.read_target(old_targets[p])
        )
        for path in _set_targets(entry):
            if path in files:
                add(path, files[path])
            else:
                targets[path] = old_targets[path]
        manifest["revoked"][name] = entry
    add(MANIFEST_TARGET, json.dumps(manifest, indent=1, sort_keys=True).encode())
    version = r.publish_targets(targets, expires_hours, now)
    r.prune(keep)
    log.info("published version %d", version)
    return version


def _set_targets(entry: dict[str, Any]) -> list[str]:
    out = [entry["base"]["target"]] if entry.get("base") else []
    return out + [d["target"] for d in entry.get("deltas", [])]


def _plan_hash_set(
    name: str, previous: dict[str, Any] | None, new: np.ndarray | None, read: Any
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The set's manifest entry and the new files: one more delta, or a compacted base."""
    new = np.empty(0, dtype=DIGEST) if new is None else new
    if previous is not None:
        chunks = [np.frombuffer(read(p), dtype=DIGEST) for p in _set_targets(previous)]
        old = np.unique(np.concatenate(chunks)) if chunks else np.empty(0, dtype=DIGEST)
        removed = np.setdiff1d(old, new, assume_unique=True)
        added = np.setdiff1d(new, old, assume_unique=True)
        if not len(removed) and not len(added):
            return previous, {}
        deltas = list(previous.get("deltas", []))
        base_count = previous["base"]["count"] if previous.get("base") else 0
        delta_total = sum(d["count"] for d in deltas) + len(added)
        limit = max(MIN_DELTA_ENTRIES, min(base_count // 20, MAX_DELTA_ENTRIES))
        generation = previous["generation"]
        if not len(removed) and delta_total <= limit and len(deltas) < MAX_DELTA_FILES:
            path = f"revoked/{name}/delta-{generation:06d}-{len(deltas) + 1:04d}.bin"
            deltas.append({"target": path, "count": len(added)})
            return (
                {"generation": generation, "base": previous.get("base"), "deltas": deltas},
                {path: np.sort(added).tobytes()},
            )
        generation += 1
    else:
        generation = 1
    if not len(new):
        return {"generation": generation, "base": None, "deltas": []}, {}
    path = f"revoked/{name}/base-{generation:06d}.bin"
    return (
        {"generation": generation, "base": {"target": path, "count": len(new)}, "deltas": []},
        {path: new.tobytes()},
    )


def rotate_key(
    repo: Path,
    keys: Path,
    role: str,
    *,
    root_out: Path | None = None,
    expires_hours: float = DEFAULT_EXPIRES_HOURS,
    root_expires_days: float = DEFAULT_ROOT_EXPIRES_DAYS,
    now: datetime | None = None,
) -> int:
    """Replace ``role``'s key: new root version signed by the old and new root keys,
    then every online role re-signed. Returns the new root version."""
    if role not in ROLES:
        raise SyncError(f"role must be one of {', '.join(ROLES)}")
    now = now or datetime.now(UTC)
    r = Repository(repo, keys)
    root = r.root()
    old_root_signer = load_signer(keys, Root.type)
    new_signer = generate_signer()
    for keyid in list(root.signed.roles[role].keyids):
        root.signed.revoke_key(keyid, role)
    root.signed.add_key(new_signer.public_key, role)
    root.signed.version += 1
    root.signed.expires = _expiry(root_expires_days * 24, now)
    root.signatures.clear()
    retired = keys / "retired"
    retired.mkdir(parents=True, exist_ok=True)
    old_path = keys / f"{role}.pem"
    shutil.copyfile(old_path, retired / f"{role}-{now.strftime('%Y%m%dT%H%M%S')}.pem")
    save_signer(new_signer, old_path)
    root.sign(old_root_signer, append=True)  # the previous root's threshold
    if role == Root.type:
        root.sign(new_signer, append=True)  # and the new root's
    r.write_root(root)
    if root_out is not None:
        _write_atomic(root_out, root.to_bytes())
    r.publish_targets(dict(r.targets().signed.targets), expires_hours, now)
    return root.signed.version


def root_fingerprint(root_bytes: bytes) -> str:
    return base64.b32encode(hashlib.sha256(root_bytes).digest()[:10]).decode().lower()
