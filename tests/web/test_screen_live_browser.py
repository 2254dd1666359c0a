"""A real browser (Debian's headless Chromium, driven by Playwright) watches the kiosk screen.

The screen changes from idle to PASS, FAIL and UNVERIFIABLE as verdict events arrive, in
Thai and English, at the official touchscreen's 800x480 and at 1920x1080. Screenshots go to
a temporary folder, or to docs/screenshots/ (shown in docs/screens.md) under `make docs`.
No browser download: Playwright drives /usr/bin/chromium
(``apt-get install chromium fonts-thai-tlwg``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import SIZES, Server, launch, require_chromium
from web_support import INSPECTOR_PASSWORD, PASSWORD, Kit, make_app, make_kit

pytestmark = pytest.mark.browser

WORDS = {
    "en": {
        "pass": "Valid",
        "fail": "Not valid",
        "unverifiable": "Cannot check",
        "idle": "Show your licence QR code to the camera",
    },
    "th": {
        "pass": "ผ่าน",
        "fail": "ไม่ผ่าน",
        "unverifiable": "ตรวจสอบไม่ได้",
        "idle": "แสดงคิวอาร์โค้ดใบอนุญาตของท่านต่อกล้อง",
    },
}

sync_api = require_chromium()


def serve(kit: Kit) -> Server:
    return Server(make_app(kit), kit)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    yield from launch(sync_api, tmp_path_factory.mktemp("chromium-profile"))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = serve(make_kit(tmp_path, idle_after_s=60))
    yield srv
    srv.close()


def _open_kiosk(browser, server: Server, lang: str, size: tuple[int, int]):
    page = browser.new_page()
    page.set_viewport_size({"width": size[0], "height": size[1]})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{server.url}/kiosk?lang={lang}")
    page.wait_for_selector("body[data-connected=yes]", timeout=10_000)
    return page, dialogs


def _login_inspector(browser, server: Server) -> None:
    page = browser.new_page()
    page.goto(f"{server.url}/inspector/login")
    page.fill("#password", INSPECTOR_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{server.url}/inspector")
    page.close()


def _visible_panel(page) -> str:
    return page.evaluate(
        "() => [...document.querySelectorAll('.panel')].filter(p => !p.hidden)"
        ".map(p => p.dataset.state).join(',')"
    )


@pytest.mark.parametrize("lang", ["en", "th"])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_kiosk_idle_to_each_verdict(
    browser, server: Server, lang: str, size: tuple[int, int], docs_output: Path
) -> None:
    page, dialogs = _open_kiosk(browser, server, lang, size)
    shots = docs_output / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    tag = f"{lang}-{size[0]}x{size[1]}"
    assert _visible_panel(page) == "idle"
    assert page.inner_text("#panel-idle h1") == WORDS[lang]["idle"]
    page.screenshot(path=str(shots / f"kiosk-{tag}-0-idle.png"))
    kit = server.kit
    for i, (state, text) in enumerate(
        [
            ("pass", kit.pass_text()),
            ("fail", kit.fail_text()),
            ("unverifiable", kit.unverifiable_text()),
        ],
        1,
    ):
        event = kit.port.verify_text(text, source="camera")
        page.wait_for_function(
            f"() => document.body.dataset.verdictId === '{event['id']}'", timeout=10_000
        )
        assert _visible_panel(page) == state
        assert page.inner_text(f"#panel-{state} h1") == WORDS[lang][state]
        assert page.inner_text(f"#panel-{state} .reason").strip()
        # Everything fits the screen: no scrolling on the kiosk.
        assert page.evaluate("() => document.documentElement.scrollHeight") <= size[1]
        page.screenshot(path=str(shots / f"kiosk-{tag}-{i}-{state}.png"))
    # Kiosk mode: no holder details anywhere on the page.
    assert "Somchai" not in page.content()
    assert "สมชาย" not in page.content()
    assert dialogs == []
    page.close()


def test_kiosk_returns_to_idle(browser, tmp_path: Path) -> None:
    srv = serve(make_kit(tmp_path, idle_after_s=1))
    try:
        page, _ = _open_kiosk(browser, srv, "en", (800, 480))
        srv.kit.port.verify_text(srv.kit.fail_text(), source="camera")
        page.wait_for_selector("#panel-fail:not([hidden])", timeout=10_000)
        page.wait_for_selector("#panel-idle:not([hidden])", timeout=5_000)
        assert page.inner_text("#panel-fail .reason") == ""
        page.close()
    finally:
        srv.close()


def test_hostile_holder_fields_stay_text(browser, tmp_path: Path) -> None:
    srv = serve(make_kit(tmp_path, mode="inspector", idle_after_s=60))
    try:
        _login_inspector(browser, srv)  # holder details reach a logged-in inspector only
        page, dialogs = _open_kiosk(browser, srv, "en", (1920, 1080))
        hostile = "<img src=x onerror=alert(1)><script>alert(2)</script>\u202etxt.exe"
        srv.kit.port.verify_text(srv.kit.credential(nm=hostile, nml="A" * 3000), source="camera")
        page.wait_for_selector("#panel-pass:not([hidden])", timeout=10_000)
        name = page.inner_text("#panel-pass [data-field=name]")
        assert "<script>" in name and "\u202e" not in name
        assert (
            page.evaluate(
                "() => document.querySelectorAll('#screen script, #screen img[src=x]').length"
            )
            == 0
        )
        page.goto(f"{srv.url}/inspector?lang=en")
        assert "<script>alert(2)</script>" in page.inner_text(".holder-name")
        assert dialogs == []
        page.close()
    finally:
        srv.close()


@pytest.mark.parametrize("lang", ["en", "th"])
def test_other_screens(browser, tmp_path: Path, lang: str, docs_output: Path) -> None:
    shots = docs_output / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    srv = serve(make_kit(tmp_path, mode="inspector", language=lang))
    try:
        kit = srv.kit
        for text in (kit.fail_text(), kit.unverifiable_text(), kit.pass_text()):
            kit.port.verify_text(text)
        page = browser.new_page()
        page.set_viewport_size({"width": 1280, "height": 900})
        _login_inspector(browser, srv)
        page.goto(f"{srv.url}/inspector")
        assert page.inner_text(".verdict-word") == WORDS[lang]["pass"]
        page.screenshot(path=str(shots / f"inspector-{lang}.png"), full_page=True)
        page.goto(f"{srv.url}/status")
        assert page.locator("svg.chart rect.bar").count() >= 1
        page.screenshot(path=str(shots / f"status-{lang}.png"), full_page=True)
        page.goto(f"{srv.url}/verify")
        page.fill("#text", kit.fail_text())
        page.click("form button[type=submit]")
        assert page.inner_text(".verdict-word") == WORDS[lang]["fail"]
        page.screenshot(path=str(shots / f"verify-{lang}.png"), full_page=True)
        page.goto(f"{srv.url}/admin/login")
        page.fill("#password", PASSWORD)
        page.click("form button[type=submit]")
        page.wait_for_url(f"{srv.url}/admin/")
        page.screenshot(path=str(shots / f"admin-{lang}.png"), full_page=True)
        page.close()
    finally:
        srv.close()
