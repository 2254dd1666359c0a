"""Replays of issue 21's "new administrator" findings (13 to 17): the authoring tools and
the command line refuse what would silently go wrong.

Each test replays one finding; before the fix a misspelt trust source was created anew
(exit 0, nothing printed), a licence valid past year 9999 was signed and then shown with
``"exp": null``, and a revocation under an unknown issuer passed without a word.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import AT, issue_args, world_files
from support import ISS, World

from appliance.cli import main


@pytest.fixture
def world(tmp_path: Path) -> tuple[World, Path, Path]:
    return world_files(tmp_path)


# --- finding 14: trust-source editors on a missing file, unknown issuers -------------------

EDITS = {
    "revoke-licence": ["--iss", ISS, "--typ", "DL", "--no", "63-0012345"],
    "set-status": ["--uri", "https://status.example/dl/1", "--index", "4", "--value", "1"],
    "set-policy": ["--max-age-hours", "48"],
    "revoke-credential": ["--cti", "00" * 16],
    "key-status": ["--kid", "00" * 8, "--status", "revoked"],
}


@pytest.mark.parametrize("action", sorted(EDITS))
def test_editor_refuses_a_misspelt_trust_source(
    world, action: str, capsys: pytest.CaptureFixture
) -> None:
    """Was: exit 0, nothing printed, and a new trust.jsn holding only this change."""
    _, trust, _ = world
    misspelt = trust.with_name("trust.jsn")
    assert main(["trust-source", action, str(misspelt), *EDITS[action]]) == 64
    err = capsys.readouterr().err
    assert str(misspelt) in err and "--create" in err
    assert not misspelt.exists()


def test_create_starts_a_new_trust_source(tmp_path: Path) -> None:
    new = tmp_path / "new.json"
    assert main(["trust-source", "set-policy", str(new), "--create", "--max-age-hours", "24"]) == 0
    assert json.loads(new.read_text())["policy"]["max_age_hours"] == 24
    # --create on a file that exists edits it, never starts it again
    assert main(["trust-source", "set-policy", str(new), "--create", "--clock-skew-s", "60"]) == 0
    policy = json.loads(new.read_text())["policy"]
    assert (policy["max_age_hours"], policy["clock_skew_s"]) == (24, 60)


def test_issuer_keygen_still_creates_its_trust_source(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The README walkthrough's first step: keygen --trust-source starts the file."""
    trust = tmp_path / "trust.json"
    assert (
        main(
            [
                "issuer",
                "keygen",
                "--alg",
                "ES256",
                "--out",
                str(tmp_path / "k.pem"),
                "--iss",
                ISS,
                "--trust-source",
                str(trust),
            ]
        )
        == 0
    )
    assert f"new trust source: {trust}" in capsys.readouterr().err
    assert json.loads(trust.read_text())["issuers"][0]["iss"] == ISS


def _revoke_licence(trust: Path, iss: str) -> int:
    """``trust-source revoke-licence`` of one licence under ``iss``."""
    args = ["--iss", iss, "--typ", "DL", "--no", "63-0012345"]
    return main(["trust-source", "revoke-licence", str(trust), *args])


def test_revoking_under_an_unknown_issuer_warns(world, capsys: pytest.CaptureFixture) -> None:
    """Was: silent. The revocation is still recorded (the issuer may be added later)."""
    _, trust, _ = world
    assert _revoke_licence(trust, "TH-DTL") == 0
    err = capsys.readouterr().err
    assert "warning" in err and "'TH-DTL'" in err
    assert len(json.loads(trust.read_text())["revoked"]["licence_sha256"]) == 1
    assert _revoke_licence(trust, ISS) == 0
    assert capsys.readouterr().err == ""


def test_revoking_a_credential_of_an_unknown_issuer_warns(
    world, capsys: pytest.CaptureFixture
) -> None:
    w, trust, _ = world
    text = w.issue(iss="TH-DTL")
    assert main(["trust-source", "revoke-credential", str(trust), "--text", text]) == 0
    assert "'TH-DTL'" in capsys.readouterr().err


