"""Admin screens: login, rate limit, CSRF on every POST, actions through the kiosk port."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from web_support import PASSWORD, Kit, make_app, make_kit

from appliance.core.errors import RequestError
from appliance_web.throttle import LoginThrottle

ACTIONS = ["/admin/sync", "/admin/upload", "/admin/export", "/admin/types", "/admin/logout"]


def token_from(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture
def calls() -> list[tuple]:
    return []


@pytest.fixture
def web_kit(tmp_path: Path, calls: list[tuple]) -> Kit:
    """The shared ``web_client`` (tests/conftest.py) over a kit that records its actions."""

    def export(since: float | None, until: float | None) -> bytes:
        calls.append(("export", since, until))
        return b'{"seq":1,"verdict":"PASS"}\n'

    return make_kit(
        tmp_path,
        sync=lambda: calls.append(("sync",)) or "Sync started.",
        upload=lambda: calls.append(("upload",)) or "",
        export=export,
        on_accepted_types=lambda types: calls.append(("types", types)),
    )


def login(client, password: str = PASSWORD):
    token = token_from(client.get("/admin/login").get_data(as_text=True))
    return client.post("/admin/login", data={"csrf_token": token, "password": password})


def admin_token(client) -> str:
    return token_from(client.get("/admin/").get_data(as_text=True))


def test_admin_needs_login(web_client) -> None:
    r = web_client.get("/admin/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/admin/login")


@pytest.mark.parametrize("path", ACTIONS)
def test_admin_posts_need_login(web_client, calls: list, path: str) -> None:
    web_client.get("/admin/login")
    with web_client.session_transaction() as s:
        token = s["csrf"]
    r = web_client.post(path, data={"csrf_token": token})
    assert r.status_code == 302 and r.headers["Location"].endswith(
        "/admin/login" if path != "/admin/logout" else "/"
    )
    assert calls == []


def test_wrong_password_then_right(web_client) -> None:
    r = login(web_client, "wrong")
    assert r.status_code == 401 and "Wrong password." in r.get_data(as_text=True)
    r = login(web_client)
    assert r.status_code == 302 and r.headers["Location"].endswith("/admin/")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Strict" in cookie
    html = web_client.get("/admin/").get_data(as_text=True)
    assert "pi-bkk-007" in html and "Test checkpoint" in html


def test_login_post_without_csrf_is_refused(web_client) -> None:
    web_client.get("/admin/login")
    r = web_client.post("/admin/login", data={"password": PASSWORD})
    assert r.status_code == 400
    assert web_client.get("/admin/").status_code == 302


def test_login_rotates_the_session(web_client) -> None:
    web_client.get("/admin/login")
    with web_client.session_transaction() as s:
        before = s["csrf"]
    login(web_client)
    with web_client.session_transaction() as s:
        assert s.get("role") == "admin" and s.get("sid")
        assert s.get("csrf") != before


def test_login_slows_down_after_failures(web_client) -> None:
    for _ in range(5):
        assert login(web_client, "guess").status_code == 401
    assert login(web_client, "guess").status_code == 401  # the sixth failure starts a wait
    r = login(web_client)  # during the wait the password is not even checked
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) > 0
    assert "Too many failed attempts" in r.get_data(as_text=True)


def test_throttle_doubles_to_its_cap_and_forgets() -> None:
    now = [0.0]
    throttle = LoginThrottle(free=2, base_s=1, cap_s=8, forget_after_s=60, clock=lambda: now[0])
    waits = []
    for _ in range(8):
        throttle.failed("a")
        waits.append(throttle.retry_after("a"))
        now[0] += waits[-1]
    assert waits == [0, 0, 1, 2, 4, 8, 8, 8]
    throttle.failed("a")
    assert throttle.retry_after("b") == 0  # per client
    now[0] += 61
    assert throttle.retry_after("a") == 0
    throttle.failed("a")
    assert throttle.retry_after("a") == 0  # forgotten: free tries again


def test_login_disabled_without_password_file(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    (Path(kit.config.paths.secrets_dir) / "admin_password_hash").unlink()
    client = make_app(kit).test_client()
    r = login(client)
    assert r.status_code == 403 and "disabled" in r.get_data(as_text=True)


def test_sync_and_upload_through_the_port(admin_client, calls: list) -> None:
    token = admin_token(admin_client)
    r = admin_client.post("/admin/sync", data={"csrf_token": token}, follow_redirects=True)
    assert "Trust-data sync requested" in r.get_data(as_text=True)
    r = admin_client.post("/admin/upload", data={"csrf_token": token}, follow_redirects=True)
    assert "Audit upload requested" in r.get_data(as_text=True)
    assert calls == [("sync",), ("upload",)]


@pytest.mark.parametrize("path", ACTIONS)
def test_every_admin_post_needs_csrf(admin_client, calls: list, path: str) -> None:
    r = admin_client.post(path, data={"types": "DL"})
    assert r.status_code == 400
    r = admin_client.post(path, data={"types": "DL", "csrf_token": "x" * 43})
    assert r.status_code == 400
    assert calls == []
    assert admin_client.get("/admin/").status_code == 200  # still logged in


def test_action_missing_on_this_device(tmp_path: Path) -> None:
    client = make_app(make_kit(tmp_path)).test_client()
    login(client)
    token = admin_token(client)
    r = client.post("/admin/sync", data={"csrf_token": token}, follow_redirects=True)
    assert "Trust-data sync is not set up on this device." in r.get_data(as_text=True)
    r = client.post("/admin/export", data={"csrf_token": token}, follow_redirects=True)
    assert "cannot be exported from this screen" in r.get_data(as_text=True)


def test_admin_messages_follow_the_language(tmp_path: Path) -> None:
    """The kiosk answers in English; the admin's messages are the screen's own, translated."""
    client = make_app(make_kit(tmp_path, language="th")).test_client()
    login(client)
    token = admin_token(client)
    html = client.post("/admin/sync", data={"csrf_token": token}, follow_redirects=True).get_data(
        as_text=True
    )
    flashes = re.findall(r'<p class="flash flash-error"[^>]*>(.*?)</p>', html, re.S)
    assert flashes and not re.search(r"[A-Za-z]{3,}", flashes[0]), flashes
    assert "until the device restarts" not in client.get("/admin/?lang=en").get_data(as_text=True)


def test_failing_action_is_reported(tmp_path: Path) -> None:
    def broken() -> str:
        raise RequestError("upload request not written: disk full")

    client = make_app(make_kit(tmp_path, upload=broken)).test_client()
    login(client)
    r = client.post(
        "/admin/upload", data={"csrf_token": admin_token(client)}, follow_redirects=True
    )
    assert "disk full" in r.get_data(as_text=True)


def test_a_bug_behind_an_action_is_not_a_message(tmp_path: Path) -> None:
    """Only the port's faults (ApplianceError) become a flash; a bug is not swallowed into
    one (no blind except, issue 22 item 4): it reaches Flask's error handling."""

    def buggy() -> str:
        raise RuntimeError("a bug")

    app = make_app(make_kit(tmp_path, upload=buggy))
    app.config["PROPAGATE_EXCEPTIONS"] = True
    client = app.test_client()
    login(client)
    with pytest.raises(RuntimeError, match="a bug"):
        client.post("/admin/upload", data={"csrf_token": admin_token(client)})


