"""Attack replays against the hub's fleet view (issue 16): nobody can fake a kiosk's health.

Each test replays one attack over real HTTP on loopback against a real SQLite store:
a heartbeat forged for another device, a captured heartbeat replayed to hide a silent
kiosk, the fleet list read without a token, a heartbeat big or deep enough to cost the hub,
and personal data smuggled into a heartbeat's fields.
"""

from __future__ import annotations

import json

import pytest
from audit_support import device
from hub_fleet_support import ADMIN, AUDITOR, T0, heartbeat_fields, live_hub, signed


@pytest.fixture
def hub(tmp_path):
    with live_hub(tmp_path) as live:
        yield live


def _listed(hub) -> dict[str, dict]:
    status, body = hub.get_json("/v1/devices", token=AUDITOR)
    assert status == 200
    return {d["device_id"]: d for d in body["devices"]}


def test_heartbeat_forged_for_another_device_is_refused(tmp_path, hub):
    """An enrolled kiosk (or anyone) signs a heartbeat claiming to be a victim kiosk."""
    device(tmp_path, "victim", hub.devices)
    _, _, attacker = device(tmp_path, "attacker", hub.devices)
    forged = signed(attacker, heartbeat_fields("victim", T0))
    status, body = hub.heartbeat(forged)
    assert status == 401 and body["status"] == "error"
    _, _, stranger = device(tmp_path, "not-enrolled")
    status, _ = hub.heartbeat(signed(stranger, heartbeat_fields("not-enrolled", T0)))
    assert status == 401
    assert _listed(hub) == {}


def test_replayed_heartbeat_does_not_hide_a_silent_kiosk(tmp_path, hub):
    """A heartbeat captured on the wire is replayed later to make a dead kiosk look alive."""
    _, _, identity = device(tmp_path, "kiosk-01", hub.devices)
    captured = signed(identity, heartbeat_fields("kiosk-01", T0))
    assert hub.heartbeat(captured)[0] == 200
    hub.clock.now = T0 + 2 * 3600  # the kiosk died two hours ago
    status, body = hub.heartbeat(captured)
    assert status == 409 and body["status"] == "stale"
    kiosk = _listed(hub)["kiosk-01"]
    assert kiosk["silent"] is True
    assert kiosk["last_seen"] == "2027-01-15T08:00:00Z"


def test_fleet_list_needs_an_auditor_or_admin_token(tmp_path, hub):
    _, _, identity = device(tmp_path, "kiosk-01", hub.devices)
    assert hub.heartbeat(signed(identity, heartbeat_fields("kiosk-01", T0)))[0] == 200
    for token in (None, "wrong", AUDITOR[:-1], ""):
        status, body = hub.get_json("/v1/devices", token=token)
        assert status == 401 and "devices" not in body, token
    for token in (AUDITOR, ADMIN):
        status, body = hub.get_json("/v1/devices", token=token)
        assert status == 200 and [d["device_id"] for d in body["devices"]] == ["kiosk-01"]


def test_oversized_or_deep_heartbeat_is_refused_before_parsing(tmp_path, hub):
    _, _, identity = device(tmp_path, "kiosk-01", hub.devices)
    big = signed(identity, heartbeat_fields("kiosk-01", T0, software_version="x" * 10**6))
    status, _ = hub.request("POST", "/v1/heartbeats", big)
    assert status == 413
    deep = b'{"payload": ' + b"[" * 1500 + b"]" * 1500 + b"}"  # under the size cap
    status, body = hub.request("POST", "/v1/heartbeats", deep)
    assert status == 400 and json.loads(body)["status"] == "error"
    assert _listed(hub) == {}


@pytest.mark.parametrize(
    "smuggled",
    [
        {"holder_name": "สมชาย ใจดี"},
        {"software_version": "0.1.0\nlicence 63001234"},
        {"camera": "x" * 65},
        {"audit_backlog": -1},
        {"clock_trusted": 1},
        {"uptime_s": float("inf")},
    ],
)
def test_heartbeat_carries_only_operational_fields(tmp_path, hub, smuggled):
    """A heartbeat is no side channel for personal data or log-injection text."""
    _, _, identity = device(tmp_path, "kiosk-01", hub.devices)
    fields = heartbeat_fields("kiosk-01", T0, **smuggled)
    payload = json.dumps(fields).encode()  # inf as the literal Infinity
    from hub_fleet_support import envelope

    status, _ = hub.heartbeat(envelope(payload, identity.sign(payload)))
    assert status == 400
    assert _listed(hub) == {}
