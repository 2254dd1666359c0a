"""Administration behind a login: sync and upload now, audit export, accepted licence types,
device identity. Every POST carries a CSRF token (checked in ``security``)."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext

from appliance.core.errors import ApplianceError
from appliance.port.errors import InvalidTypes, PortUnavailable
from appliance.port.interface import check_accepted_types
from appliance_web import logins, port_of, security

log = logging.getLogger(__name__)
bp = Blueprint("admin", __name__, url_prefix="/admin")
BANGKOK = timezone(timedelta(hours=7), "ICT")  # export days are Thai days (no DST)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    return logins.login("admin", "admin.index")


@bp.post("/logout")
def logout() -> Any:
    return logins.logout()


@bp.get("/")
@security.admin_required
def index() -> str:
    port = port_of(current_app)
    status = port.status()
    return render_template(
        "admin.html",
        s=status,
        accepted=port.accepted_types(),
        config=current_app.config["APPLIANCE"],
    )


def _action(name: str) -> Any:
    """Start a sync or an upload; the flash is ours, in the viewer's language (the kiosk's
    own message is English and goes to the log)."""
    from appliance_web.errors import KioskNotRunning

    port = port_of(current_app)
    try:
        message = port.trigger_sync() if name == "sync" else port.trigger_upload()
        log.info("admin %s: %s", name, message)
        flash(
            gettext("Trust-data sync requested; it starts within seconds.")
            if name == "sync"
            else gettext("Audit upload requested; it starts within seconds."),
            "ok",
        )
    except KioskNotRunning:
        flash(gettext("The kiosk program is not running, so nothing was started."), "error")
    except PortUnavailable as e:
        log.warning("admin %s unavailable: %s", name, e)
        flash(
            gettext("Trust-data sync is not set up on this device.")
            if name == "sync"
            else gettext("Audit upload is not set up on this device."),
            "error",
        )
    except ApplianceError as e:  # any other fault the port reports (bridge, request file)
        log.warning("admin %s failed: %s", name, e)
        flash(gettext("Could not start it: %(error)s", error=str(e)), "error")
    return redirect(url_for("admin.index"))


@bp.post("/sync")
@security.admin_required
def sync() -> Any:
    return _action("sync")


@bp.post("/upload")
@security.admin_required
def upload() -> Any:
    return _action("upload")


def _day(value: str | None, end: bool = False) -> float | None:
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=BANGKOK)
    except ValueError:
        return None
    return day.timestamp() + (86400 if end else 0)


@bp.post("/export")
@security.admin_required
def export() -> Any:
    since, until = _day(request.form.get("since")), _day(request.form.get("until"), end=True)
    try:
        data = port_of(current_app).export_audit(since, until)
    except PortUnavailable as e:
        log.warning("admin export unavailable: %s", e)
        flash(gettext("The audit records cannot be exported from this screen right now."), "error")
        return redirect(url_for("admin.index"))
    name = "audit-{}.jsonl".format(datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    return Response(
        data,
        mimetype="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.post("/types")
@security.admin_required
def types() -> Any:
    raw = request.form.get("types", "")
    chosen = [t for t in re.split(r"[\s,]+", raw) if t]
    try:
        check_accepted_types(chosen)  # the same rule as the kiosk socket's
    except InvalidTypes:
        flash(
            gettext("Licence types are short names of letters, digits, '.', '_' or '-'."), "error"
        )
        return redirect(url_for("admin.index"))
    port_of(current_app).set_accepted_types(chosen)
    flash(gettext("Accepted licence types saved."), "ok")
    return redirect(url_for("admin.index"))
