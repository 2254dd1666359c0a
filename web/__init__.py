"""The appliance's screens (import name ``appliance_web``): walk-up, inspector, status, admin.

``create_app(port, config)`` builds the Flask application. It reads the kiosk only through
``port`` (``appliance.port.interface.KioskPort``), so the same app runs against the real kiosk,
the demo and tests. Holder details reach a page only where
``appliance.port.events.holder_details_allowed`` says so for this device's configuration.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask, render_template, request
from flask_babel import Babel
from jinja2 import pass_context
from werkzeug.exceptions import HTTPException

from appliance import __version__
from appliance.config import Config
from appliance.port.events import holder_details_allowed
from appliance.port.interface import KioskPort
from appliance_web import dates, security, system, views

LANGUAGES = {"th": "ไทย", "en": "English"}
LANG_COOKIE = "lang"


def select_locale() -> str:
    from flask import current_app

    asked = request.args.get("lang") or request.cookies.get(LANG_COOKIE)
    if asked in LANGUAGES:
        return asked
    default = current_app.config["APPLIANCE"].web.language
    return default if default in LANGUAGES else "en"


def per_render(f: Callable[..., Any]) -> Callable[..., Any]:
    """``f`` as a filter Jinja runs at every render: Jinja folds a filter of constants
    (``"PASS"|outcome_word``) into the compiled, cached template unless it takes the render
    context, which froze the first request's language for every later one (issue 21)."""

    @pass_context
    def filter_(_context: Any, *args: Any, **kwargs: Any) -> Any:
        return f(*args, **kwargs)

    filter_.__name__ = getattr(f, "__name__", "filter")
    return filter_


def create_app(
    port: KioskPort,
    config: Config,
    *,
    secret_key: bytes | None = None,
    system_info: Callable[[], dict[str, Any]] | None = None,
    testing: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> Flask:
    """The screens over ``port``. ``clock`` (monotonic seconds) times session idleness and
    login delays; tests pass a fake one."""
    from appliance_web.live import LiveFanout
    from appliance_web.sessions import SessionStore
    from appliance_web.throttle import LoginThrottle
    from appliance_web.uploads import InMemoryRequest, request_limit

    app = Flask(__name__)
    app.request_class = InMemoryRequest  # uploads never touch the disk
    web = config.web
    app.config.update(
        APPLIANCE=config,
        # A fresh key per start: admin sessions end with the process, nothing to store.
        SECRET_KEY=secret_key or secrets.token_bytes(32),
        TESTING=testing,
        TRUSTED_HOSTS=list(web.trusted_hosts),
        MAX_CONTENT_LENGTH=request_limit(web.max_upload_kb),
        MAX_FORM_MEMORY_SIZE=1024 * 1024,
        SESSION_COOKIE_NAME="appliance_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        # Secure: browsers keep Secure cookies on http://127.0.0.1 and localhost (secure
        # contexts); another address must be served over TLS for the login to work.
        SESSION_COOKIE_SECURE=True,
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=30),
        BABEL_DEFAULT_LOCALE=web.language if web.language in LANGUAGES else "en",
        BABEL_DEFAULT_TIMEZONE="Asia/Bangkok",
        JSON_AS_ASCII=False,
        # How often a kiosk screen asks whether the kiosk can verify (out-of-service).
        KIOSK_HEALTH_EVERY_S=5.0,
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    Babel(app, locale_selector=select_locale)
    app.extensions["kiosk_port"] = port
    app.extensions["system_info"] = system_info or (lambda: system.snapshot(config.paths.state_dir))
    app.extensions["login_throttle"] = LoginThrottle(
        free=web.login_max_failures,
        base_s=web.login_delay_base_s,
        cap_s=web.login_delay_cap_s,
        forget_after_s=web.login_window_s,
        clock=clock,
    )
    app.extensions["sessions"] = SessionStore(
        {"admin": web.admin_idle_s, "inspector": web.inspector_idle_s}, clock=clock
    )
    # One subscription to the kiosk for all live screens of this process.
    app.extensions["live_events"] = LiveFanout(port, web.max_event_streams)
    security.install(app)

    filters: dict[str, Callable[..., Any]] = dict(
        qr=views.qr_text,
        when=views.when,
        duration=views.duration,
        licence_date=views.licence_date,
        outcome_word=views.outcome_word,
        reason_text=views.reason_text,
        outcome_class=views.outcome_class,
        signed_date=dates.signed_date,
        ext_label=views.ext_label,
        source_name=views.source_name,
        throttle_flag=views.throttle_flag,
        error_title=views.error_title,
    )
    app.jinja_env.filters.update({name: per_render(f) for name, f in filters.items()})
    app.jinja_env.tests["disagreeing_dates"] = dates.dates_disagree

    app.jinja_env.globals["photo_data_url"] = views.photo_data_url

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {
            "LANGUAGES": LANGUAGES,
            "current_lang": select_locale(),
            "version": __version__,
            "device": config.device,
            "show_holder": holder_allowed(app) and security.has_role("inspector"),
            "is_admin": security.is_admin(),
            "is_inspector": security.has_role("inspector"),
        }

    from appliance_web import admin, inspector, status, walkup

    app.register_blueprint(walkup.bp)
    app.register_blueprint(inspector.bp)
    app.register_blueprint(status.bp)
    app.register_blueprint(admin.bp)

    @app.errorhandler(HTTPException)
    def _error(e: HTTPException) -> Any:
        if request.path.startswith(("/api/", "/healthz", "/metrics")):
            return {"error": e.name, "status": e.code}, e.code
        try:
            return render_template("error.html", error=e), e.code
        except Exception:  # noqa: BLE001 - the error page must answer even when its template fails
            return f"{e.code} {e.name}", e.code, {"Content-Type": "text/plain; charset=utf-8"}

    return app


def holder_allowed(app: Flask) -> bool:
    config: Config = app.config["APPLIANCE"]
    return holder_details_allowed(config.device.mode, config.web.show_holder_details)


def port_of(app: Flask) -> KioskPort:
    return app.extensions["kiosk_port"]
