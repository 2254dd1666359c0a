"""The web screens: live streams that cannot starve the kiosk, access to holder details,
sessions that really end, logins that slow down but never lock out, safe redirects.

Attacks replayed (each failed on the code before the fix):
- 40 open ``/kiosk/events`` streams filled the kiosk bridge (one connection each):
  ``/healthz`` failed and screens got no verdicts.
- inspector mode showed names, numbers and birth dates on ``/inspector`` and streamed them
  on ``/kiosk/events`` to anyone who could reach the page.
- a session cookie copied before logout still worked after it.
- five wrong passwords locked everyone (every screen client is 127.0.0.1) out for 300 s,
  the right password included.
- ``/lang/en?next=/%09/evil.example`` redirected to what a browser reads as
  ``//evil.example``; a CRLF in ``next`` gave a 500.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import FakeClock
from web_support import (
    INSPECTOR_PASSWORD,
    PASSWORD,
    Kit,
    LiveServer,
    login_admin,
    login_inspector,
    make_app,
    make_kit,
)

from appliance.kiosk.bridge import BridgeServer
from appliance_web import create_app
from appliance_web.socket_port import SocketKioskPort

COOKIE = "appliance_session"
PERSONAL = ("สมชาย", "Somchai", "1234/2566", "1 Apr 1990")  # birth date as the screen shows it


def _stream_view(chunks: Iterator[bytes]) -> dict:
    for chunk in chunks:
        text = chunk.decode()
        if text.startswith("event: verdict"):
            return json.loads(text.split("data: ", 1)[1])
    raise AssertionError("the stream ended without a verdict")


# --- live screens ------------------------------------------------------------------------


@pytest.fixture
def kiosk_and_web(tmp_path: Path) -> Iterator[tuple[Kit, LiveServer]]:
    """The real split: kiosk port behind the Unix-socket bridge, web over SocketKioskPort,
    served by werkzeug on loopback."""
    kit = make_kit(tmp_path)
    sock = tmp_path / "k.sock"
    bridge = BridgeServer(kit.port, sock, heartbeat_s=0.5).start()
    port = SocketKioskPort(sock, timeout_s=5.0)
    server = LiveServer(create_app(port, kit.config, secret_key=b"k" * 32))
    try:
        yield kit, server
    finally:
        server.close()
        port.close()
        bridge.close()


def test_forty_streams_leave_the_kiosk_answering(kiosk_and_web) -> None:
    """From 40 remote addresses (127.0.0.2 and up): all but the display's slot served."""
    kit, server = kiosk_and_web
    opened, refused = [], []
    for i in range(40):
        conn = http.client.HTTPConnection(
            "127.0.0.1", server.port, timeout=10.0, source_address=(f"127.0.0.{i + 2}", 0)
        )
        conn.request("GET", "/kiosk/events?lang=en")
        r = conn.getresponse()
        if r.status == 200:
            assert r.readline().startswith(b"retry:")  # subscribed
            assert r.readline() == b"\n"
            opened.append((conn, r))
        else:
            refused.append(r.status)
            assert r.status == 503 and int(r.getheader("Retry-After")) > 0
            r.read()
            conn.close()
    try:
        status, _, body = server.get("/healthz")
        assert status == 200, body
        assert server.get("/status")[0] == 200
        event = kit.port.verify_text(kit.fail_text(), source="camera")
        for _, r in (opened[0], opened[-1]):
            lines = []
            while not lines or lines[-1] != b"\n":
                lines.append(r.readline())
            assert lines[0] == b"event: verdict\n"
            view = json.loads(lines[1].split(b"data: ", 1)[1])
            assert view["id"] == event["id"] and view["outcome"] == "fail"
        cap = kit.config.web.max_event_streams - 1  # the last slot is the display's
        assert len(opened) == cap and len(refused) == 40 - cap
    finally:
        for conn, _ in opened:
            conn.close()


