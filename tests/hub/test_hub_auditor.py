"""The auditor's view on the hub: chains per log, search, exports, Thai, real HTTP, PostgreSQL."""

from __future__ import annotations

import http.client
import json
import re
import threading

import pytest
from audit_support import FlaskPoster, Scenario, device, find_postgres_dsn, record_many
from hub_auditor_support import (
    AUDITOR,
    AUDITOR_PW,
    csrf_of,
    get,
    login,
    make_hub,
    upload,
)
from werkzeug.serving import make_server

from appliance.audit.chain import record_hash
from appliance_sync.upload import Uploader


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return Scenario()


def _gap_and_fork(tmp_path, client, scenario) -> str:
    """kiosk-gap: seq 11..20 missing; kiosk-fork: a second seq 3 offered and refused."""
    _, log, identity = device(tmp_path, "kiosk-gap", tmp_path / "devices", checkpoint_every=5)
    record_many(log, scenario, 30)
    records, cps = log.pending(100)
    up = Uploader(log, identity, FlaskPoster(client))
    for lo, hi in ((0, 10), (20, 30)):
        FlaskPoster(client)(up.make_batch(records[lo:hi], [c for c in cps if lo < c["seq"] <= hi]))
    _, flog, fid = device(tmp_path, "kiosk-fork", tmp_path / "devices")
    record_many(flog, scenario, 5)
    frecs, _ = flog.pending(10)
    fup = Uploader(flog, fid, FlaskPoster(client))
    FlaskPoster(client)(fup.make_batch(frecs, []))
    frecs[2]["reason"] = "REVOKED"
    frecs[2]["hash"] = record_hash(frecs[2])
    forked = fup.make_batch(frecs[2:3], [])
    resp = client.post("/v1/batches", data=forked.body, headers=dict(forked.headers))
    assert resp.status_code == 409
    return log.log_id


def test_chains_per_log_show_gaps_forks_and_last_checkpoint(tmp_path, scenario, hub_client):
    gap_log = _gap_and_fork(tmp_path, hub_client, scenario)
    upload(tmp_path, hub_client, "kiosk-ok", 12, scenario, checkpoint_every=4)
    login(hub_client, AUDITOR, AUDITOR_PW)
    html = get(hub_client, "/audit/").get_data(as_text=True)
    states = dict(re.findall(r"<td>(kiosk-[a-z]+)</td>.*?class=\"state\">(\w+)<", html, re.S))
    assert states == {"kiosk-fork": "forked", "kiosk-gap": "incomplete", "kiosk-ok": "verified"}
    assert "26 (2027-01-15T08:00:25" in html, "kiosk-gap's last checkpoint: seq 26"
    chain = get(hub_client, f"/audit/chain?device_id=kiosk-gap&log_id={gap_log}")
    text = chain.get_data(as_text=True)
    assert 'id="records">20<' in text and "11–20" in text
    only = get(hub_client, "/audit/?device_id=kiosk-ok").get_data(as_text=True)
    assert only.count('class="log"') == 1


def test_search_filters_and_pages_cover_each_record_once(tmp_path, scenario, hub_client):
    upload(tmp_path, hub_client, "kiosk-a", 25, scenario)
    upload(tmp_path, hub_client, "kiosk-b", 10, scenario)
    login(hub_client, AUDITOR, AUDITOR_PW)
    seen, path = [], "/audit/records?limit=7"
    while path:
        html = get(hub_client, path).get_data(as_text=True)
        seen += re.findall(
            r'class="record"><td>[^<]*</td><td>([^<]+)</td><td>[^<]*</td>'
            r"<td>(\d+)</td>",
            html,
        )
        found = re.search(r'id="next" href="([^"]+)"', html)
        path = found.group(1).replace("&amp;", "&") if found else None
    assert len(seen) == 35 and len(set(seen)) == 35
    timed = get(
        hub_client,
        "/audit/records?device_id=kiosk-a&since=2027-01-15T08:00:05Z"
        "&until=2027-01-15T15:00:10%2B07:00",
    ).get_data(as_text=True)
    assert timed.count('class="record"') == 5, "08:00:05 <= time < 08:00:10 UTC"
    assert "No records match." in get(hub_client, "/audit/records?verdict=FAIL").get_data(
        as_text=True
    )
    assert (
        get(hub_client, "/audit/records?reason=OK&limit=500")
        .get_data(as_text=True)
        .count('class="record"')
        == 35
    )
    assert get(hub_client, "/audit/records?since=yesterday").status_code == 400


