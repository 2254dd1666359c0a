"""The versions sync installed, and the high-water mark below which none may load.

Read from sync's own record (``trust/installed.json``) and each version's signed metadata
under the pinned root, never from where ``current`` points; the mark
(``appliance.trust.high_water``) is brought up to the highest of them, and ``current``
pointed back at it, before any network step (issue 21: a rollback repaired offline).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.core.errors import TrustDataError
from appliance.trust.high_water import Mark, mark_of, read_mark
from appliance.trust.high_water import write_mark as _write_mark_file
from appliance.trust.install import switch_current
from appliance.trust.signed import SIGNED, read_signed_manifest, verify_signed
from appliance.trust.store import current_version_dir, installed_record, read_manifest

log = logging.getLogger(__name__)


class InstalledVersions:
    """Sync's installs in ``trust_dir``; ``mark_error`` says why the mark was not written."""

    def __init__(self, trust_dir: Path, root: Path) -> None:
        self.trust_dir = trust_dir
        self.root = root
        self.mark_error: str | None = None

    def highest(self) -> tuple[Path | None, dict[str, Any] | None]:
        """The highest version this client installed that still carries metadata signed
        under the pinned root and is not below the high-water mark: from its own record,
        never from where ``current`` points, and with version, publication time and root
        version taken from the signed data ("highest": by root version, then version)."""
        try:
            pinned = self.root.read_bytes()
        except OSError:
            return None, None
        floor = self.floor()
        best: tuple[Path, dict[str, Any]] | None = None
        for entry in installed_record(self.trust_dir):
            path = self.trust_dir / entry["dir"]
            try:
                signed = verify_signed(path / SIGNED, pinned)
                wire = read_signed_manifest(path / SIGNED, signed)
                manifest = read_manifest(path)
                mark = mark_of(path, signed, wire)
            except TrustDataError as e:
                log.warning("installed %s ignored: %s", entry["dir"], e)
                continue
            if floor is not None and mark.key() < floor.key():
                continue  # older than what this device has had: never "the installed" one
            if best is None or mark.key() > best[1]["mark"].key():
                best = (
                    path,
                    {
                        **manifest,
                        "version": wire["version"],
                        "published": wire.get("published"),
                        "root_version": signed.root_version,
                        "mark": mark,
                    },
                )
        return best if best is not None else (None, None)

    def floor(self) -> Mark | None:
        """The high-water mark; a garbled one counts as none here (sync rewrites it from
        its record, the loader refuses meanwhile)."""
        try:
            return read_mark(self.trust_dir)
        except TrustDataError as e:
            log.warning("%s", e)
            return None

    def floor_as_installed(self) -> dict[str, Any] | None:
        """With no installed version left at or above the mark (deleted), the mark itself
        is what a new version must not go below."""
        floor = self.floor()
        if floor is None:
            return None
        return {"version": floor.version, "root_version": floor.root_version}

    def write_mark(self, mark: Mark) -> None:
        """Record the high-water mark. A failure (a file another user planted in the
        sticky state folder, a full disk) is logged and kept for the state file, never a
        reason to stop installing newer data, which would keep revocations out."""
        try:
            _write_mark_file(self.trust_dir, mark)
        except OSError as e:
            self.mark_error = f"trust high-water mark not written: {e.strerror or e}"
            log.error("%s", self.mark_error)

    def repair_offline(self, installed_dir: Path | None, installed: dict[str, Any] | None) -> None:
        """Point ``current`` back at the highest installed version and bring the mark up
        to it, with no network: a device whose link was re-pointed at an older version
        is repaired even while the repository is out of reach (issue 21)."""
        if installed_dir is None or installed is None:
            return
        mark: Mark = installed["mark"]
        floor = self.floor()
        if floor is None or floor.key() < mark.key():
            self.write_mark(mark)  # first run with marks, or the mark was lost
        if current_version_dir(self.trust_dir) != installed_dir:
            log.warning(
                "trust/current did not point at the installed %s; repaired", installed_dir.name
            )
            switch_current(self.trust_dir, installed_dir.name)

    @staticmethod
    def genuine(pinned: bytes) -> Callable[[Path], bool]:
        """Whether a version directory carries metadata signed under the pinned root."""

        def genuine(path: Path) -> bool:
            try:
                read_signed_manifest(path / SIGNED, verify_signed(path / SIGNED, pinned))
            except TrustDataError as e:
                log.warning("%s is not a genuine install: %s", path.name, e)
                return False
            return True

        return genuine
