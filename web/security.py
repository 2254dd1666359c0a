"""Security of the screens: headers (CSP), CSRF tokens, the admin and inspector roles.

Each role's password hash (werkzeug format, e.g. ``scrypt:...``) is read from
``{paths.secrets_dir}/{web.admin_password_file}`` or ``{web.inspector_password_file}`` at
each login, so provisioning can change it without a restart. Without that file, that
role's login is disabled. Logged-in sessions live on the server (``sessions``); failed
logins slow down per client (``throttle``).
"""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, abort, current_app, g, redirect, request, session, url_for
from werkzeug.security import check_password_hash

from appliance_web.sessions import SessionStore

log = logging.getLogger(__name__)

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
CSRF_FIELD = "csrf_token"


def install(app: Flask) -> None:
    app.before_request(_check_csrf)
    app.after_request(_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token


def _headers(response: Any) -> Any:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if request.endpoint != "static":
        # Pages may show personal data: never cached, never stored.
        response.headers["Cache-Control"] = "no-store"
    return response


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return str(token)


def _check_csrf() -> None:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    expected = session.get("csrf")
    given = request.form.get(CSRF_FIELD) or request.headers.get("X-CSRF-Token") or ""
    if not expected or not hmac.compare_digest(str(expected), str(given)):
        abort(400, description="csrf")


ROLES = ("admin", "inspector")


def password_file(app: Flask, role: str = "admin") -> Path:
    cfg = app.config["APPLIANCE"]
    name = cfg.web.admin_password_file if role == "admin" else cfg.web.inspector_password_file
    return Path(cfg.paths.secrets_dir) / name


def check_password(role: str, password: str) -> bool | None:
    """True or False; None when no password is provisioned for ``role`` (login disabled)."""
    path = password_file(current_app, role)
    try:
        stored = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not stored:
        return None
    try:
        return check_password_hash(stored, password)
    except (ValueError, TypeError):
        log.error("%s password file %s does not hold a werkzeug password hash", role, path)
        return None


def check_admin_password(password: str) -> bool | None:
    """True or False; None when no admin password is provisioned (login disabled)."""
    return check_password("admin", password)


def sessions() -> SessionStore:
    return current_app.extensions["sessions"]


def login_session(role: str = "admin") -> None:
    """A fresh session (new id and CSRF token) for ``role``, recorded on the server."""
    sessions().end(session.get("sid"))
    session.clear()
    session["sid"] = sessions().start(role)
    session["role"] = role
    session.permanent = False


def logout_session() -> None:
    """End the session on the server: a copy of the cookie is worth nothing afterwards."""
    sessions().end(session.get("sid"))
    session.clear()


def current_role(*, touch: bool = True) -> str | None:
    """The role of this request's live session, or None (cached for the request)."""
    if "role" not in g:
        g.role = sessions().role(session.get("sid"), touch=touch)
        if g.role is None and "sid" in session:
            session.pop("sid", None)
            session.pop("role", None)
    return g.role


def has_role(role: str) -> bool:
    """An admin may do what an inspector may."""
    actual = current_role()
    return actual == role or (actual == "admin" and role in ROLES)


def is_admin() -> bool:
    return has_role("admin")


def role_required(
    role: str, login_endpoint: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not has_role(role):
                return redirect(url_for(login_endpoint, next=request.full_path.rstrip("?")))
            return view(*args, **kwargs)

        return wrapped

    return decorate


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not is_admin():
            return redirect(url_for("admin.login"))
        g.admin = True
        return view(*args, **kwargs)

    return wrapped
