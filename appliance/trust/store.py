"""The installed trust store: versioned directories on disk, switched by one rename.

Layout (docs/trust-store-format.md)::

    trust/current -> v00000042          symlink, replaced atomically by rename
    trust/installed.json                versions sync installed (only those are loaded)
    trust/v00000042/signed/             the TUF metadata sync verified + signed manifest
    trust/v00000042/manifest.json       sync's bookkeeping (targets, root version)
    trust/v00000042/issuers.json        {"issuers": [...]} as in a trust source
    trust/v00000042/status/*.bin(.zz)   raw status-list bytes (mmap), and their signed form
    trust/v00000042/revoked/*.bin|.idx  sorted hash prefixes + bucket index, and deltas
    trust-high-water.json               beside trust/: the highest version ever installed

Loading checks the version against its signed metadata (``trust_signed``: signatures up
to the pinned root, every file's hash), refuses one below the high-water mark
(``high_water``: a genuine older version re-pointed to), and then maps files;
``CurrentTrust`` reloads when ``current`` points somewhere new, so the kiosk picks up new
data without a restart, never sees a moment without data, and never switches to a
version that fails its checks.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path
from typing import Any

from appliance.core.errors import TrustDataError
from appliance.core.isotime import parse_instant
from appliance.core.snapshot import TrustSnapshot
from appliance.platform.files import write_atomic
from appliance.trust.high_water import Mark, below, mark_of, read_mark, tuf_manifest_sha256
from appliance.trust.policy import parse_policy
from appliance.trust.revocation import HashSet, StatusList, read_deltas
from appliance.trust.signed import (
    SIGNED,
    WIRE_MANIFEST,
    check_file,
    check_index,
    check_inflated,
    file_sha256,
    read_signed_manifest,
    safe_name,
    verify_signed,
    wire_layout,
)
from appliance.trust.source import parse_issuers

log = logging.getLogger(__name__)

FORMAT = 1
CURRENT = "current"
MANIFEST = "manifest.json"
RECORD = "installed.json"
MAX_JSON_BYTES = 16 * 1024 * 1024
STAGING_PREFIX = ".staging-"
VERSION_DIR = re.compile(r"^v(\d{8,})$")


def load_trust_store(trust_dir: Path, root: Path | None = None) -> TrustSnapshot:
    """Load the version ``trust_dir/current`` points at, if sync installed it and it checks."""
    target = link_target(trust_dir)
    if target is None:
        raise TrustDataError(f"no trust data installed in {trust_dir}: run 'appliance sync'")
    if target not in installed_names(trust_dir):
        raise TrustDataError(f"trust/current points at {target}, which sync did not install")
    pinned = _pinned(root)
    floor = read_mark(trust_dir)
    snapshot, mark = _load_marked(trust_dir / target, pinned)
    if floor is None:
        floor = _tuf_floor(trust_dir, target, pinned)
    why = below(mark, floor) if floor is not None else None
    if why is not None:
        raise TrustDataError(
            f"trust/current points at {target}: {why}; refused until "
            "'appliance sync' points it back"
        )
    return snapshot


def _tuf_floor(trust_dir: Path, target: str, root: bytes | None) -> Mark | None:
    """With no high-water mark: the mark of the installed version that the TUF metadata
    sync keeps names as current, when that is not ``target`` (``high_water``)."""
    digest = tuf_manifest_sha256(trust_dir)
    if digest is None or _manifest_sha256(trust_dir / target) == digest:
        return None
    for name in sorted(installed_names(trust_dir) - {target}):
        if _manifest_sha256(trust_dir / name) == digest:
            try:
                return _load_marked(trust_dir / name, root)[1]
            except TrustDataError:
                return None
    return None


def _manifest_sha256(version_dir: Path) -> str | None:
    try:
        return file_sha256(version_dir / SIGNED / WIRE_MANIFEST)[1]
    except TrustDataError:
        return None


def load_version_dir(version_dir: Path, root: bytes | None = None) -> TrustSnapshot:
    """Load one version after checking it against the signed metadata stored with it.

    Signatures up to the pinned ``root`` (bytes), then every file's SHA-256 and length, the
    inflated status lists against their signed compressed form and the bucket indexes
    against their bases (docs/trust-store-format.md). ``TrustDataError`` on any mismatch.
    """
    return _load_marked(version_dir, root)[0]


def _load_marked(version_dir: Path, root: bytes | None) -> tuple[TrustSnapshot, Mark]:
    signed = verify_signed(version_dir / SIGNED, root)
    wire = read_signed_manifest(version_dir / SIGNED, signed)
    parts, layout = wire_layout(wire)
    for part in parts:
        path = version_dir / part.local
        if part.kind == "zlib":
            check_file(path.with_name(path.name + ".zz"), signed, part.target)
            check_inflated(path.with_name(path.name + ".zz"), path, part.max_length)
        else:
            check_file(path, signed, part.target)
    issuers = _read_json(version_dir / "issuers.json")
    if not isinstance(issuers, dict):
        raise TrustDataError(f"{version_dir}: issuers file is not an object")
    status_lists = {
        entry["uri"]: StatusList.from_file(version_dir / entry["file"], entry.get("bits"))
        for entry in layout["status_lists"]
    }
    revoked = layout["revoked"]
    snapshot = TrustSnapshot(
        keys=parse_issuers(issuers.get("issuers", [])),
        status_lists=status_lists,
        revoked_cti=_hash_set(version_dir, revoked["cti_sha256"]),
        revoked_licences=_hash_set(version_dir, revoked["licence_sha256"]),
        revoked_mdoc_ds=_hash_set(version_dir, revoked["mdoc_ds_sha256"]),
        policy=parse_policy(wire.get("policy", {})),
        published_at=_instant(wire.get("published"), "published"),
        version=wire["version"],
        expires_at=signed.expires,
    )
    return snapshot, mark_of(version_dir, signed, wire)


class CurrentTrust:
    """Callable giving the newest installed snapshot; cheap to call on every verification.

    Reloads (and re-checks) when ``current`` points somewhere new. A version that fails
    its checks, or that sync did not install, is refused: the last good snapshot stays in
    use and the refusal is kept for the status page (``link_fault``).
    """

    def __init__(self, trust_dir: Path, root: Path | None = None) -> None:
        self._trust_dir = trust_dir
        self._root = root
        self._lock = threading.Lock()
        self._target: str | None = None
        self._snapshot: TrustSnapshot | None = None

    def __call__(self) -> TrustSnapshot:
        target = link_target(self._trust_dir)
        if target is None:
            if self._snapshot is not None:
                return self._snapshot  # keep the last good data; link_fault reports it
            raise TrustDataError(
                f"no trust data installed in {self._trust_dir}: run 'appliance sync'"
            )
        if target != self._target:
            with self._lock:
                if target != self._target:
                    self._switch(target)
        assert self._snapshot is not None
        return self._snapshot

    def _switch(self, target: str) -> None:
        try:
            snapshot = load_trust_store(self._trust_dir, self._root)
            if self._snapshot is not None and _older(snapshot, self._snapshot):
                raise TrustDataError(
                    f"{target} holds version {snapshot.version}, older than the loaded "
                    f"{self._snapshot.version}"
                )
        except TrustDataError as e:
            _REFUSED[str(self._trust_dir)] = (target, str(e))
            if self._snapshot is None:
                raise
            log.error(
                "trust data %s refused, keeping version %s: %s", target, self._snapshot.version, e
            )
            self._target = target
            return
        _REFUSED.pop(str(self._trust_dir), None)
        self._snapshot, self._target = snapshot, target
        log.info("trust data version %s loaded", snapshot.version)


# Refusals by CurrentTrust in this process, per trust directory: (link target, reason).
_REFUSED: dict[str, tuple[str, str]] = {}


def _older(new: TrustSnapshot, loaded: TrustSnapshot) -> bool:
    return (new.version or 0) < (loaded.version or 0)


def link_fault(trust_dir: Path) -> str | None:
    """Why ``current`` is not usable (missing, dangling, not installed by sync, refused
    here), or None. Cheap: one readlink, one stat, one small JSON read."""
    target = link_target(trust_dir)
    if target is None:
        if (trust_dir / CURRENT).is_symlink() or (trust_dir / CURRENT).exists():
            return "trust link trust/current is not a link to a version"
        if installed_names(trust_dir):
            return "trust link trust/current is missing"
        return None  # nothing installed yet: the loader says so
    if not (trust_dir / target).is_dir():
        return f"trust link trust/current points at {target}, which is missing"
    if target not in installed_names(trust_dir):
        return f"trust link trust/current points at {target}, which sync did not install"
    try:
        floor = read_mark(trust_dir)
    except TrustDataError as e:
        return str(e)
    if floor is not None and target != floor.dir and _number(target) < floor.version:
        return (
            f"trust link trust/current points at {target}, older than {floor.dir} "
            "installed before (rollback refused): run 'appliance sync'"
        )
    refused = _REFUSED.get(str(trust_dir))
    if refused is not None and refused[0] == target:
        return f"trust data {target} refused: {refused[1]}"
    return None


def link_target(trust_dir: Path) -> str | None:
    """The version name ``current`` points at, or None when it is missing or no version."""
    try:
        target = str((trust_dir / CURRENT).readlink())
    except OSError:
        return None
    return target if VERSION_DIR.match(target) else None


def _number(name: str) -> int:
    match = VERSION_DIR.match(name)
    return int(match.group(1)) if match else -1


def _pinned(root: Path | None) -> bytes | None:
    if root is None:
        return None
    try:
        return Path(root).read_bytes()
    except OSError as e:
        raise TrustDataError(f"cannot read the pinned root {root}: {e.strerror or e}") from e


# -- The record of installed versions (written by sync only) ------------------------------


def installed_record(trust_dir: Path) -> list[dict[str, Any]]:
    """Versions sync installed, oldest first: ``{"dir": "v00000042", "version": 42}``."""
    try:
        data = _read_json(trust_dir / RECORD)
    except TrustDataError:
        return []
    entries = data.get("installed") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return []
    return [
        e
        for e in entries
        if isinstance(e, dict)
        and isinstance(e.get("dir"), str)
        and VERSION_DIR.match(e["dir"])
        and isinstance(e.get("version"), int)
    ]


def installed_names(trust_dir: Path) -> set[str]:
    return {e["dir"] for e in installed_record(trust_dir)}


def write_record(trust_dir: Path, entries: list[dict[str, Any]]) -> None:
    data = json.dumps({"format": FORMAT, "installed": entries}, indent=1, sort_keys=True)
    write_atomic(trust_dir / RECORD, data.encode(), sync_folder=True)


def _hash_set(version_dir: Path, entry: dict[str, Any]) -> HashSet:
    deltas = [version_dir / d for d in entry["deltas"]]
    if entry["base"] is None:
        return HashSet(delta=read_deltas(deltas))
    base = version_dir / entry["base"]
    _check_index_of(base)
    return HashSet.from_files(base, deltas)


def _check_index_of(base: Path) -> None:
    """The ``.idx`` is built on the device, so it is checked against the signed base
    (in bounded reads: see ``check_index``)."""
    check_index(base, base.with_suffix(".idx"))


def _name(value: Any, where: str) -> str:
    return safe_name(value, where)


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
    try:
        return parse_instant(value)
    except ValueError as e:
        raise TrustDataError(f"manifest {where}: {e}") from e


# -- Where versions are (shared by the loader and sync's installer) -----------------------


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
