"""Trust never goes backwards (issue 21, finding 5).

Attack replayed: re-point ``trust/current`` at the previous genuine version (still on disk,
listed as installed, every signature valid; no file edited, no key). The running kiosk
refused it, but after a restart a new store loaded it: a revoked licence PASSed again and a
disabled device verified again; with the network cut, sync failed before the step that
would have pointed the link back.

What holds now: the highest version ever installed is remembered beside the trust
directory (``trust-high-water.json``); a new process refuses anything below it (no verdict,
amber, the reason on /status), and sync points the link back before any network step.
Real sync client over loopback HTTP, real files, a new ``CurrentTrust`` for each "restart".
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sync_support import Authority, RepoServer, device

from appliance.core.errors import SyncError, TrustDataError
from appliance.core.reasons import Outcome, Reason
from appliance.core.verifier import Checkpoint, verify
from appliance.kiosk.status import trust_provider
from appliance.kiosk.verification import VerificationService
from appliance.trust.clock import FixedClock
from appliance.trust.high_water import high_water_path, read_mark
from appliance.trust.store import CurrentTrust, link_fault, load_trust_store

DEVICE = "kiosk-07"
CTI = b"\x07" * 16


def _switch(trust_dir: Path, name: str) -> None:
    """What the attacker does: point ``current`` somewhere else by one rename."""
    tmp = trust_dir / ".evil-link"
    tmp.symlink_to(name)
    tmp.replace(trust_dir / "current")


@pytest.fixture
def rolled(tmp_path: Path, authority: Authority, server: RepoServer):
    """A device that installed version A (licence valid, device enabled), then version B
    (licence revoked, device disabled); the attacker has pointed ``current`` back at A."""
    client = device(tmp_path / "state", server.url, authority.root_file)
    old = client.sync_once().version
    authority.editor.revoke_cti(CTI)
    authority.editor.set_policy(disabled_devices=[DEVICE])
    new = authority.publish()
    assert client.sync_once().version == new
    running = CurrentTrust(client.trust_dir, root=authority.root_file)
    assert running().version == new
    _switch(client.trust_dir, f"v{old:08d}")
    return client, running, old, new


def _kiosk(client, root: Path) -> VerificationService:
    """A freshly started kiosk's service: new store object, this device's identity."""
    return VerificationService(
        trust=CurrentTrust(client.trust_dir, root=root),
        clock=FixedClock(time.time()),
        checkpoint=Checkpoint(device_id=DEVICE),
    )


def test_a_restarted_kiosk_refuses_the_older_version(rolled, authority: Authority) -> None:
    client, running, old, new = rolled
    licence = authority.credential(cti=CTI)
    # The running kiosk keeps the newest (as before).
    assert running().version == new
    assert verify(licence, running(), time.time()).reason is Reason.REVOKED
    # After a restart: no snapshot below the mark, from any loader.
    with pytest.raises(TrustDataError, match="rollback"):
        CurrentTrust(client.trust_dir, root=authority.root_file)()
    with pytest.raises(TrustDataError, match="rollback"):
        load_trust_store(client.trust_dir, authority.root_file)
    kiosk = _kiosk(client, authority.root_file)
    with pytest.raises(TrustDataError):  # the loop shows amber and gives no verdict
        kiosk.verify(licence, source="camera")
    assert kiosk.trust_is_stale()
    # /status says why, in the kiosk process and from the files alone.
    status = trust_provider(client.state_dir, 15, trust_dir=client.trust_dir)()
    assert f"v{old:08d}" in status["error"] and "rollback" in status["error"]
    assert "rollback" in (link_fault(client.trust_dir) or "")


def test_sync_repairs_the_link_with_the_network_cut(
    rolled, authority: Authority, server: RepoServer
) -> None:
    client, _, _old, new = rolled
    server.stop()  # the repository is out of reach
    with pytest.raises(SyncError):
        client.sync_once()
    assert (client.trust_dir / "current").readlink().name == f"v{new:08d}"
    assert link_fault(client.trust_dir) is None
    # A restarted kiosk loads the newest again: the device stays disabled, the licence
    # revoked (remote policy and revocation through a restart).
    kiosk = _kiosk(client, authority.root_file)
    licence = authority.credential(cti=CTI)
    assert (kiosk.verify(licence, source="camera").reason) is Reason.DEVICE_DISABLED
    trust = CurrentTrust(client.trust_dir, root=authority.root_file)()
    assert trust.version == new
    verdict = verify(licence, trust, time.time())
    assert (verdict.outcome, verdict.reason) == (Outcome.FAIL, Reason.REVOKED)


def test_the_mark_lives_beside_the_trust_directory(rolled, authority: Authority) -> None:
    client, _, _old, new = rolled
    path = high_water_path(client.trust_dir)
    assert path.parent == client.trust_dir.parent and path.is_file()
    mark = read_mark(client.trust_dir)
    assert mark is not None and (mark.version, mark.dir) == (new, f"v{new:08d}")
    assert len(mark.targets_sha256) == len(mark.snapshot_sha256) == 64
    assert mark.published > 0 and mark.targets_version >= 1


def test_a_garbled_or_deleted_mark_does_not_reopen_the_rollback(
    rolled, authority: Authority, server: RepoServer
) -> None:
    client, _, _old, new = rolled
    path = high_water_path(client.trust_dir)
    path.write_text('{"format": 1, "version": "0"}')
    with pytest.raises(TrustDataError, match="garbled"):
        CurrentTrust(client.trust_dir, root=authority.root_file)()
    server.stop()
    with pytest.raises(SyncError):
        client.sync_once()  # offline: the mark is rebuilt from sync's record, link repaired
    assert read_mark(client.trust_dir).version == new  # type: ignore[union-attr]
    assert CurrentTrust(client.trust_dir, root=authority.root_file)().version == new


def test_sync_refuses_to_install_below_the_mark(
    tmp_path: Path, authority: Authority, server: RepoServer
) -> None:
    """With every installed version deleted, the mark alone still stops a rollback."""
    import shutil

    client = device(tmp_path / "state", server.url, authority.root_file)
    client.sync_once()
    old_repo = tmp_path / "old-repo"
    shutil.copytree(authority.repo, old_repo)
    authority.editor.revoke_cti(CTI)
    new = authority.publish()
    client.sync_once()
    for entry in client.trust_dir.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
    shutil.rmtree(client.metadata_dir)
    old_server = RepoServer(old_repo)
    try:
        with pytest.raises(SyncError, match="rollback"):
            device(client.state_dir, old_server.url, authority.root_file).sync_once()
    finally:
        old_server.stop()
    assert read_mark(client.trust_dir).version == new  # type: ignore[union-attr]


def test_verify_config_refuses_with_the_reason(
    rolled, authority: Authority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new ``appliance verify --config`` process: no verdict, one line saying why."""
    from appliance.cli import main

    client = rolled[0]
    config = tmp_path / "device.toml"
    config.write_text(
        f'[device]\nid = "{DEVICE}"\n[paths]\nstate_dir = "{client.state_dir}"\n'
        f'secrets_dir = "{tmp_path / "secrets"}"\n'
        f'[sync]\nroot = "{authority.root_file}"\n'
    )
    assert main(["device", "keygen", "--config", str(config), "--test-audit-key"]) == 0
    capsys.readouterr()
    assert main(["verify", "--config", str(config), authority.credential(cti=CTI)]) == 64
    out, err = capsys.readouterr()
    assert out == "" and "rollback" in err and len(err.strip().splitlines()) == 1