# --- finding 15: every date input bounded ---------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--valid-days", "3000000"], "--valid-days"),
        (["--valid-days", "36526"], "--valid-days"),
        (["--exp", "9999-12-31T23:59:59Z"], "--exp"),
        (["--exp", "2200-01-01T00:00:00Z"], "--exp"),
        (["--iat", "1969-12-31T23:59:59Z"], "--iat"),
        (["--nbf", "+10000-01-01T00:00:00Z"], "--nbf"),
        (["--vu", "9999-12-31"], "--vu"),
        (["--dob", "0001-01-01"], "--dob"),
    ],
)
def test_issue_refuses_a_date_out_of_bounds(
    world, extra: list[str], named: str, capsys: pytest.CaptureFixture
) -> None:
    """Was: --valid-days 3000000 signed a licence valid past year 9999."""
    _, _, key = world
    assert main(issue_args(key, *extra)) == 64
    captured = capsys.readouterr()
    assert captured.out == "" and named in captured.err and "Traceback" not in captured.err


def test_the_longest_allowed_licence_shows_its_expiry(world, capsys: pytest.CaptureFixture) -> None:
    """Was: verify --json printed "exp": null for the 3,000,000-day licence."""
    _, trust, key = world
    assert main(issue_args(key, "--iat", AT, "--valid-days", "36525")) == 0
    text = capsys.readouterr().out.strip()
    assert main(["verify", "--trust-source", str(trust), "--json", "--at", AT, text]) == 0
    assert json.loads(capsys.readouterr().out)["exp"] == "2127-01-16T08:00:00Z"


