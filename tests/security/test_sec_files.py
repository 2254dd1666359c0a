"""Attack replay: under umask 022 the audit log (and SQLite's -wal/-shm) and the kiosk's
state files were created world-readable. Now 0640 or stricter whatever the umask."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import NOW
from sync_support import Authority, RepoServer, device

from appliance.audit.log import AuditLog
from appliance.platform.secret_files import create_secret, ensure_private_file, private_umask

FIELDS = {"source": "camera", "verdict": "PASS", "reason": "OK", "live": False}


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def loose_bits(path: Path) -> int:
    """Permission bits beyond 0640 (group write, any bit for others, execute)."""
    return stat.S_IMODE(path.stat().st_mode) & ~0o640


def test_audit_db_wal_and_shm_are_private_under_umask_022(tmp_path: Path, umask_022) -> None:
    db = tmp_path / "state" / "audit.db"
    with AuditLog(db, device_id="pi-1", hmac_key=b"k" * 32, identity=None) as audit:
        audit.append(FIELDS, now=NOW)
        files = [db, db.with_name("audit.db-wal"), db.with_name("audit.db-shm")]
        assert all(f.exists() for f in files)
        assert {f.name: oct(loose_bits(f)) for f in files} == {f.name: "0o0" for f in files}


def test_an_existing_world_readable_audit_db_is_tightened(tmp_path: Path, umask_022) -> None:
    db = tmp_path / "audit.db"
    with AuditLog(db, device_id="pi-1", hmac_key=b"k" * 32, identity=None) as audit:
        audit.append(FIELDS, now=NOW)
    db.chmod(0o666)  # as an older version (or a careless copy) left it
    with AuditLog(db, device_id="pi-1", hmac_key=b"k" * 32, identity=None) as audit:
        audit.append(FIELDS, now=NOW + 1)
        assert loose_bits(db) == 0
        assert loose_bits(db.with_name("audit.db-wal")) == 0


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Authority, str]]:
    a = Authority.create(tmp_path_factory.mktemp("authority"))
    a.publish()
    server = RepoServer(a.repo)
    yield a, server.url
    server.stop()


def test_cli_verify_creates_a_private_audit_db_under_umask_022(tmp_path: Path, authority) -> None:
    a, url = authority
    device(tmp_path / "state", url, a.root_file).sync_once()
    config = tmp_path / "device.toml"
    config.write_text(
        f'[paths]\nstate_dir = "{tmp_path / "state"}"\nsecrets_dir = "{tmp_path / "secrets"}"\n'
    )
    enrol = subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance.cli",
            "device",
            "keygen",
            "--config",
            str(config),
            "--test-audit-key",
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert enrol.returncode == 0, enrol.stderr
    done = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "verify", "--config", str(config), a.credential()],
        capture_output=True,
        timeout=60,
        check=False,
        preexec_fn=lambda: os.umask(0o022),
    )
    assert done.returncode == 0, done.stderr
    created = [p for p in (tmp_path / "state").glob("audit.db*")]
    assert created
    assert all(loose_bits(p) == 0 for p in created), [
        (p.name, oct(p.stat().st_mode)) for p in created
    ]


def test_helpers_for_other_daemons(tmp_path: Path, umask_022) -> None:
    """The helpers the hub (hub.db) and other daemons call before creating files."""
    ensure_private_file(tmp_path / "hub.db")
    assert loose_bits(tmp_path / "hub.db") == 0
    with private_umask():
        (tmp_path / "state.json").write_text("{}")
    assert loose_bits(tmp_path / "state.json") == 0
    assert os.umask(0o022) == 0o022  # restored afterwards


def test_create_secret_never_leaves_a_partial_key(tmp_path: Path) -> None:
    """Exclusive and atomic: the key file appears whole or not at all."""
    key = tmp_path / "secrets" / "key"
    assert create_secret(key, b"0123456789abcdef") is True
    assert create_secret(key, b"other") is False
    assert key.read_bytes() == b"0123456789abcdef"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert [p.name for p in key.parent.iterdir()] == ["key"]  # no temporary left behind
