"""What the screens show of an mDL (spec mdl-reader s.7), through the Flask test client.

Verdict events are made as the kiosk makes them: a DeviceResponse issued under a test IACA,
judged by the core verifier, turned into an event by ``mdoc_verdict_event`` and published on
the kiosk's bus, which the web app reads through ``LocalKioskPort``.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import cbor2
import pytest
from issuer_support import checkpoint_elements
from mdoc_cases import World
from PIL import Image
from web_support import NOW, Kit, login_inspector, make_app, make_kit

from appliance.core.credential.mdoc.items_request import MDL_NAMESPACE
from appliance.core.reasons import Outcome, Reason
from appliance.kiosk import mdoc_view
from appliance.kiosk.mdoc_flow import step0
from appliance.kiosk.mdoc_view import mdoc_verdict_event, portrait_photo
from appliance.kiosk.status import device_providers

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
WORDS = {
    "en": {
        "family": "Family name",
        "privileges": "Driving privileges",
        "retry": "Ask the holder to show the QR again.",
        "over": "Over 20",
        "birth": "1 May 1990",
        "timeout": "The phone did not answer in time.",
    },
    "th": {
        "family": "นามสกุล",
        "privileges": "สิทธิการขับขี่",
        "retry": "ขอให้ผู้ถือแสดงคิวอาร์โค้ดอีกครั้ง",
        "over": "อายุเกิน 20 ปี",
        "birth": "2533",
        "timeout": "โทรศัพท์ไม่ตอบภายในเวลาที่กำหนด",
    },
}


def _jpeg(size: tuple[int, int] = (60, 80)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (120, 90, 60)).save(buf, "JPEG", quality=60)
    return buf.getvalue()


def privileges() -> list[dict[str, Any]]:
    return [
        {
            "vehicle_category_code": "B",
            "issue_date": cbor2.CBORTag(1004, "2020-03-04"),
            "expiry_date": cbor2.CBORTag(1004, "2030-03-04"),
            "codes": [{"code": "01", "sign": "=", "value": "02"}],
        },
        {"vehicle_category_code": "A1", "issue_date": cbor2.CBORTag(1004, "2021-05-06")},
    ]


def mdl_event(
    *, profile: str = "checkpoint", show_holder: bool = True, **elements: Any
) -> dict[str, Any]:
    """The kiosk's verdict event for a freshly issued and verified mDL."""
    world = World()
    values = checkpoint_elements(
        **{"portrait": _jpeg(), "driving_privileges": privileges(), **elements}
    )
    values[MDL_NAMESPACE]["age_over_20"] = True
    result = world.verify(world.response(world.issue(values)), profile=profile)
    return mdoc_verdict_event(
        result.verdict, result.facts, show_holder, profile=profile, age_threshold=20, at=NOW
    )


def _inspector_page(kit: Kit, event: dict[str, Any], lang: str) -> str:
    kit.bus.publish(event)
    client = make_app(kit).test_client()
    login_inspector(client)
    return client.get(f"/inspector?lang={lang}").get_data(as_text=True)


@pytest.mark.parametrize("lang", ["en", "th"])
def test_inspector_pass_shows_portrait_names_dates_and_privileges(
    tmp_path: Path, lang: str
) -> None:
    event = mdl_event()
    assert event["outcome"] == "PASS" and event["profile"] == "MDOC"
    html = _inspector_page(make_kit(tmp_path, mode="inspector"), event, lang)
    words = WORDS[lang]
    assert words["family"] in html and words["privileges"] in html
    assert "<bdi>Doe</bdi>" in html and "<bdi>Jane</bdi>" in html
    assert "<bdi>UT-123</bdi>" in html and words["birth"] in html
    rows = html.split('<table class="privileges">')[1].split("</table>")[0]
    assert rows.count("<tr><td>") == 2 and "<bdi>A1</bdi>" in rows
    assert '<bdi class="tag">01 = 02</bdi>' in rows
    assert ("2030" if lang == "en" else "2573") in rows  # the privilege's expiry, B.E. in Thai
    assert 'src="data:image/jpeg;base64,' in html
    assert words["retry"] not in html


def test_portrait_is_reencoded_never_the_holders_bytes(tmp_path: Path) -> None:
    original = _jpeg((600, 800))
    event = mdl_event(portrait=original)
    photo = event["holder"]["photo"]
    assert photo["type"] == "image/jpeg"
    shown = Image.open(io.BytesIO(base64.b64decode(photo["b64"])))
    assert shown.format == "JPEG" and max(shown.size) <= max(mdoc_view.PORTRAIT_BOX)
    assert photo["b64"] != base64.b64encode(original).decode()


def test_portrait_jpeg2000_is_shown_and_bad_ones_are_not() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (48, 64), (10, 200, 30)).save(buf, "JPEG2000")
    assert portrait_photo(buf.getvalue())["type"] == "image/jpeg"
    assert portrait_photo(b"\xff\xd8\xff\xe0 not really a jpeg") is None
    assert portrait_photo(b"GIF89a" + bytes(40)) is None  # not JPEG / JPEG 2000
    assert portrait_photo(bytes(mdoc_view.MAX_PORTRAIT_BYTES + 1)) is None
    big = io.BytesIO()
    Image.new("L", (1600, 1000)).save(big, "JPEG", quality=1)  # 1.6 MP: above the cap
    assert len(big.getvalue()) < mdoc_view.MAX_PORTRAIT_BYTES
    assert portrait_photo(big.getvalue()) is None


