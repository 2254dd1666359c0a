"""The installed trust store: versioned directories on disk, switched by one rename.

Layout (docs/trust-store-format.md)::

    trust/current -> v00000042          symlink, replaced atomically by rename
    trust/v00000042/manifest.json       version, publication time, policy, file names
    trust/v00000042/issuers.json        {"issuers": [...]} as in a trust source
    trust/v00000042/status/*.bin        raw status-list bytes (mmap)
    trust/v00000042/revoked/*.bin|.idx  sorted hash prefixes + bucket index, and deltas

Loading maps files instead of parsing them, so even 100 million status entries load in
constant time; ``CurrentTrust`` reloads when ``current`` points somewhere new, so the
kiosk picks up new data without a restart and never sees a moment without data.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from appliance.errors import TrustDataError
from appliance.revocation import HashSet, StatusList, build_bucket_index
from appliance.trust import TrustSnapshot, parse_issuers, parse_policy

log = logging.getLogger(__name__)

FORMAT = 1
CURRENT = "current"
MANIFEST = "manifest.json"
MAX_JSON_BYTES = 16 * 1024 * 1024
STAGING_PREFIX = ".staging-"
_VERSION_DIR = re.compile(r"^v(\d{8,})$")


def load_trust_store(trust_dir: Path) -> TrustSnapshot:
    """Load the version ``trust_dir/current`` points at."""
    current = trust_dir / CURRENT
    if not current.exists():
        raise TrustDataError(f"no trust data installed in {trust_dir}: run 'appliance sync'")
    return load_version_dir(current.resolve())


def load_version_dir(version_dir: Path) -> TrustSnapshot:
    manifest = _read_json(version_dir / MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise TrustDataError(f"{version_dir / MANIFEST}: not a format-{FORMAT} trust manifest")
    issuers = _read_json(version_dir / _name(manifest.get("issuers"), "issuers"))
    if not isinstance(issuers, dict):
        raise TrustDataError(f"{version_dir}: issuers file is not an object")
    status_lists = {}
    for i, entry in enumerate(manifest.get("status_lists", [])):
        if not isinstance(entry, dict) or not isinstance(entry.get("uri"), str):
            raise TrustDataError(f"manifest status_lists[{i}] is invalid")
        path = version_dir / _name(entry.get("file"), f"status_lists[{i}].file")
        status_lists[entry["uri"]] = StatusList.from_file(path, entry.get("bits"))
    revoked = manifest.get("revoked", {})
    return TrustSnapshot(
        keys=parse_issuers(issuers.get("issuers", [])),
        status_lists=status_lists,
        revoked_cti=_hash_set(version_dir, revoked.get("cti_sha256"), "cti_sha256"),
        revoked_licences=_hash_set(version_dir, revoked.get("licence_sha256"), "licence_sha256"),
        policy=parse_policy(manifest.get("policy", {})),
        published_at=_instant(manifest.get("published"), "published"),
        version=manifest.get("version") if isinstance(manifest.get("version"), int) else None,
        expires_at=_instant(manifest.get("expires"), "expires")
        if manifest.get("expires") is not None else None,
    )


class CurrentTrust:
    """Callable giving the newest installed snapshot; cheap to call on every verification."""

    def __init__(self, trust_dir: Path) -> None:
        self._trust_dir = trust_dir
        self._lock = threading.Lock()
        self._target: str | None = None
        self._snapshot: TrustSnapshot | None = None

    def __call__(self) -> TrustSnapshot:
        try:
            target = str((self._trust_dir / CURRENT).readlink())
        except OSError as e:
            if self._snapshot is not None:
                return self._snapshot  # keep the last good data
            raise TrustDataError(
                f"no trust data installed in {self._trust_dir}: run 'appliance sync'"
            ) from e
        if target != self._target:
            with self._lock:
                if target != self._target:
                    try:
                        self._snapshot = load_trust_store(self._trust_dir)
                        self._target = target
                        log.info("trust data version %s loaded", self._snapshot.version)
                    except TrustDataError:
                        if self._snapshot is None:
                            raise
                        log.exception("new trust data unreadable; keeping the last good")
                        self._target = target
        assert self._snapshot is not None
        return self._snapshot


def _hash_set(version_dir: Path, entry: Any, where: str) -> HashSet:
    if entry is None:
        return HashSet()
    if not isinstance(entry, dict):
        raise TrustDataError(f"manifest revoked.{where} is invalid")
    deltas = [version_dir / _name(d, f"revoked.{where}.deltas") for d in entry.get("deltas", [])]
    if entry.get("base") is None:
        return HashSet(delta=[p.read_bytes()[i:i + 16] for p in deltas
                              for i in range(0, p.stat().st_size, 16)])
    return HashSet.from_files(version_dir / _name(entry["base"], f"revoked.{where}.base"), deltas)


def _name(value: Any, where: str) -> str:
    """A relative file name inside the version directory (no escaping it)."""
    if not isinstance(value, str) or not value or value.startswith("/") or ".." in value:
        raise TrustDataError(f"manifest {where} is not a safe relative file name")
    return value


def _read_json(path: Path) -> Any:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_JSON_BYTES + 1)
    except OSError as e:
        raise TrustDataError(f"cannot read {path}: {e.strerror or e}") from e
    if len(raw) > MAX_JSON_BYTES:
        raise TrustDataError(f"{path} is too large")
    try:
        return json.loads(raw)
    except ValueError as e:
        raise TrustDataError(f"{path} is not valid JSON") from e


def _instant(value: Any, where: str) -> float:
    if not isinstance(value, str):
        raise TrustDataError(f"manifest {where} must be an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise TrustDataError(f"manifest {where} is not an ISO 8601 time") from e
    if parsed.tzinfo is None:
        raise TrustDataError(f"manifest {where} needs a time zone")
    return parsed.timestamp()


# -- Writing: a new version is staged beside the current one, then switched by rename. --


def _checkpoint(step: str) -> None:
    """Called between the steps of an install; tests replace it to cut the power there."""


def version_dir_name(version: int) -> str:
    return f"v{version:08d}"


def current_version_dir(trust_dir: Path) -> Path | None:
    """The directory ``current`` points at, or None when nothing is installed."""
    try:
        target = str((trust_dir / CURRENT).readlink())
    except OSError:
        return None
    path = trust_dir / target
    return path if path.is_dir() else None


def read_manifest(version_dir: Path) -> dict[str, Any]:
    manifest = _read_json(version_dir / MANIFEST)
    if not isinstance(manifest, dict):
        raise TrustDataError(f"{version_dir / MANIFEST} is not an object")
    return manifest


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StagedVersion:
    """A version directory being written beside ``current``; nothing reads it until commit.

    Files are created under a hidden staging directory, hard-linked from the current
    version when unchanged (installed files are never modified in place), fsynced, then
    the directory is renamed to ``vNNNNNNNN`` and a new ``current`` symlink replaces the
    old one by rename. A power cut at any instant leaves ``current`` at the old or the
    new version, never at a partial one.
    """

    def __init__(self, trust_dir: Path, version: int) -> None:
        trust_dir.mkdir(parents=True, exist_ok=True)
        self.trust_dir = trust_dir
        self.version = version
        self.name = version_dir_name(version)
        self.path = trust_dir / f"{STAGING_PREFIX}{self.name}-{secrets.token_hex(4)}"
        self.path.mkdir()

    def file(self, rel: str) -> Path:
        """Path for a new file ``rel`` inside the staged version (parents created)."""
        path = self.path / _name(rel, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def link_from(self, source: Path, rel: str) -> None:
        """Reuse an installed (immutable) file: hard link, or copy where links fail."""
        dest = self.file(rel)
        try:
            os.link(source, dest)
        except OSError:
            shutil.copyfile(source, dest)
        _checkpoint(f"linked {rel}")

    def note(self, what: str) -> None:
        """Mark a step of an install (a file written by the caller)."""
        _checkpoint(what)

    def write_bytes(self, rel: str, data: bytes) -> None:
        self.file(rel).write_bytes(data)
        _checkpoint(f"wrote {rel}")

    def write_index(self, base_rel: str) -> None:
        """Build the bucket index (``.idx``) of a sorted hash base written here."""
        base = self.file(base_rel)
        idx = base.with_suffix(".idx")
        with base.open("rb") as f:
            size = f.seek(0, 2)
            if size:
                import mmap

                with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                    idx.write_bytes(build_bucket_index(m))
            else:
                idx.write_bytes(build_bucket_index(b""))
        _checkpoint(f"indexed {base_rel}")

    def commit(self, manifest: dict[str, Any],
               validate: Callable[[Path], object] | None = load_version_dir) -> Path:
        """Write the manifest, make everything durable, and switch ``current``."""
        data = json.dumps(manifest, indent=1, sort_keys=True).encode()
        (self.path / MANIFEST).write_bytes(data)
        _checkpoint("wrote manifest")
        if validate is not None:
            validate(self.path)  # refuse data the verifier could not load
        for root, dirs, files in os.walk(self.path):
            for name in files:
                fd = os.open(Path(root) / name, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            for name in dirs:
                fsync_dir(Path(root) / name)
        fsync_dir(self.path)
        _checkpoint("synced")
        final = self.trust_dir / self.name
        current = current_version_dir(self.trust_dir)
        if final.exists():
            if current is not None and current.name == final.name:
                raise TrustDataError(f"version {self.version} is already installed")
            shutil.rmtree(final)  # complete but never switched to: an interrupted install
        self.path.rename(final)
        fsync_dir(self.trust_dir)
        _checkpoint("renamed")
        link = self.trust_dir / f".current-{secrets.token_hex(4)}"
        link.symlink_to(self.name)
        _checkpoint("linked")
        link.replace(self.trust_dir / CURRENT)
        _checkpoint("switched")
        fsync_dir(self.trust_dir)
        return final

    def abort(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def prune_versions(trust_dir: Path, keep: int = 2) -> list[str]:
    """Remove leftovers of interrupted installs and all but ``keep`` versions (current kept).

    Only one installer may run at a time (the sync client holds a lock).
    """
    current = current_version_dir(trust_dir)
    removed = []
    versions = []
    for entry in trust_dir.iterdir() if trust_dir.is_dir() else ():
        if entry.name.startswith((STAGING_PREFIX, ".current-")):
            if entry.is_symlink() or entry.is_file():
                entry.unlink()
            else:
                shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
        elif _VERSION_DIR.match(entry.name) and entry.is_dir():
            versions.append(entry)
    versions.sort(key=lambda p: int(p.name[1:]), reverse=True)
    kept = {current.name} if current is not None else set()
    for v in versions:
        if len(kept) < max(keep, 1) or v.name in kept:
            kept.add(v.name)
            continue
        shutil.rmtree(v, ignore_errors=True)
        removed.append(v.name)
    if removed:
        fsync_dir(trust_dir)
    return removed
