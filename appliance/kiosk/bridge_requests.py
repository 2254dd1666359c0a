"""What a screen may ask of the kiosk over the bridge: each method's arguments, checked.

Apart from the socket server (``appliance.kiosk.bridge``) because this is the kiosk's rule
for what reaches it from the web process, whatever carries it: times finite and within
years 1970..9999, ``source`` a short lower-case name (``service.checked_source``) and never
one of the kiosk's own inputs, accepted types by the admin screen's rule
(``local_policy.check_accepted_types``), counts clamped, strings bounded. A refused
argument raises ``BadRequest``, which the bridge answers without closing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from appliance.core.errors import InvalidSource
from appliance.kiosk.verification import checked_source
from appliance.port.errors import BadRequest, InvalidTypes
from appliance.port.events import DEVICE_SOURCES
from appliance.port.interface import check_accepted_types

# Times on the socket are epoch seconds from 1970 to the end of year 9999.
MAX_EPOCH_S = 253_402_300_799.0


def _int(args: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = args.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"argument {name} must be an integer")
    return max(low, min(high, value))


def _str(
    args: dict[str, Any], name: str, default: str | None = None, *, max_chars: int | None = None
) -> str:
    value = args.get(name, default)
    if not isinstance(value, str):
        raise BadRequest(f"argument {name} must be a string")
    if max_chars is not None and len(value) > max_chars:
        raise BadRequest(f"argument {name} is longer than {max_chars} characters")
    return value


def opt_epoch(args: dict[str, Any], name: str) -> float | None:
    """An optional time bound (``since``, ``until``): epoch seconds, or None for open."""
    value = args.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"argument {name} must be a number or null")
    try:
        number = float(value)
    except OverflowError as e:  # an integer of a thousand digits
        raise BadRequest(f"argument {name} is out of range") from e
    if not math.isfinite(number) or not 0 <= number <= MAX_EPOCH_S:
        raise BadRequest(f"argument {name} must be epoch seconds between 1970 and 9999")
    return number


def payload_size(args: dict[str, Any], cap: int) -> int:
    """``data_bytes``: the size of the picture that follows the request line."""
    value = args.get("data_bytes")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= cap:
        raise BadRequest(f"argument data_bytes must be an integer from 1 to {cap}")
    return value


def _types(args: dict[str, Any]) -> list[str]:
    value = args.get("types")
    if not isinstance(value, list):
        raise BadRequest("argument types must be a list")
    try:
        return list(check_accepted_types(value))
    except InvalidTypes as e:
        raise BadRequest(f"argument types: {e}") from e


def screen_source(args: dict[str, Any], default: str) -> str:
    """A source name for a submission from a screen: never one of the kiosk's own inputs,
    whose verdicts the walk-up screen shows as scanned (issue 21)."""
    try:
        source = checked_source(args.get("source", default))
    except InvalidSource as e:
        raise BadRequest(f"argument source: {e}") from e
    if source in DEVICE_SOURCES:
        raise BadRequest(f"argument source: {source} is the kiosk's own input, not a screen's")
    return source


Handler = Callable[[Any, dict[str, Any]], Any]

# The plain request-answer methods; ``hello``, ``events``, ``export_audit`` and
# ``verify_image`` (streams and raw bytes) are the bridge's own.
METHODS: dict[str, Handler] = {
    "status": lambda p, a: p.status(),
    "recent_verdicts": lambda p, a: p.recent_verdicts(_int(a, "limit", 20, 0, 10_000)),
    "get_verdict": lambda p, a: p.get_verdict(_str(a, "event_id", max_chars=128)),
    "verdicts_per_hour": lambda p, a: p.verdicts_per_hour(_int(a, "hours", 24, 1, 24 * 62)),
    "verdict_totals": lambda p, a: p.verdict_totals(),
    "verify_text": lambda p, a: p.verify_text(_str(a, "text"), screen_source(a, "web-text")),
    "trigger_sync": lambda p, a: p.trigger_sync(),
    "trigger_upload": lambda p, a: p.trigger_upload(),
    "accepted_types": lambda p, a: list(p.accepted_types()),
    "set_accepted_types": lambda p, a: p.set_accepted_types(_types(a)),
}