@pytest.mark.parametrize("lang", ["en", "th"])
def test_hostile_element_values_are_escaped(tmp_path: Path, lang: str) -> None:
    event = mdl_event(
        family_name=HOSTILE,
        issuing_authority=HOSTILE,
        driving_privileges=[{"vehicle_category_code": HOSTILE, "codes": [{"code": HOSTILE}]}],
    )
    assert event["outcome"] == "PASS"
    html = _inspector_page(make_kit(tmp_path, mode="inspector"), event, lang)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


@pytest.mark.parametrize("lang", ["en", "th"])
@pytest.mark.parametrize(
    "reason", [Reason.MDOC_TIMEOUT, Reason.MDOC_TRANSPORT_FAILED, Reason.MDOC_DECLINED]
)
def test_radio_failure_asks_for_the_qr_again(tmp_path: Path, lang: str, reason: Reason) -> None:
    result = step0(reason)
    event = mdoc_verdict_event(
        result.verdict, result.facts, True, profile="checkpoint", age_threshold=20, at=NOW
    )
    assert event["outcome"] == "UNVERIFIABLE" and event["mdoc"]["retry"] is True
    html = _inspector_page(make_kit(tmp_path, mode="inspector"), event, lang)
    assert WORDS[lang]["retry"] in html
    if reason is Reason.MDOC_TIMEOUT:
        assert WORDS[lang]["timeout"] in html


def test_other_failures_do_not_ask_for_the_qr_again(tmp_path: Path) -> None:
    result = step0(Reason.MDOC_SESSION_DECRYPT_FAILED)
    event = mdoc_verdict_event(
        result.verdict, result.facts, True, profile="checkpoint", age_threshold=20
    )
    assert event["outcome"] == "FAIL" and event["mdoc"]["retry"] is False
    html = _inspector_page(make_kit(tmp_path, mode="inspector"), event, "en")
    assert WORDS["en"]["retry"] not in html


@pytest.mark.parametrize("lang", ["en", "th"])
def test_age_profile_shows_only_the_verdict_and_over_nn(tmp_path: Path, lang: str) -> None:
    event = mdl_event(profile="age")
    assert event["outcome"] == "PASS" and event["holder"] is None  # nothing personal
    assert event["mdoc"] == {"request": "age", "age_over": 20, "age_threshold": 20, "retry": False}
    text = json.dumps(event, ensure_ascii=False)
    for personal in ("Doe", "Jane", "UT-123", "1990"):
        assert personal not in text
    html = _inspector_page(make_kit(tmp_path, mode="inspector"), event, lang)
    assert WORDS[lang]["over"] in html


def test_every_mdoc_reason_has_its_own_text_in_both_languages(tmp_path: Path) -> None:
    from flask_babel import force_locale

    from appliance_web import views

    app = make_app(make_kit(tmp_path))
    codes = [r for r in Reason if r.name.startswith("MDOC_")]
    assert len(codes) == 24
    with app.test_request_context():
        unknown = str(views.reason_text("NO_SUCH_REASON"))
        for lang in ("en", "th"):
            with force_locale(lang):
                texts = {r: views.reason_text(r) for r in codes}
            assert unknown not in texts.values()
            if lang == "th":
                assert all(any("\u0e00" <= ch <= "\u0e7f" for ch in t) for t in texts.values())


def test_kiosk_stream_view_of_an_age_pass_and_a_retry(tmp_path: Path) -> None:
    from appliance_web import mdoc_screens

    app = make_app(make_kit(tmp_path, language="th"))
    with app.test_request_context("/?lang=th"):
        words = mdoc_screens.texts()
    age = mdl_event(profile="age")
    assert mdoc_screens.verdict_extras(age, words) == {"retry": "", "reason": "อายุเกิน 20 ปี"}
    result = step0(Reason.MDOC_DECLINED)
    declined = mdoc_verdict_event(
        result.verdict, result.facts, False, profile="age", age_threshold=20
    )
    assert mdoc_screens.verdict_extras(declined, words) == {"retry": WORDS["th"]["retry"]}
    assert mdoc_screens.verdict_extras({"type": "verdict", "outcome": "PASS"}, words) == {}
    assert (
        mdoc_screens.state_message({"type": "mdoc", "state": "approve"})
        == 'event: mdoc\ndata: {"state": "approve"}\n\n'
    )
    assert mdoc_screens.state_message({"type": "mdoc", "state": "<b>"}) is None
    assert Outcome(age["outcome"]) is Outcome.PASS


