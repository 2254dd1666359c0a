"""What people read: outcome words, reasons in plain language, and safe display of QR text.

Every string that came out of a QR code is hostile. Templates autoescape it; ``qr_text``
also removes control and bidirectional-override characters (which could make a name read
backwards or hide text) and bounds its length, and templates wrap it in ``<bdi>``.
"""

from __future__ import annotations

import base64
import unicodedata
from typing import Any

from flask_babel import lazy_gettext

from appliance.core.reasons import Outcome, Reason
from appliance_web import dates

MAX_DISPLAY_CHARS = 120
_BIDI_CONTROLS = {
    "\u061c",
    "\u200e",
    "\u200f",
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
}

OUTCOME_WORDS = {
    Outcome.PASS: lazy_gettext("Valid"),
    Outcome.FAIL: lazy_gettext("Not valid"),
    Outcome.UNVERIFIABLE: lazy_gettext("Cannot check"),
}

# Short, plain language for a citizen; the reason code stays visible to inspectors.
REASON_TEXT = {
    Reason.OK: lazy_gettext("The licence is genuine and in force."),
    Reason.UNKNOWN_FORMAT: lazy_gettext("This is not a licence QR code."),
    Reason.TOO_LARGE: lazy_gettext("The code holds too much data to be a licence."),
    Reason.MALFORMED_ENCODING: lazy_gettext("The code is damaged or incomplete."),
    Reason.MALFORMED_COMPRESSION: lazy_gettext("The code is damaged or incomplete."),
    Reason.MALFORMED_STRUCTURE: lazy_gettext("The code is damaged or incomplete."),
    Reason.MALFORMED_CLAIMS: lazy_gettext("The licence data in the code is not valid."),
    Reason.UNSUPPORTED_ALGORITHM: lazy_gettext("The code is signed in a way we do not accept."),
    Reason.UNKNOWN_ISSUER: lazy_gettext("The licence was not issued by an agency we know."),
    Reason.BAD_SIGNATURE: lazy_gettext(
        "The signature does not match: the code may be forged or altered."
    ),
    Reason.ISSUER_MISMATCH: lazy_gettext(
        "The licence names a different issuer than the one who signed it."
    ),
    Reason.ISSUER_KEY_REVOKED: lazy_gettext("The issuer's signing key has been withdrawn."),
    Reason.ISSUER_KEY_EXPIRED: lazy_gettext(
        "The licence was signed outside the issuer key's validity."
    ),
    Reason.TYPE_NOT_ALLOWED_FOR_KEY: lazy_gettext("This issuer may not issue this licence type."),
    Reason.EXPIRED: lazy_gettext("The licence has expired."),
    Reason.NOT_YET_VALID: lazy_gettext("The licence is not valid yet."),
    Reason.REVOKED: lazy_gettext("The licence has been revoked."),
    Reason.SUSPENDED: lazy_gettext("The licence is suspended."),
    Reason.STATUS_OTHER: lazy_gettext("The issuer has marked this licence as not in force."),
    Reason.STATUS_UNKNOWN: lazy_gettext(
        "The licence's current status is not known to this device."
    ),
    Reason.TRUST_DATA_STALE: lazy_gettext(
        "This device's trust data is out of date. Please ask staff."
    ),
    Reason.CLOCK_UNTRUSTED: lazy_gettext(
        "This device's clock cannot be trusted. Please ask staff."
    ),
    Reason.TYPE_NOT_ACCEPTED: lazy_gettext("This licence type is not accepted here."),
    Reason.NO_QR_FOUND: lazy_gettext("No QR code was found in the picture."),
    Reason.SOFTWARE_OUTDATED: lazy_gettext(
        "This device's software is out of date. Please ask staff."
    ),
    Reason.DEVICE_DISABLED: lazy_gettext(
        "This device has been taken out of service. Please ask staff."
    ),
    Reason.HOLDER_KEY_MISSING: lazy_gettext("The live code is missing the holder's key."),
    Reason.BAD_HOLDER_SIGNATURE: lazy_gettext(
        "The live code was not signed by the holder's device."
    ),
    Reason.PRESENTATION_EXPIRED: lazy_gettext(
        "The live code has timed out. Please refresh it in the app."
    ),
    Reason.PRESENTATION_TIME_INVALID: lazy_gettext("The live code's time is not valid."),
    Reason.PRESENTATION_REQUIRED: lazy_gettext(
        "Please show the live code from the app, not a picture of the licence."
    ),
    # The mobile driving licence (ISO 18013-5, spec mdl-reader s.4.1).
    Reason.MDOC_ENGAGEMENT_INVALID: lazy_gettext(
        "The phone's licence QR code is damaged or not valid."
    ),
    Reason.MDOC_UNSUPPORTED_CURVE: lazy_gettext(
        "The phone uses a kind of key this device cannot use."
    ),
    Reason.MDOC_NO_SUPPORTED_TRANSPORT: lazy_gettext(
        "This device cannot connect to the phone: "
        "mobile licences are off here, or the "
        "phone offers no link this device has."
    ),
    Reason.MDOC_TIMEOUT: lazy_gettext("The phone did not answer in time."),
    Reason.MDOC_TRANSPORT_FAILED: lazy_gettext("The Bluetooth connection to the phone failed."),
    Reason.MDOC_SESSION_DECRYPT_FAILED: lazy_gettext(
        "The phone's answer could not be decrypted: it may have been tampered with."
    ),
    Reason.MDOC_HOLDER_ERROR: lazy_gettext("The wallet on the phone reported an error."),
    Reason.MDOC_DECLINED: lazy_gettext("The request was declined on the phone."),
    Reason.MDOC_NOT_RETURNED: lazy_gettext("The phone did not send a driving licence."),
    Reason.MDOC_MALFORMED: lazy_gettext("The licence data from the phone is damaged or not valid."),
    Reason.MDOC_UNSUPPORTED_ALGORITHM: lazy_gettext(
        "The code is signed in a way we do not accept."
    ),
    Reason.MDOC_ISSUER_UNKNOWN: lazy_gettext("The licence was not issued by an agency we know."),
    Reason.MDOC_DS_CERT_INVALID: lazy_gettext(
        "The issuer's signing certificate may not sign licences."
    ),
    Reason.MDOC_DS_REVOKED: lazy_gettext("The issuer's signing certificate has been withdrawn."),
    Reason.MDOC_BAD_ISSUER_SIGNATURE: lazy_gettext(
        "The signature does not match: the code may be forged or altered."
    ),
    Reason.MDOC_DOCTYPE_MISMATCH: lazy_gettext(
        "The phone sent another kind of document than the one asked for."
    ),
    Reason.MDOC_DIGEST_MISMATCH: lazy_gettext(
        "Some licence data differs from what the issuer signed: it may have been altered."
    ),
    Reason.MDOC_BAD_DEVICE_AUTH: lazy_gettext(
        "The answer did not come from the phone that holds this licence: it may be a copy."
    ),
    Reason.MDOC_SIGNED_OUTSIDE_DS_VALIDITY: lazy_gettext(
        "The licence was signed outside the issuer certificate's validity."
    ),
    Reason.MDOC_DS_EXPIRED: lazy_gettext("The issuer's signing certificate has expired."),
    Reason.MDOC_LICENCE_EXPIRED: lazy_gettext("The licence has expired."),
    Reason.MDOC_ELEMENT_MISSING: lazy_gettext(
        "The phone did not share the details this check needs."
    ),
    Reason.MDOC_AGE_NOT_MET: lazy_gettext("The licence does not show the age this check needs."),
    Reason.MDOC_SESSION_REQUIRED: lazy_gettext(
        "This is a phone's mobile licence: show it to the camera of a checking device."
    ),
}