def test_exports_stream_every_match_as_hashed(tmp_path, scenario, hub_client):
    upload(tmp_path, hub_client, "kiosk-a", 1205, scenario)  # more than one export page
    login(hub_client, AUDITOR, AUDITOR_PW)
    resp = get(hub_client, "/audit/export.jsonl?device_id=kiosk-a")
    assert resp.is_streamed and "attachment" in resp.headers["Content-Disposition"]
    rows = [json.loads(line) for line in resp.get_data(as_text=True).splitlines()]
    assert [r["seq"] for r in rows] == list(range(1, 1206))
    assert all(record_hash(r) == r["hash"] for r in rows)
    assert not {"nm", "no", "name"} & set(rows[0]), "no personal data"
    csv = get(hub_client, "/audit/export.csv?verdict=PASS").get_data(as_text=True)
    csv_lines = csv.splitlines()
    assert len(csv_lines) == 1206 and csv_lines[0].startswith("seq,time,device_id")


def test_thai_or_english_per_request(hub_app, hub_client):
    assert "เข้าสู่ระบบ" in get(hub_client, "/login?lang=th").get_data(as_text=True)
    assert "เข้าสู่ระบบ" in get(hub_client, "/login").get_data(as_text=True), "kept by a cookie"
    assert "Sign in" in get(hub_client, "/login?lang=en").get_data(as_text=True)
    other = hub_app.app.test_client()
    page = get(other, "/login", headers={"Accept-Language": "th-TH,th;q=0.9,en;q=0.5"})
    assert 'lang="th"' in page.get_data(as_text=True)
    login(other, AUDITOR, AUDITOR_PW)
    assert "บันทึกการตรวจสอบ" in get(other, "/audit/?lang=th").get_data(as_text=True)


def _http(
    port: int, method: str, path: str, cookies: dict[str, str], form: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
    body = None
    if form is not None:
        from urllib.parse import urlencode

        body = urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    resp.body = resp.read()  # type: ignore[attr-defined]
    for header in resp.headers.get_all("Set-Cookie") or []:
        name, _, rest = header.partition("=")
        cookies[name] = rest.split(";")[0]
    conn.close()
    return resp


def test_login_search_export_and_logout_over_real_http(tmp_path, scenario):
    app, store, _ = make_hub(tmp_path)
    upload(tmp_path, app.test_client(), "kiosk-http", 40, scenario)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port, cookies = server.port, {}
        form = _http(port, "GET", "/login", cookies).body.decode()
        resp = _http(
            port,
            "POST",
            "/login?next=/audit/records",
            cookies,
            {"csrf_token": csrf_of(form), "name": AUDITOR, "password": AUDITOR_PW},
        )
        assert resp.status == 302 and resp.getheader("Location") == "/audit/records"
        page = _http(port, "GET", "/audit/records?device_id=kiosk-http", cookies)
        assert page.status == 200 and page.body.count(b'class="record"') == 40
        export = _http(port, "GET", "/audit/export.csv", cookies)
        assert export.status == 200 and export.body.count(b"\r\n") == 41
        token = csrf_of(page.body.decode())
        assert _http(port, "POST", "/logout", cookies, {"csrf_token": token}).status == 302
        assert _http(port, "GET", "/audit/records", cookies).status == 302
    finally:
        server.shutdown()
        thread.join(5)
        store.close()


def test_postgres_logins_search_and_access_log(tmp_path, scenario):
    psycopg = pytest.importorskip("psycopg")
    dsn = find_postgres_dsn()
    if not dsn:
        pytest.skip("no PostgreSQL DSN (see tests/hub/test_hub_postgres.py)")
    import secrets
    from urllib.parse import quote

    schema = f"hub_auditor_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.Error as e:
        pytest.skip(f"PostgreSQL not usable: {e}")
    sep = "&" if "?" in dsn else "?"
    try:
        app, store, _ = make_hub(
            tmp_path, dsn=f"{dsn}{sep}options={quote(f'-csearch_path={schema}')}"
        )
        client = app.test_client()
        upload(tmp_path, client, "pg-kiosk", 30, scenario, checkpoint_every=10)
        login(client, AUDITOR, AUDITOR_PW)
        assert (
            get(client, "/audit/records?limit=7").get_data(as_text=True).count('class="record"')
            == 7
        )
        assert "verified" in get(client, "/audit/").get_data(as_text=True)
        lines = get(client, "/audit/export.jsonl").get_data(as_text=True).splitlines()
        assert len(lines) == 30
        with store._tx() as cur:
            cur.execute("SELECT action FROM auditor_access ORDER BY id")
            assert [a for (a,) in cur.fetchall()] == ["login", "records", "logs", "export_jsonl"]
        store.close()
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
