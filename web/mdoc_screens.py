"""The kiosk screen's part of an mDL session (spec mdl-reader s.7): its steps and verdict extras.

The kiosk publishes ``{"type": "mdoc", "state": "connecting" | "approve"}`` while it talks to
the phone, then the verdict, whose ``mdoc`` view (``appliance.kiosk.mdoc_view``) says the
request profile and whether the holder should show a new QR code. Here those become the
live stream's ``mdoc`` messages and the verdict view's extras, in the viewer's language: a
walk-up ``age`` kiosk shows the verdict and "Over NN" only; after a radio failure or a
refusal on the phone, the screen asks for the QR code again. Texts are translated in the
request (the stream outlives it) and sent as data the script sets with ``textContent``.
"""

from __future__ import annotations

import json
from typing import Any

from flask_babel import gettext

STATES = ("connecting", "approve")


def texts() -> dict[str, str]:
    """The session's words in the current request's language."""
    return {"retry": gettext("Ask the holder to show the QR again."), "over": gettext("Over %(n)d")}


def state_message(event: dict[str, Any]) -> str | None:
    """The Server-Sent Event for a session step, or None for anything else."""
    state = event.get("state")
    if event.get("type") != "mdoc" or state not in STATES:
        return None
    return f"event: mdoc\ndata: {json.dumps({'state': state})}\n\n"


def age_over(event: dict[str, Any]) -> int | None:
    """NN of an ``age`` PASS ("Over NN"), else None."""
    mdoc = event.get("mdoc")
    value = mdoc.get("age_over") if isinstance(mdoc, dict) else None
    return value if type(value) is int and 0 < value < 150 else None


def verdict_extras(event: dict[str, Any], words: dict[str, str]) -> dict[str, Any]:
    """What an mDL verdict adds to (or changes in) the kiosk's view of it."""
    mdoc = event.get("mdoc")
    if not isinstance(mdoc, dict):
        return {}
    extras: dict[str, Any] = {"retry": words["retry"] if mdoc.get("retry") is True else ""}
    age = age_over(event)
    if age is not None:
        extras["reason"] = words["over"] % {"n": age}
    return extras
