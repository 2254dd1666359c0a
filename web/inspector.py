"""The inspector's view (details and reasons of this session's verdicts) and verify by
image upload or pasted text, which gives the verdict the camera would (same service, audited).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import gettext

from appliance.scanner import ImageReadError
from appliance.service import AuditUnavailable
from appliance_web import holder_allowed, port_of

log = logging.getLogger(__name__)
bp = Blueprint("inspector", __name__)
MAX_TEXT_CHARS = 8192


def _visible(event: dict[str, Any]) -> dict[str, Any]:
    """The event as this device may show it: holder details only where allowed."""
    if holder_allowed(current_app) or not event.get("holder"):
        return event
    return {**event, "holder": None}


@bp.get("/inspector")
def index() -> str:
    port = port_of(current_app)
    recent = [_visible(e) for e in port.recent_verdicts(current_app.config[
        "APPLIANCE"].web.history_size)]
    return render_template("inspector.html", recent=recent,
                           current=recent[0] if recent else None)


@bp.get("/inspector/<event_id>")
def detail(event_id: str) -> str:
    event = port_of(current_app).get_verdict(event_id[:64])
    if event is None:
        abort(404)
    recent = [_visible(e) for e in port_of(current_app).recent_verdicts(
        current_app.config["APPLIANCE"].web.history_size)]
    return render_template("inspector.html", recent=recent, current=_visible(event))


@bp.route("/verify", methods=["GET", "POST"])
def verify() -> Any:
    if request.method == "GET":
        return render_template("verify.html", results=None, error=None)
    port = port_of(current_app)
    text = (request.form.get("text") or "").strip()
    upload = request.files.get("image")
    error = None
    results: list[dict[str, Any]] = []
    status = 200
    try:
        if upload is not None and upload.filename:
            data = upload.read(current_app.config["APPLIANCE"].web.max_upload_kb * 1024 + 1)
            if len(data) > current_app.config["APPLIANCE"].web.max_upload_kb * 1024:
                error, status = gettext("The picture is too large."), 413
            else:
                results = port.verify_image(data)
        elif text:
            if len(text) > MAX_TEXT_CHARS:
                text = text[:MAX_TEXT_CHARS]  # the verifier answers TOO_LARGE for it
            results = [port.verify_text(text)]
        else:
            error, status = gettext("Choose a picture or paste the text of a QR code."), 400
    except ImageReadError:
        error, status = gettext("That file is not a picture we can read."), 400
    except AuditUnavailable:
        log.error("verification refused: audit log unavailable")
        error = gettext("No verdict: the audit log cannot be written. Please ask staff.")
        status = 503
    return render_template("verify.html", results=[_visible(e) for e in results],
                           error=error), status
