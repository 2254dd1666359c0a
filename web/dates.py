"""Dates on screen: one calendar per language, and the signed validity that decides.

English readers get day, month name and year ("2 Dec 2026", "15 Jan 2027, 15:00"), never
a US short date that a Thai or British reader takes the wrong way round. Thai readers get
the Buddhist-era year (พ.ศ., Gregorian + 543) everywhere, licence dates included, as on
Thai licence cards (Babel formats Thai with Gregorian years only). Printed ``vf``/``vu``
are display data; the signed ``nbf``/``exp`` decide (spec LC1), and a disagreement between
them is shown, never left for the reader to spot.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from babel.dates import format_date as babel_format_date
from flask_babel import (
    format_date,
    format_datetime,
    get_locale,
    get_timezone,
    to_user_timezone,
)

ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
BUDDHIST_ERA_OFFSET = 543
DASH = "\u2014"


def _thai() -> bool:
    locale = get_locale()
    return locale is not None and locale.language == "th"


def day_text(day: date) -> str:
    """A day in the viewer's calendar: "2 Dec 2026" or "2 ธ.ค. 2569"."""
    if _thai():
        return f"{format_date(day, 'd MMM')} {day.year + BUDDHIST_ERA_OFFSET}"
    return format_date(day, "d MMM y")


def printed_day(value: Any) -> date | None:
    """A ``YYYY-MM-DD`` date printed on the licence (hostile text), or None."""
    if not isinstance(value, str) or not ISO_DAY.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def signed_day(epoch: Any) -> date | None:
    """The day (Thai time) of a signed instant such as ``exp`` or ``nbf``, or None."""
    if epoch is None or isinstance(epoch, bool):
        return None
    try:
        return to_user_timezone(datetime.fromtimestamp(float(epoch), UTC)).date()
    except (OverflowError, OSError, ValueError, TypeError):
        return None


def signed_date(epoch: Any) -> str:
    """A signed validity instant as a day in the viewer's calendar, or an em dash."""
    day = signed_day(epoch)
    return DASH if day is None else day_text(day)


def signed_date_formatter() -> Callable[[Any], str]:
    """``signed_date`` bound to this request's language and time zone, for a response
    stream that outlives the request (the kiosk's live events)."""
    locale, zone = get_locale(), get_timezone()
    thai = locale is not None and locale.language == "th"

    def format_signed(epoch: Any) -> str:
        if epoch is None or isinstance(epoch, bool):
            return DASH
        try:
            day = datetime.fromtimestamp(float(epoch), zone).date()
        except (OverflowError, OSError, ValueError, TypeError):
            return DASH
        if thai:
            return f"{babel_format_date(day, 'd MMM', locale=locale)} " \
                   f"{day.year + BUDDHIST_ERA_OFFSET}"
        return babel_format_date(day, "d MMM y", locale=locale)

    return format_signed


def dates_disagree(holder: Any) -> bool:
    """True when the printed ``vf``/``vu`` differ from the signed ``nbf``/``exp``."""
    if not isinstance(holder, dict):
        return False
    for printed, signed in (("vu", "exp"), ("vf", "nbf")):
        if holder.get(printed) is None or holder.get(signed) is None:
            continue
        if printed_day(holder.get(printed)) != signed_day(holder.get(signed)):
            return True
    return False


def when(epoch: Any, fmt: str = "medium") -> str:
    """An instant in the viewer's language and calendar, or an em dash."""
    if epoch is None:
        return DASH
    try:
        instant = datetime.fromtimestamp(float(epoch), UTC)
        clock = "HH:mm" if fmt == "short" else "HH:mm:ss"
        if _thai():
            year = to_user_timezone(instant).year + BUDDHIST_ERA_OFFSET
            return (f"{format_datetime(instant, 'd MMM')} {year} "
                    f"{format_datetime(instant, clock)}")
        return format_datetime(instant, f"d MMM y, {clock}")
    except (OverflowError, OSError, ValueError, TypeError):
        return DASH
