"""Replay of issue 21 finding 2: idle connections killed the web screen.

One thread per connection, no cap, no read timeout (~1,750 idle half-open connections took
the web past its 112 MiB limit), and 16 idle ``/kiosk/events`` clients took every stream
slot so the kiosk display got 503 when it reconnected. Real sockets on loopback: the real
``appliance web`` and ``appliance hub serve`` processes (threads counted in /proc), the
bounded server's caps one by one (other loopback addresses, 127.0.0.2 and up, stand for
remote clients), and the live-event slots with the display on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import FakeClock
from web_support import LiveServer, make_app, make_kit

from appliance.platform.bounded_server import BoundedWSGIServer, ServerLimits, screen_limits

BIN = Path(sys.executable).parent
IDLE = 600  # idle connections: > the waiting cap (256), far above the workers
WAIT_S = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _threads(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def _get(port: int, path: str, source: str = "127.0.0.1") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S, source_address=(source, 0))
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def _wait_listening(proc: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 60
    while True:  # waiting for a child process to listen: nothing asserted on the time
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        if proc.poll() is not None or time.monotonic() > deadline:
            out = proc.communicate(timeout=5)[1] if proc.poll() is not None else b""
            pytest.fail(f"server did not start: {out[-2000:]!r}")
        time.sleep(0.1)


@contextlib.contextmanager
def _process(args: list[str]) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=WAIT_S)


def _idle_connections(port: int, n: int) -> list[socket.socket]:
    """``n`` connections that never send a byte."""
    out = []
    for _ in range(n):
        s = socket.socket()
        s.connect(("127.0.0.1", port))
        out.append(s)
    return out


def _assert_idle_connections_hold_no_threads(
    proc: subprocess.Popen, port: int, path: str, workers: int
) -> None:
    _wait_listening(proc, port)
    assert _get(port, path)[0] == 200
    before = _threads(proc.pid)
    idle = _idle_connections(port, IDLE)
    try:
        status, _ = _get(port, path)
        assert status == 200, "a normal request is answered among the idle connections"
        during = _threads(proc.pid)
        assert during <= before + workers, f"{during - before} threads for idle connections"
        assert proc.poll() is None
    finally:
        for s in idle:
            s.close()


def test_the_web_command_answers_among_600_idle_connections(tmp_path: Path) -> None:
    config = tmp_path / "appliance.toml"
    config.write_text(
        f'[paths]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[web]\nkiosk_socket = "{tmp_path / "kiosk.sock"}"\n'
    )
    (tmp_path / "state").mkdir()
    port = _free_port()
    with _process(
        [str(BIN / "appliance"), "web", "--config", str(config), "--port", str(port)]
    ) as proc:
        _assert_idle_connections_hold_no_threads(proc, port, "/status", screen_limits(16).workers)


def test_the_hub_command_answers_among_600_idle_connections(tmp_path: Path) -> None:
    (tmp_path / "devices").mkdir()
    port = _free_port()
    with _process(
        [
            str(BIN / "appliance"),
            "hub",
            "serve",
            "--db",
            str(tmp_path / "hub.db"),
            "--devices",
            str(tmp_path / "devices"),
            "--port",
            str(port),
        ]
    ) as proc:
        _assert_idle_connections_hold_no_threads(proc, port, "/healthz", ServerLimits().workers)


# --- the caps one by one, in process ----------------------------------------------------


class Blocking:
    """A WSGI app whose ``/block`` requests wait until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)

    def __call__(self, environ, start_response):
        if environ["PATH_INFO"] == "/block":
            self.entered.release()
            self.release.wait(WAIT_S)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]


@pytest.fixture
def bounded() -> Iterator[tuple[BoundedWSGIServer, Blocking, FakeClock]]:
    app, clock = Blocking(), FakeClock()
    server = BoundedWSGIServer(
        "127.0.0.1",
        0,
        app,
        ServerLimits(workers=3, waiting=5, per_client=4, first_byte_s=10.0, io_timeout_s=WAIT_S),
        clock=clock,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, app, clock
    finally:
        app.release.set()
        server.shutdown()
        server.server_close()
        thread.join(WAIT_S)


def _closed_by_server(s: socket.socket) -> bool:
    s.settimeout(WAIT_S)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def _eventually(condition, wait_s: float = WAIT_S) -> bool:
    """Whether ``condition`` holds within ``wait_s`` (a worker finishes after its answer)."""
    deadline = time.monotonic() + wait_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), WAIT_S, source_address=(source, 0))


