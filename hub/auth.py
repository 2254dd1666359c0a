"""Logins to the hub's screens for two roles, admin and auditor.

Accounts and their scrypt hashes come from the users file named in the settings
(``auth_users``). A login form carries a CSRF token bound to a cookie (double submit); once
logged in, every form carries the session's own token (``auth_sessions``). Sessions live in
the database and logout ends them for every worker. Failed logins slow down the client
that failed (``appliance.webauth.throttle``'s rule, counted in the database by
``auth_throttle`` so all workers share it), never anyone else and never into a lockout;
behind nginx the client is the address nginx saw (``trusted_proxies`` in ``create_app``).
``next`` goes to same-origin paths only. Logins, failed ones too, go to the access log.
"""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext

from appliance.core.errors import SyncError
from appliance.webauth.passwords import MAX_PASSWORD_CHARS
from appliance.webauth.redirects import safe_next
from appliance.webauth.throttle import ThrottlePolicy
from appliance_hub import auth_access, i18n
from appliance_hub.auth_sessions import HubSession, HubSessions
from appliance_hub.auth_throttle import StoreThrottle
from appliance_hub.auth_users import HubUsers

log = logging.getLogger(__name__)

SESSION_COOKIE = "__Host-hub_session"
LOGIN_COOKIE = "__Host-hub_login"
CSRF_FIELD = "csrf_token"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)

bp = Blueprint("auth", __name__)


@dataclass
class HubLogins:
    """The hub's login settings; ``clock`` is wall-clock epoch seconds (shared by workers)."""

    users: HubUsers
    clock: Callable[[], float]
    idle_s: dict[str, float] = field(default_factory=lambda: {"admin": 900.0, "auditor": 1800.0})
    max_age_s: float = 8 * 3600.0
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)


def install(app: Flask, store: Any, logins: HubLogins) -> None:
    """Add the login pages and the session helpers to the hub's app."""
    throttle = StoreThrottle(store, logins.clock, logins.throttle)
    app.extensions["hub_logins"] = {
        "settings": logins,
        "throttle": throttle,
        "store": store,
        "sessions": HubSessions(store, logins.idle_s, logins.max_age_s, logins.clock),
    }
    app.config.setdefault("MAX_FORM_MEMORY_SIZE", 64 * 1024)
    i18n.install(app)
    app.register_blueprint(bp)


def _ext() -> dict[str, Any]:
    return current_app.extensions["hub_logins"]


def client() -> str:
    return request.remote_addr or "?"


def current_session() -> HubSession | None:
    """This request's live session (looked up once), or None; a removed account's or a
    demoted account's session ends here."""
    if "hub_session" not in g:
        found = _ext()["sessions"].get(request.cookies.get(SESSION_COOKIE))
        if found is not None and _ext()["settings"].users.role(found.user) != found.role:
            _ext()["sessions"].end_user(found.user)
            found = None
        g.hub_session = found
    return g.hub_session


def security_headers(response: Any, csp: str = CSP) -> Any:
    """Nothing cached, framed, sniffed or loaded from elsewhere (every hub page)."""
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def page_headers(response: Any) -> Any:
    """Headers of the login and auditor pages, and the language the viewer chose."""
    security_headers(response)
    asked = request.args.get("lang")
    if asked in i18n.LANGUAGES:
        response.set_cookie(
            i18n.COOKIE, asked, max_age=365 * 86400, samesite="Strict", secure=True, httponly=True
        )
    return response


def access(action: str, query: dict[str, Any], user: str | None = None) -> None:
    """Log this access by the session's account (or ``user``, of a failed login); refuse
    the request when it cannot be logged."""
    session = current_session()
    ext = _ext()
    who = user or (session.user if session else "?")
    try:
        auth_access.record(
            ext["store"],
            ext["settings"].clock(),
            who,
            session.role if session else "-",
            client(),
            action,
            query,
        )
    except (SyncError, *ext["store"]._errors()) as e:  # no unlogged access
        log.error("access log not written, %s refused: %s", action, type(e).__name__)
        abort(503, description="access log unavailable")


def check_csrf() -> None:
    """A POST from a logged-in page must carry the session's token."""
    session = current_session()
    given = request.form.get(CSRF_FIELD, "")
    if session is None or not hmac.compare_digest(session.csrf.encode(), given.encode()):
        abort(400, description="csrf")


def login_required(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Redirect to the login page without a session; 403 for a session of another role."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            session = current_session()
            if session is None:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if session.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate


def _login_page(error: str | None, status: int, token: str | None = None) -> Any:
    token = token or secrets.token_urlsafe(32)
    action = url_for("auth.login", next=request.args.get("next") or None)
    response = current_app.make_response(
        (
            render_template(
                "auditor/login.html",
                error=error,
                action=action,
                login_csrf=token,
                lang=i18n.current(),
            ),
            status,
        )
    )
    response.set_cookie(
        LOGIN_COOKIE, token, secure=True, httponly=True, samesite="Strict", path="/"
    )
    return page_headers(response)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        return _login_page(None, 200)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    given = request.form.get(CSRF_FIELD, "")
    if len(expected) < 32 or not hmac.compare_digest(expected.encode(), given.encode()):
        abort(400, description="csrf")
    ext = _ext()
    throttle: StoreThrottle = ext["throttle"]
    try:  # this try counted now, in every worker's view, before the password is checked
        wait = throttle.reserve(client())
    except (SyncError, *ext["store"]._errors()) as e:
        log.error("login throttle unavailable: %s", type(e).__name__)
        abort(503, description="login unavailable")
    if wait:
        response = _login_page(
            gettext("Too many failed attempts. Try again in %(n)d seconds.", n=wait), 429
        )
        response.headers["Retry-After"] = str(wait)
        return response
    users: HubUsers = ext["settings"].users
    name = request.form.get("name", "")[:64]
    account = users.authenticate(name, request.form.get("password", "")[:MAX_PASSWORD_CHARS])
    if account is None:  # already counted by reserve
        known = users.role(name.strip().lower()) is not None
        access("login_failed", {}, user=name.strip().lower() if known else "?")
        log.warning("failed hub login from %s", client())
        return _login_page(gettext("Wrong account or password."), 401)
    throttle.succeeded(client())
    ext["sessions"].end(request.cookies.get(SESSION_COOKIE))
    sid, session = ext["sessions"].start(account.name, account.role)
    g.hub_session = session
    access("login", {})
    log.info("hub %s login from %s", account.role, client())
    response = redirect(safe_next(request.args.get("next"), url_for("audit_view.logs")))
    response.set_cookie(
        SESSION_COOKIE, sid, secure=True, httponly=True, samesite="Strict", path="/"
    )
    response.delete_cookie(LOGIN_COOKIE, path="/", secure=True, samesite="Strict")
    return page_headers(response)


@bp.post("/logout")
def logout() -> Any:
    check_csrf()
    access("logout", {})
    _ext()["sessions"].end(request.cookies.get(SESSION_COOKIE))
    response = redirect(url_for("auth.login"))
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, samesite="Strict")
    return page_headers(response)
