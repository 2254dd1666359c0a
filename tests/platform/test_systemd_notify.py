"""systemd's watchdog for the web screen (issue 24): pinged only while the server answers.

appliance-web.service has ``Type=notify`` and ``WatchdogSec=30s``; without pings systemd
kills the screen every ~35 s and gives up after ten kills. A real unix datagram socket
stands in for systemd's ``$NOTIFY_SOCKET``; the servers are real ones on loopback.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from appliance.platform.systemd_notify import ProbeWatchdog, Watchdog, http_answers, loopback_for

BIN = Path(sys.executable).parent
WAIT_S = 60.0  # an upper bound for a slow machine, never an expectation of speed


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(str(path))
        yield s, str(path)


def _receive(s: socket.socket, timeout_s: float = WAIT_S) -> str:
    s.settimeout(timeout_s)
    return s.recv(4096).decode()


def _drain(s: socket.socket) -> list[str]:
    s.setblocking(False)
    found = []
    try:
        while True:
            found.append(s.recv(4096).decode())
    except BlockingIOError:
        return found
    finally:
        s.setblocking(True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_web_command_pings_its_watchdog(tmp_path: Path, notify_socket: tuple[socket.socket, str]):
    """`appliance web` as systemd starts it: READY=1, then WATCHDOG=1 again and again
    (here every 0.5 s: WATCHDOG_USEC=1 s), with no kiosk running behind it."""
    sock, address = notify_socket
    config = tmp_path / "appliance.toml"
    config.write_text(
        f'[paths]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[web]\nkiosk_socket = "{tmp_path / "kiosk.sock"}"\n'
    )
    (tmp_path / "state").mkdir()
    env = {"PATH": "/usr/bin:/bin", "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "1000000"}
    web = subprocess.Popen(
        [str(BIN / "appliance"), "web", "--config", str(config), "--port", str(_free_port())],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        messages = [_receive(sock)]
        assert messages == ["READY=1"]
        while messages.count("WATCHDOG=1") < 3:
            messages.append(_receive(sock))
        assert set(messages) == {"READY=1", "WATCHDOG=1"}
        assert web.poll() is None, "the screen keeps running"
        web.terminate()
        _, err = web.communicate(timeout=WAIT_S)
        assert "watchdog" not in err.decode(), "the probes stay out of the journal"
    finally:
        if web.poll() is None:
            web.kill()
            web.wait(timeout=WAIT_S)


def test_no_pings_once_the_server_stops_answering(notify_socket: tuple[socket.socket, str]):
    sock, address = notify_socket
    server = make_server(
        "127.0.0.1",
        0,
        lambda env, start: (start("200 OK", [("Content-Type", "text/plain")]), [b"ok"])[1],
        threaded=True,
    )
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    port = server.server_port
    closed = threading.Event()
    after_close = threading.Semaphore(0)

    def probe() -> bool:
        was_closed = closed.is_set()
        answered = http_answers("127.0.0.1", port, "/", timeout_s=2.0)
        if was_closed:
            after_close.release()
        return answered

    dog = ProbeWatchdog(probe, Watchdog({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "100000"}))
    assert dog.start()
    try:
        assert _receive(sock) == "WATCHDOG=1"
        server.shutdown()
        server.server_close()
        closed.set()
        assert after_close.acquire(timeout=WAIT_S)
        _drain(sock)  # pings of probes that began before the server closed
        for _ in range(3):
            assert after_close.acquire(timeout=WAIT_S)
        assert _drain(sock) == [], "pinged while the server did not answer"
    finally:
        dog.stop()


def test_no_watchdog_no_thread():
    assert not ProbeWatchdog(lambda: True, Watchdog({})).start()


def test_probe_answers_only_below_500(notify_socket: tuple[socket.socket, str]):
    codes = iter(["503 Service Unavailable", "404 Not Found"])
    server = make_server(
        "127.0.0.1",
        0,
        lambda env, start: (start(next(codes), [("Content-Type", "text/plain")]), [b"x"])[1],
    )
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        assert not http_answers("127.0.0.1", server.server_port, "/", timeout_s=5.0)
        assert http_answers("127.0.0.1", server.server_port, "/", timeout_s=5.0)
    finally:
        server.shutdown()
        server.server_close()
    assert not http_answers("127.0.0.1", server.server_port, "/", timeout_s=5.0)


def test_probe_address_for_wildcard_binds():
    assert loopback_for("0.0.0.0") == "127.0.0.1"
    assert loopback_for("::") == "::1"
    assert loopback_for("127.0.0.1") == "127.0.0.1"


def test_watchdog_pet_is_rate_limited_but_ping_is_not(notify_socket: tuple[socket.socket, str]):
    sock, address = notify_socket
    now = [100.0]
    dog = Watchdog({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "10000000"}, clock=lambda: now[0])
    dog.pet()
    dog.pet()
    assert _drain(sock) == ["WATCHDOG=1"]
    dog.ping()
    assert _drain(sock) == ["WATCHDOG=1"]
    now[0] += 5.0
    dog.pet()
    assert _drain(sock) == ["WATCHDOG=1"]
