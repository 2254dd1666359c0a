"""`appliance demo` fits an 80-column terminal and stops completely on SIGINT, SIGTERM, SIGHUP.

Each test starts the real command in its own session (a temp workspace, free ports), waits
for "kiosk running" by reading its output against a deadline, holds a live event stream
open as a kiosk browser would, sends one signal and checks that the process exits in time,
leaves no process of its session behind and no port listening (web screen and repository).
"""

from __future__ import annotations

import os
import pty
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

APPLIANCE = Path(sys.executable).with_name("appliance")
READY_DEADLINE_S = 180.0  # first run makes keys and a TUF repository on a shared machine
EXIT_DEADLINE_S = 15.0
COLUMNS = 80
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening_ports() -> set[int]:
    """TCP ports in LISTEN state on this machine (IPv4 and IPv6), from /proc."""
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _session_members(sid: int) -> list[int]:
    """Processes still alive (not zombies) in the session the demo led."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        after = stat.rsplit(")", 1)[1].split()
        state, session = after[0], int(after[3])
        if session == sid and state != "Z":
            members.append(int(entry.name))
    return members


class DemoProcess:
    """The demo in a subprocess with its output collected by a reader thread."""

    def __init__(self, workdir: Path, *, tty: bool) -> None:
        self.port = _free_port()
        self.workdir = workdir
        env = {**os.environ, "COLUMNS": str(COLUMNS), "LINES": "24", "TERM": "xterm"}
        env.pop("NO_COLOR", None)
        cmd = [str(APPLIANCE), "demo", "--dir", str(workdir / "demo"), "--port", str(self.port)]
        self._chunks: list[str] = []
        self._lock = threading.Lock()
        if tty:
            master, slave = pty.openpty()
            import fcntl
            import struct
            import termios

            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, COLUMNS, 0, 0))
            self.proc = subprocess.Popen(
                cmd,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                cwd=workdir,
                start_new_session=True,
            )
            os.close(slave)
            self._fd = master
        else:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=workdir,
                start_new_session=True,
            )
            assert self.proc.stdout is not None
            self._fd = self.proc.stdout.fileno()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._fd, 4096)
            except OSError:  # pty master: EIO once every writer is gone
                return
            if not data:
                return
            with self._lock:
                self._chunks.append(data.decode("utf-8", "replace"))

    @property
    def output(self) -> str:
        with self._lock:
            return "".join(self._chunks)

    def wait_for(self, needle: str, deadline_s: float) -> None:
        end = time.monotonic() + deadline_s
        while needle not in self.output:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"demo exited ({self.proc.returncode}) before {needle!r}:\n"
                    + self.output[-3000:]
                )
            if time.monotonic() > end:
                pytest.fail(f"no {needle!r} within {deadline_s} s:\n{self.output[-3000:]}")
            time.sleep(0.05)

    def repository_port(self) -> int:
        config = tomllib.loads((self.workdir / "demo" / "appliance.toml").read_text())
        return int(config["sync"]["url"].rstrip("/").rsplit(":", 1)[1])

    def finish(self) -> None:
        """Whatever the test found, leave nothing running."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._reader.join(timeout=5)
        if self._fd is not None and self.proc.stdout is None:
            os.close(self._fd)


@pytest.fixture
def demo_factory(tmp_path: Path) -> Iterator:
    started: list[DemoProcess] = []

    def start(tty: bool) -> DemoProcess:
        demo = DemoProcess(tmp_path, tty=tty)
        started.append(demo)
        return demo

    yield start
    for demo in started:
        demo.finish()


