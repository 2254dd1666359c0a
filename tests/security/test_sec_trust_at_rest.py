"""Attack replays: trust data at rest.

1. A version directory with an attacker's key, switched in through ``trust/current``, must
   not make a running kiosk PASS a forged licence; the kiosk keeps its last good version,
   /status shows the refusal, sync is not fooled about what it installed, and pruning
   removes only versions sync installed.
2. Sync on a full disk records the failure and exits with one line, no traceback.
3. A broken or deleted trust link is a status fault.

Real sync client, real HTTP on loopback, real files; "disk full" is the kernel's own
ENOSPC (``/dev/full``) and file-size limit (RLIMIT_FSIZE) in a child process.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sync_support import ISS, Authority, RepoServer, device

from appliance.core.errors import TrustDataError
from appliance.core.reasons import Outcome
from appliance.core.verifier import verify
from appliance.kiosk.status import trust_provider
from appliance.tools.issuer import generate_key
from appliance.trust.store import CurrentTrust, load_trust_store

REPO = Path(__file__).resolve().parents[2]


def _forge_record(trust_dir: Path, name: str, version: int) -> None:
    """An attacker who can write trust/ can also add the planted version to sync's record."""
    path = trust_dir / "installed.json"
    record = json.loads(path.read_text())
    record["installed"].append({"dir": name, "version": version})
    path.write_text(json.dumps(record))


def _switch(trust_dir: Path, name: str) -> None:
    """What the attacker does: point ``current`` somewhere else by one rename."""
    tmp = trust_dir / ".evil-link"
    tmp.symlink_to(name)
    tmp.replace(trust_dir / "current")


def _plant_hand_made(trust_dir: Path, attacker_entry: dict, version: int) -> str:
    """A version directory written by hand, in the installed format, with its own manifest."""
    name = f"v{version:08d}"
    planted = trust_dir / name
    planted.mkdir()
    (planted / "issuers.json").write_text(
        json.dumps(
            {
                "issuers": [
                    {"iss": ISS, "name": "Department of Land Transport", "keys": [attacker_entry]}
                ]
            }
        )
    )
    manifest = {
        "format": 1,
        "version": version,
        "published": "2030-01-01T00:00:00Z",
        "expires": None,
        "policy": {"max_age_hours": 1000000},
        "issuers": "issuers.json",
        "status_lists": [],
        "revoked": {},
        "root_version": 99,
        "targets": {},
    }
    (planted / "manifest.json").write_text(json.dumps(manifest))
    _forge_record(trust_dir, name, version)
    return name


def _plant_self_signed(tmp_path: Path, trust_dir: Path, rounds: int) -> tuple[str, str]:
    """A complete, validly signed version from the attacker's own TUF repository (own root),
    installed by a real sync client elsewhere and copied in; returns (name, forged text)."""
    evil = Authority.create(tmp_path / "evil")
    for _ in range(rounds):
        version = evil.publish()
    evil_server = RepoServer(evil.repo)
    try:
        device(tmp_path / "evil-state", evil_server.url, evil.root_file).sync_once()
    finally:
        evil_server.stop()
    name = f"v{version:08d}"
    shutil.copytree(tmp_path / "evil-state" / "trust" / name, trust_dir / name)
    _forge_record(trust_dir, name, version)
    return name, evil.credential(no="DL-6666")


