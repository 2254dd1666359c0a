"""The screens through Flask's test client: every route, holder-detail rules, hostile QR text."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import segno
from web_support import Kit, login_inspector, make_app, make_kit

from appliance.core.errors import AuditUnavailable
from appliance.core.reasons import Outcome, Reason
from appliance.core.verifier import Verdict

HOSTILE_NAME = '<script>alert("x")</script><img src=x onerror=alert(1)>\u202eexe.txt'
LONG = "ก" * 5000


def csrf(client, path: str = "/verify") -> str:
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


PAGES = ["/", "/kiosk", "/inspector/login", "/verify", "/status", "/admin/login"]


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("lang", ["en", "th"])
def test_every_page_renders_with_strict_headers(
    web_client, web_kit: Kit, path: str, lang: str
) -> None:
    web_kit.port.verify_text(web_kit.pass_text())
    r = web_client.get(f"{path}?lang={lang}")
    assert r.status_code == 200
    assert r.mimetype == "text/html"
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "default-src 'none'" in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-store"
    html = r.get_data(as_text=True)
    assert f'<html lang="{lang}">' in html
    # no inline scripts, no external origins
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert not re.search(r'(src|href|action)="(https?:)?//', html)


def test_thai_is_the_default_where_configured(tmp_path: Path) -> None:
    app = make_app(make_kit(tmp_path, language="th"))
    html = app.test_client().get("/kiosk").get_data(as_text=True)
    assert "แสดงคิวอาร์โค้ดใบอนุญาตของท่านต่อกล้อง" in html
    html = app.test_client().get("/kiosk?lang=en").get_data(as_text=True)
    assert "Show your licence QR code to the camera" in html


def test_language_switch_sets_cookie_and_refuses_open_redirect(web_client) -> None:
    r = web_client.get("/lang/th?next=/status")
    assert r.status_code == 302 and r.headers["Location"] == "/status"
    assert "lang=th" in r.headers["Set-Cookie"]
    assert "สถานะเครื่อง" in web_client.get("/status").get_data(as_text=True)
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        r = web_client.get("/lang/en", query_string={"next": target})
        assert r.headers["Location"] == "/"
    r = web_client.get("/lang/xx?next=/")
    assert "Set-Cookie" not in r.headers


def test_static_files_are_local(web_client) -> None:
    for name in ("app.css", "kiosk.js", "inspector.js"):
        r = web_client.get(f"/static/{name}")
        assert r.status_code == 200
        assert b"http" not in r.data.replace(b"http://www.w3.org", b"")
        r.close()
    js = web_client.get("/static/kiosk.js").get_data(as_text=True)
    assert "innerHTML" not in js and "textContent" in js


def test_untrusted_host_is_refused(web_client) -> None:
    r = web_client.get("/", headers={"Host": "evil.example"})
    assert r.status_code == 400


def test_kiosk_mode_shows_no_holder_details(web_client, web_kit: Kit) -> None:
    web_kit.port.verify_text(web_kit.pass_text())
    login_inspector(web_client)  # even a logged-in inspector: this device shows none
    for path in ("/inspector", "/api/verdicts", "/api/status", "/metrics", "/status"):
        body = web_client.get(path).get_data(as_text=True)
        for personal in ("สมชาย", "Somchai", "1234/2566", "1990-04-01", "data:image"):
            assert personal not in body, (path, personal)
    assert "Holder details are not shown on this device." in web_client.get("/inspector").get_data(
        as_text=True
    )


def test_holder_details_stripped_even_if_the_kiosk_sends_them(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)  # kiosk mode web, but a port that forwards holder details
    kit.port.show_holder = True
    kit.port.verify_text(kit.pass_text())
    client = make_app(kit).test_client()
    login_inspector(client)
    body = client.get("/inspector").get_data(as_text=True)
    assert "Somchai" not in body and "data:image" not in body


def test_inspector_shows_holder_both_scripts_photo_and_facts(
    inspector_client, inspector_kit: Kit
) -> None:
    event = inspector_kit.port.verify_text(inspector_kit.pass_text())
    html = inspector_client.get("/inspector").get_data(as_text=True)
    for expected in (
        "สมชาย ใจดี",
        "Somchai Jaidee",
        "กท 1234/2566",
        "1 Apr 1990",
        "DL",
        "1 Jan 2030",
        "กรมการขนส่งทางบก",
        "https://dlt.go.th",
        "Static code (printed or a picture)",
        "data:image/jpeg;base64,",
        "Valid",
        "The licence is genuine and in force.",
    ):
        assert expected in html, expected
    detail = inspector_client.get(f"/inspector/{event['id']}")
    assert detail.status_code == 200
    assert inspector_client.get("/inspector/nope").status_code == 404


def test_inspector_lists_session_verdicts_newest_first(
    inspector_client, inspector_kit: Kit
) -> None:
    for text in (inspector_kit.fail_text(), inspector_kit.unverifiable_text()):
        inspector_kit.port.verify_text(text)
    html = inspector_client.get("/inspector").get_data(as_text=True)
    history = html[html.index('class="history"') :]
    assert history.index("Cannot check") < history.index("Not valid")
    assert "The licence&#39;s current status is not known to this device." in html


def test_non_image_photo_is_not_shown(inspector_client, inspector_kit: Kit) -> None:
    inspector_kit.port.verify_text(inspector_kit.credential(ph=b"<svg onload=alert(1)>"))
    html = inspector_client.get("/inspector").get_data(as_text=True)
    assert "data:image" not in html and "<svg onload" not in html


@pytest.mark.parametrize("field", ["nm", "nml", "no", "typ"])
def test_hostile_qr_fields_are_rendered_harmless(
    inspector_client, inspector_kit: Kit, field: str
) -> None:
    extra = {"ext": {"<b>k</b>": HOSTILE_NAME}, "cls": [HOSTILE_NAME]}
    hostile = inspector_kit.port.verify_text(
        inspector_kit.credential(**{field: HOSTILE_NAME}, **extra)
    )
    assert hostile["outcome"] == "PASS"
    html = inspector_client.get(f"/inspector/{hostile['id']}").get_data(as_text=True)
    assert "<script>" not in html and "<img src=x" not in html and "<b>k</b>" not in html
    assert html.count("&lt;script&gt;") >= 3  # the field, a class and an extension value
    assert "\u202e" not in html and "exe.txt" in html
    inspector_kit.port.verify_text(inspector_kit.credential(**{field: LONG}))
    html = inspector_client.get("/inspector").get_data(as_text=True)
    assert "ก" * 121 not in html and "\u2026" in html  # very long text is bounded


def test_hostile_text_pasted_into_verify_is_escaped(web_client) -> None:
    token = csrf(web_client)
    r = web_client.post("/verify", data={"csrf_token": token, "text": HOSTILE_NAME})
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "<script>" not in html and "This is not a licence QR code." in html


def test_event_stream_sends_translated_verdicts(inspector_client, inspector_kit: Kit) -> None:
    r = inspector_client.get("/kiosk/events?lang=th", buffered=False)
    assert r.mimetype == "text/event-stream"
    chunks = iter(r.response)
    assert next(chunks).startswith(b"retry:")
    inspector_kit.port.verify_text(inspector_kit.credential(nm=HOSTILE_NAME), source="camera")
    message = next(chunks).decode()
    assert message.startswith("event: verdict\ndata: ")
    view = json.loads(message.split("data: ", 1)[1])
    assert view["outcome"] == "pass" and view["word"] == "ผ่าน"
    assert view["reason"] == "ใบอนุญาตเป็นของจริงและยังมีผลใช้ได้"
    assert "\u202e" not in view["holder"]["name"]
    assert view["holder"]["photo"] is None
    r.close()


def test_event_stream_in_kiosk_mode_has_no_holder(web_client, web_kit: Kit) -> None:
    r = web_client.get("/kiosk/events?lang=en", buffered=False)
    chunks = iter(r.response)
    next(chunks)
    web_kit.port.verify_text(web_kit.fail_text(), source="camera")
    view = json.loads(next(chunks).decode().split("data: ", 1)[1])
    assert view == {
        "id": view["id"],
        "outcome": "fail",
        "word": "Not valid",
        "reason": "The licence has expired.",
        "code": "EXPIRED",
        "live": False,
    }
    r.close()


def test_verify_by_text_gives_the_camera_verdict(web_client, web_kit: Kit) -> None:
    token = csrf(web_client)
    r = web_client.post("/verify", data={"csrf_token": token, "text": web_kit.fail_text()})
    assert r.status_code == 200
    assert "The licence has expired." in r.get_data(as_text=True)
    assert web_kit.port.recent_verdicts(1)[0]["source"] == "web-text"


def _png(text: str) -> bytes:
    buf = io.BytesIO()
    segno.make_qr(text, error="m").save(buf, kind="png", scale=4, border=4)
    return buf.getvalue()


def test_verify_by_image(web_client, web_kit: Kit) -> None:
    token = csrf(web_client)
    r = web_client.post(
        "/verify",
        data={"csrf_token": token, "image": (io.BytesIO(_png(web_kit.pass_text())), "qr.png")},
    )
    assert r.status_code == 200
    assert "The licence is genuine and in force." in r.get_data(as_text=True)
    assert web_kit.port.recent_verdicts(1)[0]["source"] == "web-image"


def test_verify_image_without_code_and_non_image(web_client) -> None:
    token = csrf(web_client)
    blank = io.BytesIO()
    from PIL import Image

    Image.new("L", (64, 64), 255).save(blank, "PNG")
    r = web_client.post(
        "/verify", data={"csrf_token": token, "image": (io.BytesIO(blank.getvalue()), "blank.png")}
    )
    assert "No QR code was found in the picture." in r.get_data(as_text=True)
    r = web_client.post(
        "/verify", data={"csrf_token": token, "image": (io.BytesIO(b"not an image"), "x.png")}
    )
    assert r.status_code == 400
    assert "not a picture we can read" in r.get_data(as_text=True)
    r = web_client.post("/verify", data={"csrf_token": token})
    assert r.status_code == 400


def test_verify_refuses_without_csrf_token(web_client, web_kit: Kit) -> None:
    r = web_client.post("/verify", data={"text": web_kit.pass_text()})
    assert r.status_code == 400
    assert "The form had expired" in r.get_data(as_text=True)
    assert web_kit.port.recent_verdicts() == []
    web_client.get("/verify")
    r = web_client.post("/verify", data={"text": web_kit.pass_text(), "csrf_token": "forged"})
    assert r.status_code == 400


def test_verify_without_audit_gives_no_verdict(web_client, web_kit: Kit, monkeypatch) -> None:
    def refuse(text: str, source: str) -> Verdict:
        raise AuditUnavailable("disk full")

    monkeypatch.setattr(web_kit.service, "verify", refuse)
    token = csrf(web_client)
    r = web_client.post("/verify", data={"csrf_token": token, "text": web_kit.pass_text()})
    assert r.status_code == 503
    assert "audit log cannot be written" in r.get_data(as_text=True)


def test_api_verdicts_has_no_personal_data_and_honours_limit(
    inspector_client, inspector_kit: Kit
) -> None:
    for _ in range(3):
        inspector_kit.port.verify_text(inspector_kit.pass_text())
    data = inspector_client.get("/api/verdicts?limit=2").get_json()
    assert len(data["verdicts"]) == 2
    assert set(data["verdicts"][0]) == {
        "id",
        "at",
        "source",
        "outcome",
        "reason",
        "profile",
        "live",
        "typ",
        "iss",
    }
    text = json.dumps(data, ensure_ascii=False)
    assert "Somchai" not in text and "สมชาย" not in text and "1234" not in text
    assert len(inspector_client.get("/api/verdicts?limit=bad").get_json()["verdicts"]) == 3
    assert inspector_client.get("/api/verdicts?limit=-5").get_json()["verdicts"] == []


def test_api_status_and_healthz(web_client, web_kit: Kit) -> None:
    s = web_client.get("/api/status").get_json()
    assert s["trust"]["version"] == 42 and s["clock"]["trusted"] is True
    assert s["device"]["id"] == "pi-bkk-007" and s["system"]["cpu_temperature_c"] == 51.5
    h = web_client.get("/healthz")
    assert h.status_code == 200 and h.get_json()["status"] == "ok"


def test_healthz_degraded_when_verdicts_cannot_pass(tmp_path: Path) -> None:
    from appliance.trust.clock import Reading

    class Untrusted:
        def read(self) -> Reading:
            return Reading(0.0, False)

    kit = make_kit(tmp_path)
    kit.port._clock = Untrusted()
    kit.service.audit_fault = "disk full"
    client = make_app(kit).test_client()
    h = client.get("/healthz")
    assert h.status_code == 503
    assert set(h.get_json()["problems"]) >= {"clock_untrusted", "audit_unavailable"}
    html = client.get("/status").get_data(as_text=True)
    assert "The clock cannot be trusted" in html


def test_metrics_are_prometheus_text(web_client, web_kit: Kit) -> None:
    web_kit.port.verify_text(web_kit.pass_text())
    web_kit.port.verify_text(web_kit.fail_text())
    r = web_client.get("/metrics")
    assert r.mimetype == "text/plain"
    text = r.get_data(as_text=True)
    assert 'appliance_verdicts_total{outcome="PASS"} 1' in text
    assert 'appliance_verdicts_total{outcome="FAIL"} 1' in text
    assert "appliance_trust_version 42" in text
    assert "appliance_clock_trusted 1" in text
    sample = re.compile(r'^[a-z_]+(\{[a-z_]+="[^"\\]*"(,[a-z_]+="[^"\\]*")*\})? -?[0-9.e+]+$')
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or sample.match(line), line


def test_status_chart_counts_this_session(web_client, web_kit: Kit) -> None:
    for text in (web_kit.pass_text(), web_kit.pass_text(), web_kit.fail_text()):
        web_kit.port.verify_text(text)
    html = web_client.get("/status").get_data(as_text=True)
    assert html.count('class="bar pass"') == 1 and html.count('class="bar fail"') == 1
    assert '<svg class="chart"' in html
    rows = web_kit.port.verdicts_per_hour(24)
    assert len(rows) == 24 and rows[-1]["PASS"] == 2 and rows[-1]["FAIL"] == 1


def test_unknown_outcome_event_is_rendered_safely(inspector_client, inspector_kit: Kit) -> None:
    inspector_kit.bus.publish(
        {
            "type": "verdict",
            "id": "x1",
            "at": 1.0,
            "outcome": "<b>",
            "reason": "<i>",
            "source": "<u>",
            "holder": None,
        }
    )
    inspector_kit.port.publish_verdict(
        Verdict(Outcome.UNVERIFIABLE, Reason.CLOCK_UNTRUSTED), "camera"
    )
    html = inspector_client.get("/inspector/x1").get_data(as_text=True)
    assert "<b>" not in html and "<i>" not in html and "<u>" not in html


def test_thai_dates_use_the_buddhist_era(web_kit: Kit) -> None:
    """Thai licence cards print พ.ศ. years (Gregorian + 543); the screens do the same."""
    from flask_babel import force_locale

    from appliance_web.views import when

    with make_app(web_kit).test_request_context("/"):
        with force_locale("th"):
            thai = when(1_800_000_000)  # 2027-01-15 08:00 UTC
        with force_locale("en"):
            english = when(1_800_000_000)
    assert "2570" in thai and "2027" not in thai
    assert "2027" in english