def _open_event_stream(port: int) -> socket.socket:
    """A kiosk browser's live screen: a streaming request held open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        b"GET /kiosk/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
    )
    assert sock.recv(64).startswith(b"HTTP/1.1 200")
    return sock


def _visible_lines(output: str) -> list[str]:
    """What a terminal shows: each carriage return or newline starts over, escapes are 0 wide."""
    return [ANSI.sub("", part) for part in re.split(r"[\r\n]", output)]


@pytest.mark.parametrize(
    ("sig", "tty"),
    [(signal.SIGINT, True), (signal.SIGTERM, False), (signal.SIGHUP, True)],
    ids=["SIGINT-tty", "SIGTERM-pipe", "SIGHUP-tty"],
)
def test_demo_stops_completely_and_fits_80_columns(demo_factory, sig: int, tty: bool) -> None:
    demo = demo_factory(tty)
    demo.wait_for("kiosk running", READY_DEADLINE_S)
    repo_port = demo.repository_port()
    assert {demo.port, repo_port} <= _listening_ports()
    stream = _open_event_stream(demo.port)
    # the kiosk shows at least one sample before we stop it (status line or verdict line)
    demo.wait_for("verdict: PASS OK" if not tty else "->", 60.0)
    try:
        demo.proc.send_signal(sig)
        try:
            demo.proc.wait(timeout=EXIT_DEADLINE_S)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"demo still running {EXIT_DEADLINE_S} s after {sig!r}:\n" + demo.output[-2000:]
            )
    finally:
        stream.close()
    assert demo.proc.returncode == 0, demo.output[-2000:]
    assert _session_members(demo.proc.pid) == []
    assert not {demo.port, repo_port} & _listening_ports()
    demo._reader.join(timeout=5)
    assert "verdicts from" in demo.output  # the closing summary was printed
    assert "Traceback" not in demo.output
    wide = [line for line in _visible_lines(demo.output) if len(line) > COLUMNS]
    assert wide == [], "\n".join(wide)


def test_status_line_fits_any_width_with_long_labels() -> None:
    from appliance.commands.demo_terminal import status_text

    lamps = {"green": True, "amber": False, "red": True}
    for width in (40, 60, 80, 132):
        text = status_text(
            lamps,
            "a sample label far longer than any column allows, really",
            "UNVERIFIABLE STATUS_UNKNOWN_AND_MORE",
            10.0,
            width,
        )
        assert len(ANSI.sub("", text)) < width
        assert "green" in ANSI.sub("", text)


def _read_until(sock: socket.socket, needles: list[bytes], deadline_s: float) -> bytes:
    """What a live screen received until every needle arrived, in order."""
    seen, end = b"", time.monotonic() + deadline_s
    sock.settimeout(1.0)
    while time.monotonic() < end:
        position = 0
        for needle in needles:
            position = seen.find(needle, position)
            if position < 0:
                break
        else:
            return seen
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            break
        seen += chunk
    pytest.fail(f"the live screen never got {needles!r}:\n{seen[-2000:]!r}")


def test_demo_phone_presents_an_mdl_over_the_emulated_link(demo_factory) -> None:
    """The simulated phone's mDL: PASS OK in the verdict table, then read by the kiosk over
    Bumble's emulated link when its QR is in view: the kiosk screen gets the session's steps
    and the verdict, and the verdict list holds an MDOC PASS."""
    import json
    import urllib.request

    demo = demo_factory(False)
    demo.wait_for("kiosk running", READY_DEADLINE_S)
    assert re.search(r"^mobile licence \(mDL\), phone +PASS OK$", demo.output, re.MULTILINE), (
        demo.output[-3000:]
    )
    stream = _open_event_stream(demo.port)
    try:
        _read_until(
            stream,
            [
                b'event: mdoc\ndata: {"state": "connecting"}',
                b'event: mdoc\ndata: {"state": "approve"}',
                b'event: verdict\ndata: {"id"',
            ],
            90.0,
        )
    finally:
        stream.close()
    with urllib.request.urlopen(
        f"http://127.0.0.1:{demo.port}/api/verdicts?limit=50", timeout=10
    ) as response:
        verdicts = json.load(response)["verdicts"]
    mdl = [v for v in verdicts if v["profile"] == "MDOC"]
    assert mdl and {(v["outcome"], v["reason"], v["source"]) for v in mdl} == {
        ("PASS", "OK", "camera")
    }
    assert mdl[0]["typ"] == "org.iso.18013.5.1.mDL" and mdl[0]["live"] is True
