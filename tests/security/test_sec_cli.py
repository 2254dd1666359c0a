"""Attack replays for the command line (issue 13): bad input never gives a traceback, a
gate script never reads "all fine" from nothing, the issuer never signs what verify refuses.

Each test replays one finding; before the fix it printed a traceback, exited 0/1 where
64 is the contract, signed a malformed field, or created a key behind the user's back.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from cli_support import AT, issue_args, run_cli, world_files
from support import ISS, World

from appliance.cli import main
from appliance.tools.issuer import generate_key, save_private_key


def one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, Path, Path]:
    return world_files(tmp_path_factory.mktemp("world"))


def test_negative_status_index_is_usage(tmp_path: Path) -> None:
    """Was: IndexError traceback (bytearray index out of range)."""
    proc = run_cli(
        "trust-source",
        "set-status",
        str(tmp_path / "t.json"),
        "--uri",
        "s",
        "--index",
        "-5",
        "--value",
        "1",
    )
    assert proc.returncode == 64
    assert "--index" in one_line(proc.stderr)
    assert not (tmp_path / "t.json").exists()


def test_status_index_beyond_the_list_cap_is_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """An index of 10**12 would grow a 250 GB bytearray: refused before any allocation."""
    assert (
        main(
            [
                "trust-source",
                "set-status",
                str(tmp_path / "t.json"),
                "--uri",
                "s",
                "--index",
                str(10**12),
                "--value",
                "1",
            ]
        )
        == 64
    )
    assert "--index" in one_line(capsys.readouterr().err)


def test_holder_present_missing_credential_file(tmp_path: Path, world) -> None:
    """Was: FileNotFoundError traceback."""
    _, _, key = world
    proc = run_cli(
        "holder", "present", "--credential", f"@{tmp_path / 'missing.txt'}", "--key", str(key)
    )
    assert proc.returncode == 64 and proc.stdout == ""
    assert "missing.txt" in one_line(proc.stderr)


def test_hub_enrol_binary_key_file(tmp_path: Path) -> None:
    """Was: UnicodeDecodeError traceback."""
    binary = tmp_path / "key.pem"
    binary.write_bytes(b"\x80\xff\xfe" * 100)
    proc = run_cli("hub", "enrol", "--devices", str(tmp_path / "devices"), "kiosk-1", str(binary))
    assert proc.returncode == 64
    assert "key.pem" in one_line(proc.stderr)
    assert not list((tmp_path / "devices").glob("*")) if (tmp_path / "devices").exists() else True


def test_hub_enrol_empty_stdin_is_usage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["hub", "enrol", "--devices", str(tmp_path / "d"), "kiosk-1", "-"]) == 64
    one_line(capsys.readouterr().err)


def test_issue_without_licence_fields_names_the_options(
    world, capsys: pytest.CaptureFixture
) -> None:
    """Was: "LicenceData.__init__() missing 3 required positional arguments"."""
    _, _, key = world
    assert main(["issuer", "issue", "--key", str(key), "--iss", ISS]) == 64
    line = one_line(capsys.readouterr().err)
    assert "__init__" not in line
    assert all(option in line for option in ("--typ", "--no", "--nm"))


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--dob", "12/04/1988"),
        ("--vu", "next-year"),
        ("--vf", "2026-13-01"),
        ("--dob", "1988-04-12T00:00:00Z"),
        ("--vu", "2026-1-1"),
    ],
)
def test_issue_refuses_a_date_that_is_not_yyyy_mm_dd(
    world, option: str, value: str, capsys: pytest.CaptureFixture
) -> None:
    """Was: signed happily; verify then said MALFORMED_CLAIMS."""
    _, _, key = world
    status = main(issue_args(key, option, value))
    out = capsys.readouterr()
    assert status == 64 and out.out == ""
    assert option in one_line(out.err)


def test_issued_dates_verify(world, capsys: pytest.CaptureFixture) -> None:
    """The valid form still signs, and the result verifies (not MALFORMED_CLAIMS)."""
    _, trust, key = world
    assert (
        main(
            issue_args(
                key,
                "--dob",
                "1988-04-12",
                "--vf",
                "2026-01-01",
                "--vu",
                "2031-01-01",
                "--iat",
                "2027-01-01T00:00:00Z",
            )
        )
        == 0
    )
    text = capsys.readouterr().out.strip()
    assert main(["verify", "--trust-source", str(trust), "--at", AT, text]) == 0


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("p.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 100),
        ("p.gif", b"GIF89a" + b"\0" * 100),
        ("big.jpg", b"\xff\xd8\xff\xe0" + b"\0" * 2100),
        ("empty.jpg", b""),
    ],
)
def test_issue_refuses_a_photo_that_is_not_a_small_jpeg_or_webp(
    world, tmp_path: Path, name: str, data: bytes, capsys: pytest.CaptureFixture
) -> None:
    """Was: a PNG (or any bytes) signed although help and spec s.3 say JPEG/WebP <= 2,048."""
    _, _, key = world
    photo = tmp_path / name
    photo.write_bytes(data)
    status = main(issue_args(key, "--photo", str(photo)))
    out = capsys.readouterr()
    assert status == 64 and out.out == ""
    assert "--photo" in one_line(out.err)


@pytest.mark.parametrize(
    "data", [b"\xff\xd8\xff\xe0" + b"\0" * 500, b"RIFF\x10\0\0\0WEBPVP8 " + b"\0" * 500]
)
def test_issue_accepts_jpeg_and_webp(
    world, tmp_path: Path, data: bytes, capsys: pytest.CaptureFixture
) -> None:
    _, _, key = world
    photo = tmp_path / "p"
    photo.write_bytes(data)
    assert main(issue_args(key, "--photo", str(photo))) == 0
    assert capsys.readouterr().out.startswith("LC1:")


def test_missing_issuer_key_is_usage(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Was: exit 1, as if something had failed verification."""
    assert main(issue_args(tmp_path / "none.pem")) == 64
    assert "none.pem" in one_line(capsys.readouterr().err)


