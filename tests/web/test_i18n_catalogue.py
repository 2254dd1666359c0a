"""One translation mechanism for the device's screens and the hub's: the .po catalogue.

Each part (``web/``, ``hub/``) has a ``babel.cfg`` and ``translations/th/LC_MESSAGES/
messages.po``, the one source of its Thai, and the ``messages.mo`` compiled from it and
committed (``make translations``: pybabel extract, update, compile). These tests fail on a
string marked in code or a template that the catalogue lacks or leaves untranslated, a stale
``.mo``, Thai kept in Python beside the catalogue, and a page shown in the wrong language
whichever language was rendered first (a filter folded into a cached template once showed
the English /status legend in Thai after a Thai render).
"""

from __future__ import annotations

import html as htmllib
import re
import subprocess
import sys
from pathlib import Path

import pytest
from audit_support import Scenario, device
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from hub_auditor_support import ADMIN, ADMIN_PW, T0, get, login, make_hub, upload
from hub_fleet_support import heartbeat_fields, signed
from web_support import ISSUER_NAME, form_token, login_admin, login_inspector, make_app, make_kit

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("web", "hub")
THAI = re.compile(r"[\u0e00-\u0e7f]+")
# Thai the code may hold outside a catalogue: each language's name in its own language
# (the language links), and the CLDR month abbreviations of web/dates.py (calendar data,
# checked against Babel's in tests/security/test_sec_screen_memory.py).
OWN_NAME = "ไทย"
CALENDAR_DATA = {"web/dates.py"}


def _catalogue(part: str) -> dict[str, object]:
    with (ROOT / part / "translations" / "th" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return {m.id: m for m in read_po(f) if m.id}


def _extracted(part: str, tmp_path: Path) -> set[str]:
    """What the part marks for translation, extracted as ``make translations`` does."""
    pot = tmp_path / f"{part}.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "lazy_gettext",
            "--no-location",
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT / part,
        check=True,
        capture_output=True,
        timeout=120,
    )
    with pot.open("rb") as f:
        return {m.id for m in read_po(f) if m.id}


@pytest.mark.parametrize("part", PARTS)
def test_every_marked_string_has_thai_in_the_catalogue(part: str, tmp_path: Path) -> None:
    wanted = _extracted(part, tmp_path)
    assert len(wanted) > 40, "extraction found the part's strings"
    po = _catalogue(part)
    missing = sorted(map(str, wanted - set(po)))
    untranslated = sorted(
        str(k) for k, m in po.items() if m.fuzzy or not THAI.search(str(m.string))
    )  # type: ignore[attr-defined]
    unused = sorted(map(str, set(po) - wanted))
    hint = "run `make translations`, then translate the new entries of the .po"
    assert missing == [], f"marked but not in {part}'s catalogue ({hint}): {missing}"
    assert untranslated == [], f"no Thai in {part}'s catalogue: {untranslated}"
    assert unused == [], f"in {part}'s catalogue but marked nowhere ({hint}): {unused}"


@pytest.mark.parametrize("part", PARTS)
def test_committed_mo_is_compiled_from_the_po(part: str) -> None:
    folder = ROOT / part / "translations" / "th" / "LC_MESSAGES"
    po = {k: m.string for k, m in _catalogue(part).items()}  # type: ignore[attr-defined]
    with (folder / "messages.mo").open("rb") as f:
        mo = {m.id: m.string for m in read_mo(f) if m.id}
    assert mo == po, f"{part}'s messages.mo is stale: run `make translations`"


def test_no_thai_outside_the_catalogues() -> None:
    """Was: web/translations/th_messages.py overwrote the .po, and the hub kept two tables
    of its own (audit_view_i18n.py, fleet_page.py)."""
    found = {}
    for part in PARTS:
        for path in sorted((ROOT / part).rglob("*")):
            rel = path.relative_to(ROOT).as_posix()
            if path.suffix not in (".py", ".html", ".js", ".css") or rel in CALENDAR_DATA:
                continue
            thai = set(THAI.findall(path.read_text(encoding="utf-8"))) - {OWN_NAME}
            if thai:
                found[rel] = sorted(thai)
    assert found == {}


# -- pages in both languages, in both orders ------------------------------------------------


