"""Attack replay (issue 21, finding 4, device side): a hub answer that kills the device.

A hub (or anything between the device and it) answering a deeply nested JSON document made
Python's recursive parser raise ``RecursionError``: ``appliance upload`` and ``appliance
heartbeat`` died with exit 70. Every answer the device parses is now bounded in size, depth
and containers before parsing: a bad answer is one line and exit 1, like any failed upload.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from audit_support import Scenario, device, record_many

from appliance.cli import main
from appliance.core.errors import SyncError
from appliance_sync.heartbeat import read_state
from appliance_sync.hub_answer import MAX_ANSWER_BYTES, parse_answer
from appliance_sync.upload import HubClient, HubRejected

DEEP = b"[" * 30_000 + b"]" * 30_000  # inside the size cap: the depth check must hold
ANSWERS = {
    "deep-200": (200, DEEP),
    "deep-401": (401, DEEP),
    "deep-object": (200, b'{"a":' * 10_000 + b"1" + b"}" * 10_000),
    "deep-huge": (200, b"[" * 200_000 + b"]" * 200_000),
    "wide": (200, b"[" + b"[]," * 20_000 + b"[]]"),
    "huge": (200, b'{"status": "stored", "pad": "' + b"x" * (2 * MAX_ANSWER_BYTES) + b'"}'),
    "not-utf8": (200, b"\xff\xfe{}"),
    "list-409": (409, b"[1, 2, 3]"),
}


class AnsweringHub:
    """A plain-HTTP server on loopback that answers every POST with fixed bytes."""

    def __init__(self, status: int, body: bytes) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(params=sorted(ANSWERS))
def bad_hub(request):
    hub = AnsweringHub(*ANSWERS[request.param])
    yield hub
    hub.stop()


def _config_file(tmp_path: Path, config, url: str) -> Path:
    path = tmp_path / "appliance.toml"
    path.write_text(
        f'[device]\nid = "{config.device.id}"\n[paths]\n'
        f'state_dir = "{config.paths.state_dir}"\n'
        f'secrets_dir = "{config.paths.secrets_dir}"\n'
        f'[upload]\nurl = "{url}"\ntimeout_s = 5\n'
        f'hub_key = "{config.upload.hub_key}"\n'
        '[web]\nkiosk_socket = ""\n'
    )
    return path


def test_upload_and_heartbeat_survive_any_answer(tmp_path, bad_hub, capsys):
    config, log, _ = device(tmp_path, "kiosk-01")
    record_many(log, Scenario(), 3)
    log.close()
    cfg = _config_file(tmp_path, config, bad_hub.url)

    assert main(["upload", "--config", str(cfg), "--once"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "RecursionError" not in err
    assert err.strip().count("\n") == 0 and "hub" in err, err

    assert main(["heartbeat", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "RecursionError" not in err
    assert err.strip().count("\n") == 0 and "hub" in err
    assert read_state(config.paths.state_dir)["last_error"]

    with log:
        assert log.status()["pending_upload"] == 3  # nothing marked on a bad answer


def test_a_server_error_with_a_deep_body_is_a_retryable_failure():
    hub = AnsweringHub(503, DEEP)
    try:
        with pytest.raises(SyncError, match="hub answered 503") as caught:
            HubClient(hub.url, timeout_s=5).post_heartbeat(b"{}")
    finally:
        hub.stop()
    assert not isinstance(caught.value, HubRejected)


def test_the_parser_refuses_before_recursing():
    for name in ("deep-200", "deep-object"):
        with pytest.raises(SyncError, match=r"nested deeper|arrays and objects"):
            parse_answer(ANSWERS[name][1])
    with pytest.raises(SyncError, match="nested deeper"):
        parse_answer(b"[" * 50 + b"]" * 50)
    with pytest.raises(SyncError, match="arrays and objects"):
        parse_answer(ANSWERS["wide"][1])
    with pytest.raises(SyncError, match="larger than"):
        parse_answer(ANSWERS["huge"][1])
    # Brackets inside strings are text, not nesting: a genuine answer still parses.
    assert parse_answer(b'{"status": "stored", "error": "[[[[[[[[[[[[["}')["status"] == "stored"
