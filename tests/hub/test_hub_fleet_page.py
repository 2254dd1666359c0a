"""The hub's fleet page (issue 16): filters, marks, Thai/English, the admin/auditor check;
with the Flask test client and over real HTTP on loopback."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

import pytest
from audit_support import device
from hub_fleet_support import ADMIN, AUDITOR, T0, heartbeat_fields, live_hub, signed

from appliance_hub.server import create_app
from appliance_hub.store import HubStore


def _marks(html: str) -> dict[str, list[str]]:
    """Device id -> the marks its row shows."""
    out = {}
    for row in re.findall(r'<tr class="\w+" data-device="([^"]+)">(.*?)</tr>', html, re.S):
        out[row[0]] = re.findall(r'data-mark="(\w+)"', row[1])
    return out


@pytest.fixture
def fleet(tmp_path):
    """A live hub holding four devices: fine, silent, failing (camera) and disabled."""
    with live_hub(tmp_path) as hub:
        beats = {
            "kiosk-ok": heartbeat_fields("kiosk-ok", T0 + 3000),
            "kiosk-silent": heartbeat_fields("kiosk-silent", T0),
            "kiosk-camera": heartbeat_fields("kiosk-camera", T0 + 3000, camera="failed"),
            "kiosk-lost": heartbeat_fields(
                "kiosk-lost", T0 + 3000, out_of_service="DEVICE_DISABLED"
            ),
        }
        for device_id, fields in beats.items():
            _, _, identity = device(tmp_path, device_id, hub.devices)
            hub.clock.now = T0 if device_id == "kiosk-silent" else T0 + 3000
            status, body = hub.heartbeat(signed(identity, fields))
            assert status == 200, body
        hub.clock.now = T0 + 3601  # kiosk-silent unheard for over an hour
        yield hub


def _get(
    hub, path: str, token: str | None = ADMIN, lang: str | None = None
) -> tuple[int, str, dict]:
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if lang:
        headers["Accept-Language"] = lang
    req = urllib.request.Request(hub.url + path, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode(), dict(resp.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def test_all_devices_listed_with_the_bad_ones_marked(fleet):
    status, html, headers = _get(fleet, "/fleet")
    assert status == 200
    assert _marks(html) == {
        "kiosk-camera": ["failing"],
        "kiosk-lost": ["out_of_service"],
        "kiosk-ok": [],
        "kiosk-silent": ["silent"],
    }
    assert (
        "no-store" in headers["Cache-Control"]
        and "default-src 'none'" in headers["Content-Security-Policy"]
    )


@pytest.mark.parametrize(
    ("show", "expected"),
    [
        ("silent", {"kiosk-silent"}),
        ("failing", {"kiosk-camera"}),
        ("out_of_service", {"kiosk-lost"}),
        ("stale", set()),
        ("all", {"kiosk-ok", "kiosk-silent", "kiosk-camera", "kiosk-lost"}),
        ("nonsense", {"kiosk-ok", "kiosk-silent", "kiosk-camera", "kiosk-lost"}),
    ],
)
def test_filters(fleet, show, expected):
    status, html, _ = _get(fleet, f"/fleet?show={show}")
    assert status == 200 and set(_marks(html)) == expected


def test_a_stale_device_is_marked_once_its_trust_data_ages(fleet):
    fleet.clock.now = T0 + 3 * 86400  # reported age 600 s, grown by three days
    status, html, _ = _get(fleet, "/fleet?show=stale")
    assert status == 200 and set(_marks(html)) == {
        "kiosk-ok",
        "kiosk-silent",
        "kiosk-camera",
        "kiosk-lost",
    }


def test_auditor_reads_it_too_and_nobody_else(fleet):
    assert _get(fleet, "/fleet", token=AUDITOR)[0] == 200
    for token in (None, "wrong", ADMIN + "x"):
        status, html, headers = _get(fleet, "/fleet", token=token)
        assert status == 401 and "kiosk-ok" not in html
        assert headers["WWW-Authenticate"].startswith("Bearer")


def test_thai_or_english_per_request(fleet):
    assert "อุปกรณ์ถูกระงับ" in _get(fleet, "/fleet?lang=th")[1]
    assert "อุปกรณ์ถูกระงับ" in _get(fleet, "/fleet", lang="th-TH,th;q=0.9")[1]
    english = _get(fleet, "/fleet", lang="en-GB")[1]
    assert "DEVICE_DISABLED" in english and "อุปกรณ์ถูกระงับ" not in english
    assert 'lang="th"' in _get(fleet, "/fleet?lang=th", lang="en")[1], "?lang= wins"


def test_flask_test_client_without_any_token_configured(tmp_path):
    """A hub with no reader token at all shows the page to no one."""
    app = create_app(HubStore(tmp_path / "hub.db"), tmp_path / "devices", None)
    client = app.test_client()
    assert client.get("/fleet").status_code == 401
    assert client.get("/fleet", headers={"Authorization": "Bearer "}).status_code == 401
    resp = client.get("/fleet", headers={"Authorization": "Bearer x"})
    assert resp.status_code == 401


def test_flask_test_client_empty_fleet(tmp_path):
    app = create_app(
        HubStore(tmp_path / "hub.db"),
        tmp_path / "devices",
        AUDITOR,
        admin_token=ADMIN,
        clock=lambda: T0,
    )
    resp = app.test_client().get("/fleet?lang=en", headers={"Authorization": f"Bearer {ADMIN}"})
    assert resp.status_code == 200 and "No device matches." in resp.get_data(as_text=True)