def test_holder_present_refuses_a_key_that_is_not_cnf(
    world, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Was: an LP1 signed with the issuer's key, emitted without a word."""
    w, _, issuer_key = world
    from appliance.tools.holder import cose_key

    holder = generate_key("ES256")
    save_private_key(holder, tmp_path / "holder.pem")
    bound = w.issue(holder_cose_key=cose_key(holder.private_key.public_key()))
    unbound = w.issue()
    for credential, key in ((bound, issuer_key), (unbound, tmp_path / "holder.pem")):
        status = main(
            ["holder", "present", "--credential", credential, "--key", str(key), "--at", AT]
        )
        out = capsys.readouterr()
        assert status == 64 and out.out == ""
        one_line(out.err)
    assert (
        main(
            [
                "holder",
                "present",
                "--credential",
                bound,
                "--key",
                str(tmp_path / "holder.pem"),
                "--at",
                AT,
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith("LP1:")


@pytest.mark.parametrize("stdin", ["", "\n\n  \n", "\r\n"])
def test_verify_of_empty_stdin_is_usage(world, stdin: str) -> None:
    """Was: nothing printed, exit 0, so a gate script opened on an empty scan file."""
    _, trust, _ = world
    proc = run_cli("verify", "--trust-source", str(trust), "--at", AT, "-", stdin=stdin)
    assert proc.returncode == 64 and proc.stdout == ""
    one_line(proc.stderr)


def test_decode_unreadable_is_64_and_no_code_is_said(tmp_path: Path) -> None:
    """Was: 1 for an unreadable image (verify: 64), and silence for a picture without a code."""
    from PIL import Image

    bad, blank = tmp_path / "bad.png", tmp_path / "blank.png"
    bad.write_bytes(b"not an image")
    Image.new("L", (120, 120), 255).save(blank)
    proc = run_cli("decode", str(bad))
    assert proc.returncode == 64 and "bad.png" in one_line(proc.stderr)
    proc = run_cli("decode", str(blank))
    assert proc.returncode == 1 and proc.stdout == ""
    assert "no QR code" in one_line(proc.stderr) and "blank.png" in proc.stderr


def test_publish_init_into_an_existing_repository_is_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Was: exit 1 where other usage errors give 64."""
    args = [
        "publish",
        "init",
        "--repo",
        str(tmp_path / "repo"),
        "--keys",
        str(tmp_path / "k"),
        "--root-out",
        str(tmp_path / "root.json"),
    ]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 64
    one_line(capsys.readouterr().err)


def test_verify_config_does_not_create_keys(tmp_path: Path, world) -> None:
    """Was: a device key and a random fleet audit key created silently by a verification."""
    w, _, _ = world
    secrets = tmp_path / "secrets"
    config = tmp_path / "device.toml"
    config.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\nsecrets_dir = "{secrets}"\n')
    proc = run_cli("verify", "--config", str(config), w.issue())
    assert proc.returncode == 64 and proc.stdout == ""
    assert "appliance device keygen" in one_line(proc.stderr)
    assert not secrets.exists() or not list(secrets.iterdir())
