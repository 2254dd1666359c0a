"""Dates on screen: one calendar per language, and the signed validity that decides.

English readers get day, month name and year ("2 Dec 2026", "15 Jan 2027, 15:00"), never
a US short date that a Thai or British reader takes the wrong way round. Thai readers get
the Buddhist-era year (พ.ศ., Gregorian + 543) everywhere, licence dates included, as on
Thai licence cards (Babel formats Thai with Gregorian years only). Printed ``vf``/``vu``
are display data; the signed ``nbf``/``exp`` decide (spec LC1), and a disagreement between
them is shown, never left for the reader to spot.

The patterns used here need only the month names, so the screens' languages take them from
a small table equal to Babel's (a test checks): asking Babel would unpickle the whole CLDR
locale (root + language, ~3 MiB) into a process with a 48 MB budget (issue 14). Any other
language still goes through Babel.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from babel import Locale
from babel.dates import format_date as babel_format_date
from flask_babel import get_locale, get_timezone, to_user_timezone

# Babel's abbreviated month names, "format" context (CLDR), January first.
MONTHS_ABBREVIATED: dict[str, tuple[str, ...]] = {
    "th": (
        "ม.ค.",
        "ก.พ.",
        "มี.ค.",
        "เม.ย.",
        "พ.ค.",
        "มิ.ย.",
        "ก.ค.",
        "ส.ค.",
        "ก.ย.",
        "ต.ค.",
        "พ.ย.",
        "ธ.ค.",
    ),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
BUDDHIST_ERA_OFFSET = 543
DASH = "\u2014"


def _day_month(day: date, locale: Locale | None) -> str:
    """Babel's ``d MMM`` for ``day`` in ``locale``, from the table where it has the language."""
    months = MONTHS_ABBREVIATED.get(locale.language) if locale is not None else None
    if months is None or locale is None or locale.territory or locale.script or locale.variant:
        return babel_format_date(day, "d MMM", locale=locale)
    return f"{day.day} {months[day.month - 1]}"


def _day_text(day: date, locale: Locale | None) -> str:
    """Thai: ``d MMM`` and the Buddhist-era year; otherwise Babel's ``d MMM y``."""
    thai = locale is not None and locale.language == "th"
    return f"{_day_month(day, locale)} {day.year + BUDDHIST_ERA_OFFSET if thai else day.year}"


def day_text(day: date) -> str:
    """A day in the viewer's calendar: "2 Dec 2026" or "2 ธ.ค. 2569"."""
    return _day_text(day, get_locale())


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

    def format_signed(epoch: Any) -> str:
        if epoch is None or isinstance(epoch, bool):
            return DASH
        try:
            day = datetime.fromtimestamp(float(epoch), zone).date()
        except (OverflowError, OSError, ValueError, TypeError):
            return DASH
        return _day_text(day, locale)

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
        local = to_user_timezone(datetime.fromtimestamp(float(epoch), UTC))
        clock = local.strftime("%H:%M" if fmt == "short" else "%H:%M:%S")
        day = _day_text(local.date(), locale := get_locale())
        if locale is not None and locale.language == "th":
            return f"{day} {clock}"
        return f"{day}, {clock}"
    except (OverflowError, OSError, ValueError, TypeError):
        return DASH