# Labels of printed fields (``ext``) that issuers commonly use, in the viewer's language;
# any other label is shown as the issuer wrote it.
EXT_LABELS = {
    "Blood group": lazy_gettext("Blood group"),
    "Address": lazy_gettext("Address"),
    "Restrictions": lazy_gettext("Restrictions"),
}

# Where a verdict came from (``event["source"]``), for people.
SOURCE_NAMES = {
    "camera": lazy_gettext("camera"),
    "scanner": lazy_gettext("scanner"),
    "web-text": lazy_gettext("pasted text"),
    "web-image": lazy_gettext("uploaded picture"),
}

# ``appliance_web.system.THROTTLE_BITS`` names, for people.
THROTTLE_TEXT = {
    "under-voltage now": lazy_gettext("under-voltage now"),
    "frequency capped now": lazy_gettext("frequency capped now"),
    "throttled now": lazy_gettext("throttled now"),
    "soft temperature limit now": lazy_gettext("soft temperature limit now"),
    "under-voltage has occurred": lazy_gettext("under-voltage has occurred"),
    "frequency capping has occurred": lazy_gettext("frequency capping has occurred"),
    "throttling has occurred": lazy_gettext("throttling has occurred"),
    "soft temperature limit has occurred": lazy_gettext("soft temperature limit has occurred"),
}

# Error page titles (werkzeug's names are English only).
ERROR_TITLES = {
    400: lazy_gettext("Bad request"),
    403: lazy_gettext("Not allowed"),
    404: lazy_gettext("Page not found"),
    405: lazy_gettext("Not allowed"),
    413: lazy_gettext("Too large"),
    429: lazy_gettext("Too many attempts"),
    503: lazy_gettext("Busy, try again shortly"),
}