@pytest.mark.parametrize("lang", ["en", "th"])
def test_status_page_says_mdl_is_off_without_bluetooth(tmp_path: Path, lang: str) -> None:
    kit = make_kit(
        tmp_path, providers=device_providers(make_kit(tmp_path).config)
    )  # hci-socket:0 by default; this machine has no hci0
    status = kit.port.status()
    assert status["mdl"]["enabled"] is False
    assert status["mdl"]["off"] in ("controller", "stack")
    html = make_app(kit).test_client().get(f"/status?lang={lang}").get_data(as_text=True)
    assert ("Mobile driving licences (mDL)" if lang == "en" else "ใบอนุญาตขับรถบนมือถือ") in html
    assert ("Checked as usual." if lang == "en" else "ตรวจได้ตามปกติ") in html


def test_thai_mdl_screens_have_no_untranslated_text(tmp_path: Path) -> None:
    """The kiosk (with its session panels), the inspector's mDL PASS and a retry, and the
    status page's mDL card in Thai: no English left beside the credential's own data."""
    from test_screens_i18n import ALLOWED, LATIN_WORD, _visible_text

    kit = make_kit(
        tmp_path,
        mode="inspector",
        language="th",
        providers=device_providers(make_kit(tmp_path).config),
    )
    for event in (
        mdl_event(),
        mdoc_verdict_event(
            step0(Reason.MDOC_TRANSPORT_FAILED).verdict,
            None,
            True,
            profile="checkpoint",
            age_threshold=20,
            at=NOW,
        ),
    ):
        kit.bus.publish(event)
    client = make_app(kit).test_client()
    login_inspector(client)
    recent = kit.port.recent_verdicts(2)
    pages = {
        p: client.get(p).get_data(as_text=True)
        for p in (
            "/kiosk",
            "/status",
            f"/inspector/{recent[0]['id']}",
            f"/inspector/{recent[1]['id']}",
        )
    }
    data = ["Test checkpoint", "pi-bkk-007", "0.1.0"]
    leftovers = {
        name: sorted({w for w in LATIN_WORD.findall(_visible_text(page, data)) if w not in ALLOWED})
        for name, page in pages.items()
    }
    assert not any(leftovers.values()), f"English left on Thai screens: {leftovers}"
    assert "กำลังเชื่อมต่อกับโทรศัพท์" in pages["/kiosk"]
    assert "ใบอนุญาตขับรถบนมือถือ" in pages["/status"]


def test_web_verify_of_a_phones_qr_asks_for_the_camera_not_a_red_light(tmp_path: Path) -> None:
    """A phone's `mdoc:` engagement pasted or uploaded on /verify cannot start a radio
    session: UNVERIFIABLE MDOC_SESSION_REQUIRED (audited like every verdict), never FAIL
    UNKNOWN_FORMAT, which called a genuine phone's licence not valid."""
    import segno
    from web_support import form_token

    from appliance.tools.holder_mdoc import engagement_text
    from appliance.tools.issuer_mdoc import dumps as cbor_dumps

    text = engagement_text(cbor_dumps({0: "1.0"}))
    kit = make_kit(tmp_path)
    records: list[tuple[str, str]] = []
    kit.service._record = lambda verdict, **kw: records.append(  # type: ignore[method-assign]
        (str(verdict.reason), kw["source"])
    )
    client = make_app(kit).test_client()
    pasted = client.post(
        "/verify", data={"csrf_token": form_token(client, "/verify"), "text": text}
    ).get_data(as_text=True)
    picture = io.BytesIO()
    segno.make(text, micro=False).save(picture, kind="png", scale=6)
    uploaded = client.post(
        "/verify",
        data={
            "csrf_token": form_token(client, "/verify"),
            "image": (io.BytesIO(picture.getvalue()), "phone.png"),
        },
        content_type="multipart/form-data",
    ).get_data(as_text=True)
    for html in (pasted, uploaded):
        assert "UNVERIFIABLE · MDOC_SESSION_REQUIRED" in html, html[-3000:]
        assert "show it to the camera of a checking device" in html
    assert records == [
        ("MDOC_SESSION_REQUIRED", "web-text"),
        ("MDOC_SESSION_REQUIRED", "web-image"),
    ]


@pytest.mark.parametrize("lang", ["en", "th"])
def test_status_page_says_whether_the_radio_service_is_there(
    tmp_path: Path, short_dir: Path, lang: str
) -> None:
    """With the radio in its own service, /status says when its socket is gone: the kiosk
    then answers every mDL 'not supported', and an administrator must see why."""
    import socket

    from appliance.kiosk.status import mdl_provider

    path = short_dir / "radio.sock"
    kit = make_kit(tmp_path, providers={"mdl": mdl_provider("bumble:local", str(path))})
    client = make_app(kit).test_client()
    running, down = ("running", "Not running") if lang == "en" else ("ทำงานอยู่", "ไม่ทำงาน")

    assert kit.port.status()["mdl"]["radio"] == "down"
    html = client.get(f"/status?lang={lang}").get_data(as_text=True)
    assert down in html and "appliance-mdl-radio" in html
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as radio:
        radio.bind(str(path))
        radio.listen(1)
        assert kit.port.status()["mdl"]["radio"] == "listening"
        html = client.get(f"/status?lang={lang}").get_data(as_text=True)
        assert f"✓ {running}" in html and down not in html
    assert mdl_provider("bumble:local")().get("radio") is None  # no radio service configured