def _texts(page: str) -> list[str]:
    """The page's text nodes and labelling attributes, unescaped."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    labels = re.findall(r'(?:alt|aria-label|title|placeholder|value)="([^"]*)"', body)
    nodes = re.split(r"<[^>]+>", body)
    return [t for t in (htmllib.unescape(x).strip() for x in [*nodes, *labels]) if t]


def _check_pages(part: str, pages: dict[str, dict[str, str]], data: list[str]) -> None:
    """English pages show no Thai but ``data`` (names, QR text) and the Thai link; a Thai
    page shows the Thai of every catalogue label its English twin shows."""
    po = {str(k): str(m.string) for k, m in _catalogue(part).items()}  # type: ignore[attr-defined]
    wrong, untranslated = {}, {}
    for name, by_lang in pages.items():
        english = " | ".join(_texts(by_lang["en"]))
        for value in [*data, OWN_NAME]:
            english = english.replace(value, " ")
        if THAI.search(english):
            wrong[name] = THAI.findall(english)
        thai_page = htmllib.unescape(by_lang["th"])
        labels = [t for t in _texts(by_lang["en"]) if t in po and "%" not in t]
        assert labels or name.endswith("-empty"), f"{name}: no catalogue label to compare"
        lost = [t for t in labels if po[t] not in thai_page]
        if lost:
            untranslated[name] = lost
    assert wrong == {}, f"Thai on English {part} pages: {wrong}"
    assert untranslated == {}, f"English labels without their Thai on {part} pages: {untranslated}"


def _web_pages(tmp_path: Path, order: tuple[str, str]) -> dict[str, dict[str, str]]:
    """Every screen, rendered by one app in ``order`` (a fresh app per order)."""
    (tmp_path / "inspector").mkdir()
    (tmp_path / "admin").mkdir()
    kit = make_kit(tmp_path / "inspector", mode="inspector", language=order[0])
    kit.service.audit_fault = "disk full"
    client = make_app(kit).test_client()
    login_inspector(client)
    kit.port.verify_text(kit.pass_text())
    admin_kit = make_kit(tmp_path / "admin", language=order[0])
    admin = make_app(admin_kit).test_client()
    login_admin(admin)
    pages: dict[str, dict[str, str]] = {}
    for lang in order:
        for path in (
            "/",
            "/kiosk",
            "/status",
            "/verify",
            "/inspector",
            "/admin/login",
            "/inspector/login",
            "/no-such-page",
        ):
            pages.setdefault(path, {})[lang] = client.get(f"{path}?lang={lang}").get_data(
                as_text=True
            )
        pages.setdefault("/admin/", {})[lang] = admin.get(f"/admin/?lang={lang}").get_data(
            as_text=True
        )
    for lang in order:  # after every GET: the result changes the inspector's last verdict
        pages.setdefault("verify-result", {})[lang] = client.post(
            f"/verify?lang={lang}",
            data={"csrf_token": form_token(client, "/verify"), "text": kit.fail_text()},
        ).get_data(as_text=True)
    return pages


@pytest.mark.parametrize("order", [("en", "th"), ("th", "en")])
def test_web_pages_in_each_language_whichever_comes_first(
    tmp_path: Path, order: tuple[str, str]
) -> None:
    pages = _web_pages(tmp_path, order)
    _check_pages("web", pages, ["สมชาย ใจดี", "กท 1234/2566", ISSUER_NAME])


def _hub_pages(tmp_path: Path, order: tuple[str, str]) -> dict[str, dict[str, str]]:
    app, store, _ = make_hub(tmp_path)
    client = app.test_client()
    anonymous = app.test_client()
    upload(tmp_path, client, "kiosk-a", 3, Scenario())
    _, _, identity = device(tmp_path, "kiosk-b", tmp_path / "devices")
    beat = heartbeat_fields("kiosk-b", T0, camera="failed", out_of_service="DEVICE_DISABLED")
    assert client.post("/v1/heartbeats", data=signed(identity, beat)).status_code == 200
    login(client, ADMIN, ADMIN_PW)
    pages: dict[str, dict[str, str]] = {}
    try:
        for lang in order:
            for path in (
                "/audit/",
                "/audit/records",
                "/audit/access",
                "/audit/records?since=yesterday",
                "/fleet",
            ):
                joiner = "&" if "?" in path else "?"
                pages.setdefault(path, {})[lang] = get(
                    client, f"{path}{joiner}lang={lang}"
                ).get_data(as_text=True)
            pages.setdefault("/login", {})[lang] = get(anonymous, f"/login?lang={lang}").get_data(
                as_text=True
            )
            pages.setdefault("/fleet denied", {})[lang] = get(
                anonymous, f"/fleet?lang={lang}"
            ).get_data(as_text=True)
    finally:
        store.close()
    return pages


@pytest.mark.parametrize("order", [("en", "th"), ("th", "en")])
def test_hub_pages_in_each_language_whichever_comes_first(
    tmp_path: Path, order: tuple[str, str]
) -> None:
    _check_pages("hub", _hub_pages(tmp_path, order), [])
