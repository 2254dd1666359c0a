"""One login and logout flow for both roles (admin, inspector).

A POST with the right password starts a server-side session for the role and goes to
``next`` (same-site paths only). Failed tries slow this client down (``throttle``); a try
during the wait is refused with 429 and ``Retry-After`` without checking the password.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, redirect, render_template, request, url_for
from flask_babel import gettext

from appliance_web import security
from appliance_web.redirects import safe_next
from appliance_web.throttle import LoginThrottle

log = logging.getLogger(__name__)
MAX_PASSWORD_CHARS = 1024


def _page(role: str, error: str | None, status: int = 200) -> Any:
    title = gettext("Admin login") if role == "admin" else gettext("Inspector login")
    action = url_for(f"{role}.login", next=request.args.get("next") or None)
    return render_template("admin_login.html", error=error, title=title, action=action), status


def login(role: str, home_endpoint: str) -> Any:
    """The login view of ``role``; success goes to ``next`` or ``home_endpoint``."""
    if request.method == "GET":
        return _page(role, None)
    throttle: LoginThrottle = current_app.extensions["login_throttle"]
    client = request.remote_addr or "?"
    wait = throttle.retry_after(client)
    if wait:
        error = gettext("Too many failed attempts. Try again in %(n)d seconds.", n=wait)
        response = current_app.make_response(_page(role, error, 429))
        response.headers["Retry-After"] = str(wait)
        return response
    ok = security.check_password(role, request.form.get("password", "")[:MAX_PASSWORD_CHARS])
    if ok is None:
        if role == "admin":
            error = gettext("Admin login is disabled: no admin password is provisioned.")
        else:
            error = gettext("Inspector login is disabled: no inspector password is provisioned.")
        return _page(role, error, 403)
    if not ok:
        throttle.failed(client)
        log.warning("failed %s login from %s", role, client)
        return _page(role, gettext("Wrong password."), 401)
    throttle.succeeded(client)
    security.login_session(role)
    log.info("%s login from %s", role, client)
    return redirect(safe_next(request.args.get("next"), url_for(home_endpoint)))


def logout() -> Any:
    security.logout_session()
    return redirect(url_for("walkup.home"))
