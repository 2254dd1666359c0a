"""The hub's pages in Thai or English: Flask-Babel over the catalogue in ``translations/``.

``?lang=th`` or ``?lang=en`` picks the language and a cookie keeps it (``auth.page_headers``
sets it); otherwise the browser's Accept-Language decides, and English is the fallback.
Code marks its strings with ``flask_babel.gettext``/``lazy_gettext``, templates with
``_()``; ``make translations`` extracts them into ``translations/th/LC_MESSAGES/messages.po``
(the one place the Thai is written) and compiles the committed ``messages.mo``, the same
mechanism as the device's screens (``appliance_web``).
"""

from __future__ import annotations

from flask import Flask, request
from flask_babel import Babel, get_locale

LANGUAGES = {"th": "ไทย", "en": "English"}
COOKIE = "hub_lang"


def select_locale() -> str:
    """The language of this request (see module doc)."""
    asked = request.args.get("lang") or request.cookies.get(COOKIE)
    if asked in LANGUAGES:
        return asked
    return request.accept_languages.best_match(["en", "th"], default="en") or "en"


def current() -> str:
    """This request's language code, for ``<html lang>`` and the language links."""
    return str(get_locale() or "en")


def install(app: Flask) -> None:
    """Flask-Babel on the hub's app, once: the screens and the fleet page both ask, and
    each app gets its own instance (Flask-Babel caches translations per instance)."""
    if "babel" in app.extensions:
        return
    Babel(app, locale_selector=select_locale)
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