def test_with_the_mark_deleted_the_tuf_metadata_still_refuses(
    rolled, authority: Authority, server: RepoServer
) -> None:
    """The TUF metadata sync keeps (``tuf/targets.json``) names the newest manifest: the
    installed version it names is the floor when the mark is gone."""
    client, _, _old, new = rolled
    high_water_path(client.trust_dir).unlink()
    with pytest.raises(TrustDataError, match="rollback"):
        CurrentTrust(client.trust_dir, root=authority.root_file)()
    server.stop()
    with pytest.raises(SyncError):
        client.sync_once()  # offline: link repaired, mark rewritten from sync's record
    assert read_mark(client.trust_dir).version == new  # type: ignore[union-attr]
    assert CurrentTrust(client.trust_dir, root=authority.root_file)().version == new


def test_a_mark_that_cannot_be_written_never_stops_updates(
    tmp_path: Path, authority: Authority, server: RepoServer
) -> None:
    """Another user's file in its place (the state folder is sticky): sync still installs
    newer data (revocations keep arriving) and records why the mark is not written."""
    from appliance.trust.sync_state import read_sync_state

    client = device(tmp_path / "state", server.url, authority.root_file)
    client.sync_once()
    path = high_water_path(client.trust_dir)
    path.unlink()
    path.mkdir()  # cannot be replaced by a file
    authority.editor.revoke_cti(CTI)
    new = authority.publish()
    assert client.sync_once().version == new
    assert "high-water mark not written" in read_sync_state(client.state_dir)["high_water_error"]


def test_the_provisioned_empty_placeholder_reads_as_no_mark(
    rolled, authority: Authority, server: RepoServer
) -> None:
    """Provisioning creates the mark as an empty file owned by sync (so the kiosk user cannot
    plant one first in the shared, sticky state folder): it is "no mark yet", the TUF
    metadata still refuses the rollback, and sync writes the real mark into it."""
    client, _, _old, new = rolled
    high_water_path(client.trust_dir).write_bytes(b"")
    assert read_mark(client.trust_dir) is None
    with pytest.raises(TrustDataError, match="rollback"):
        CurrentTrust(client.trust_dir, root=authority.root_file)()
    server.stop()
    with pytest.raises(SyncError):
        client.sync_once()
    assert read_mark(client.trust_dir).version == new  # type: ignore[union-attr]
