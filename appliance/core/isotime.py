"""ISO 8601 times as this project writes and reads them: UTC, ``Z``, a zone required.

Every file and message (trust manifests, sync state, heartbeats, audit exports, ``--at``)
goes through these functions, so "what counts as a time" is decided once.
"""

from __future__ import annotations

from datetime import UTC, datetime


def parse_instant(value: object, *, naive_is_utc: bool = False) -> float:
    """Epoch seconds of an ISO 8601 time; ``ValueError`` if it is not one.

    A time without a zone is refused (``naive_is_utc`` reads it as UTC instead: only for
    an operator's own command line, never for data from a file or the network).
    """
    if not isinstance(value, str):
        raise ValueError("not an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        if not naive_is_utc:
            raise ValueError("needs a time zone, e.g. 2026-05-28T20:26:40Z")
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def instant_or_none(value: object) -> float | None:
    """``parse_instant`` for display and status: None instead of an error."""
    try:
        return parse_instant(value)
    except ValueError:
        return None


def format_utc(epoch: float) -> str:
    """``2026-05-28T20:26:40Z`` (whole seconds); ``ValueError`` outside datetime's range."""
    try:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError) as e:
        raise ValueError(f"time out of range: {epoch!r}") from e
