"""Security of the screens: headers (CSP), CSRF tokens, admin login and its rate limit.

The admin password hash (werkzeug format, e.g. ``scrypt:...``) is read from
``{paths.secrets_dir}/{web.admin_password_file}`` at each login, so provisioning can change
it without a restart. Without that file, admin login is disabled.
"""

from __future__ import annotations

import collections
import functools
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, abort, current_app, g, redirect, request, session, url_for
from werkzeug.security import check_password_hash

log = logging.getLogger(__name__)

CSP = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
])
CSRF_FIELD = "csrf_token"
ADMIN_IDLE_S = 30 * 60


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


class LoginLimiter:
    """At most ``max_failures`` failed logins per ``window_s`` per client and in total."""

    def __init__(self, max_failures: int, window_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max(1, max_failures)
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, collections.deque[float]] = {}

    def _recent(self, key: str, now: float) -> collections.deque[float]:
        q = self._failures.setdefault(key, collections.deque())
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def retry_after(self, client: str) -> int:
        """Seconds until this client may try again; 0 when it may now."""
        now = self._clock()
        with self._lock:
            waits = []
            # per client, and a global bound (every kiosk client is 127.0.0.1 anyway)
            for key, limit in ((client, self.max_failures), ("*", self.max_failures * 4)):
                q = self._recent(key, now)
                if len(q) >= limit:
                    waits.append(q[0] + self.window_s - now)
            return int(max(waits) + 1) if waits else 0

    def failed(self, client: str) -> None:
        now = self._clock()
        with self._lock:
            self._recent(client, now).append(now)
            self._recent("*", now).append(now)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


def password_file(app: Flask) -> Path:
    cfg = app.config["APPLIANCE"]
    return Path(cfg.paths.secrets_dir) / cfg.web.admin_password_file


def check_admin_password(password: str) -> bool | None:
    """True or False; None when no admin password is provisioned (login disabled)."""
    path = password_file(current_app)
    try:
        stored = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not stored:
        return None
    try:
        return check_password_hash(stored, password)
    except (ValueError, TypeError):
        log.error("admin password file %s does not hold a werkzeug password hash", path)
        return None


def login_session() -> None:
    session.clear()  # a fresh session (and CSRF token) at login
    session["admin"] = True
    session["admin_seen"] = time.time()
    session.permanent = False


def is_admin() -> bool:
    if not session.get("admin"):
        return False
    seen = float(session.get("admin_seen", 0))
    if time.time() - seen > ADMIN_IDLE_S:
        session.pop("admin", None)
        return False
    session["admin_seen"] = time.time()
    return True


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not is_admin():
            return redirect(url_for("admin.login"))
        g.admin = True
        return view(*args, **kwargs)

    return wrapped
