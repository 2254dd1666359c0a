"""The screen view of an mDL verdict (spec mdl-reader s.7), built in the kiosk process.

``verdict_event`` gives every profile's verdict the same shape; an mDL verdict adds what
only the session knows: the request profile (a walk-up ``age`` kiosk shows the verdict and
"Over NN", nothing else), whether to ask the holder for a new QR code (the radio failed or
the holder declined), and, where holder details may be shown, the disclosed elements of the
``checkpoint`` profile: names, birth date, document number, dates, issuing authority and the
driving privileges as rows. Element values are hostile: every text is clipped here and
escaped by the screens. The portrait is decoded (JPEG or JPEG 2000, bounded in bytes and
pixels before decoding) and re-encoded as a small JPEG, so the browser never parses the
holder's bytes and JPEG 2000, which browsers cannot show, is shown too. Nothing here is
stored or logged: the event lives in memory like an LC1 holder's details. Imported with
the first `mdoc:` code only, like the rest of the mDL path.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import logging
from typing import TYPE_CHECKING, Any

from appliance.core.credential.mdoc.cbor import Tagged
from appliance.core.credential.mdoc.items_request import MDL_NAMESPACE
from appliance.core.reasons import Outcome, Reason
from appliance.port.events import Event, verdict_event

if TYPE_CHECKING:
    from appliance.core.credential.mdoc.verify import MdocFacts
    from appliance.core.verifier import Verdict

log = logging.getLogger(__name__)

# After these the holder shows a new QR code: the old engagement is never reused (s.3.2).
RETRY_REASONS = frozenset({Reason.MDOC_TIMEOUT, Reason.MDOC_TRANSPORT_FAILED, Reason.MDOC_DECLINED})
# The portrait: bytes and pixels refused before decoding, like LC1 ``ph`` a bounded picture
# for the inspector to compare with the person (ISO portraits are larger than ph's 2 KB, so
# the byte cap is the mDL's own); shown at most PORTRAIT_BOX pixels.
MAX_PORTRAIT_BYTES = 65_536
MAX_PORTRAIT_PIXELS = 1_200_000
PORTRAIT_BOX = (240, 320)
MAX_TEXT = 120
MAX_PRIVILEGES = 16
MAX_CODES = 8
TEXT_ELEMENTS = (
    "family_name",
    "given_name",
    "birth_date",
    "document_number",
    "issue_date",
    "expiry_date",
    "issuing_authority",
    "issuing_country",
    "un_distinguishing_sign",
)


def mdoc_verdict_event(
    verdict: Verdict,
    facts: MdocFacts | None,
    show_holder: bool,
    *,
    profile: str,
    age_threshold: int,
    source: str = "camera",
    at: float | None = None,
) -> Event:
    """``verdict_event`` of an mDL verdict with its ``mdoc`` view; holder details only with
    ``show_holder`` and never in the ``age`` profile (nothing personal was asked)."""
    age = profile == "age"
    event = verdict_event(verdict, show_holder and not age, at=at, source=source)
    event["mdoc"] = {
        "request": "age" if age else "checkpoint",
        "age_over": age_threshold if age and verdict.outcome is Outcome.PASS else None,
        "age_threshold": age_threshold if age else None,
        "retry": verdict.reason in RETRY_REASONS,
    }
    holder = event.get("holder")
    if holder is not None:
        holder["photo"] = None
        disclosed = facts.disclosed if facts is not None else None
        if disclosed is not None:
            holder["mdoc"] = holder_elements(disclosed.values)
            holder["photo"] = portrait_photo(disclosed.portrait)
    return event


def holder_elements(values: dict[tuple[str, str], Any]) -> dict[str, Any]:
    """The checkpoint elements as clipped texts (None when not disclosed) and the driving
    privileges as rows; JSON-serialisable for the kiosk socket."""
    out: dict[str, Any] = {name: _text(values.get((MDL_NAMESPACE, name))) for name in TEXT_ELEMENTS}
    out["privileges"] = privileges(values.get((MDL_NAMESPACE, "driving_privileges")))
    return out


def privileges(value: Any) -> list[dict[str, Any]]:
    """``driving_privileges`` (18013-5 s.7.2.4) as rows of category, dates and codes."""
    rows: list[dict[str, Any]] = []
    if not isinstance(value, list):
        return rows
    for item in value[:MAX_PRIVILEGES]:
        if not isinstance(item, dict):
            continue
        codes = []
        raw_codes = item.get("codes")
        for code in raw_codes[:MAX_CODES] if isinstance(raw_codes, list) else []:
            if isinstance(code, dict) and _text(code.get("code")):
                codes.append(
                    " ".join(
                        t
                        for t in (
                            _text(code.get("code")),
                            _text(code.get("sign")),
                            _text(code.get("value")),
                        )
                        if t
                    )
                )
        rows.append(
            {
                "vehicle_category_code": _text(item.get("vehicle_category_code")),
                "issue_date": _text(item.get("issue_date")),
                "expiry_date": _text(item.get("expiry_date")),
                "codes": codes,
            }
        )
    return rows


def portrait_photo(data: bytes | None) -> dict[str, str] | None:
    """The portrait as a small JPEG (``{"type", "b64"}`` like an LC1 photo), or None when it
    is absent, too large, not JPEG / JPEG 2000 or does not decode."""
    if not data or len(data) > MAX_PORTRAIT_BYTES:
        return None
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=["JPEG", "JPEG2000"]) as img:
            width, height = img.size
            if width < 1 or height < 1 or width * height > MAX_PORTRAIT_PIXELS:
                return None
            img.draft("RGB", PORTRAIT_BOX)  # JPEG: decode at a reduced scale
            picture = img.convert("RGB")
        picture.thumbnail(PORTRAIT_BOX)
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=85)
    except Exception as e:  # noqa: BLE001 - hostile bytes: no portrait, never a lost verdict
        log.info("mdoc portrait not shown: %s", type(e).__name__)
        return None
    return {"type": "image/jpeg", "b64": base64.b64encode(out.getvalue()).decode("ascii")}


def _text(value: Any) -> str | None:
    """A text, number or date element clipped (a full-date as YYYY-MM-DD, a tdate as its
    day: the screens show days); anything else None."""
    inner = value.value if isinstance(value, Tagged) else value
    if isinstance(inner, dt.datetime | dt.date):
        return inner.isoformat()[:10]
    if isinstance(inner, bool) or not isinstance(inner, str | int):
        return None
    text = str(inner)[:MAX_TEXT]
    return text or None
