"""An mDL session as people see it, in headless Chromium (spec mdl-reader s.7).

The kiosk screen follows the session's events, "Connecting to phone", "Approve on your
phone", then the verdict: a walk-up ``age`` kiosk shows only the verdict and "Over NN", a
radio failure asks for the QR code again. The inspector's view of a checkpoint PASS shows the
portrait, names, dates and the driving privileges as a table; a hostile element value stays
text. English and Thai; screenshots to a temporary folder, or docs/screenshots under
``make docs``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import Server, launch, require_chromium
from test_mdoc_screens import HOSTILE, mdl_event
from web_support import INSPECTOR_PASSWORD, NOW, make_app, make_kit

from appliance.core.reasons import Reason
from appliance.kiosk.mdoc_flow import step0
from appliance.kiosk.mdoc_view import mdoc_verdict_event

pytestmark = pytest.mark.browser

SCREENS = {
    "en": {
        "connecting": "Connecting to phone…",
        "approve": "Approve on your phone",
        "pass": "Valid",
        "over": "Over 20",
        "retry": "Ask the holder to show the QR again.",
        "privileges": "Driving privileges",
        "family": "Family name",
    },
    "th": {
        "connecting": "กำลังเชื่อมต่อกับโทรศัพท์…",
        "approve": "กดอนุญาตบนโทรศัพท์ของท่าน",
        "pass": "ผ่าน",
        "over": "อายุเกิน 20 ปี",
        "retry": "ขอให้ผู้ถือแสดงคิวอาร์โค้ดอีกครั้ง",
        "privileges": "สิทธิการขับขี่",
        "family": "นามสกุล",
    },
}

sync_api = require_chromium()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield from launch(sync_api, tmp_path_factory.mktemp("chromium-profile"))


def _visible_panel(page: Any) -> str:
    return page.evaluate(
        "() => [...document.querySelectorAll('.panel')].filter(p => !p.hidden)"
        ".map(p => p.dataset.state).join(',')"
    )


def _step(kit: Any, state: str) -> None:
    kit.bus.publish({"type": "mdoc", "state": state, "at": NOW})


@pytest.mark.parametrize("lang", ["en", "th"])
def test_kiosk_connecting_approve_then_over_nn(
    browser: Any, tmp_path: Path, lang: str, docs_output: Path
) -> None:
    kit = make_kit(tmp_path, idle_after_s=60)
    srv = Server(make_app(kit), kit)
    words = SCREENS[lang]
    shots = docs_output / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    try:
        page = browser.new_page()
        page.set_viewport_size({"width": 800, "height": 480})
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(f"{srv.url}/kiosk?lang={lang}")
        page.wait_for_selector("body[data-connected=yes]", timeout=10_000)
        for i, state in enumerate(("connecting", "approve"), 1):
            _step(kit, state)
            page.wait_for_selector(f"#panel-{state}:not([hidden])", timeout=10_000)
            assert _visible_panel(page) == state
            assert page.inner_text(f"#panel-{state} h1") == words[state]
            assert page.evaluate("() => document.documentElement.scrollHeight") <= 480
            page.screenshot(path=str(shots / f"kiosk-mdl-{lang}-800x480-{i}-{state}.png"))
        event = mdl_event(profile="age")
        kit.bus.publish(event)
        page.wait_for_function(
            f"() => document.body.dataset.verdictId === '{event['id']}'", timeout=10_000
        )
        assert _visible_panel(page) == "pass"
        assert page.inner_text("#panel-pass h1") == words["pass"]
        assert page.inner_text("#panel-pass .reason") == words["over"]  # and nothing else
        assert not page.is_visible("#panel-pass [data-field=retry]")
        page.screenshot(path=str(shots / f"kiosk-mdl-{lang}-800x480-3-over.png"))
        for personal in ("Doe", "Jane", "UT-123"):
            assert personal not in page.content()
        # A phone that never answered: Cannot check, and ask for the QR code again.
        timeout = step0(Reason.MDOC_TIMEOUT)
        later = mdoc_verdict_event(
            timeout.verdict, timeout.facts, False, profile="age", age_threshold=20, at=NOW
        )
        _step(kit, "connecting")
        page.wait_for_selector("#panel-connecting:not([hidden])", timeout=10_000)
        kit.bus.publish(later)
        page.wait_for_selector("#panel-unverifiable:not([hidden])", timeout=10_000)
        assert page.inner_text("#panel-unverifiable [data-field=retry]") == words["retry"]
        page.screenshot(path=str(shots / f"kiosk-mdl-{lang}-800x480-4-retry.png"))
        assert dialogs == []
        page.close()
    finally:
        srv.close()


def _login_inspector(browser: Any, srv: Server) -> None:
    page = browser.new_page()
    page.goto(f"{srv.url}/inspector/login")
    page.fill("#password", INSPECTOR_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{srv.url}/inspector")
    page.close()


@pytest.mark.parametrize("lang", ["en", "th"])
def test_inspector_pass_with_privileges_table(
    browser: Any, tmp_path: Path, lang: str, docs_output: Path
) -> None:
    kit = make_kit(tmp_path, mode="inspector", idle_after_s=60)
    srv = Server(make_app(kit), kit)
    words = SCREENS[lang]
    try:
        _login_inspector(browser, srv)
        page = browser.new_page()
        page.set_viewport_size({"width": 1280, "height": 900})
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(f"{srv.url}/lang/{lang}?next=/inspector")  # the reload keeps the language
        page.wait_for_selector("#inspector[data-connected=yes]", timeout=10_000)
        _step(kit, "approve")
        page.wait_for_selector("#mdoc-step:not([hidden])", timeout=10_000)
        assert page.inner_text("#mdoc-step") == words["approve"]
        kit.bus.publish(mdl_event(given_name=HOSTILE))
        page.wait_for_selector("table.privileges", timeout=10_000)
        assert words["privileges"] in page.inner_text("table.privileges caption")
        rows = page.eval_on_selector_all(
            "table.privileges tbody tr", "rs => rs.map(r => [...r.cells].map(c => c.innerText))"
        )
        assert [r[0] for r in rows] == ["B", "A1"] and rows[0][3].strip() == "01 = 02"
        assert page.inner_text(".holder-family-name") == "Doe"
        assert page.inner_text(".holder-given-name") == HOSTILE  # shown as text
        assert (
            page.evaluate(
                "() => document.querySelectorAll('.verdict-card script, "
                ".verdict-card img[src=x]').length"
            )
            == 0
        )
        photo = page.eval_on_selector(
            ".holder-photo", "img => [img.complete, img.naturalWidth, img.src.slice(0, 23)]"
        )
        assert photo == [True, 60, "data:image/jpeg;base64,"]
        assert words["family"] in page.inner_text(".verdict-card")
        # The next holder, an ordinary one, replaces the card (the page reloads itself).
        kit.bus.publish(mdl_event(given_name="Jane Ann"))
        page.wait_for_function(
            "() => document.querySelector('.holder-given-name').innerText === 'Jane Ann'",
            timeout=10_000,
        )
        shots = docs_output / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / f"inspector-mdl-{lang}.png"), full_page=True)
        assert dialogs == []
        page.close()
    finally:
        srv.close()
