"""A service's listening Unix socket, made one way for the kiosk's bridge and the mDL radio.

Bound under a private name, given its mode, then renamed into place, so the socket is never
reachable with looser permissions. A stale socket left by a dead process is replaced; a live
one (a second instance of the service) or any other kind of file is refused. On exit the
file is removed only while it is still this process's: a successor may have the path now.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
from pathlib import Path

log = logging.getLogger(__name__)

SUN_PATH_MAX = 107  # bytes of an AF_UNIX path (sun_path less its terminating NUL)


class ListenRefused(OSError):
    """The path cannot be listened on; the message says why, without the path's owner."""


def listen_unix(path: Path, mode: int, what: str) -> tuple[socket.socket, int]:
    """A bound, listening socket at ``path`` with ``mode``, and its inode (for
    ``remove_if_ours``); ``ListenRefused`` (an ``OSError``) when it cannot be. ``what``
    names the service in the messages ("kiosk", "radio service")."""
    if len(os.fsencode(path)) > SUN_PATH_MAX:
        raise ListenRefused(f"{path} is longer than {SUN_PATH_MAX} bytes")
    _refuse_live(path, what)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        tmp.unlink(missing_ok=True)
        sock.bind(str(tmp))
        tmp.chmod(mode)
        tmp.replace(path)
        sock.listen(16)
        return sock, path.stat().st_ino
    except OSError as e:  # no such folder, not allowed
        sock.close()
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ListenRefused(e.strerror or str(e)) from e


def remove_if_ours(path: Path, inode: int | None) -> None:
    """Remove ``path`` if it is still the socket this process made; never raises."""
    with contextlib.suppress(OSError):
        if inode is not None and path.stat().st_ino == inode:
            path.unlink()


def _refuse_live(path: Path, what: str) -> None:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ListenRefused(f"{path} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except OSError:
        log.info("replacing the stale %s socket %s", what, path)
        return
    finally:
        probe.close()
    raise ListenRefused(f"another {what} is already listening on {path}")
