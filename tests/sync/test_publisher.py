"""The publisher: keys, versions, one target per part, deltas and compaction, rotation."""

from __future__ import annotations

import hashlib
import json
import stat
import zlib
from pathlib import Path

import numpy as np
import pytest
from sync_support import Authority
from tuf.api.metadata import Metadata, Root

from appliance.cli import main
from appliance.core.errors import SyncError
from appliance.trust.editor import TrustSourceEditor
from appliance_sync import publisher
from appliance_sync.publisher import (
    Repository,
    init_repository,
    rotate_key,
    update_repository,
)
from appliance_sync.trust_parts import TrustParts, digests_array, parts_from_document


def _manifest(repo: Path) -> dict:
    r = Repository(repo, repo)
    return json.loads(r.read_target(r.targets().signed.targets["manifest.json"]))


def _random_set(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return digests_array(rng.integers(0, 256, size=(n, 32), dtype=np.uint8))


def test_init_writes_keys_root_and_first_version(tmp_path: Path) -> None:
    a = Authority.create(tmp_path)
    for role in ("root", "targets", "snapshot", "timestamp"):
        mode = (a.keys / f"{role}.pem").stat().st_mode
        assert stat.S_IMODE(mode) == 0o600
    root = Metadata[Root].from_bytes(a.root_file.read_bytes())
    assert root.signed.version == 1 and root.signed.consistent_snapshot
    assert (a.repo / "metadata" / "1.root.json").read_bytes() == a.root_file.read_bytes()
    assert _manifest(a.repo)["version"] == 1
    with pytest.raises(SyncError, match="already holds"):
        init_repository(a.repo, a.keys, tmp_path / "again.json")


def test_each_part_is_a_content_addressed_target(tmp_path: Path) -> None:
    a = Authority.create(tmp_path)
    a.editor.set_status("https://status.example/dl/1", 1000, 1)
    a.editor.revoke_cti(b"c" * 16)
    a.editor.revoke_licence("TH-DLT", "DL", "123")
    a.publish()
    r = Repository(a.repo, a.keys)
    targets = r.targets().signed.targets
    manifest = _manifest(a.repo)
    assert set(targets) == {
        "manifest.json",
        "issuers.json",
        manifest["status_lists"][0]["target"],
        *(d["target"] for s in manifest["revoked"].values() for d in s["deltas"]),
    }
    for info in targets.values():
        data = r.read_target(info)
        assert hashlib.sha256(data).hexdigest() == info.hashes["sha256"]
        assert r.target_path(info).name.startswith(info.hashes["sha256"] + ".")
    status = targets[manifest["status_lists"][0]["target"]]
    raw = zlib.decompress(r.read_target(status))  # compressed on the wire
    assert len(raw) == manifest["status_lists"][0]["length"] == 126
    assert status.length < len(raw)


def test_unchanged_data_republishes_only_the_manifest(tmp_path: Path) -> None:
    a = Authority.create(tmp_path)
    a.editor.revoke_cti(b"c" * 16)
    a.publish()
    before = dict(Repository(a.repo, a.keys).targets().signed.targets)
    a.publish()
    after = dict(Repository(a.repo, a.keys).targets().signed.targets)
    changed = {p for p in after if before.get(p) != after[p]}
    assert changed == {"manifest.json"}


def test_new_revocations_append_a_small_delta(tmp_path: Path) -> None:
    a = Authority.create(tmp_path)
    base = _random_set(200_000, 1)
    update_repository(a.repo, a.keys, TrustParts(revoked={"cti_sha256": base}))
    m1 = _manifest(a.repo)["revoked"]["cti_sha256"]
    assert m1["base"]["count"] == 200_000 and m1["deltas"] == []
    added = _random_set(1000, 2)
    update_repository(a.repo, a.keys, TrustParts(revoked={"cti_sha256": np.union1d(base, added)}))
    r = Repository(a.repo, a.keys)
    m2 = _manifest(a.repo)["revoked"]["cti_sha256"]
    assert m2["base"] == m1["base"]  # untouched: devices keep theirs
    assert [d["count"] for d in m2["deltas"]] == [1000]
    targets = r.targets().signed.targets
    delta_bytes = targets[m2["deltas"][0]["target"]].length
    assert delta_bytes / targets[m2["base"]["target"]].length <= 0.02
    delta = np.frombuffer(r.read_target(targets[m2["deltas"][0]["target"]]), dtype="S16")
    assert np.all(delta[1:] > delta[:-1])


def test_removal_or_growth_compacts_into_a_new_base(tmp_path: Path) -> None:
    a = Authority.create(tmp_path)
    base = _random_set(5000, 3)
    update_repository(a.repo, a.keys, TrustParts(revoked={"cti_sha256": base}))
    first = _manifest(a.repo)["revoked"]["cti_sha256"]["generation"]
    update_repository(a.repo, a.keys, TrustParts(revoked={"cti_sha256": base[1:]}))
    m = _manifest(a.repo)["revoked"]["cti_sha256"]
    assert m["generation"] == first + 1 and m["base"]["count"] == 4999 and m["deltas"] == []
    # More additions than the threshold (1024 minimum): compacted.
    grown = np.union1d(base[1:], _random_set(2000, 4))
    update_repository(a.repo, a.keys, TrustParts(revoked={"cti_sha256": grown}))
    m = _manifest(a.repo)["revoked"]["cti_sha256"]
    assert m["generation"] == first + 2 and m["base"]["count"] == len(grown)


def test_delta_file_count_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publisher, "MAX_DELTA_FILES", 3)
    a = Authority.create(tmp_path)
    current = _random_set(10, 5)
    for i in range(5):
        current = np.union1d(current, _random_set(2, 10 + i))
        update_repository(a.repo, a.keys, TrustParts(revoked={"licence_sha256": current}))
        assert len(_manifest(a.repo)["revoked"]["licence_sha256"]["deltas"]) <= 3