def test_busy_workers_answer_503_without_a_thread(bounded) -> None:
    server, app, _ = bounded
    port = server.server_port
    blocked = []
    for _ in range(3):
        s = _connect(port)
        s.sendall(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
        blocked.append(s)
        assert app.entered.acquire(timeout=WAIT_S)
    assert _get(port, "/")[0] == 503
    app.release.set()
    for s in blocked:
        assert s.recv(64).startswith(b"HTTP/1.1 200")
        s.close()
    assert _get(port, "/")[0] == 200


def test_a_remote_address_holds_at_most_its_share(bounded) -> None:
    server, _, _ = bounded
    port = server.server_port
    mine = [_connect(port, "127.0.0.2") for _ in range(4)]
    fifth = _connect(port, "127.0.0.2")
    assert _closed_by_server(fifth), "the fifth connection from one address is closed"
    assert server.refused["per_client"] == 1
    assert _get(port, "/", source="127.0.0.3")[0] == 200, "another address is served"
    for s in mine:
        s.close()


def test_waiting_connections_are_bounded_and_time_out(bounded) -> None:
    server, _, clock = bounded
    port = server.server_port
    first = [_connect(port, f"127.0.0.{i}") for i in range(2, 7)]  # fills waiting (5)
    newest = _connect(port, "127.0.0.7")
    assert _closed_by_server(first[0]), "the oldest waiting connection makes room"
    clock.now += 11.0  # past first_byte_s: the next wake-up closes the silent ones
    assert _get(port, "/")[0] == 200
    assert all(_closed_by_server(s) for s in [*first[1:], newest])
    assert server.refused["silent"] == 5 and server.refused["evicted"] == 1
    assert _eventually(lambda: server.connections == 0), "every connection given back"


# --- live event slots: idle clients cannot keep the display out -------------------------


def _open_stream(port: int, source: str) -> tuple[http.client.HTTPConnection, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S, source_address=(source, 0))
    conn.request("GET", "/kiosk/events?lang=en")
    r = conn.getresponse()
    if r.status == 200:
        assert r.readline().startswith(b"retry:")
        assert r.readline() == b"\n"
    else:
        r.read()
    return conn, r.status


@pytest.fixture
def screens(tmp_path: Path) -> Iterator[tuple[object, LiveServer]]:
    kit = make_kit(tmp_path)
    server = LiveServer(make_app(kit))
    try:
        yield kit, server
    finally:
        server.close()


def test_sixteen_idle_event_clients_leave_the_display_served(screens) -> None:
    kit, server = screens
    cap = kit.config.web.max_event_streams
    idle = [_open_stream(server.port, f"127.0.0.{i}") for i in range(2, 2 + cap + 4)]
    served = [conn for conn, status in idle if status == 200]
    assert len(served) == cap - 1, "remote clients never take the display's slot"
    assert {status for _, status in idle[cap - 1 :]} == {503}
    conn, status = _open_stream(server.port, "127.0.0.1")  # the display reconnects
    assert status == 200
    again, status = _open_stream(server.port, "127.0.0.1")  # and once more: still served
    assert status == 200
    fanout = server.app.extensions["live_events"]
    assert fanout.clients == cap and fanout.ended_for_display == 1
    for c, _ in idle:
        c.close()
    conn.close()
    again.close()


def test_one_remote_address_holds_at_most_four_streams(screens) -> None:
    _, server = screens
    opened = [_open_stream(server.port, "127.0.0.2") for _ in range(5)]
    assert [status for _, status in opened] == [200, 200, 200, 200, 503]
    assert _open_stream(server.port, "127.0.0.3")[1] == 200
    for c, _ in opened:
        c.close()


def test_a_slow_request_is_dropped_at_the_io_timeout(tmp_path) -> None:
    server = BoundedWSGIServer("127.0.0.1", 0, Blocking(), ServerLimits(io_timeout_s=0.5))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        slow = _connect(server.server_port)
        slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        assert _closed_by_server(slow), "a half-sent request does not hold its worker"
        assert _get(server.server_port, "/")[0] == 200
    finally:
        server.shutdown()
        server.server_close()
        thread.join(WAIT_S)


def _self_signed(tmp_path: Path) -> tuple[str, str]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "c.pem", tmp_path / "k.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def test_tls_clients_that_never_shake_hands_hold_nothing(tmp_path) -> None:
    """``appliance hub serve --tls-cert``: werkzeug wrapped the listening socket, so the
    accept loop itself waited for each client's handshake."""
    import ssl

    server = BoundedWSGIServer("127.0.0.1", 0, Blocking(), ssl_context=_self_signed(tmp_path))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    idle = _idle_connections(server.server_port, 50)
    try:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(
            "127.0.0.1", server.server_port, timeout=WAIT_S, context=context
        )
        conn.request("GET", "/")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        for s in idle:
            s.close()
        server.shutdown()
        server.server_close()
        thread.join(WAIT_S)
