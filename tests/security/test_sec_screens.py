"""The screens: nothing on screen contradicts the verdict or the device's real state.

Attacks replayed (each failed on the code before the fix):
- a licence issued with a printed ``vu`` of 2020-01-01 but a signed ``exp`` years ahead
  showed "Valid" above "Valid until 2020-01-01"; an expired one (signed ``exp`` past)
  showed "has expired" above a printed "Valid until 2030-01-01".
- with the kiosk process stopped, ``/kiosk`` still invited people to show their code and
  ``/status`` headlined "trust data cannot be read", hiding the cause.
- ``/status`` said "All checks are fine" with the next sync 11 minutes overdue, or beside
  a red sync error.
- with the camera lost, the trust data stale, the clock untrusted or the audit log
  failing, ``/kiosk`` kept inviting people to show their code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from web_support import NOW, Kit, fake_system, login_inspector, make_app, make_kit

from appliance.trust.clock import Reading
from appliance_web import create_app
from appliance_web.socket_port import SocketKioskPort

OUT_WORDS = {"en": "Out of service", "th": "งดให้บริการชั่วคราว"}


def _panel_shown(html: str, state: str) -> bool:
    tag = re.search(rf'<section id="panel-{state}"[^>]*>', html)
    assert tag, f"no panel {state}"
    return " hidden" not in tag.group(0)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


class Untrusted:
    def read(self) -> Reading:
        return Reading(float(NOW), False)


@pytest.mark.parametrize("lang", ["en", "th"])
def test_kiosk_down_shows_out_of_service_with_the_cause(tmp_path: Path, lang: str) -> None:
    kit = make_kit(tmp_path, language=lang)
    port = SocketKioskPort(tmp_path / "nobody-listens.sock", connect_timeout_s=0.5)
    app = create_app(port, kit.config, secret_key=b"k" * 32, testing=True, system_info=fake_system)
    client = app.test_client()
    html = client.get("/kiosk").get_data(as_text=True)
    assert _panel_shown(html, "out") and not _panel_shown(html, "idle")
    assert OUT_WORDS[lang] in html
    with app.test_request_context(f"/?lang={lang}"):
        from appliance_web.faults import Fault

        cause = Fault("kiosk_not_running", True).text
    assert cause in html
    health = client.get(f"/kiosk/health?lang={lang}").get_json()
    assert health["fault"] == "kiosk_not_running" and health["text"] == cause
    status = client.get("/status").get_data(as_text=True)
    headline = re.search(r'<p class="headline[^"]*"[^>]*>(.*?)</p>', status, re.S)
    assert headline and cause in headline.group(1)
    assert "All checks are fine" not in status and "ทุกอย่างปกติ" not in status


def _fault_kit(tmp_path: Path, code: str) -> Kit:
    """A real kiosk port in the state of one fault."""
    providers = {
        "camera_lost": {"camera": lambda: {"camera_ok": False, "camera_failures": 3}},
        "trust_data_stale": {"trust": lambda: {"age_s": 80 * 3600.0}},
        "trust_data_unreadable": {"trust": lambda: {"error": "current link is dangling"}},
        "device_disabled": {"trust": lambda: {"out_of_service": "DEVICE_DISABLED"}},
        "software_outdated": {"trust": lambda: {"out_of_service": "SOFTWARE_OUTDATED"}},
    }.get(code, {})
    kit = make_kit(tmp_path, providers=providers)
    if code == "audit_unavailable":
        kit.service.audit_fault = "disk full"
    if code == "clock_untrusted":
        kit.port._clock = Untrusted()
    return kit


@pytest.mark.parametrize(
    "code",
    [
        "camera_lost",
        "audit_unavailable",
        "clock_untrusted",
        "trust_data_stale",
        "trust_data_unreadable",
        "device_disabled",
        "software_outdated",
    ],
)
def test_every_blocking_fault_takes_the_kiosk_out_of_service(tmp_path: Path, code: str) -> None:
    kit = _fault_kit(tmp_path, code)
    client = make_app(kit).test_client()
    html = client.get("/kiosk").get_data(as_text=True)
    assert _panel_shown(html, "out") and not _panel_shown(html, "idle")
    assert client.get("/kiosk/health").get_json()["fault"] == code
    status = client.get("/status").get_data(as_text=True)
    assert "All checks are fine" not in status


def test_healthy_kiosk_is_idle_and_status_is_fine(tmp_path: Path) -> None:
    client = make_app(make_kit(tmp_path)).test_client()
    html = client.get("/kiosk").get_data(as_text=True)
    assert _panel_shown(html, "idle") and not _panel_shown(html, "out")
    assert client.get("/kiosk/health").get_json() == {"fault": None, "text": None}
    assert "All checks are fine" in client.get("/status").get_data(as_text=True)


@pytest.mark.parametrize(
    "trust,word",
    [
        ({"next_sync_at": NOW - 660.0, "last_sync_at": NOW - 4000.0}, "overdue"),
        (
            {
                "last_error": "connection refused",
                "last_error_at": NOW - 60.0,
                "last_sync_at": NOW - 4000.0,
            },
            "failed",
        ),
    ],
)
def test_status_never_all_fine_beside_a_sync_fault(
    tmp_path: Path, trust: dict[str, Any], word: str
) -> None:
    kit = make_kit(tmp_path, providers={"trust": lambda: dict(trust)})
    status = make_app(kit).test_client().get("/status").get_data(as_text=True)
    assert "All checks are fine" not in status
    headline = re.search(r'<p class="headline[^"]*"[^>]*>(.*?)</p>', status, re.S)
    assert headline and word in headline.group(1)
    # not a kiosk fault: the kiosk still verifies with its (fresh enough) data
    html = make_app(kit).test_client().get("/kiosk").get_data(as_text=True)
    assert _panel_shown(html, "idle")


def _inspector_page(tmp_path: Path, text_of) -> str:
    kit = make_kit(tmp_path, mode="inspector", language="en")
    client = make_app(kit).test_client()
    login_inspector(client)
    kit.port.verify_text(text_of(kit))
    return _text(client.get("/inspector").get_data(as_text=True))


def test_pass_with_a_past_printed_date_shows_the_signed_validity(tmp_path: Path) -> None:
    exp = NOW + 400 * 86400  # 2028-02-19 (Bangkok)
    page = _inspector_page(tmp_path, lambda kit: kit.credential(vu="2020-01-01", exp=exp))
    assert "Valid" in page
    assert re.search(r"Valid until \(signed\) 19 Feb 2028", page), page
    assert re.search(r"Valid until, as printed on the licence 1 Jan 2020", page)
    assert "The dates printed on the licence differ from its signed validity" in page


def test_expired_shows_the_signed_expiry_not_the_printed_one(tmp_path: Path) -> None:
    page = _inspector_page(tmp_path, lambda kit: kit.credential(vu="2030-01-01", exp=NOW - 86400))
    assert "The licence has expired." in page
    assert re.search(r"Valid until \(signed\) 14 Jan 2027", page), page
    assert not re.search(r"Valid until (\(signed\) )?1 Jan 2030", page)
    assert "The dates printed on the licence differ from its signed validity" in page


def test_matching_dates_show_no_mismatch(tmp_path: Path) -> None:
    # exp at the end of the printed day, Bangkok time
    page = _inspector_page(
        tmp_path, lambda kit: kit.credential(vu="2028-02-19", exp=NOW + 400 * 86400)
    )
    assert "differ from its signed validity" not in page
