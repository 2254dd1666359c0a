"""One language and one calendar per screen: every string translated, every date in the
reader's calendar (Buddhist era in Thai, day-month-year in English, never "12/2/26")."""

from __future__ import annotations

import html as htmllib
import re
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po
from web_support import NOW, Kit, form_token, login_admin, login_inspector, make_app, make_kit

CATALOG = (
    Path(__file__).resolve().parents[2]
    / "web"
    / "translations"
    / "th"
    / "LC_MESSAGES"
    / "messages.po"
)
THAI = re.compile(r"[\u0e00-\u0e7f]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
# Words that are the same in Thai screens: names of formats and units, the English
# language link (labelled in its own language).
ALLOWED = {"JSON", "lines", "GB", "English", "LC1", "LP1", "HC1", "shc"}
US_SHORT_DATE = re.compile(r"\b\d{1,2}/\d{1,2}/\d{2,4}\b")


def test_every_thai_message_is_really_translated() -> None:
    """Empty, fuzzy or still-English entries all count as untranslated."""
    with CATALOG.open("rb") as f:
        catalog = read_po(f)
    bad = [
        m.id
        for m in catalog
        if m.id
        and (
            not m.string
            or m.fuzzy
            or (LATIN_WORD.search(str(m.id)) and not THAI.search(str(m.string)))
        )
    ]
    assert not bad, f"untranslated in the Thai catalogue: {bad}"


def _visible_text(page: str, data: list[str]) -> str:
    """What a reader sees that the screen itself wrote: text and labelling attributes,
    without QR data (``<bdi>``), codes, scripts and the given configuration values."""
    labels = " ".join(re.findall(r'(?:alt|aria-label|title|placeholder)="([^"]*)"', page))
    body = re.sub(r"<(script|style|code|bdi|title)\b.*?</\1>", " ", page, flags=re.S)
    body = re.sub(r'<([a-z]+)[^>]*\blang="en"[^>]*>.*?</\1>', " ", body, flags=re.S)
    text = htmllib.unescape(re.sub(r"<[^>]+>", " ", body) + " " + labels)
    for value in data:
        text = text.replace(value, " ")
    return text


def _thai_pages(tmp_path: Path) -> dict[str, str]:
    kit = make_kit(
        tmp_path,
        mode="inspector",
        language="th",
        providers={
            "trust": lambda: {
                "next_sync_at": NOW - 3600.0,
                "last_error": "HTTP 503",
                "last_error_at": NOW - 60.0,
                "last_sync_at": NOW - 9000.0,
            }
        },
    )
    kit.service.audit_fault = "disk full"
    app = make_app(kit)
    client = app.test_client()
    login_inspector(client)
    kit.port.verify_text(kit.credential(ext={"Blood group": "O"}, vu="2030-01-01"))
    pages = {
        p: client.get(p).get_data(as_text=True)
        for p in (
            "/",
            "/kiosk",
            "/status",
            "/verify",
            "/inspector",
            "/admin/login",
            "/inspector/login",
            "/no-such-page",
        )
    }
    pages["verify-result"] = client.post(
        "/verify", data={"csrf_token": form_token(client, "/verify"), "text": kit.fail_text()}
    ).get_data(as_text=True)
    (tmp_path / "admin").mkdir()
    admin = make_app(make_kit(tmp_path / "admin", language="th")).test_client()
    login_admin(admin)
    pages["/admin/"] = admin.get("/admin/").get_data(as_text=True)
    pages["admin-sync"] = admin.post(
        "/admin/sync",
        data={"csrf_token": form_token(admin, "/admin/"), "types": ""},
        follow_redirects=True,
    ).get_data(as_text=True)
    return pages


def test_thai_screens_have_no_untranslated_text(tmp_path: Path) -> None:
    data = ["Test checkpoint", "pi-bkk-007", "0.1.0", "disk full", "HTTP 503"]
    leftovers: dict[str, list[str]] = {}
    pages = _thai_pages(tmp_path)
    # a printed field's label (QR data, so in <bdi>) is translated when it is a known one
    assert "หมู่โลหิต" in pages["/inspector"] and "Blood group" not in pages["/inspector"]
    for name, page in pages.items():
        words = [w for w in LATIN_WORD.findall(_visible_text(page, data)) if w not in ALLOWED]
        if words:
            leftovers[name] = sorted(set(words))
    assert not leftovers, f"English left on Thai screens: {leftovers}"


def _inspector(kit: Kit, lang: str, **licence: Any) -> str:
    client = make_app(kit).test_client()
    login_inspector(client)
    kit.port.verify_text(kit.credential(**licence))
    return client.get(f"/inspector?lang={lang}").get_data(as_text=True)


def test_thai_licence_dates_are_buddhist_era(tmp_path: Path) -> None:
    kit = make_kit(tmp_path, mode="inspector")
    page = _visible_text(_inspector(kit, "th", vu="2030-01-01", vf="2025-01-01"), [])
    page += " ".join(re.findall(r"<bdi>([^<]*)</bdi>", _inspector(kit, "th", vu="2030-01-01")))
    # printed vu and vf, birth date, signed expiry (NOW + 365 days), time of the check
    for gregorian, buddhist in (
        ("2030", "2573"),
        ("2025", "2568"),
        ("1990", "2533"),
        ("2028", "2571"),
        ("2027", "2570"),
    ):
        assert gregorian not in page and buddhist in page, (gregorian, buddhist)


@pytest.mark.parametrize("path", ["/inspector", "/status"])
def test_english_dates_are_day_month_year(tmp_path: Path, path: str) -> None:
    kit = make_kit(tmp_path, mode="inspector")
    client = make_app(kit).test_client()
    login_inspector(client)
    kit.port.verify_text(kit.credential(vu="2030-01-01"))
    page = client.get(f"{path}?lang=en").get_data(as_text=True)
    assert not US_SHORT_DATE.search(_visible_text(page, [])), US_SHORT_DATE.findall(page)
    assert re.search(r"\b15 Jan 2027\b", page)  # the check's time (NOW), day first
    if path == "/inspector":
        assert "1 Jan 2030" in page and "1 Apr 1990" in page
