"""Attack replays against the hub's logins and the auditor's view (issue 16).

Each test replays what an attacker would try: reaching the screens without a login, forging
a login or logout from another site, reusing a cookie after logout, slowing down every
auditor from one address behind nginx, redirecting after login to another origin, telling
names apart, smuggling markup or spreadsheet formulas through a device's records, asking
for unbounded pages, and reading records without the access being logged.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from audit_support import Scenario
from hub_auditor_support import (
    AUDITOR,
    AUDITOR_PW,
    HTTPS,
    csrf_of,
    get,
    login,
    make_hub,
    upload_crafted,
)

from appliance_hub.audit_view_query import MAX_PAGE
from appliance_hub.auth import SESSION_COOKIE

SCREENS = (
    "/audit/",
    "/audit/records",
    "/audit/export.csv",
    "/audit/export.jsonl",
    "/audit/chain?device_id=a&log_id=b",
    "/audit/access",
)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return Scenario()


def _cookie(client) -> str:
    return client.get_cookie(SESSION_COOKIE, domain="hub.example").value


def test_screens_need_a_login_and_a_bearer_token_does_not_open_them(hub_app):
    app = hub_app.app
    client = app.test_client()
    for path in SCREENS:
        for headers in ({}, {"Authorization": "Bearer bearer-auditor"}):
            resp = get(client, path, headers=headers)
            assert resp.status_code == 302, path
            assert resp.headers["Location"].startswith("/login?next=")


def test_login_and_logout_forms_refuse_a_missing_or_foreign_csrf_token(hub_app):
    app = hub_app.app
    attacker, victim = app.test_client(), app.test_client()
    # A cross-site form post carries neither the login cookie nor a matching field.
    bare = victim.post("/login", base_url=HTTPS, data={"name": AUDITOR, "password": AUDITOR_PW})
    assert bare.status_code == 400
    foreign = csrf_of(get(attacker, "/login").get_data(as_text=True))
    get(victim, "/login")
    resp = victim.post(
        "/login",
        base_url=HTTPS,
        data={"csrf_token": foreign, "name": AUDITOR, "password": AUDITOR_PW},
    )
    assert (
        resp.status_code == 400 and victim.get_cookie(SESSION_COOKIE, domain="hub.example") is None
    )
    assert login(victim, AUDITOR, AUDITOR_PW).status_code == 302
    assert victim.post("/logout", base_url=HTTPS).status_code == 400
    assert get(victim, "/audit/").status_code == 200, "a forged logout ends nothing"


def test_a_cookie_copied_before_logout_is_worth_nothing_after(hub_app):
    app = hub_app.app
    client, thief = app.test_client(), app.test_client()
    login(client, AUDITOR, AUDITOR_PW)
    thief.set_cookie(SESSION_COOKIE, _cookie(client), domain="hub.example")
    assert get(thief, "/audit/").status_code == 200
    page = get(client, "/audit/").get_data(as_text=True)
    assert (
        client.post("/logout", base_url=HTTPS, data={"csrf_token": csrf_of(page)}).status_code
        == 302
    )
    assert get(thief, "/audit/").status_code == 302


def test_logout_in_one_worker_ends_the_session_in_another(tmp_path):
    one, store, clock = make_hub(tmp_path)
    other, store2, _ = make_hub(tmp_path, clock=clock)  # a second gunicorn worker, one DB
    a, b = one.test_client(), other.test_client()
    login(a, AUDITOR, AUDITOR_PW)
    b.set_cookie(SESSION_COOKIE, _cookie(a), domain="hub.example")
    assert get(b, "/audit/").status_code == 200
    page = get(b, "/audit/").get_data(as_text=True)
    b.post("/logout", base_url=HTTPS, data={"csrf_token": csrf_of(page)})
    assert get(a, "/audit/").status_code == 302
    store.close()
    store2.close()


def test_failed_logins_behind_nginx_slow_only_the_failing_client_never_lock_out(tmp_path):
    app, store, clock = make_hub(tmp_path, trusted_proxies=1)
    # nginx appends the address it saw to X-Forwarded-For; the hub sees 127.0.0.1 for all.
    attacker = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.7"}
    spoofing = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "10.9.9.9, 198.51.100.7"}
    auditor = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.20"}
    bad = app.test_client()
    statuses = [login(bad, AUDITOR, f"guess-{i}", **attacker).status_code for i in range(8)]
    assert statuses[:5] == [401] * 5 and 429 in statuses[5:]
    refused = login(bad, AUDITOR, AUDITOR_PW, **spoofing)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert login(app.test_client(), AUDITOR, AUDITOR_PW, **auditor).status_code == 302
    clock.now += 120  # past the longest wait: the right password works again (no lockout)
    assert login(bad, AUDITOR, AUDITOR_PW, **attacker).status_code == 302
    store.close()


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "/%2F%2Fevil.example",
        "/\t/evil.example",
    ],
)
def test_next_after_login_stays_on_the_hub(hub_app, target):
    app = hub_app.app
    resp = login(app.test_client(), AUDITOR, AUDITOR_PW, next_=target)
    assert resp.status_code == 302 and resp.headers["Location"] == "/audit/"


def test_unknown_names_and_wrong_passwords_answer_alike(hub_app):
    app = hub_app.app
    unknown = login(app.test_client(), "nobody", "x" * 20)
    wrong = login(app.test_client(), AUDITOR, "x" * 20)
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.get_data(as_text=True).replace(
        csrf_of(unknown.get_data(as_text=True)), ""
    ) == wrong.get_data(as_text=True).replace(csrf_of(wrong.get_data(as_text=True)), "")


def test_plain_text_password_in_the_users_file_is_no_password(tmp_path):
    users = tmp_path / "users"
    users.write_text("bob auditor hunter2-plain-text\n")
    app, store, _ = make_hub(tmp_path, users=users)
    assert login(app.test_client(), "bob", "hunter2-plain-text").status_code == 401
    store.close()


def test_removed_account_and_idle_session_end(tmp_path):
    app, store, clock = make_hub(tmp_path)
    client = app.test_client()
    login(client, AUDITOR, AUDITOR_PW)
    assert get(client, "/audit/").status_code == 200
    clock.now += 1801  # the auditor role's idle limit
    assert get(client, "/audit/").status_code == 302
    login(client, AUDITOR, AUDITOR_PW)
    users = tmp_path / "hub_users"
    users.write_text(
        "\n".join(line for line in users.read_text().splitlines() if not line.startswith(AUDITOR))
        + "\n"
    )
    assert get(client, "/audit/").status_code == 302
    store.close()


def test_only_an_admin_reads_the_access_log(auditor_client, hub_admin_client):
    assert get(auditor_client, "/audit/access").status_code == 403
    assert get(hub_admin_client, "/audit/access").status_code == 200
    assert get(hub_admin_client, "/audit/records").status_code == 200


def test_device_text_is_shown_not_run_and_csv_cells_are_not_formulas(tmp_path, hub_app, scenario):
    app = hub_app.app
    client = app.test_client()
    evil = [
        '<script>alert("x")</script>',
        '=HYPERLINK("http://evil.example","open")',
        "+1+cmd|' /C calc'!A0",
        "@SUM(A1)",
    ]
    upload_crafted(tmp_path, client, "kiosk-evil", evil, scenario)
    login(client, AUDITOR, AUDITOR_PW)
    page = get(client, "/audit/records")
    html = page.get_data(as_text=True)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "script-src" not in page.headers["Content-Security-Policy"]
    csv_text = get(client, "/audit/export.csv").get_data(as_text=True)
    cells = [c for line in csv_text.splitlines()[1:] for c in line.split(",")]
    assert not [c for c in cells if c.lstrip('"').startswith(("=", "+", "@"))]
    assert "'=HYPERLINK" in csv_text
    jsonl = [
        json.loads(x)
        for x in get(client, "/audit/export.jsonl").get_data(as_text=True).splitlines()
    ]
    assert [r["reason"] for r in jsonl] == evil, "JSONL keeps the records as hashed"


def test_a_page_never_exceeds_the_bound(tmp_path, hub_app):
    app = hub_app.app
    conn = sqlite3.connect(tmp_path / "hub.db")
    conn.executemany(
        "INSERT INTO records (seq, time, device_id, log_id, verdict, reason, "
        "live, received_at) VALUES (?, ?, 'd', 'l', 'PASS', 'OK', 0, 'x')",
        [(i, f"2027-01-01T00:00:{i % 60:02d}Z") for i in range(1, MAX_PAGE + 20)],
    )
    conn.commit()
    conn.close()
    client = app.test_client()
    login(client, AUDITOR, AUDITOR_PW)
    html = get(client, f"/audit/records?limit={10**9}").get_data(as_text=True)
    assert html.count('class="record"') == MAX_PAGE and 'id="next"' in html
    assert get(client, "/audit/records?after=bm90LWEtY3Vyc29y").status_code == 400


def test_no_access_goes_unlogged(tmp_path, hub_app):
    app = hub_app.app
    client = app.test_client()
    login(client, AUDITOR, AUDITOR_PW)
    get(client, "/audit/records?verdict=FAIL&device_id=kiosk-7")
    get(client, "/audit/export.csv?reason=REVOKED")
    conn = sqlite3.connect(tmp_path / "hub.db")
    rows = conn.execute(
        "SELECT user_name, role, action, query FROM auditor_access ORDER BY id"
    ).fetchall()
    assert [r[2] for r in rows] == ["login", "records", "export_csv"]
    assert {r[0] for r in rows} == {AUDITOR} and {r[1] for r in rows} == {"auditor"}
    assert json.loads(rows[1][3])["device_id"] == "kiosk-7"
    assert json.loads(rows[2][3]) == {"reason": "REVOKED"}
    conn.execute("DROP TABLE auditor_access")
    conn.commit()
    conn.close()
    resp = get(client, "/audit/export.jsonl")
    assert resp.status_code == 503 and b"seq" not in resp.data


def test_bearer_token_reads_are_logged_too(tmp_path, hub_app):
    app = hub_app.app
    client = app.test_client()
    headers = {"Authorization": "Bearer bearer-auditor"}
    assert client.get("/v1/records?device_id=kiosk-3", headers=headers).status_code == 200
    assert client.get("/v1/integrity", headers=headers).status_code == 200
    assert client.get("/v1/records", headers={"Authorization": "Bearer no"}).status_code == 401
    conn = sqlite3.connect(tmp_path / "hub.db")
    rows = conn.execute(
        "SELECT user_name, action, query FROM auditor_access ORDER BY id"
    ).fetchall()
    assert rows == [
        ("bearer-token", "api_records_jsonl", '{"device_id": "kiosk-3"}'),
        ("bearer-token", "api_integrity", "{}"),
    ]
    conn.execute("DROP TABLE auditor_access")
    conn.commit()
    conn.close()
    assert client.get("/v1/records", headers=headers).status_code == 503