@pytest.mark.parametrize(
    "argv",
    [
        ["verify", "--trust-source", "t.json", "--at", "9999-12-31T00:00:00Z", "LC1:A"],
        ["verify", "--trust-source", "t.json", "--at", "1900-01-01T00:00:00Z", "LC1:A"],
        [
            "issuer",
            "keygen",
            "--alg",
            "ES256",
            "--out",
            "k.pem",
            "--not-after",
            "9999-01-01T00:00:00Z",
        ],
        [
            "holder",
            "present",
            "--credential",
            "LC1:A",
            "--key",
            "h.pem",
            "--at",
            "3000-01-01T00:00:00Z",
        ],
        ["audit", "export", "--config", "c.toml", "--since", "2500-01-01T00:00:00Z"],
    ],
)
def test_other_date_inputs_are_bounded(
    tmp_path: Path, argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 64
    assert "outside" in capsys.readouterr().err
    assert not (tmp_path / "k.pem").exists()


# --- finding 16: translations are per request, never fixed when a template is built -------


def _legend(page: str) -> str:
    import re

    found = re.search(r'<p class="legend">(.*?)</p>', page, re.S)
    assert found, page[:400]
    return re.sub(r"<[^>]+>", " ", found.group(1))


def test_status_legend_follows_each_requests_language(tmp_path: Path) -> None:
    """Was: the English /status showed its legend in Thai once Thai had been rendered
    first (Jinja folded ``"PASS"|outcome_word`` into the compiled template)."""
    from web_support import make_app, make_kit

    client = make_app(make_kit(tmp_path, language="th")).test_client()
    thai = _legend(client.get("/status?lang=th").get_data(as_text=True))
    english = _legend(client.get("/status?lang=en").get_data(as_text=True))
    assert "ผ่าน" in thai and "Valid" not in thai
    assert "Valid" in english and "Not valid" in english and "ผ่าน" not in english
    assert "ผ่าน" in _legend(client.get("/status?lang=th").get_data(as_text=True))


def test_no_translating_filter_can_be_folded_at_compile_time(tmp_path: Path) -> None:
    """Every filter the screens register is evaluated per render: Jinja folds a filter
    of constants at compile time unless it takes the render context."""
    from jinja2.utils import _PassArg
    from web_support import make_app, make_kit

    app = make_app(make_kit(tmp_path))
    ours = (
        "outcome_word",
        "reason_text",
        "when",
        "duration",
        "licence_date",
        "signed_date",
        "ext_label",
        "source_name",
        "throttle_flag",
        "error_title",
        "outcome_class",
        "qr",
    )
    folded = [
        n for n in ours if _PassArg.from_obj(app.jinja_env.filters[n]) is not _PassArg.context
    ]
    assert not folded


# --- finding 16: the demo's inspector login and its LED line --------------------------------


def test_demo_provisions_the_inspector_login_it_runs_with(tmp_path: Path) -> None:
    """Was: the demo ran in inspector mode with no inspector password: the inspector
    screen refused every login (only the admin could reach it)."""
    from web_support import fake_system, login_inspector, make_kit

    from appliance.config import load_config
    from appliance.tools.demo import DEMO_PASSWORDS, ensure_secrets, write_config
    from appliance_web import create_app

    root = tmp_path / "demo"
    root.mkdir()
    ensure_secrets(root)
    config = load_config(write_config(root, "http://127.0.0.1:9/", 8080))
    assert config.device.mode == "inspector"
    (tmp_path / "kit").mkdir()
    kit = make_kit(tmp_path / "kit", mode="inspector")
    client = create_app(
        kit.port, config, secret_key=b"k" * 32, system_info=fake_system, testing=True
    ).test_client()
    assert login_inspector(client, "wrong password").status_code != 302
    answer = login_inspector(client, DEMO_PASSWORDS["inspector"])
    assert answer.status_code == 302 and "/inspector" in answer.headers["Location"]


def test_demo_prints_both_logins() -> None:
    from appliance.commands.demo_web import logins

    text = logins("http://127.0.0.1:8080/")
    assert "http://127.0.0.1:8080/inspector/login password demo-inspector" in text
    assert "http://127.0.0.1:8080/admin/login password demo-admin" in text


class _Tty:
    def __init__(self) -> None:
        self.frames: list[str] = []

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.frames.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_demo_led_line_drops_the_verdict_once_its_lamp_is_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Was: "nothing -> PASS OK" for ever after the last code left the camera's view."""
    import threading
    from types import SimpleNamespace

    from appliance.commands.demo_terminal import status_line
    from appliance.port.events import EventBus

    bus, now, tty = EventBus(), [0.0], _Tty()

    class Steps(threading.Event):
        """Each wait is half a second of the fake clock; a verdict at 0.5 s."""

        def __init__(self) -> None:
            super().__init__()
            self.n = 0

        def wait(self, timeout: float | None = None) -> bool:
            self.n += 1
            now[0] += 0.5
            if self.n == 1:
                bus.publish({"type": "verdict", "id": 1, "outcome": "PASS", "reason": "OK"})
            return self.n > 10

    monkeypatch.setattr("sys.stdout", tty)
    kiosk = SimpleNamespace(stats=SimpleNamespace(fps=10.0))
    camera = SimpleNamespace(current=None)
    status_line(Steps(), kiosk, object(), camera, bus, 2.0, clock=lambda: now[0])
    lines = [f for f in tty.frames if "->" in f]
    assert len(lines) == 10
    assert all("PASS OK" in line for line in lines[:4])  # held 2 s from 0.5 s
    assert not any("PASS OK" in line for line in lines[4:])
    assert "nothing -> -" in lines[-1]


# --- finding 13: an upload URL the hub does not serve ---------------------------------------


@pytest.fixture
def real_hub(tmp_path: Path):
    """The hub application itself on loopback."""
    import threading

    from werkzeug.serving import make_server

    from appliance_hub.server import create_app
    from appliance_hub.store import HubStore

    app = create_app(HubStore(tmp_path / "hub.db"), tmp_path / "devices", "t" * 32)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def _hub_check(tmp_path: Path, url: str):
    from appliance.commands import selftest
    from appliance.commands.selftest_services import check_hub
    from appliance.config import config_from_mapping

    config = config_from_mapping(
        {
            "device": {"id": "kiosk-01"},
            "paths": {"state_dir": str(tmp_path / "state"), "secrets_dir": str(tmp_path / "s")},
            "upload": {"url": url},
        }
    )
    return check_hub(selftest.Context(config, Path("card"), False, 1.0, 5.0, facts={}))


def test_selftest_fails_an_upload_url_the_hub_answers_404(tmp_path: Path, real_hub: str) -> None:
    """Was: PASS "answers" (any HTTP status counted), while every upload got 404."""
    status, detail = _hub_check(tmp_path, real_hub + "/api/audit")
    assert status == "fail"
    assert "/api/audit/v1/batches: HTTP 404" in detail and "base address" in detail


@pytest.mark.parametrize("suffix", ["", "/"])
def test_selftest_passes_the_hubs_base_address(tmp_path: Path, real_hub: str, suffix: str) -> None:
    status, detail = _hub_check(tmp_path, real_hub + suffix)
    assert status == "pass", detail
    assert "/v1/batches (HTTP 405" in detail


def _play_checks(tmp_path: Path, **overrides: str):
    """site.yml's checks before any device is touched (vault and hub address), run for
    the example inventory's hosts on this machine, with a throw-away vault."""
    import subprocess

    import yaml
    from test_ansible import ANSIBLE_DIR, _env, _tool
    from werkzeug.security import generate_password_hash

    extra = tmp_path / "extra.yml"
    extra.write_text(
        yaml.safe_dump(
            {
                "vault_appliance_audit_hmac_key": "3f" * 32,
                "vault_appliance_admin_password_hash": generate_password_hash("a long admin pass"),
                "ansible_connection": "local",
                "ansible_become": False,
                "ansible_python_interpreter": "auto_silent",
                **overrides,
            }
        )
    )
    return subprocess.run(
        [
            _tool("ansible-playbook"),
            "-i",
            "inventory/hosts.example.yml",
            "-e",
            f"@{extra}",
            "--tags",
            "appliance_vault_check",
            "--skip-tags",
            "always",
            "site.yml",
        ],
        cwd=ANSIBLE_DIR,
        env={**_env(), "ANSIBLE_GATHERING": "explicit"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_example_inventory_passes_the_plays_checks(tmp_path: Path) -> None:
    """Was: the example's .../api/audit passed the play and then 404'd every upload."""
    result = _play_checks(tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Check the hub's upload address" in result.stdout
    assert "checkpoint-bkk-02" in result.stdout  # every host of the example was checked


@pytest.mark.parametrize(
    "url",
    [
        "https://hub.example.go.th/api/audit",
        "https://hub.example.go.th/v1/batches",
        "hub.example.go.th",
    ],
)
def test_the_play_refuses_an_upload_url_the_hub_does_not_serve(tmp_path: Path, url: str) -> None:
    result = _play_checks(tmp_path, appliance_upload_url=url)
    assert result.returncode != 0
    assert "is not a hub's base address" in result.stdout and "/v1/batches" in result.stdout


def test_a_hub_behind_a_path_prefix_is_allowed_when_declared(tmp_path: Path) -> None:
    result = _play_checks(
        tmp_path,
        appliance_upload_url="https://gw.example.go.th/hub/",
        appliance_upload_url_path_prefix="/hub/",
    )
    assert result.returncode == 0, result.stdout[-3000:]


# --- finding 17: the hub's account tool at a terminal and in a pipe --------------------------


def _account_tool(**kwargs):
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "appliance_hub.auth_users", "alice", "auditor"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kwargs,
    )


def _clean(err: str) -> None:
    assert "Traceback" not in err and "Warning" not in err, err
    assert len([ln for ln in err.splitlines() if ln.strip()]) <= 1, err


def test_account_tool_reads_a_piped_password() -> None:
    """Was: "Password input may be echoed" warnings, then an EOFError traceback."""
    import subprocess

    from appliance_hub.auth_users import parse

    proc = _account_tool(stdin=subprocess.PIPE)
    out, err = proc.communicate("a long auditor passphrase\n", timeout=60)
    assert proc.returncode == 0, err
    _clean(err)
    assert parse(out)["alice"][0] == "auditor"


@pytest.mark.parametrize(("stdin", "status"), [("", 1), ("\n", 1), ("short\n", 1)])
def test_account_tool_refuses_no_or_a_short_piped_password(stdin: str, status: int) -> None:
    import subprocess

    proc = _account_tool(stdin=subprocess.PIPE)
    out, err = proc.communicate(stdin, timeout=60)
    assert (proc.returncode, out) == (status, "")
    _clean(err)


def test_account_tool_with_closed_stdin() -> None:
    """Was: a termios error and an EOFError traceback."""
    import subprocess

    proc = _account_tool(stdin=subprocess.DEVNULL)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out) == (1, "")
    _clean(err)
    assert "no password" in err


def test_account_tool_interrupted_while_waiting_for_a_pipe() -> None:
    import signal
    import subprocess
    import time

    proc = _account_tool(stdin=subprocess.PIPE)
    wchan, deadline = Path(f"/proc/{proc.pid}/wchan"), time.monotonic() + 60
    while "pipe_read" not in wchan.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)  # until it waits for the password on its pipe
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out) == (130, "")
    _clean(err)


