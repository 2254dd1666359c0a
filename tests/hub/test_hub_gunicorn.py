"""The hub under gunicorn, as appliance-hub.service runs it: real process, real HTTP.

Settings from the environment, tokens from a credentials folder (as systemd hands them
over), two workers migrating one SQLite database, and a signed heartbeat through it.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from audit_support import device
from hub_fleet_support import ADMIN, AUDITOR, gunicorn_hub, heartbeat_fields, signed

from appliance_hub.migrations import steps


def _get(url: str, token: str | None = None, body: bytes | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture
def hub_under_gunicorn(tmp_path):
    credentials = tmp_path / "credentials"
    credentials.mkdir(mode=0o700)
    (credentials / "auditor_token").write_text(AUDITOR + "\n")
    (credentials / "admin_token").write_text(ADMIN)
    env = {
        "APPLIANCE_HUB_DB": str(tmp_path / "hub.db"),
        "APPLIANCE_HUB_DEVICES": str(tmp_path / "devices"),
        "CREDENTIALS_DIRECTORY": str(credentials),
    }
    with gunicorn_hub(2, env) as url:
        yield url, tmp_path


def test_gunicorn_serves_the_hub_from_environment_and_credentials(hub_under_gunicorn):
    url, tmp_path = hub_under_gunicorn
    assert _get(url + "/readyz") == (200, {"status": "ready", "schema_version": len(steps([]))})
    _, _, identity = device(tmp_path, "kiosk-01", tmp_path / "devices")
    status, _ = _get(
        url + "/v1/heartbeats", body=signed(identity, heartbeat_fields("kiosk-01", time.time()))
    )
    assert status == 200
    assert _get(url + "/v1/devices")[0] == 401
    for token in (AUDITOR, ADMIN):  # the trailing newline of a credential file is not part
        status, body = _get(url + "/v1/devices", token=token)
        assert status == 200 and [d["device_id"] for d in body["devices"]] == ["kiosk-01"]


def test_wsgi_names_missing_settings(tmp_path):
    from appliance.core.errors import ApplianceError
    from appliance_hub.wsgi import app_from_environment

    with pytest.raises(ApplianceError, match="APPLIANCE_HUB_DB"):
        app_from_environment({"APPLIANCE_HUB_DEVICES": str(tmp_path)})
    app = app_from_environment(
        {
            "APPLIANCE_HUB_DB": str(tmp_path / "hub.db"),
            "APPLIANCE_HUB_DEVICES": str(tmp_path / "devices"),
        }
    )
    assert app.test_client().get("/v1/devices").status_code == 401, "no token: nobody reads"