def test_export_audit(admin_client, calls: list) -> None:
    r = admin_client.post(
        "/admin/export",
        data={
            "csrf_token": admin_token(admin_client),
            "since": "2027-01-01",
            "until": "2027-01-15",
        },
    )
    assert r.status_code == 200 and r.mimetype == "application/x-ndjson"
    assert "attachment" in r.headers["Content-Disposition"]
    assert r.data == b'{"seq":1,"verdict":"PASS"}\n'
    assert calls == [("export", 1798736400.0, 1800032400.0)]  # Thai days, end inclusive


def test_set_accepted_types(admin_client, web_kit: Kit, calls: list) -> None:
    token = admin_token(admin_client)
    r = admin_client.post(
        "/admin/types", data={"csrf_token": token, "types": "DL, TAXI"}, follow_redirects=True
    )
    assert "Accepted licence types saved." in r.get_data(as_text=True)
    assert web_kit.port.accepted_types() == ("DL", "TAXI")
    assert web_kit.service.checkpoint.accepted_types == frozenset({"DL", "TAXI"})
    assert calls == [("types", ("DL", "TAXI"))]
    assert web_kit.port.verify_text(web_kit.credential(typ="BOAT"))["reason"] == "TYPE_NOT_ACCEPTED"
    r = admin_client.post(
        "/admin/types", data={"csrf_token": token, "types": "<script>"}, follow_redirects=True
    )
    assert "short names" in r.get_data(as_text=True)
    assert web_kit.port.accepted_types() == ("DL", "TAXI")
    admin_client.post("/admin/types", data={"csrf_token": token, "types": ""})
    assert web_kit.port.accepted_types() == ()


def test_logout(admin_client) -> None:
    r = admin_client.post("/admin/logout", data={"csrf_token": admin_token(admin_client)})
    assert r.status_code == 302
    assert admin_client.get("/admin/").status_code == 302
