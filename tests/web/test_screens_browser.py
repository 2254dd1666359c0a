"""What a user sees, in headless Chromium: nothing on screen contradicts the verdict.

Both languages, at the official 800x480 touchscreen and at 1920x1080:
- the kiosk goes out of service (amber, the whole screen, the cause in the user's language)
  while it cannot verify, and comes back when it can;
- after submitting on ``/verify`` the verdict is in view;
- the kiosk's language links are readable 44 px tap targets, and the Thai holder name is
  never smaller than the Latin one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import SIZES, Server, launch, require_chromium
from web_support import INSPECTOR_PASSWORD, NOW, fake_system, make_app, make_kit

from appliance.trust.clock import FixedClock, Reading
from appliance_web import create_app
from appliance_web.socket_port import SocketKioskPort

pytestmark = pytest.mark.browser

SIZE_IDS = ["800x480", "1920x1080"]
OUT = {
    "en": ("Out of service", "The kiosk program is not running"),
    "th": ("งดให้บริการชั่วคราว", "โปรแกรมตู้ตรวจไม่ได้ทำงานอยู่"),
}
WORDS = {"en": {"fail": "Not valid"}, "th": {"fail": "ไม่ผ่าน"}}
AMBER = "rgb(240, 180, 41)"

sync_api = require_chromium()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield from launch(sync_api, tmp_path_factory.mktemp("chromium-profile"))


def _page(browser: Any, size: tuple[int, int]) -> Any:
    page = browser.new_page()
    page.set_viewport_size({"width": size[0], "height": size[1]})
    return page


@pytest.mark.parametrize("lang", ["en", "th"])
@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_kiosk_down_is_an_amber_full_screen_out_of_service(
    browser: Any, tmp_path: Path, lang: str, size: tuple[int, int], docs_output: Path
) -> None:
    kit = make_kit(tmp_path, language=lang)
    port = SocketKioskPort(tmp_path / "kiosk.sock", connect_timeout_s=0.5)
    srv = Server(
        create_app(port, kit.config, secret_key=b"k" * 32, testing=True, system_info=fake_system)
    )
    try:
        page = _page(browser, size)
        page.goto(f"{srv.url}/kiosk?lang={lang}")
        page.wait_for_selector("#panel-out:not([hidden])", timeout=10_000)
        assert page.locator("#panel-idle").is_hidden()
        word, cause = OUT[lang]
        assert page.inner_text("#panel-out h1") == word
        assert cause in page.inner_text("#panel-out .reason")
        box = page.locator("#panel-out").bounding_box()
        assert box["width"] == size[0] and box["height"] >= size[1] * 0.85
        colours = page.evaluate("""() => [getComputedStyle(document.getElementById('panel-out'))
            .backgroundColor, getComputedStyle(document.body).backgroundColor]""")
        assert colours == [AMBER, AMBER]
        assert page.evaluate("() => document.documentElement.scrollHeight") <= size[1]
        shots = docs_output / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / f"kiosk-{lang}-{size[0]}x{size[1]}-out.png"))
        page.close()
    finally:
        srv.close()


class Switch:
    """A clock whose trust a test turns off and on (as the floor clock would)."""

    def __init__(self) -> None:
        self.trusted = True

    def read(self) -> Reading:
        return Reading(float(NOW), self.trusted)


def test_kiosk_leaves_and_returns_to_service_live(browser: Any, tmp_path: Path) -> None:
    kit = make_kit(tmp_path, language="th", idle_after_s=60)
    clock = Switch()
    kit.port._clock = clock
    app = make_app(kit)
    app.config["KIOSK_HEALTH_EVERY_S"] = 0.1
    srv = Server(app, kit)
    try:
        page = _page(browser, (800, 480))
        page.goto(f"{srv.url}/kiosk")
        page.wait_for_selector("body[data-connected=yes]", timeout=10_000)
        assert page.locator("#panel-idle").is_visible()
        clock.trusted = False
        page.wait_for_selector("#panel-out:not([hidden])", timeout=10_000)
        assert "นาฬิกา" in page.inner_text("#panel-out .reason")
        clock.trusted = True
        page.wait_for_selector("#panel-idle:not([hidden])", timeout=10_000)
        kit.port._clock = FixedClock(NOW)
        page.close()
    finally:
        srv.close()


def test_lost_web_server_takes_the_kiosk_out_of_service(browser: Any, tmp_path: Path) -> None:
    app = make_app(make_kit(tmp_path, language="en"))
    app.config["KIOSK_HEALTH_EVERY_S"] = 0.1
    srv = Server(app)
    page = _page(browser, (800, 480))
    page.goto(f"{srv.url}/kiosk")
    page.wait_for_selector("body[data-connected=yes]", timeout=10_000)
    srv.close()
    page.wait_for_selector("#panel-out:not([hidden])", timeout=10_000)
    assert "lost its connection" in page.inner_text("#panel-out .reason")
    page.close()


@pytest.mark.parametrize("lang", ["en", "th"])
@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_verify_result_is_in_view_after_submitting(
    browser: Any, tmp_path: Path, lang: str, size: tuple[int, int]
) -> None:
    kit = make_kit(tmp_path, language=lang)
    srv = Server(make_app(kit), kit)
    try:
        page = _page(browser, size)
        page.goto(f"{srv.url}/verify")
        page.fill("#text", kit.fail_text())
        page.click("form button[type=submit]")
        page.wait_for_selector(".verdict-banner", timeout=10_000)
        assert page.inner_text(".verdict-word") == WORDS[lang]["fail"]
        top, bottom = page.evaluate("""() => { const r = document.querySelector(
            '.verdict-banner').getBoundingClientRect(); return [r.top, r.bottom]; }""")
        assert top >= 0 and bottom <= size[1], (top, bottom)
        page.close()
    finally:
        srv.close()


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_language_links_and_holder_names_are_readable(
    browser: Any, tmp_path: Path, size: tuple[int, int]
) -> None:
    kit = make_kit(tmp_path, mode="inspector", language="th", idle_after_s=60)
    srv = Server(make_app(kit), kit)
    try:
        login = browser.new_page()
        login.goto(f"{srv.url}/inspector/login")
        login.fill("#password", INSPECTOR_PASSWORD)
        login.click("form button[type=submit]")
        login.wait_for_url(f"{srv.url}/inspector")
        login.close()
        page = _page(browser, size)
        page.goto(f"{srv.url}/kiosk")
        page.wait_for_selector("body[data-connected=yes]", timeout=10_000)
        for link in page.locator(".kiosk-footer .lang a, .kiosk-footer .lang-current").all():
            box = link.bounding_box()
            assert box["width"] >= 44 and box["height"] >= 44, box
            size_px = link.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
            assert size_px >= 16
        event = kit.port.verify_text(kit.pass_text(), source="camera")
        page.wait_for_function(
            f"() => document.body.dataset.verdictId === '{event['id']}'", timeout=10_000
        )
        thai, latin = page.evaluate("""() => ['.holder-name', '.holder-name-latin'].map(s =>
            parseFloat(getComputedStyle(document.querySelector('#panel-pass ' + s)).fontSize))""")
        assert thai >= latin, (thai, latin)
        assert page.evaluate("() => document.documentElement.scrollHeight") <= size[1]
        page.close()
    finally:
        srv.close()
