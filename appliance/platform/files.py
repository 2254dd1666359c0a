"""Atomic file replacement: the one way this project writes a file that others read.

A reader (another process, a path unit, the next boot after a power cut) sees the old
content or the new, never a part: the bytes go to ``.NAME.tmp`` beside the file, are
fsynced, then renamed over it. Secrets use ``secret_files.create_secret`` instead
(exclusive creation, 0600 from the first byte).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def temporary_name(path: Path) -> Path:
    """Where ``write_atomic`` stages ``path`` (hidden, in the same folder, so the rename is
    atomic on one file system)."""
    return path.with_name(f".{path.name}.tmp")


def write_atomic(
    path: Path,
    data: bytes,
    *,
    mode: int | None = None,
    sync_folder: bool = False,
    make_parents: bool = False,
) -> None:
    """Replace ``path`` by ``data`` in one rename; ``OSError`` when that fails.

    ``mode`` sets exact permission bits (else the umask decides, as for ``open``);
    ``sync_folder`` also fsyncs the folder so the rename itself survives a power cut.
    Nothing is left at the temporary name after a failure.
    """
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    if mode is not None:
        flags |= os.O_NOFOLLOW  # fchmod must never reach through a planted link
    try:
        fd = os.open(tmp, flags, 0o666 if mode is None else mode)
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            if not tmp.is_symlink():
                tmp.unlink()
        raise
    if sync_folder:
        fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries (a rename, a new file) durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
