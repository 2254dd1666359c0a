"""Shared helpers for the hub login and auditor-view tests (no tests here)."""

from __future__ import annotations

import re
from pathlib import Path

from audit_support import HUB_KEY, FlaskPoster, Scenario, device, record_many
from support import NOW, FakeClock
from werkzeug.security import generate_password_hash

from appliance.audit.chain import genesis_hash, record_hash
from appliance_hub.auth import HubLogins
from appliance_hub.auth_users import HubUsers
from appliance_hub.server import create_app
from appliance_hub.store import HubStore
from appliance_sync.upload import Uploader

AUDITOR, AUDITOR_PW = "somsri", "auditor-pass-ok"
ADMIN, ADMIN_PW = "root-admin", "admin-pass-ok"
HTTPS = "https://hub.example"
T0 = float(NOW)  # the hub's clock at the start of a test
_HASHES = {
    AUDITOR_PW: generate_password_hash(AUDITOR_PW, method="scrypt:16384:8:1"),
    ADMIN_PW: generate_password_hash(ADMIN_PW, method="scrypt:16384:8:1"),
}


def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "hub_users"
    path.write_text(
        f"# NAME ROLE HASH\n{AUDITOR} auditor {_HASHES[AUDITOR_PW]}\n"
        f"{ADMIN} admin {_HASHES[ADMIN_PW]}\n"
    )
    return path


def make_hub(
    tmp_path: Path,
    dsn: str | None = None,
    clock: FakeClock | None = None,
    trusted_proxies: int = 0,
    users: Path | None = None,
):
    """(app, store, clock): a hub with logins over SQLite (or ``dsn``)."""
    clock = clock or FakeClock(T0)
    store = HubStore(dsn or tmp_path / "hub.db")
    logins = HubLogins(HubUsers(users or users_file(tmp_path)), clock)
    app = create_app(
        store,
        tmp_path / "devices",
        "bearer-auditor",
        clock=clock,
        ack_key=HUB_KEY,
        logins=logins,
        trusted_proxies=trusted_proxies,
    )
    return app, store, clock


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client, name: str, password: str, next_: str | None = None, **environ):
    """GET the form (its CSRF cookie and field), then POST the credentials."""
    page = client.get("/login", base_url=HTTPS, environ_overrides=environ)
    query = {"next": next_} if next_ else {}
    return client.post(
        "/login",
        base_url=HTTPS,
        query_string=query,
        data={
            "csrf_token": csrf_of(page.get_data(as_text=True)),
            "name": name,
            "password": password,
        },
        environ_overrides=environ,
    )


def get(client, path: str, **kwargs):
    return client.get(path, base_url=HTTPS, **kwargs)


def upload(tmp_path: Path, client, device_id: str, n: int, scenario: Scenario, **audit) -> None:
    """A real device's ``n`` records uploaded through the hub's endpoint."""
    _, log, identity = device(tmp_path, device_id, tmp_path / "devices", **audit)
    record_many(log, scenario, n)
    Uploader(log, identity, FlaskPoster(client), batch_size=50).upload_pending()


def upload_crafted(
    tmp_path: Path, client, device_id: str, reasons: list[str], scenario: Scenario
) -> None:
    """A device (enrolled, signing) whose records carry ``reasons`` as uploaded text: what
    a compromised kiosk could send. Hashes and chain are made right, so the hub takes it."""
    _, log, identity = device(tmp_path, device_id, tmp_path / "devices")
    record_many(log, scenario, len(reasons))
    records, _ = log.pending(len(reasons))
    prev = genesis_hash(records[0]["log_id"])
    for rec, reason in zip(records, reasons, strict=True):
        rec.update(reason=reason, prev_hash=prev)
        rec["hash"] = prev = record_hash(rec)
    uploader = Uploader(log, identity, FlaskPoster(client))
    FlaskPoster(client)(uploader.make_batch(records, []))