def _on_a_terminal(*answers: tuple[bytes, bytes]) -> tuple[int, str]:
    """The tool with a pseudo-terminal as its controlling terminal; each ``(prompt, keys)``
    types ``keys`` once ``prompt`` is shown (getpass turns echo off and flushes what was
    typed before it shows its prompt).
    Returns the exit status and everything the terminal showed."""
    import fcntl
    import os
    import pty
    import subprocess
    import sys
    import termios
    import time

    master, slave = pty.openpty()

    def take_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance_hub.auth_users", "alice", "auditor"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=take_terminal,
    )
    os.close(slave)
    shown = b""
    try:
        deadline = time.monotonic() + 60
        for prompt, keys in answers:
            while prompt not in shown and time.monotonic() < deadline:
                shown += os.read(master, 1024)
            os.write(master, keys)
        proc.wait(timeout=60)
        while True:
            try:
                chunk = os.read(master, 1024)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return proc.returncode, shown.decode("utf-8", "replace")


@pytest.mark.parametrize(
    ("keys", "status"), [(b"\x03", 130), (b"\x04", 1)], ids=["ctrl-c", "ctrl-d"]
)
def test_account_tool_at_a_terminal_ctrl_c_and_ctrl_d(keys: bytes, status: int) -> None:
    """Was: a KeyboardInterrupt or EOFError traceback."""
    code, shown = _on_a_terminal((b"password:", keys))
    assert code == status, shown
    assert "Traceback" not in shown
    assert "no account line written" in shown