def test_a_closed_stream_frees_its_slot(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    app = make_app(kit)
    fanout = app.extensions["live_events"]
    client = app.test_client()

    def stream(i: int):
        return client.get(
            "/kiosk/events", buffered=False, environ_base={"REMOTE_ADDR": f"192.0.2.{i}"}
        )

    responses = [stream(i) for i in range(fanout.max_clients - 1)]  # one left: the display's
    assert all(r.status_code == 200 for r in responses)
    assert stream(99).status_code == 503
    responses[0].close()  # never read: the slot still comes back
    again = stream(99)
    assert again.status_code == 200
    for r in [*responses[1:], again]:
        r.close()
    assert fanout.clients == 0


# --- holder details need the inspector login ---------------------------------------------


@pytest.fixture
def inspector_kit(tmp_path: Path) -> Kit:
    return make_kit(tmp_path, mode="inspector")


def test_inspector_pages_need_login(inspector_kit: Kit) -> None:
    event = inspector_kit.port.verify_text(inspector_kit.pass_text())
    client = make_app(inspector_kit).test_client()
    for path in ("/inspector", f"/inspector/{event['id']}"):
        r = client.get(path)
        assert r.status_code == 302 and "/inspector/login" in r.headers["Location"]
        assert not any(p in r.get_data(as_text=True) for p in PERSONAL)
    assert login_inspector(client, "wrong").status_code == 401
    r = login_inspector(client)
    assert r.status_code == 302 and r.headers["Location"] == "/inspector"
    html = client.get("/inspector").get_data(as_text=True)
    assert all(p in html for p in PERSONAL)


def test_verify_page_shows_holder_only_to_an_inspector(inspector_kit: Kit) -> None:
    from web_support import form_token

    client = make_app(inspector_kit).test_client()
    text = inspector_kit.pass_text()
    r = client.post("/verify", data={"csrf_token": form_token(client, "/verify"), "text": text})
    assert r.status_code == 200 and "Somchai" not in r.get_data(as_text=True)
    login_inspector(client)
    r = client.post("/verify", data={"csrf_token": form_token(client, "/verify"), "text": text})
    assert "Somchai" in r.get_data(as_text=True)


def test_anonymous_screens_get_pass_or_fail_only(inspector_kit: Kit) -> None:
    client = make_app(inspector_kit).test_client()
    r = client.get("/kiosk/events?lang=en", buffered=False)
    chunks = iter(r.response)
    next(chunks)
    inspector_kit.port.verify_text(inspector_kit.pass_text(), source="camera")
    view = _stream_view(chunks)
    assert view["outcome"] == "pass" and "holder" not in view
    r.close()
    assert "Somchai" not in client.get("/kiosk").get_data(as_text=True)


def test_stream_stops_holder_details_at_logout(inspector_kit: Kit) -> None:
    client = make_app(inspector_kit).test_client()
    login_inspector(client)
    r = client.get("/kiosk/events?lang=en", buffered=False)
    chunks = iter(r.response)
    next(chunks)
    inspector_kit.port.verify_text(inspector_kit.pass_text(), source="camera")
    assert _stream_view(chunks)["holder"]["name_latin"] == "Somchai Jaidee"
    client.get("/inspector")  # the page with the logout form
    with client.session_transaction() as s:
        token = s["csrf"]
    assert client.post("/inspector/logout", data={"csrf_token": token}).status_code == 302
    inspector_kit.port.verify_text(inspector_kit.pass_text(), source="camera")
    assert "holder" not in _stream_view(chunks)
    r.close()


# --- sessions end on the server -----------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "inspector"])
def test_a_cookie_copied_before_logout_is_dead_after_it(inspector_kit: Kit, role: str) -> None:
    app = make_app(inspector_kit)
    client = app.test_client()
    (login_admin if role == "admin" else login_inspector)(client)
    page = "/admin/" if role == "admin" else "/inspector"
    assert client.get(page).status_code == 200
    stolen = client.get_cookie(COOKIE).value
    with client.session_transaction() as s:
        token = s["csrf"]
    logout = "/admin/logout" if role == "admin" else "/inspector/logout"
    assert client.post(logout, data={"csrf_token": token}).status_code == 302
    thief = app.test_client()
    thief.set_cookie(COOKIE, stolen)
    r = thief.get(page)
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_inspector_session_ends_after_15_idle_minutes(inspector_kit: Kit) -> None:
    clock = FakeClock()
    client = make_app(inspector_kit, clock=clock).test_client()
    login_inspector(client)
    clock.advance(14 * 60)
    assert client.get("/inspector").status_code == 200  # a request resets the idle time
    clock.advance(14 * 60)
    assert client.get("/inspector").status_code == 200
    clock.advance(15 * 60 + 1)
    assert client.get("/inspector").status_code == 302
    assert inspector_kit.config.web.inspector_idle_s <= 15 * 60


def test_inspector_password_is_not_the_admin_password(inspector_kit: Kit) -> None:
    client = make_app(inspector_kit).test_client()
    assert login_inspector(client, PASSWORD).status_code == 401
    assert login_admin(client, INSPECTOR_PASSWORD).status_code == 401
    assert login_inspector(client).status_code == 302
    assert client.get("/admin/").status_code == 302  # an inspector is not an admin


# --- failed logins slow down, never lock out --------------------------------------------


def test_five_wrong_passwords_do_not_lock_out_the_right_one(tmp_path: Path) -> None:
    client = make_app(make_kit(tmp_path), clock=FakeClock()).test_client()
    for _ in range(5):
        assert login_admin(client, "guess").status_code == 401
    assert login_admin(client).status_code == 302


def test_a_flood_of_failures_costs_the_right_password_one_capped_wait(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    clock = FakeClock()
    client = make_app(kit, clock=clock).test_client()
    cap = kit.config.web.login_delay_cap_s
    waits = []
    for _ in range(60):  # an attacker at the same address, guessing as fast as allowed
        r = login_admin(client, "guess")
        if r.status_code == 429:
            wait = int(r.headers["Retry-After"])
            waits.append(wait)
            clock.advance(wait)
        else:
            assert r.status_code == 401
    assert waits == sorted(waits) and waits[0] < waits[-1] <= cap  # doubling, capped
    other = make_app(kit, clock=clock).test_client()
    other_addr = {"REMOTE_ADDR": "127.0.0.2"}
    assert login_admin(other, environ_base=other_addr).status_code == 302  # per client
    r = login_admin(client)
    if r.status_code == 429:
        assert int(r.headers["Retry-After"]) <= cap
        clock.advance(int(r.headers["Retry-After"]))
        r = login_admin(client)
    assert r.status_code == 302


# --- redirects ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "next=/%09/evil.example",
        "next=/%0d%0aSet-Cookie:%20x=1",
        "next=%0a//evil.example",
        "next=//evil.example",
        "next=/%5Cevil.example",
        "next=/%2F%2Fevil.example",
        "next=/%252F%252Fevil.example",
        "next=https://evil.example/",
        "next=javascript:alert(1)",
        "next=/%00x",
        "next=%E2%80%AE/x",
        "next=evil.example",
    ],
)
def test_next_accepts_same_site_paths_only(tmp_path: Path, query: str) -> None:
    client = make_app(make_kit(tmp_path)).test_client()
    r = client.get(f"/lang/en?{query}")
    assert r.status_code == 302 and r.headers["Location"] == "/"


def test_next_keeps_a_good_path(tmp_path: Path) -> None:
    client = make_app(make_kit(tmp_path)).test_client()
    r = client.get("/lang/th?next=/status%3Flang%3Dth")
    assert r.status_code == 302 and r.headers["Location"] == "/status?lang=th"


def test_login_next_is_checked_too(inspector_kit: Kit) -> None:
    from web_support import form_token

    client = make_app(inspector_kit).test_client()
    token = form_token(client, "/inspector/login")
    r = client.post(
        "/inspector/login?next=/%09/evil.example",
        data={"csrf_token": token, "password": INSPECTOR_PASSWORD},
    )
    assert r.status_code == 302 and r.headers["Location"] == "/inspector"