def test_planted_versions_are_refused_and_the_last_good_stays(
    tmp_path: Path, authority: Authority, server: RepoServer
) -> None:
    state = tmp_path / "state"
    client = device(state, server.url, authority.root_file)
    client.sync_once()
    authority.editor.revoke_cti(b"\x02" * 16)
    real = authority.publish()
    client.sync_once()
    trust_dir = client.trust_dir
    kiosk_trust = CurrentTrust(trust_dir, root=authority.root_file)
    genuine = authority.credential()
    assert verify(genuine, kiosk_trust(), time.time()).outcome is Outcome.PASS
    status = trust_provider(state, 15, trust_dir=trust_dir)
    assert "error" not in status()

    # Attack A: a hand-made directory with the attacker's key and its own manifest.
    attacker = generate_key("ES256")
    forged = Authority(authority.repo, authority.keys, authority.root_file, attacker).credential(
        no="DL-6666"
    )
    _switch(trust_dir, _plant_hand_made(trust_dir, attacker.trust_entry(), 100))
    snap = kiosk_trust()
    assert snap.version == real
    assert verify(forged, snap, time.time()).outcome is not Outcome.PASS
    assert verify(genuine, snap, time.time()).outcome is Outcome.PASS
    assert "v00000100" in status()["error"]
    with pytest.raises(TrustDataError):
        load_trust_store(trust_dir, root=authority.root_file)

    # Sync is not fooled: the planted 100 is not "its" version, a real one is no rollback.
    result = client.sync_once()
    assert result.version == real and "100" not in result.describe()
    assert (trust_dir / "current").readlink().name == f"v{real:08d}"  # link repaired
    assert kiosk_trust().version == real
    assert "error" not in status()

    # Attack B: a complete, validly signed version under the attacker's own root.
    name, forged_b = _plant_self_signed(tmp_path, trust_dir, 5)
    _switch(trust_dir, name)
    snap = kiosk_trust()
    assert snap.version == real
    assert verify(forged_b, snap, time.time()).outcome is not Outcome.PASS
    assert name in status()["error"]

    # Attack C: one byte of the real version's revoked-hash data edited in place.
    _switch(trust_dir, f"v{real:08d}")
    delta = next((trust_dir / f"v{real:08d}" / "revoked").rglob("*.bin"))
    raw = bytearray(delta.read_bytes())
    raw[0] ^= 0xFF
    delta.write_bytes(bytes(raw))
    with pytest.raises(TrustDataError, match="does not match"):
        load_trust_store(trust_dir, root=authority.root_file)
    raw[0] ^= 0xFF
    delta.write_bytes(bytes(raw))

    # Pruning removes only versions sync installed; the real previous version stays.
    authority.editor.revoke_cti(b"\x03" * 16)
    newer = authority.publish()
    client.sync_once()
    remaining = sorted(p.name for p in trust_dir.iterdir() if p.name.startswith("v"))
    assert f"v{real:08d}" in remaining and f"v{newer:08d}" in remaining
    assert kiosk_trust().version == newer


def test_broken_or_missing_trust_link_is_a_status_fault(
    tmp_path: Path, authority: Authority, server: RepoServer
) -> None:
    state = tmp_path / "state"
    client = device(state, server.url, authority.root_file)
    client.sync_once()
    kiosk_trust = CurrentTrust(client.trust_dir, root=authority.root_file)
    version = kiosk_trust().version
    status = trust_provider(state, 15, trust_dir=client.trust_dir)
    assert "error" not in status()

    (client.trust_dir / "current").unlink()
    assert kiosk_trust().version == version  # the last good data stays in use
    assert "missing" in status()["error"]

    _switch(client.trust_dir, "v99999999")
    assert kiosk_trust().version == version
    assert "v99999999" in status()["error"]


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))


def test_sync_on_a_full_disk_records_the_failure_in_one_line(
    tmp_path: Path, authority: Authority, server: RepoServer
) -> None:
    state = tmp_path / "state"
    config = tmp_path / "appliance.toml"
    config.write_text(
        f'[paths]\nstate_dir = "{state}"\nsecrets_dir = "{tmp_path / "secrets"}"\n'
        f'[sync]\nurl = "{server.url}"\nroot = "{authority.root_file}"\n'
        "timeout_s = 2\ndownload_deadline_s = 5\nretry_backoff_s = 0.01\n"
    )
    cmd = [sys.executable, "-m", "appliance.cli", "sync", "--config", str(config), "--once"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert first.returncode == 0, first.stderr
    installed = load_trust_store(state / "trust", root=authority.root_file).version

    # The new version's revocations are larger than the space left (8 KiB per file) and the
    # state file's usual temporary copy lands on a full device.
    for i in range(2000):
        authority.editor.revoke_cti(i.to_bytes(16, "big"))
    authority.publish()
    (state / ".sync_state.json.tmp").symlink_to("/dev/full")
    full = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=60, preexec_fn=_limit_file_size
    )
    assert full.returncode == 1
    assert "Traceback" not in full.stderr
    lines = [line for line in full.stderr.splitlines() if line.startswith("appliance sync:")]
    assert len(lines) == 1, full.stderr
    recorded = json.loads((state / "sync_state.json").read_text())
    assert recorded["last_error"] and "storage" in recorded["last_error"]
    assert recorded["last_error_at"] == recorded["last_attempt"]
    assert load_trust_store(state / "trust", root=authority.root_file).version == installed
