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
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from appliance.errors import TrustDataError
from appliance.revocation import HashSet, StatusList
from appliance.trust import TrustSnapshot, parse_issuers, parse_policy

log = logging.getLogger(__name__)

FORMAT = 1
CURRENT = "current"
MANIFEST = "manifest.json"
MAX_JSON_BYTES = 16 * 1024 * 1024


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
