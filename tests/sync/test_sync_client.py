"""The sync client against a real HTTP server on loopback: install, deltas, state, CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sync_support import Authority, RepoServer, device
from tuf.ngclient import Updater

from appliance.cli import main
from appliance.config import load_config
from appliance.core.errors import SyncError
from appliance.core.reasons import Outcome, Reason
from appliance.core.verifier import verify
from appliance.kiosk.compose import build_service
from appliance.kiosk.verification import NullAudit
from appliance.trust.clock import FileTimeFloor
from appliance.trust.store import CurrentTrust, load_trust_store
from appliance.trust.sync_state import read_sync_state
from appliance_sync.schedule import run_periodic


def _config(tmp_path: Path, server: RepoServer, authority: Authority) -> Path:
    path = tmp_path / "appliance.toml"
    path.write_text(
        f'[paths]\nstate_dir = "{tmp_path / "state"}"\nsecrets_dir = "{tmp_path / "secrets"}"\n'
        f'[sync]\nurl = "{server.url}"\nroot = "{authority.root_file}"\n'
        "interval_minutes = 1\ntimeout_s = 2\ndownload_deadline_s = 5\nretry_backoff_s = 0.01\n"
        "[audit]\nrequired = false\n"
    )
    # Enrolment makes the device key and a test fleet key; verify --config never does.
    assert main(["device", "keygen", "--config", str(path), "--test-audit-key"]) == 0
    return path


def _verify_cli(config: Path, text: str, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    main(["verify", "--config", str(config), "--json", text])
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_end_to_end_publish_serve_sync_verify(
    tmp_path: Path, authority: Authority, server: RepoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, server, authority)
    cti = b"\x01" * 16
    text = authority.credential(cti=cti)
    assert main(["sync", "--config", str(config), "--once"]) == 0
    assert "installed" in capsys.readouterr().out
    assert _verify_cli(config, text, capsys)["verdict"] == "PASS"

    authority.editor.revoke_cti(cti)
    authority.publish()
    assert main(["sync", "--config", str(config), "--once"]) == 0
    result = _verify_cli(config, text, capsys)
    assert (result["verdict"], result["reason"]) == ("FAIL", "REVOKED")
    # The same through the service the kiosk uses.
    service = build_service(load_config(config), audit=NullAudit())
    assert service.verify(text, source="test").reason is Reason.REVOKED


def test_sync_command_reports_one_line_and_status(
    tmp_path: Path, authority: Authority, server: RepoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, server, authority)
    server.stop()
    capsys.readouterr()  # enrolment's own lines
    assert main(["sync", "--config", str(config), "--once"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("appliance sync: download failed") and "\n" not in err
    bare = tmp_path / "bare.toml"
    bare.write_text(f'[paths]\nstate_dir = "{tmp_path / "s2"}"\n')
    # A configuration error (issue 24): exit 64, which the unit does not retry.
    assert main(["sync", "--config", str(bare), "--once"]) == 64
    assert "set [sync] url" in capsys.readouterr().err
    assert main(["sync", "--once"]) == 64


def test_only_changed_parts_are_fetched_and_unchanged_are_linked(
    tmp_path: Path, authority: Authority, server: RepoServer
) -> None:
    authority.editor.set_status("https://status.example/dl/1", 70_000, 1)
    for i in range(3000):
        authority.editor.revoke_licence("TH-DLT", "DL", f"L{i}")
    authority.publish()
    client = device(tmp_path / "state", server.url, authority.root_file)
    first = client.sync_once()
    assert first.updated

    server.requests.clear()
    again = client.sync_once()
    assert not again.updated
    assert all(r.startswith("/metadata/") for r in server.requests)

    authority.editor.revoke_licence("TH-DLT", "DL", "new-one")
    authority.publish()
    server.requests.clear()
    delta = client.sync_once()
    targets = [r for r in server.requests if r.startswith("/targets/")]
    assert len(targets) == 2 and any("delta-" in t for t in targets)  # manifest + delta
    assert delta.bytes_fetched < 8000
    trust = tmp_path / "state" / "trust"
    old, new = sorted(p for p in trust.iterdir() if p.name.startswith("v"))
    base = next((new / "revoked" / "licence_sha256").glob("base-*.bin"))
    assert base.stat().st_ino == (old / base.relative_to(new)).stat().st_ino
    snap = load_trust_store(trust)
    assert snap.version == delta.version and len(snap.revoked_licences) == 3001


def test_sync_state_records_success_and_failure(
    tmp_path: Path, authority: Authority, server: RepoServer
) -> None:
    now = [time.time()]
    client = device(tmp_path / "state", server.url, authority.root_file, wall=lambda: now[0])
    result = client.sync_once()
    state = read_sync_state(tmp_path / "state")
    assert state["version"] == result.version and state["last_error"] is None
    assert state["last_success"] == state["last_attempt"]
    assert state["bytes_fetched"] == result.bytes_fetched > 0
    assert state["expires"] and state["published"] and state["age_s"] >= 0
    server.hooks["/metadata/timestamp.json"] = lambda h, p: h.send_error(404)
    now[0] += 60
    with pytest.raises(SyncError):
        client.sync_once()
    state = read_sync_state(tmp_path / "state")
    assert state["version"] == result.version  # the last good data stays
    assert "HTTP 404" in state["last_error"] and state["last_success"] != state["last_attempt"]
    assert state["age_s"] >= 60


def test_clock_floor_is_marked_only_when_synchronised(
    tmp_path: Path, authority: Authority, server: RepoServer
) -> None:
    floor = FileTimeFloor(tmp_path / "state" / "clock.json")
    device(tmp_path / "state", server.url, authority.root_file).sync_once()
    assert floor.last_synchronised() is None
    later = time.time() + 3600
    device(
        tmp_path / "state",
        server.url,
        authority.root_file,
        wall=lambda: later,
        clock_synchronised=lambda: True,
    ).sync_once()
    # Never above what the signed data vouches for: its publication time (issue 21).
    published = load_trust_store(tmp_path / "state" / "trust").published_at
    assert published is not None and floor.last_synchronised() == min(later, published)


def test_kiosk_picks_up_new_data_without_restart(
    tmp_path: Path, authority: Authority, server: RepoServer
) -> None:
    client = device(tmp_path / "state", server.url, authority.root_file)
    client.sync_once()
    current = CurrentTrust(tmp_path / "state" / "trust")
    text = authority.credential(cti=b"\x02" * 16)
    assert verify(text, current(), time.time()).outcome is Outcome.PASS
    authority.editor.revoke_cti(b"\x02" * 16)
    authority.publish()
    client.sync_once()
    assert verify(text, current(), time.time()).reason is Reason.REVOKED


def test_old_versions_are_pruned(tmp_path: Path, authority: Authority, server: RepoServer) -> None:
    client = device(tmp_path / "state", server.url, authority.root_file, keep_versions=2)
    for i in range(4):
        authority.editor.revoke_licence("TH-DLT", "DL", str(i))
        authority.publish()
        client.sync_once()
    versions = [p.name for p in (tmp_path / "state" / "trust").iterdir() if p.name.startswith("v")]
    assert len(versions) == 2


def test_periodic_sync_sleeps_interval_plus_jitter() -> None:
    calls: list[str] = []
    sleeps: list[float] = []

    def sync():
        calls.append("sync")
        if len(calls) == 2:
            raise SyncError("server down")
        from appliance_sync.schedule import SyncResult

        return SyncResult(1, False, 0, None, None)

    run_periodic(sync, 900, 60, sleep=sleeps.append, rng=lambda: 0.5, rounds=3)
    assert calls == ["sync"] * 3 and sleeps == [930.0, 930.0]


def test_ngclient_still_has_the_hooks_we_rely_on() -> None:
    """The fsync override and the reference time are private in python-tuf: pin them."""
    assert callable(Updater._persist_file)
    from tuf.ngclient._internal.trusted_metadata_set import TrustedMetadataSet

    assert "reference_time" in TrustedMetadataSet.__init__.__code__.co_names
