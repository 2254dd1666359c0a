"""``appliance run`` as a real process: pictures of QR codes as the camera, mock LEDs, trust
data installed by the real sync client from a loopback repository, verdicts read over the
kiosk socket by the web's SocketKioskPort, a serial scanner on a pty, SIGTERM -> exit 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import segno
from PIL import Image
from sync_support import Authority, RepoServer, device

from appliance_web.socket_port import SocketKioskPort


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Authority, RepoServer]]:
    a = Authority.create(tmp_path_factory.mktemp("authority"))
    a.publish()
    server = RepoServer(a.repo)
    yield a, server
    server.stop()


def write_frames(folder: Path, texts: list[str]) -> None:
    """Blank, code, blank, code...: each code leaves the view, so it counts again."""
    folder.mkdir(parents=True)
    for i, text in enumerate(texts):
        Image.new("L", (640, 480), 200).save(folder / f"{2 * i}-blank.png")
        segno.make(text, error="m", micro=False).save(
            folder / f"{2 * i + 1}-code.png", scale=5, border=4
        )


def write_config(tmp: Path, *, serial: str = "") -> Path:
    config = tmp / "appliance.toml"
    config.write_text(f"""
[device]
id = "pi-run-test"
mode = "kiosk"

[paths]
state_dir = "{tmp / "state"}"
secrets_dir = "{tmp / "secrets"}"

[camera]
source = "images"
images_dir = "{tmp / "frames"}"
fps = 20
frames_per_image = 6

[scanner]
backend = "zxing"
repeat_after_absent_s = 0.2
serial_device = "{serial}"

[indicator]
backend = "mock"

[web]
kiosk_socket = "{tmp / "run" / "kiosk.sock"}"
""")
    return config


def start(config: Path, *extra: str, umask: int | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("NOTIFY_SOCKET", None)
    return subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", "run", "--config", str(config), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=None if umask is None else lambda: os.umask(umask),
    )


def wait_for_socket(path: Path, proc: subprocess.Popen, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"kiosk exited {proc.returncode}: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError("kiosk socket did not appear")
        time.sleep(0.05)


def wait_until(probe, ok, proc: subprocess.Popen, timeout_s: float = 20):
    """Poll ``probe()`` until ``ok`` holds for its value: a deadline, not a duration."""
    deadline = time.monotonic() + timeout_s
    while not ok(value := probe()):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(
                f"condition not reached (last {value!r}, kiosk exit {proc.returncode})"
            )
        time.sleep(0.05)
    return value


def collect(stream, want, timeout_s: float = 10) -> list[dict]:
    got: list[dict] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not want(got):
        event = next(stream)
        if event is not None and event.get("type") == "verdict":
            got.append(event)
    return got


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, err


def test_run_verifies_camera_and_serial_codes(tmp_path: Path, authority) -> None:
    a, server = authority
    device(tmp_path / "state", server.url, a.root_file).sync_once()
    write_frames(tmp_path / "frames", [a.credential(), "not a licence"])
    master, slave = os.openpty()
    config = write_config(tmp_path, serial=os.ttyname(slave))
    sock = tmp_path / "run" / "kiosk.sock"
    proc = start(config)
    try:
        wait_for_socket(sock, proc)
        assert oct(sock.stat().st_mode & 0o777) == "0o660"
        port = SocketKioskPort(sock, timeout_s=5)
        stream = port.events(timeout_s=0.5)
        got = collect(stream, lambda g: {e["outcome"] for e in g} >= {"PASS", "FAIL"})
        outcomes = {(e["outcome"], e["source"]) for e in got}
        assert ("PASS", "camera") in outcomes and ("FAIL", "camera") in outcomes
        assert all(e["holder"] is None for e in got)  # kiosk mode: no personal data

        os.write(master, (a.credential(no="DL-0002") + "\r\n").encode())
        serial = collect(stream, lambda g: any(e["source"] == "serial" for e in g))
        assert [e["outcome"] for e in serial if e["source"] == "serial"] == ["PASS"]
        stream.close()

        status = port.status()
        assert status["kiosk"]["running"] is True
        assert status["device"]["id"] == "pi-run-test"
        assert status["camera"]["camera_ok"] is True and status["camera"]["frames"] > 0
        assert status["trust"]["version"] is not None and status["trust"]["error"] is None
        assert status["trust"]["last_sync_at"] is not None
        assert status["audit"]["pending"] >= 3 and status["audit"]["head_seq"] >= 3
        assert port.recent_verdicts(50)
        assert port.verify_text("not a licence")["outcome"] == "FAIL"
        assert port.export_audit().count(b'"seq"') >= 3
    finally:
        code, err = stop(proc)
        os.close(master)
        os.close(slave)
    assert code == 0, err
    assert not sock.exists()
    assert "kiosk stopped" in err
    assert "LC1:" not in err and "Somchai" not in err  # no QR texts or names in logs


def test_run_without_trust_data_waits_for_sync(tmp_path: Path, authority) -> None:
    a, server = authority
    write_frames(tmp_path / "frames", [a.credential()])
    config = write_config(tmp_path)
    sock = tmp_path / "run" / "kiosk.sock"
    proc = start(config)
    try:
        wait_for_socket(sock, proc)
        port = SocketKioskPort(sock, timeout_s=5)
        status = port.status()
        assert "no trust data" in status["trust"]["error"]
        stream = port.events(timeout_s=0.3)
        # codes in view (two passes over the frames), but no verdict without data
        frames = wait_until(lambda: port.status()["camera"]["frames"], lambda n: n >= 12, proc)
        assert frames >= 12
        assert port.recent_verdicts() == []

        device(tmp_path / "state", server.url, a.root_file).sync_once()  # sync, no restart
        got = collect(stream, lambda g: any(e["outcome"] == "PASS" for e in g))
        assert any(e["outcome"] == "PASS" for e in got)
        stream.close()
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert "trust-stale state" in err


def test_run_require_trust_exits_64(tmp_path: Path) -> None:
    (tmp_path / "frames").mkdir()
    proc = start(write_config(tmp_path), "--require-trust")
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 64
    assert err.strip().splitlines()[-1].startswith("appliance run: no trust data installed")


def test_sighup_is_ignored_and_files_are_private_under_umask_022(tmp_path: Path, authority) -> None:
    """SIGHUP used to kill the kiosk (no clean shutdown); under umask 022 it wrote
    audit.db and its state files world-readable."""
    a, server = authority
    device(tmp_path / "state", server.url, a.root_file).sync_once()
    write_frames(tmp_path / "frames", [a.credential()])
    config = write_config(tmp_path)
    sock = tmp_path / "run" / "kiosk.sock"
    proc = start(config, umask=0o022)
    try:
        wait_for_socket(sock, proc)
        port = SocketKioskPort(sock, timeout_s=5)
        proc.send_signal(signal.SIGHUP)
        proc.send_signal(signal.SIGHUP)
        assert port.verify_text("not a licence")["outcome"] == "FAIL"
        port.set_accepted_types(["DL"])  # the kiosk writes state_dir/local_policy.json
        assert proc.poll() is None
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert "SIGHUP" in err and "kiosk stopped" in err
    # what the kiosk wrote (sync_state.json is the test's sync client's; the device public
    # key is 0644 by design)
    written = [
        p
        for p in (tmp_path / "state").iterdir()
        if p.is_file() and p.name.startswith(("audit.db", "local_policy", "clock"))
    ]
    assert {"audit.db", "local_policy.json"} <= {p.name for p in written}
    loose = {p.name: oct(p.stat().st_mode & 0o777) for p in written if p.stat().st_mode & 0o137}
    assert loose == {}
