"""Installing a trust version (sync only): staged beside ``current``, switched by one rename.

The loader's side is ``appliance.trust.store``; this is the writer's: a version is written
under a hidden staging directory, made durable, renamed into place and recorded, then
``current`` is re-pointed by rename; old versions are pruned. ``_checkpoint`` marks every
step so tests can cut the power between any two.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.core.errors import TrustDataError
from appliance.platform.files import fsync_dir
from appliance.trust.revocation import index_file
from appliance.trust.signed import safe_name
from appliance.trust.store import (
    CURRENT,
    MANIFEST,
    RECORD,
    STAGING_PREFIX,
    VERSION_DIR,
    current_version_dir,
    installed_record,
    link_target,
    load_version_dir,
    version_dir_name,
    write_record,
)

log = logging.getLogger(__name__)


def _checkpoint(step: str) -> None:
    """Called between the steps of an install; tests replace it to cut the power there."""


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
        path = self.path / safe_name(rel, rel)
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
        """Build the bucket index (``.idx``) of a sorted hash base written here.

        Read in fixed-size chunks, never mapped whole: a full sync stays within its
        memory budget whatever the size of the base (issue 14).
        """
        base = self.file(base_rel)
        base.with_suffix(".idx").write_bytes(index_file(base))
        _checkpoint(f"indexed {base_rel}")

    def commit(
        self, manifest: dict[str, Any], validate: Callable[[Path], object] | None = load_version_dir
    ) -> Path:
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
        record = [e for e in installed_record(self.trust_dir) if e["dir"] != self.name]
        write_record(self.trust_dir, [*record, {"dir": self.name, "version": self.version}])
        _checkpoint("recorded")
        switch_current(self.trust_dir, self.name)
        return final

    def abort(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def switch_current(trust_dir: Path, name: str) -> None:
    """Point ``current`` at the version ``name`` by one rename (then fsync ``trust_dir``)."""
    link = trust_dir / f".current-{secrets.token_hex(4)}"
    link.symlink_to(name)
    _checkpoint("linked")
    link.replace(trust_dir / CURRENT)
    _checkpoint("switched")
    fsync_dir(trust_dir)


def prune_versions(
    trust_dir: Path, keep: int = 2, genuine: Callable[[Path], bool] | None = None
) -> list[str]:
    """Remove leftovers of interrupted installs and all but ``keep`` installed versions.

    Only versions in the record that pass ``genuine`` (sync passes a signature check under
    the pinned root) count as installed: of those, the ``keep`` most recently installed
    and the one ``current`` points at are kept. Anything else is never deleted, only
    dropped from the record (so the kiosk refuses it) and logged. One installer at a time
    (the sync client holds a lock).
    """
    removed = []
    for entry in trust_dir.iterdir() if trust_dir.is_dir() else ():
        if entry.name.startswith((STAGING_PREFIX, ".current-", f".{RECORD}.")):
            if entry.is_symlink() or entry.is_file():
                entry.unlink()
            else:
                shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    listed = installed_record(trust_dir)
    record = [
        e
        for e in listed
        if (trust_dir / e["dir"]).is_dir() and (genuine is None or genuine(trust_dir / e["dir"]))
    ]
    recorded = {e["dir"] for e in record}
    for entry in trust_dir.iterdir() if trust_dir.is_dir() else ():
        if VERSION_DIR.match(entry.name) and entry.name not in recorded:
            log.warning("%s in %s was not installed by sync; left alone", entry.name, trust_dir)
    current = link_target(trust_dir)
    kept = {e["dir"] for e in record[-max(keep, 1) :]}  # the newest installs
    if current is not None and current in recorded:
        kept.add(current)
    for e in record:
        if e["dir"] not in kept:
            shutil.rmtree(trust_dir / e["dir"], ignore_errors=True)
            removed.append(e["dir"])
    survivors = [e for e in record if e["dir"] in kept]
    if survivors != listed:
        write_record(trust_dir, survivors)
    elif removed:
        fsync_dir(trust_dir)
    return removed