def test_account_tool_at_a_terminal_asks_twice() -> None:
    code, shown = _on_a_terminal(
        (b"password:", b"a long auditor passphrase\n"), (b"again:", b"a long auditor passphrase\n")
    )
    assert code == 0, shown
    assert "again:" in shown and "alice auditor scrypt:" in shown
    assert "passphrase" not in shown  # never echoed


def test_data_files_come_from_package_data_and_all_are_listed() -> None:
    """Was: ~250 lines of setuptools warnings on every install (make demo's first run):
    with include-package-data on, each templates/static/translations folder was taken for
    an unlisted package. Off, nothing is lost: package-data names every data file."""
    import fnmatch
    import tomllib

    repo = Path(__file__).resolve().parents[2]
    tool = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert tool["include-package-data"] is False
    unlisted = []
    for package, folder in tool["package-dir"].items():
        globs = tool.get("package-data", {}).get(package, [])
        for path in (repo / folder).rglob("*"):
            rel = path.relative_to(repo / folder).as_posix()
            if (
                path.is_dir()
                or path.suffix in (".py", ".pyc")
                or "__pycache__" in rel
                or rel == "babel.cfg"
            ):  # babel.cfg: extraction settings, not shipped
                continue
            if not any(
                fnmatch.fnmatch(rel, g.replace("**/", "")) or fnmatch.fnmatch(rel, g) for g in globs
            ):
                unlisted.append(f"{folder}/{rel}")
    assert unlisted == []


def test_licence_json_dates_are_bounded_like_the_options(
    world, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    _, _, key = world
    fields = tmp_path / "licence.json"
    fields.write_text(json.dumps({"typ": "DL", "no": "1", "nm": "A", "vu": "9999-12-31"}))
    assert (
        main(["issuer", "issue", "--key", str(key), "--iss", ISS, "--licence-json", str(fields)])
        == 64
    )
    err = capsys.readouterr().err
    assert "vu" in err and "outside" in err
