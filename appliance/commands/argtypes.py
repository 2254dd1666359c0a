"""Argument types for the command line: a bad value is a usage error (64) named by argparse.

argparse turns the ``ValueError`` of a ``type`` callable into "argument --x: invalid ..."
through the parser's ``error``, which ``appliance.cli`` maps to exit 64, so a negative
port or a date like ``12/04/1988`` never reaches the code that would trip over it.
Standard library only: every command imports this at registration time.
"""

from __future__ import annotations

import re
from datetime import date

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def positive_float(text: str) -> float:
    """A number above zero (hours, days, seconds)."""
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise ValueError(text)
    return value


def non_negative_float(text: str) -> float:
    """A number of zero or more (``--duration 0`` stops at once)."""
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise ValueError(text)
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


def port(text: str) -> int:
    """A TCP port, 0 (any free port) to 65535."""
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(text)
    return value


def iso_day(text: str) -> str:
    """``YYYY-MM-DD`` as spec LC1 s.3 writes ``dob``, ``vf`` and ``vu``; kept as text."""
    if not _DAY.fullmatch(text):
        raise ValueError(text)
    date.fromisoformat(text)  # a real day: refuses 2026-13-01 and 2026-02-30
    return text


def iso_instant(text: str) -> str:
    """An ISO 8601 time (a zone optional: the operator's own input is read as UTC)."""
    from appliance.core.isotime import parse_instant

    parse_instant(text, naive_is_utc=True)
    return text


positive_float.__name__ = "positive number"
non_negative_float.__name__ = "number >= 0"
non_negative_int.__name__ = "whole number >= 0"
positive_int.__name__ = "whole number > 0"
port.__name__ = "port 0-65535"
iso_day.__name__ = "YYYY-MM-DD date"
iso_instant.__name__ = "ISO 8601 time"
