"""``appliance verify``: exit statuses, input forms and usage errors (spec LC1 s.7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import segno
from cli_support import AT, run_cli
from support import NOW, World
from sync_support import Authority, RepoServer, device

from appliance.cli import main


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, Path]:
    w = World()
    w.editor.set_status("s", 1, 0)
    path = tmp_path_factory.mktemp("trust") / "trust.json"
    w.editor.save(path)
    return w, path


def test_exit_statuses(setup: tuple[World, Path]) -> None:
    w, ts = setup
    ok, expired = w.issue(), w.issue(exp=NOW - 10_000)
    unknown = w.issue(status_uri="s", status_idx=99_999)
    base = ["verify", "--trust-source", str(ts), "--at", AT]
    assert main([*base, ok, ok]) == 0
    assert main([*base, ok, unknown]) == 2
    assert main([*base, unknown, expired]) == 1
    assert main([*base, "garbage"]) == 1


def test_stdin_lines_and_json_order(setup: tuple[World, Path]) -> None:
    w, ts = setup
    texts = [w.issue(), "nonsense", w.issue(exp=NOW - 10_000)]
    proc = run_cli(
        "verify",
        "--trust-source",
        str(ts),
        "--at",
        AT,
        "--json",
        "-",
        stdin="\n".join(texts) + "\n",
    )
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["reason"] for r in rows] == ["OK", "UNKNOWN_FORMAT", "EXPIRED"]
    assert proc.returncode == 1


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["verify"],
        ["verify", "--trust-source"],
        ["verify", "--nope", "x"],
        ["verify", "--at", "yesterday", "--trust-source", "t.json", "LC1:A"],
        ["verify", "--at", "2026-01-01T00:00:00", "--trust-source", "t.json", "LC1:A"],
        ["verify", "--trust-source", "a.json", "--config", "b.toml", "LC1:A"],
        ["verify", "--trust-source", "a.json"],
        ["decode"],
    ],
)
def test_usage_errors_exit_64(args: list[str]) -> None:
    proc = run_cli(*args)
    assert proc.returncode == 64, proc.stderr
    assert proc.stderr.strip()


def test_image_inputs(setup: tuple[World, Path], tmp_path: Path) -> None:
    w, ts = setup
    good = tmp_path / "good.png"
    segno.make(w.issue(), error="m", micro=False).save(str(good), scale=5)
    blank = tmp_path / "blank.png"
    segno.make("x").save(str(tmp_path / "tmp.png"))
    from PIL import Image

    Image.new("L", (200, 200), 255).save(blank)
    proc = run_cli(
        "verify", "--trust-source", str(ts), "--at", AT, "--json", "--image", str(good), str(blank)
    )
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["verdict"], r["reason"], r["file"]) for r in rows] == [
        ("PASS", "OK", str(good)),
        ("FAIL", "NO_QR_FOUND", str(blank)),
    ]
    assert proc.returncode == 1


def test_unreadable_image_is_usage_error(setup: tuple[World, Path], tmp_path: Path) -> None:
    _, ts = setup
    bad = tmp_path / "x.png"
    bad.write_bytes(b"not an image")
    proc = run_cli("verify", "--trust-source", str(ts), "--image", str(bad))
    assert proc.returncode == 64 and proc.stdout == ""
    assert (
        main(["verify", "--trust-source", str(ts), "--image", str(tmp_path / "missing.png")]) == 64
    )


def test_missing_or_bad_configuration_exits_64(tmp_path: Path) -> None:
    assert main(["verify", "--config", str(tmp_path / "none.toml"), "LC1:A"]) == 64
    bad = tmp_path / "bad.toml"
    bad.write_text('[paths]\nstate_dirr = "x"\n')
    assert main(["verify", "--config", str(bad), "LC1:A"]) == 64
    empty_state = tmp_path / "device.toml"
    empty_state.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n')
    assert main(["verify", "--config", str(empty_state), "LC1:A"]) == 64  # no trust data


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory):
    a = Authority.create(tmp_path_factory.mktemp("authority"))
    a.publish()
    server = RepoServer(a.repo)
    yield a, server.url
    server.stop()


def test_an_audit_that_cannot_be_written_exits_74(tmp_path: Path, authority) -> None:
    """Before: exit 1, the same as a FAIL verdict, so a script read "licence invalid"."""
    a, url = authority
    device(tmp_path / "state", url, a.root_file).sync_once()
    config = tmp_path / "device.toml"
    config.write_text(
        f'[paths]\nstate_dir = "{tmp_path / "state"}"\nsecrets_dir = "{tmp_path / "secrets"}"\n'
    )
    assert main(["device", "keygen", "--config", str(config), "--test-audit-key"]) == 0
    assert main(["verify", "--config", str(config), a.credential()]) == 0
    audit_db = tmp_path / "state" / "audit.db"
    for suffix in ("", "-wal", "-shm"):
        audit_db.with_name(audit_db.name + suffix).unlink(missing_ok=True)
    audit_db.mkdir()  # the audit log's path cannot be written as a database
    proc = run_cli("verify", "--config", str(config), a.credential())
    assert proc.returncode == 74, proc.stderr
    assert proc.stdout == ""  # no verdict without its audit record
    assert len(proc.stderr.strip().splitlines()) == 1 and "audit" in proc.stderr


def test_a_key_folder_it_cannot_search_exits_74(tmp_path: Path, authority) -> None:
    """Before: "internal error ... this is a bug" for an administrator whose user may not
    search the root-only secrets folder on a device (the booted image showed it for
    `mdoc read`); a name too long for the file system raises the same OSError as root."""
    a, url = authority
    device(tmp_path / "state", url, a.root_file).sync_once()
    config = tmp_path / "device.toml"
    secrets = tmp_path / ("x" * 300)
    config.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\nsecrets_dir = "{secrets}"\n')
    for args in (
        ["verify", "--config", str(config), a.credential()],
        ["mdoc", "read", "--config", str(config), "--engagement", "mdoc:owB"],
    ):
        proc = run_cli(*args)
        assert proc.returncode == 74, proc.stderr
        assert proc.stdout == "" and "internal error" not in proc.stderr
        assert "could not audit: cannot look for" in proc.stderr


def test_help_documents_every_exit_status() -> None:
    out = run_cli("verify", "--help").stdout
    assert all(code in out for code in ("0 all PASS", "1 any FAIL", "64", "74"))