OUTCOME_CLASS = {Outcome.PASS: "pass", Outcome.FAIL: "fail", Outcome.UNVERIFIABLE: "unverifiable"}


def outcome_word(outcome: str) -> str:
    try:
        return str(OUTCOME_WORDS[Outcome(outcome)])
    except ValueError:
        return str(outcome)


def reason_text(reason: str) -> str:
    try:
        return str(REASON_TEXT[Reason(reason)])
    except (ValueError, KeyError):
        return str(lazy_gettext("Unknown reason."))


def ext_label(label: Any) -> str:
    """A printed field's label: translated when known, else as printed (made safe)."""
    known = EXT_LABELS.get(label) if isinstance(label, str) else None
    return str(known) if known is not None else qr_text(label, 40)


def source_name(source: Any) -> str:
    """Where a verdict came from, in the viewer's language (unknown ones as given, safe)."""
    known = SOURCE_NAMES.get(source) if isinstance(source, str) else None
    return str(known) if known is not None else qr_text(source, 20)


def throttle_flag(flag: Any) -> str:
    known = THROTTLE_TEXT.get(flag) if isinstance(flag, str) else None
    return str(known) if known is not None else qr_text(flag, 60)


def error_title(error: Any) -> str:
    """An HTTP error's title in the viewer's language."""
    code = getattr(error, "code", None)
    title = ERROR_TITLES.get(code) if isinstance(code, int) else None
    return str(title) if title is not None else str(lazy_gettext("Something went wrong"))


def outcome_class(outcome: str) -> str:
    try:
        return OUTCOME_CLASS[Outcome(outcome)]
    except ValueError:
        return "unverifiable"


def qr_text(value: Any, limit: int = MAX_DISPLAY_CHARS) -> str:
    """Hostile text made safe to lay out (escaping is still the template's job)."""
    if value is None:
        return ""
    text = str(value)[: limit * 4]
    cleaned = "".join(
        "\ufffd" if ch in _BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Cs") else ch
        for ch in text
    )
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1] + "\u2026"
    return cleaned


def licence_date(value: Any) -> str:
    """A licence date from the QR (``YYYY-MM-DD`` by the spec, but hostile) in the viewer's
    calendar; anything else is shown as given (made safe), or an em dash."""
    day = dates.printed_day(value)
    if day is not None:
        return dates.day_text(day)
    return qr_text(value, 40) or dates.DASH


when = dates.when  # one calendar per language: see appliance_web.dates


def duration(seconds: Any) -> str:
    if seconds is None:
        return "\u2014"
    s = int(seconds)
    if s < 120:
        return str(lazy_gettext("%(n)d s", n=s))
    if s < 7200:
        return str(lazy_gettext("%(n)d min", n=s // 60))
    if s < 172800:
        return str(lazy_gettext("%(n)d h", n=s // 3600))
    return str(lazy_gettext("%(n)d days", n=s // 86400))


def photo_data_url(event: dict[str, Any]) -> str | None:
    """The holder photo of an event as a ``data:`` URL (served from memory, never stored)."""
    holder = event.get("holder") or {}
    photo = holder.get("photo")
    if not photo or photo.get("type") not in ("image/jpeg", "image/webp"):
        return None
    b64 = str(photo.get("b64", ""))
    try:
        base64.b64decode(b64, validate=True)
    except ValueError:
        return None
    return f"data:{photo['type']};base64,{b64}"


def chart(rows: list[dict[str, Any]], width: int = 480, height: int = 120) -> dict[str, Any]:
    """Bars (stacked PASS, FAIL, UNVERIFIABLE) of verdicts per hour, for an inline SVG."""
    top = max([sum(r[o] for o in ("PASS", "FAIL", "UNVERIFIABLE")) for r in rows] + [1])
    slot = width / max(1, len(rows))
    bars = []
    for i, row in enumerate(rows):
        y = float(height)
        for outcome in ("PASS", "FAIL", "UNVERIFIABLE"):
            h = row[outcome] * (height - 4) / top
            if h > 0:
                y -= h
                bars.append(
                    {
                        "x": round(i * slot + 1, 1),
                        "y": round(y, 1),
                        "w": round(max(1.0, slot - 2), 1),
                        "h": round(h, 1),
                        "cls": outcome.lower(),
                        "n": row[outcome],
                        "hour": row["hour"],
                        "outcome": outcome,
                    }
                )
    return {
        "width": width,
        "height": height,
        "bars": bars,
        "top": top,
        "total": sum(sum(r[o] for o in ("PASS", "FAIL", "UNVERIFIABLE")) for r in rows),
    }
