"""Argument types for the command line: a bad value is a usage error (64) named by argparse.

argparse turns the ``ValueError`` of a ``type`` callable into "argument --x: invalid ..."
through the parser's ``error``, which ``appliance.cli`` maps to exit 64, so a negative
port or a date like ``12/04/1988`` never reaches the code that would trip over it.
Every date is bounded (``FIRST_DAY`` to ``LAST_DAY``, at most ``MAX_VALID_DAYS`` of
validity), so nothing signed or evaluated lies past what the project can write back as a
date (``--valid-days 3000000`` once signed a licence valid past year 9999, shown as
``"exp": null``). Standard library only: every command imports this at registration time.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, date, datetime

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
FIRST_DAY = date(1900, 1, 1)  # a date of birth may be this old; instants start at 1970
LAST_DAY = date(2199, 12, 31)  # far past any licence, key or evaluation time
MAX_VALID_DAYS = 36_525  # one hundred years
_FIRST_INSTANT = datetime(1970, 1, 1, tzinfo=UTC).timestamp()
_END_INSTANT = datetime(LAST_DAY.year + 1, 1, 1, tzinfo=UTC).timestamp()


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


def valid_days(text: str) -> float:
    """Days of validity: above zero and at most ``MAX_VALID_DAYS``."""
    value = positive_float(text)
    if value > MAX_VALID_DAYS:
        raise argparse.ArgumentTypeError(
            f"{text} days is more than {MAX_VALID_DAYS:,} (one hundred years)"
        )
    return value


def iso_day(text: str) -> str:
    """``YYYY-MM-DD`` as spec LC1 s.3 writes ``dob``, ``vf`` and ``vu``; kept as text."""
    if not _DAY.fullmatch(text):
        raise ValueError(text)
    day = date.fromisoformat(text)  # a real day: refuses 2026-13-01 and 2026-02-30
    if not FIRST_DAY <= day <= LAST_DAY:
        raise argparse.ArgumentTypeError(f"{text} is outside {FIRST_DAY} to {LAST_DAY}")
    return text


def iso_instant(text: str) -> str:
    """An ISO 8601 time (a zone optional: the operator's own input is read as UTC),
    from 1970 to the end of ``LAST_DAY``."""
    from appliance.core.isotime import parse_instant

    if not _FIRST_INSTANT <= parse_instant(text, naive_is_utc=True) < _END_INSTANT:
        raise argparse.ArgumentTypeError(f"{text[:40]} is outside 1970-01-01 to {LAST_DAY} (UTC)")
    return text


positive_float.__name__ = "positive number"
non_negative_float.__name__ = "number >= 0"
non_negative_int.__name__ = "whole number >= 0"
positive_int.__name__ = "whole number > 0"
valid_days.__name__ = "number of days"
port.__name__ = "port 0-65535"
iso_day.__name__ = "YYYY-MM-DD date"
iso_instant.__name__ = "ISO 8601 time"
