"""Creating private files whatever the umask: secrets 0600, data files 0640.

A secret (private key, fleet key, password hash) gets its mode from ``open`` itself, never
widened for a moment; it is written to a private temporary name, fsynced and then linked
into place, so creation is exclusive (two processes racing cannot both write one) and a
power cut or kill -9 leaves no empty or half-written key behind.

Data files (the audit log and its SQLite -wal/-shm, the hub database, state files) are
0640 or stricter whatever the umask: ``ensure_private_file`` before SQLite opens a
database (SQLite gives its -wal and -shm files the database file's mode;
``ensure_private_database`` tightens those too), and
``private_umask`` around a daemon's life for every other file it writes.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from appliance.platform.files import fsync_dir

DATA_MODE = 0o640
SECRET_MODE = 0o600
PRIVATE_UMASK = 0o027  # files 0640, folders 0750 at most


def create_secret(path: Path, data: bytes) -> bool:
    """Write ``data`` to a new 0600 file; False (nothing written) if it already exists.

    Raises ``OSError`` for other failures; the folder is created 0700 when missing.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists():
        return False
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, SECRET_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # exclusive: fails if another process got there first
        except FileExistsError:
            return False
        fsync_dir(path.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def ensure_private_file(path: Path, mode: int = DATA_MODE) -> None:
    """Create ``path`` empty with ``mode`` if missing, else take away bits beyond ``mode``.

    Call it before ``sqlite3.connect(path)``: the database, and the -wal and -shm files
    SQLite later creates with the same mode, are then never readable by others.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    except FileExistsError:
        restrict_mode(path, mode)
    else:
        os.close(fd)


def ensure_private_database(path: Path, mode: int = DATA_MODE) -> None:
    """``ensure_private_file`` for an SQLite database, and its -wal and -shm files, left by
    an older version or another umask, tightened too."""
    ensure_private_file(path, mode)
    for sidecar in ("-wal", "-shm"):
        restrict_mode(path.with_name(path.name + sidecar), mode)


def restrict_mode(path: Path, mode: int = DATA_MODE) -> None:
    """Take away permission bits beyond ``mode`` from an existing regular file (no-op if
    absent or not a regular file)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    current = stat.S_IMODE(st.st_mode)
    if stat.S_ISREG(st.st_mode) and current & ~mode:
        path.chmod(current & mode)


@contextlib.contextmanager
def private_umask(mask: int = PRIVATE_UMASK) -> Iterator[None]:
    """A umask at least as strict as ``mask`` inside the block (process-wide: for a
    daemon's whole run or a single-threaded command, not around one write in a thread)."""
    old = os.umask(mask)
    os.umask(old | mask)
    try:
        yield
    finally:
        os.umask(old)