def test_trust_source_is_validated(tmp_path: Path) -> None:
    doc = TrustSourceEditor().doc
    doc["revoked"]["cti_sha256"] = ["zz"]
    with pytest.raises(Exception, match="64-digit hex"):
        parts_from_document(doc)
    doc = TrustSourceEditor().doc
    doc["policy"]["nonsense"] = 1
    with pytest.raises(Exception, match="unknown policy key"):
        parts_from_document(doc)


@pytest.mark.parametrize("role", ["root", "targets", "snapshot", "timestamp"])
def test_rotation_signs_the_new_root_with_old_and_new_keys(tmp_path: Path, role: str) -> None:
    a = Authority.create(tmp_path)
    old_root = Metadata[Root].from_bytes(a.root_file.read_bytes())
    old_keyids = set(old_root.signed.roles[role].keyids)
    version = rotate_key(a.repo, a.keys, role, root_out=tmp_path / "root2.json")
    assert version == 2
    new_root = Metadata[Root].from_bytes((a.repo / "metadata" / "2.root.json").read_bytes())
    assert set(new_root.signed.roles[role].keyids).isdisjoint(old_keyids)
    old_root.signed.verify_delegate("root", new_root.signed_bytes, new_root.signatures)
    new_root.signed.verify_delegate("root", new_root.signed_bytes, new_root.signatures)
    assert list((a.keys / "retired").glob(f"{role}-*.pem"))
    r = Repository(a.repo, a.keys)
    new_root.signed.verify_delegate(
        "timestamp", r.timestamp().signed_bytes, r.timestamp().signatures
    )


def test_prune_keeps_recent_versions_and_all_roots(tmp_path: Path) -> None:
    a = Authority.create(tmp_path)
    for i in range(8):
        a.editor.revoke_licence("TH-DLT", "DL", f"n{i}")
        a.publish()
    names = {p.name for p in (a.repo / "metadata").iterdir()}
    assert "1.root.json" in names and "2.targets.json" not in names
    assert "9.targets.json" in names
    r = Repository(a.repo, a.keys)
    for info in r.targets().signed.targets.values():
        assert r.target_path(info).exists()


def test_publish_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo, keys, root = tmp_path / "repo", tmp_path / "keys", tmp_path / "root.json"
    assert (
        main(["publish", "init", "--repo", str(repo), "--keys", str(keys), "--root-out", str(root)])
        == 0
    )
    source = tmp_path / "trust.json"
    editor = TrustSourceEditor()
    editor.revoke_cti(b"x" * 16)
    editor.save(source)
    assert (
        main(
            [
                "publish",
                "update",
                "--repo",
                str(repo),
                "--keys",
                str(keys),
                "--source",
                str(source),
                "--expires-hours",
                "12",
            ]
        )
        == 0
    )
    assert "published version 2" in capsys.readouterr().out
    assert (
        main(["publish", "rotate", "--repo", str(repo), "--keys", str(keys), "--role", "root"]) == 0
    )
    assert main(["publish", "update", "--repo", str(repo), "--keys", str(keys)]) == 64
    capsys.readouterr()
    # an unreadable trust source exits 64, as it does for `appliance verify`
    assert (
        main(
            [
                "publish",
                "update",
                "--repo",
                str(repo),
                "--keys",
                str(keys),
                "--source",
                str(tmp_path / "missing.json"),
            ]
        )
        == 64
    )
    err = capsys.readouterr().err
    assert "cannot read trust source" in err and len(err.strip().splitlines()) == 1
