"""Shared helpers for the audit, upload and hub tests (no tests here)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from support import NOW

from appliance.audit.head import HubSigner
from appliance.config import Config, config_from_mapping
from appliance.core.credential import lc1
from appliance.core.reasons import Outcome, Reason
from appliance.core.verifier import Verdict
from appliance.tools.issuer import Claims, LicenceData, generate_key, issue
from appliance.trust.editor import TrustSourceEditor

HOLDER_NAME = "Somchai Privatename"
LICENCE_NO = "LIC-9876543210"
ISS = "th.go.dlt"


def make_config(tmp_path: Path, device_id: str = "kiosk-01", **audit) -> Config:
    """A device's configuration; it pins the test hub key (``HUB_KEY``)."""
    raw = {
        "device": {"id": device_id},
        "paths": {"state_dir": str(tmp_path / "state"), "secrets_dir": str(tmp_path / "secrets")},
        "audit": audit,
        "upload": {"hub_key": str(hub_key_file(tmp_path))},
    }
    return config_from_mapping(raw)


_HUB_PRIVATE = ed25519.Ed25519PrivateKey.generate()
# The hub's signing key in every test hub (``create_app(ack_key=HUB_KEY)``); devices made by
# ``make_config`` pin its public half, as ``[upload] hub_key`` does on a real device.
HUB_KEY = HubSigner(_HUB_PRIVATE)


def hub_private_file(folder: Path) -> Path:
    """``HUB_KEY`` as the PEM file ``appliance hub serve --ack-key`` reads."""
    path = Path(folder) / "hub_key.pem"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        _HUB_PRIVATE.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def hub_key_file(folder: Path, signer=None) -> Path:
    """The public half of ``signer`` (default ``HUB_KEY``) as a PEM file in ``folder``."""
    path = Path(folder) / "hub_key.pub"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((signer or HUB_KEY).public.pem)
    return path


def hub_ack(audit, seq: int, signer=None):
    """The hub's signed acknowledgement of ``audit``'s record ``seq`` (as a hub answers)."""
    import sqlite3

    conn = sqlite3.connect(audit.path)
    try:
        (digest,) = conn.execute("SELECT hash FROM records WHERE seq = ?", (seq,)).fetchone()
    finally:
        conn.close()
    return (signer or HUB_KEY).ack(audit.device_id, audit.log_id, seq, digest)


class Scenario:
    """A real issuer key, trust snapshot and credential texts."""

    def __init__(self) -> None:
        self.key = generate_key("EdDSA")
        editor = TrustSourceEditor()
        editor.add_key(ISS, self.key.trust_entry(), "Department of Land Transport")
        self.trust = dataclasses.replace(editor.snapshot(), version=42, published_at=NOW - 60)

    def text(self, number: str = LICENCE_NO, name: str = HOLDER_NAME) -> str:
        claims = Claims(
            iss=ISS,
            licence=LicenceData(typ="car", no=number, nm=name),
            iat=int(NOW - 86400),
            exp=int(NOW + 365 * 86400),
        )
        return issue(self.key, claims)

    def verdict(self, text: str | None = None) -> Verdict:
        """A PASS verdict for a real, parsed credential (decoded by the LC1 profile)."""
        opened = lc1.PROFILE.open(text or self.text())
        cred = opened.parse_claims(opened.sign1.payload)
        return Verdict(
            Outcome.PASS,
            Reason.OK,
            opened.profile,
            opened.kid,
            self.trust.keys.lookup(opened.profile, opened.kid),
            cred,
        )


def record_many(
    audit,
    scenario: Scenario,
    n: int,
    start: float = NOW,
    step: float = 1.0,
    verdict: Verdict | None = None,
) -> list[int]:
    v = verdict or scenario.verdict()
    return [
        audit.append(audit.fields(v, "camera", scenario.trust), now=start + i * step)
        for i in range(n)
    ]


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def find_postgres_dsn() -> str | None:
    """APPLIANCE_TEST_POSTGRES_DSN, else the file .ci/setup.d/postgres.sh writes."""
    import os

    dsn = os.environ.get("APPLIANCE_TEST_POSTGRES_DSN")
    if dsn:
        return dsn
    path = Path(
        os.environ.get("APPLIANCE_TEST_POSTGRES_DSN_FILE", "/var/lib/appliance-ci/postgres.dsn")
    )
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def postgres_schema_dsn() -> str | None:
    """A DSN whose search_path is a new, empty schema on the test PostgreSQL; None without
    one (the caller skips)."""
    import secrets
    from urllib.parse import quote

    dsn = find_postgres_dsn()
    if not dsn:
        return None
    try:
        import psycopg

        schema = f"hub_test_{secrets.token_hex(4)}"
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except Exception as e:  # ImportError, psycopg.Error: the caller skips
        print(f"PostgreSQL not usable: {e}")
        return None
    return f"{dsn}{'&' if '?' in dsn else '?'}options={quote(f'-csearch_path={schema}')}"


def device(tmp_path: Path, device_id: str, devices_dir: Path | None = None, **audit):
    """A device's config, opened audit log and identity; its key enrolled when asked."""
    from appliance.audit.identity import ensure_identity
    from appliance.audit.log import open_audit_log

    config = make_config(tmp_path / device_id, device_id=device_id, **audit)
    identity, _ = ensure_identity(config)
    if devices_dir is not None:
        from appliance_hub.server import DeviceRegistry

        DeviceRegistry(devices_dir).enrol(device_id, identity.public.pem)
    return config, open_audit_log(config), identity


class FlaskPoster:
    """Posts batches through a Flask test client with HubClient's error semantics."""

    def __init__(self, client) -> None:
        self.client = client

    def __call__(self, signed) -> dict:
        """``signed``: an ``appliance.audit.signed_body.SignedBody`` (``make_batch``)."""
        from appliance.core.errors import SyncError
        from appliance_sync.upload import HubRejected

        resp = self.client.post("/v1/batches", data=signed.body, headers=dict(signed.headers))
        answer = resp.get_json()
        if resp.status_code == 200:
            return answer
        if resp.status_code in (400, 401, 409):
            raise HubRejected(f"{resp.status_code}: {answer}")
        raise SyncError(f"{resp.status_code}: {answer}")
