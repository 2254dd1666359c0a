"""Creating a secret file (private key, fleet key, password hash): 0600 from birth.

The mode is set by ``open`` itself, never widened for a moment; creation is exclusive,
so two processes racing to create a key cannot both write one; the content is fsynced
so a power cut does not leave an empty key behind.
"""

from __future__ import annotations

import os
from pathlib import Path


def create_secret(path: Path, data: bytes) -> bool:
    """Write ``data`` to a new 0600 file; False (nothing written) if it already exists.

    Raises ``OSError`` for other failures; the folder is created 0700 when missing.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return True
