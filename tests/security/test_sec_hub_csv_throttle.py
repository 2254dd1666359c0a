"""Replay of issue 21 finding 12: the hub API's CSV export passed spreadsheet formulas
through (the auditor screen's export defused them), and the hub's login throttle was per
gunicorn worker (19 of 40 rapid wrong logins reached a password check with 4 workers).

The CSV: one compromised device's records through both exports, which must be the same
bytes. The throttle: real gunicorn with four workers on one SQLite file, 40 wrong logins
from eight threads at once; then two hubs (two workers' stores) on one SQLite file and on
real PostgreSQL, tries alternating between them.
"""

from __future__ import annotations

import concurrent.futures
import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest
from audit_support import Scenario
from hub_auditor_support import (
    AUDITOR,
    AUDITOR_PW,
    csrf_of,
    get,
    login,
    make_hub,
    upload_crafted,
    users_file,
)
from hub_fleet_support import gunicorn_hub
from test_hub_postgres import pg_dsn  # noqa: F401 (the fixture)

from appliance.webauth.throttle import ThrottlePolicy

EVIL = [
    '=HYPERLINK("http://evil.example","open")',
    "+1+cmd|' /C calc'!A0",
    "@SUM(A1)",
    "-2+3",
    "\tTAB",
    "plain",
]
# Tries that reach a password check before the first wait: the free ones, then one more.
CHECKED = ThrottlePolicy().free + 1


def test_both_csv_exports_defuse_formulas_and_are_the_same_bytes(tmp_path, hub_client):
    client = hub_client
    upload_crafted(tmp_path, client, "kiosk-evil", EVIL, Scenario())
    api = client.get(
        "/v1/records?format=csv", headers={"Authorization": "Bearer bearer-auditor"}
    ).get_data(as_text=True)
    login(client, AUDITOR, AUDITOR_PW)
    screen = get(client, "/audit/export.csv").get_data(as_text=True)
    assert api == screen, "one writer for both exports"
    cells = [c.lstrip('"') for line in api.splitlines()[1:] for c in line.split(",")]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t"))]
    assert "'=HYPERLINK" in api and "'@SUM(A1)" in api and "plain" in api


# --- the throttle, shared by every worker --------------------------------------------------


class _Insecure(urllib.request.HTTPCookieProcessor):
    """Sends the hub's __Host-/Secure cookies over plain loopback HTTP (test only)."""

    def http_request(self, request):
        for cookie in self.cookiejar:
            cookie.secure = False
        return super().http_request(request)


def _login_over_http(url: str) -> int:
    """One wrong login as a browser makes it: GET the form, POST with its token."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(_Insecure(jar))
    with opener.open(url + "/login", timeout=60) as resp:
        token = csrf_of(resp.read().decode())
    data = urllib.parse.urlencode(
        {"csrf_token": token, "name": AUDITOR, "password": "wrong-guess"}
    ).encode()
    try:
        with opener.open(url + "/login", data=data, timeout=60) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.fixture
def gunicorn_four_workers(tmp_path):
    env = {
        "APPLIANCE_HUB_DB": str(tmp_path / "hub.db"),
        "APPLIANCE_HUB_DEVICES": str(tmp_path / "devices"),
        "APPLIANCE_HUB_USERS": str(users_file(tmp_path)),
    }
    with gunicorn_hub(4, env) as url:
        yield url


def test_forty_rapid_wrong_logins_across_four_gunicorn_workers(gunicorn_four_workers):
    url = gunicorn_four_workers
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: _login_over_http(url), range(40)))
    checked = statuses.count(401)  # a password check happened (and failed)
    assert set(statuses) <= {401, 429}, statuses
    assert checked <= CHECKED, f"{checked} of 40 wrong logins reached a password check"
    assert statuses.count(429) == 40 - checked


def _two_workers(tmp_path, dsn: str | None):
    """Two hubs on one database, as two gunicorn workers are; one shared clock."""
    first, store_a, clock = make_hub(tmp_path, dsn)
    second, store_b, _ = make_hub(tmp_path, dsn, clock=clock)
    return (first.test_client(), second.test_client()), (store_a, store_b), clock


def _alternating(clients, n: int) -> list[int]:
    return [login(clients[i % 2], AUDITOR, f"guess-{i}").status_code for i in range(n)]


def _assert_shared(clients, clock) -> None:
    statuses = _alternating(clients, 12)
    assert statuses[:CHECKED] == [401] * CHECKED
    assert set(statuses[CHECKED:]) == {429}, statuses
    clock.now += 3600  # past the forget window: free tries again, the right password works
    assert login(clients[1], AUDITOR, AUDITOR_PW).status_code == 302
    assert login(clients[0], AUDITOR, "wrong").status_code == 401


def test_two_workers_on_one_sqlite_file_share_the_throttle(tmp_path):
    clients, stores, clock = _two_workers(tmp_path, None)
    _assert_shared(clients, clock)
    for store in stores:
        store.close()


def test_two_workers_on_postgresql_share_the_throttle(tmp_path, pg_dsn):  # noqa: F811
    clients, stores, clock = _two_workers(tmp_path, pg_dsn)
    _assert_shared(clients, clock)
    for store in stores:
        store.close()


def test_the_retry_after_a_refusal_names_the_wait(tmp_path):
    clients, stores, _ = _two_workers(tmp_path, None)
    _alternating(clients, CHECKED)
    refused = login(clients[0], AUDITOR, AUDITOR_PW)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert re.search(r"\d+", refused.get_data(as_text=True))
    for store in stores:
        store.close()
