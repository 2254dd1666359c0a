"""The inspector's view (details and reasons of this session's verdicts) and verify by
image upload or pasted text, which gives the verdict the camera would (same service, audited).

The inspector view needs the inspector (or admin) login; holder details reach a page only
where the device allows them and for a logged-in inspector. One picture is decoded at a
time per web process (a second upload meanwhile answers 503): pictures are capped in bytes
and pixels, but two at once would still double the peak memory on a 1 GB Pi.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import gettext

from appliance.core.errors import AuditUnavailable, ImageReadError, ImageTooLarge
from appliance_web import holder_allowed, logins, port_of, security

log = logging.getLogger(__name__)
bp = Blueprint("inspector", __name__)
MAX_TEXT_CHARS = 8192
BUSY_RETRY_S = 5
_decoding = threading.BoundedSemaphore(1)


def show_holder_here() -> bool:
    """Holder details for this request: the device allows them and an inspector is in."""
    return holder_allowed(current_app) and security.has_role("inspector")


def _visible(event: dict[str, Any]) -> dict[str, Any]:
    """The event as this request may show it: holder details only where allowed."""
    if not event.get("holder") or show_holder_here():
        return event
    return {**event, "holder": None}


@bp.route("/inspector/login", methods=["GET", "POST"])
def login() -> Any:
    return logins.login("inspector", "inspector.index")


@bp.post("/inspector/logout")
def logout() -> Any:
    return logins.logout()


@bp.get("/inspector")
@security.role_required("inspector", "inspector.login")
def index() -> str:
    port = port_of(current_app)
    recent = [
        _visible(e) for e in port.recent_verdicts(current_app.config["APPLIANCE"].web.history_size)
    ]
    return render_template("inspector.html", recent=recent, current=recent[0] if recent else None)


@bp.get("/inspector/<event_id>")
@security.role_required("inspector", "inspector.login")
def detail(event_id: str) -> str:
    event = port_of(current_app).get_verdict(event_id[:64])
    if event is None:
        abort(404)
    recent = [
        _visible(e)
        for e in port_of(current_app).recent_verdicts(
            current_app.config["APPLIANCE"].web.history_size
        )
    ]
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
            elif not _decoding.acquire(blocking=False):
                error, status = (
                    gettext("Another picture is being checked. Try again in a moment."),
                    503,
                )
            else:
                try:
                    results = port.verify_image(data)
                finally:
                    _decoding.release()
        elif text:
            if len(text) > MAX_TEXT_CHARS:
                text = text[:MAX_TEXT_CHARS]  # the verifier answers TOO_LARGE for it
            results = [port.verify_text(text)]
        else:
            error, status = gettext("Choose a picture or paste the text of a QR code."), 400
    except ImageTooLarge:
        error, status = gettext("The picture is too large."), 413
    except ImageReadError:
        error, status = gettext("That file is not a picture we can read."), 400
    except AuditUnavailable:
        log.error("verification refused: audit log unavailable")
        error = gettext("No verdict: the audit log cannot be written. Please ask staff.")
        status = 503
    response = current_app.make_response(
        (
            render_template("verify.html", results=[_visible(e) for e in results], error=error),
            status,
        )
    )
    if status == 503 and error is not None and not results:
        response.headers["Retry-After"] = str(BUSY_RETRY_S)
    return response
