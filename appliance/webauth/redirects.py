"""Where a page may send the browser next: same-origin relative paths only.

One helper for every ``next`` parameter. A browser strips tab, CR and LF from URLs and reads
``\\`` as ``/``, so ``/\\tevil``-style tricks become ``//evil.example`` (another origin); a CR
or LF in a ``Location`` header is refused by werkzeug with a 500. Anything doubtful becomes
the fallback.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

MAX_NEXT_CHARS = 512


def _doubtful(path: str) -> bool:
    if not path.startswith("/") or path.startswith(("//", "/\\")) or "\\" in path:
        return True
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in path):
        return True
    parts = urlsplit(path)
    return bool(parts.scheme or parts.netloc)


def safe_next(target: str | None, fallback: str = "/") -> str:
    """``target`` when it is a path on this site, else ``fallback``.

    Checked as given and again after URL-decoding (twice), so encoded slashes and control
    characters cannot pass either.
    """
    if not target or len(target) > MAX_NEXT_CHARS:
        return fallback
    seen = target
    for _ in range(3):
        if _doubtful(seen):
            return fallback
        seen = unquote(seen)
    return target
