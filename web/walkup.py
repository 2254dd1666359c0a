"""The walk-up screens (blueprint ``walkup``): the start page, the language switch, and the
citizen's screen at ``/kiosk``: idle prompt, then the verdict in large type; live by
Server-Sent Events (``/kiosk/events``, which the inspector's page reads too).

The page carries all three verdict panels pre-rendered (words, icon, colour); the script
(static/kiosk.js, no inline script) shows one and fills the reason and, where allowed,
holder details with ``textContent`` only. The event stream sends texts already translated
into the viewer's language.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
)
from flask_babel import gettext

from appliance.core.reasons import Reason
from appliance_web import (
    LANG_COOKIE,
    LANGUAGES,
    dates,
    faults,
    holder_allowed,
    mdoc_screens,
    port_of,
    security,
    views,
)
from appliance_web.errors import TooManyStreams
from appliance_web.live import LiveFanout
from appliance_web.redirects import safe_next

bp = Blueprint("walkup", __name__)
BUSY_RETRY_S = 10


@bp.get("/")
def home() -> str:
    return render_template("home.html")


def _blocking_fault() -> faults.Fault | None:
    return faults.blocking(port_of(current_app).status())


@bp.get("/kiosk")
def screen() -> str:
    """The citizen's screen; out of service at once (no script needed) while the kiosk
    cannot verify, so nobody is invited to show a code that nothing will check."""
    cfg = current_app.config["APPLIANCE"]
    return render_template(
        "kiosk.html",
        idle_after_s=cfg.web.idle_after_s,
        fault=_blocking_fault(),
        health_every_s=current_app.config["KIOSK_HEALTH_EVERY_S"],
        session_max_s=cfg.mdoc.session_timeout_s,
    )


@bp.get("/kiosk/health")
def health() -> Any:
    """The blocking fault, if any, in the viewer's language: the kiosk script polls it."""
    fault = _blocking_fault()
    response = jsonify(
        {"fault": fault.code if fault else None, "text": fault.text if fault else None}
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/lang/<code>")
def set_language(code: str) -> Response:
    # Same-site paths only: no open redirect through the language switch.
    response = make_response(redirect(safe_next(request.args.get("next"))))
    if code in LANGUAGES:
        response.set_cookie(
            LANG_COOKIE, code, max_age=365 * 86400, samesite="Strict", httponly=True
        )
    return response


def screen_view(
    event: dict[str, Any],
    reasons: dict[str, str],
    words: dict[str, str],
    show_holder: bool,
    signed_date: Callable[[Any], str],
) -> dict[str, Any]:
    """What the kiosk script needs of one event, in the viewer's language."""
    outcome = str(event.get("outcome"))
    view: dict[str, Any] = {
        "id": event.get("id"),
        "outcome": views.outcome_class(outcome),
        "word": words.get(outcome, outcome),
        "reason": reasons.get(str(event.get("reason")), reasons["?"]),
        "code": str(event.get("reason")),
        "live": bool(event.get("live")),
    }
    holder = event.get("holder") if show_holder else None
    if holder:
        view["holder"] = {
            "name": views.qr_text(holder.get("nm")),
            "name_latin": views.qr_text(holder.get("nml")),
            "type": views.qr_text(event.get("typ"), 40),
            "classes": views.qr_text(", ".join(str(c) for c in holder.get("cls") or []), 80),
            # the signed expiry: the printed vu is display data and may disagree
            "valid_until": signed_date(holder.get("exp")),
            "photo": views.photo_data_url(event),
        }
    return view


@bp.get("/kiosk/events")
def events() -> Response:
    """Live verdicts for one screen, from the process's one subscription (``live``).

    Holder details only for a logged-in inspector on a device that shows them, and only
    while that session lives: logout or idleness ends them mid-stream. Past
    ``web.max_event_streams`` open streams (or a remote address's share): 503 with
    ``Retry-After``; the display on loopback is always served (``live``).
    """
    fanout: LiveFanout = current_app.extensions["live_events"]
    role = "inspector"
    sid = session.get("sid")
    show_holder = holder_allowed(current_app) and security.has_role(role)
    # Translate now, in the request: the stream outlives the request context.
    reasons = {str(r): views.reason_text(r) for r in Reason}
    reasons["?"] = gettext("Unknown reason.")
    words = {o: views.outcome_word(o) for o in ("PASS", "FAIL", "UNVERIFIABLE")}
    signed_date = dates.signed_date_formatter()
    mdoc_words = mdoc_screens.texts()
    try:
        stream = fanout.subscribe(request.remote_addr or "")
    except TooManyStreams:
        return Response(
            "busy: too many live screens\n",
            status=503,
            mimetype="text/plain",
            headers={"Retry-After": str(BUSY_RETRY_S)},
        )
    alive = current_app.extensions["sessions"]

    def generate() -> Iterator[str]:
        try:
            yield "retry: 2000\n\n"
            for event in stream:
                if event is None:
                    yield ": keep-alive\n\n"
                    continue
                step = mdoc_screens.state_message(event)  # an mDL session's progress
                if step is not None:
                    yield step
                    continue
                if event.get("type") != "verdict" or not event.get("scanned"):
                    continue  # a web submission is its submitter's, not the walk-up screen's
                holder = show_holder and alive.role(sid, touch=False) in (role, "admin")
                view = screen_view(event, reasons, words, holder, signed_date)
                view.update(mdoc_screens.verdict_extras(event, mdoc_words))
                data = json.dumps(view, ensure_ascii=True)
                yield f"event: verdict\ndata: {data}\n\n"
        finally:
            stream.close()

    response = Response(
        generate(),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
    response.call_on_close(stream.close)  # also when the body was never iterated
    return response
