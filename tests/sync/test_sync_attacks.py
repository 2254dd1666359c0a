"""The TUF threat model, network faults and power cuts, against a real HTTP server on loopback.

Every attack must be rejected with the last good data kept and nothing half-installed.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner
from sync_support import (
    Authority,
    RepoServer,
    body,
    cut,
    device,
    endless,
    slow,
    status,
    times,
    truncated,
)
from tuf.api.metadata import Metadata, Timestamp

from appliance.core.errors import SyncError
from appliance.core.reasons import Outcome, Reason
from appliance.core.verifier import verify
from appliance.tools.issuer import generate_key
from appliance.trust import install as trust_install
from appliance.trust.clock import FileTimeFloor, FloorClock
from appliance.trust.store import load_trust_store
from appliance.trust.sync_state import read_sync_state
from appliance_sync.client import SyncClient
from appliance_sync.publisher import Repository, rotate_key

REVOKED_CTI = b"\x07" * 16


@pytest.fixture
def client(tmp_path: Path, authority: Authority, server: RepoServer) -> SyncClient:
    c = device(tmp_path / "state", server.url, authority.root_file)
    c.sync_once()
    return c


def _version(c: SyncClient) -> int | None:
    return load_trust_store(c.trust_dir).version


def _next_version(authority: Authority) -> int:
    authority.editor.revoke_cti(REVOKED_CTI)
    return authority.publish()


def _rejected(c: SyncClient, match: str) -> None:
    """The sync fails with ``match``; the last good version stays, nothing half-installed."""
    before = _version(c)
    with pytest.raises(SyncError, match=match):
        c.sync_once()
    assert _version(c) == before
    assert not [p for p in c.trust_dir.iterdir() if p.name.startswith(".")]
    assert read_sync_state(c.state_dir)["last_error"]


def _target_url(authority: Authority, path: str) -> str:
    r = Repository(authority.repo, authority.keys)
    info = r.targets().signed.targets[path]
    return "/" + r.target_path(info).relative_to(authority.repo).as_posix()


# -- the TUF threat model ---------------------------------------------------------------


def test_tampered_target(client: SyncClient, authority: Authority, server: RepoServer) -> None:
    _next_version(authority)
    url = _target_url(authority, "manifest.json")
    good = (authority.repo / url.lstrip("/")).read_bytes()
    server.hooks[url] = body(good.replace(b'"version"', b'"versioN"'))
    _rejected(client, "LengthOrHashMismatch|does not match")
    server.hooks.clear()
    assert client.sync_once().updated


def test_metadata_signed_by_the_wrong_key(
    client: SyncClient, authority: Authority, server: RepoServer
) -> None:
    ts = Metadata[Timestamp].from_file(str(authority.repo / "metadata" / "timestamp.json"))
    ts.signed.version += 1
    ts.sign(CryptoSigner.generate_ed25519())
    server.hooks["/metadata/timestamp.json"] = body(ts.to_bytes())
    _rejected(client, "Unsigned|signature")


def test_rollback_to_an_older_version(
    tmp_path: Path, client: SyncClient, authority: Authority, server: RepoServer
) -> None:
    old_repo = tmp_path / "old-repo"
    shutil.copytree(authority.repo, old_repo)
    _next_version(authority)
    client.sync_once()
    old_ts = (old_repo / "metadata" / "timestamp.json").read_bytes()
    server.hooks["/metadata/timestamp.json"] = body(old_ts)
    _rejected(client, "BadVersionNumber")
    # Even with the TUF cache lost, the installed version is never rolled back.
    shutil.rmtree(client.metadata_dir)
    old_server = RepoServer(old_repo)
    try:
        _rejected(device(client.state_dir, old_server.url, authority.root_file), "rollback")
    finally:
        old_server.stop()


def test_freeze_expired_metadata_served_forever(
    tmp_path: Path, authority: Authority, server: RepoServer
) -> None:
    authority.publish(expires_hours=1)
    now = time.time()
    wall = [now]
    c = device(tmp_path / "state", server.url, authority.root_file, wall=lambda: wall[0])
    c.sync_once()
    wall[0] = now + 2 * 3600  # the repository is frozen: nothing newer appears
    _rejected(c, "Expired")
    # A clock set back does not help: expiry is judged at the trusted-time floor.
    FileTimeFloor(c.state_dir / "clock.json").mark_synchronised(now + 2 * 3600)
    wall[0] = now
    _rejected(c, "Expired")


def test_mix_and_match(client: SyncClient, authority: Authority, server: RepoServer) -> None:
    r = Repository(authority.repo, authority.keys)
    old_version = r.targets().signed.version
    old_targets = (authority.repo / "metadata" / f"{old_version}.targets.json").read_bytes()
    _next_version(authority)
    new_version = r.targets().signed.version
    server.hooks[f"/metadata/{new_version}.targets.json"] = body(old_targets)
    _rejected(client, "mismatch|Mismatch|version")


def test_endless_data(client: SyncClient, authority: Authority, server: RepoServer) -> None:
    server.hooks["/metadata/timestamp.json"] = endless()
    _rejected(client, "DownloadLengthMismatch")
    server.hooks.clear()
    _next_version(authority)
    server.hooks[_target_url(authority, "manifest.json")] = endless(announce=True)
    _rejected(client, "announced")


def test_slow_retrieval_hits_the_total_deadline(
    client: SyncClient, authority: Authority, server: RepoServer
) -> None:
    _next_version(authority)
    server.hooks[_target_url(authority, "manifest.json")] = slow(0.25)  # under the 1 s gap
    started = time.monotonic()
    _rejected(client, "SlowRetrieval")
    assert time.monotonic() - started < 4.0  # 2 s deadline, never retried


def test_recovery_after_online_key_compromise(
    tmp_path: Path, client: SyncClient, authority: Authority, server: RepoServer
) -> None:
    # The attacker steals the online keys and fast-forwards a forged repository.
    evil_repo, evil_keys = tmp_path / "evil-repo", tmp_path / "evil-keys"
    shutil.copytree(authority.repo, evil_repo)
    shutil.copytree(authority.keys, evil_keys)
    forged = Authority(evil_repo, evil_keys, authority.root_file, generate_key("ES256"))
    forged.editor.add_key("TH-DLT", forged.issuer.trust_entry())
    for _ in range(5):
        forged.publish()
    forged_text = forged.credential()
    evil = RepoServer(evil_repo)
    try:
        compromised = device(client.state_dir, evil.url, authority.root_file)
        compromised.sync_once()  # the compromise works while the keys are trusted
        snap = load_trust_store(client.trust_dir)
        assert verify(forged_text, snap, time.time()).outcome is Outcome.PASS

        # The authority rotates every online key (root signs) and republishes.
        for role in ("targets", "snapshot", "timestamp"):
            rotate_key(authority.repo, authority.keys, role)
        _next_version(authority)
        # The attacker serves the new (public) roots with more data under the stolen keys.
        for root in (authority.repo / "metadata").glob("*.root.json"):
            shutil.copy(root, evil_repo / "metadata" / root.name)
        forged.publish()
        _rejected(compromised, "Unsigned|signature|threshold")
    finally:
        evil.stop()
    # Back at the real repository: the lower legitimate version replaces the forgery.
    result = client.sync_once()
    assert result.updated
    snap = load_trust_store(client.trust_dir)
    assert verify(forged_text, snap, time.time()).reason is Reason.UNKNOWN_ISSUER
    assert verify(authority.credential(cti=REVOKED_CTI), snap, time.time()).reason is Reason.REVOKED


def test_root_key_rotation_keeps_devices_following(
    client: SyncClient, authority: Authority
) -> None:
    rotate_key(authority.repo, authority.keys, "root")
    rotate_key(authority.repo, authority.keys, "root")
    _next_version(authority)
    assert client.sync_once().updated  # walks 1 -> 2 -> 3 from the pinned root v1
    assert (client.metadata_dir / "root_history" / "3.root.json").exists()


# -- network faults ---------------------------------------------------------------------


def test_server_down(client: SyncClient, server: RepoServer) -> None:
    server.stop()
    _rejected(client, "download failed")


@pytest.mark.parametrize("fault", [cut, truncated, lambda: status(503)])
def test_transient_faults_are_retried(
    client: SyncClient, authority: Authority, server: RepoServer, fault
) -> None:
    _next_version(authority)
    url = _target_url(authority, "manifest.json")
    server.hooks[url] = times(2, fault(), server, url)  # two failures, then served
    assert client.sync_once().updated


@pytest.mark.parametrize(
    ("fault", "match"),
    [
        (truncated, "truncated"),
        (cut, "connection"),
        (lambda: status(500), "HTTP 500"),
        (lambda: status(404), "HTTP 404"),
    ],
)
def test_persistent_faults_keep_the_last_good_data(
    client: SyncClient, authority: Authority, server: RepoServer, fault, match: str
) -> None:
    _next_version(authority)
    server.hooks[_target_url(authority, "manifest.json")] = fault()
    _rejected(client, match)


# -- power cut during install -----------------------------------------------------------


def test_power_cut_at_every_step_of_an_install(
    tmp_path: Path, client: SyncClient, authority: Authority
) -> None:
    for i in range(1500):
        authority.editor.revoke_licence("TH-DLT", "DL", f"bulk{i}")
    authority.editor.set_status("https://status.example/dl/1", 9, 1)
    old = _version(client)
    new = _next_version(authority)
    template = tmp_path / "template"
    shutil.copytree(client.state_dir, template, symlinks=True)
    text = authority.credential(cti=REVOKED_CTI)

    steps: list[str] = []
    original = trust_install._checkpoint
    trust_install._checkpoint = steps.append
    try:
        device(tmp_path / "dry", client.url, authority.root_file).sync_once()
    finally:
        trust_install._checkpoint = original
    assert len(steps) >= 8

    seen = set()
    for k in range(len(steps)):
        state = tmp_path / f"cut{k}"
        shutil.copytree(template, state, symlinks=True)
        pid = os.fork()
        if pid == 0:  # the child installs and loses power at step k
            try:
                count = [0]

                def cut_power(step: str, count: list[int] = count, k: int = k) -> None:
                    if count[0] == k:
                        os.kill(os.getpid(), signal.SIGKILL)
                    count[0] += 1

                trust_install._checkpoint = cut_power
                device(state, client.url, authority.root_file).sync_once()
            finally:
                os._exit(3)
        _, status_ = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status_), f"step {k} ({steps[k]}) did not cut"
        snap = load_trust_store(state / "trust")
        assert snap.version in (old, new), steps[k]
        revoked = verify(text, snap, time.time()).reason is Reason.REVOKED
        assert revoked == (snap.version == new), steps[k]
        seen.add(snap.version)
        # The next sync completes the install and clears the leftovers.
        again = device(state, client.url, authority.root_file)
        again.sync_once()
        assert load_trust_store(state / "trust").version == new
        assert not [p for p in (state / "trust").iterdir() if p.name.startswith(".")]
    assert seen == {old, new}


# -- staleness and the clock, with an injected clock ------------------------------------


def test_staleness_and_clock_rules(client: SyncClient, authority: Authority) -> None:
    snap = load_trust_store(client.trust_dir)
    published = snap.published_at
    assert published is not None
    text = authority.credential()
    assert verify(text, snap, published + 71 * 3600).outcome is Outcome.PASS
    stale = verify(text, snap, published + 73 * 3600)
    assert (stale.outcome, stale.reason) == (Outcome.UNVERIFIABLE, Reason.TRUST_DATA_STALE)

    floor = FileTimeFloor(client.state_dir / "clock.json")
    floor.mark_synchronised(published + 600)

    def sources() -> tuple[float | None, float | None]:
        return floor.last_synchronised(), snap.published_at

    for wall, trusted in (
        (published - 3600, False),
        (published + 300, False),
        (published + 900, True),
    ):
        reading = FloorClock(sources, wall=lambda w=wall: w, build_time=0).read()
        assert reading.trusted is trusted
        verdict = verify(text, snap, reading.now, clock_trusted=reading.trusted)
        expected = Reason.OK if trusted else Reason.CLOCK_UNTRUSTED
        assert verdict.reason is expected
