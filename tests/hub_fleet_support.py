"""A hub on a real loopback HTTP server (or under gunicorn), and signed heartbeats from real
device keys."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from audit_support import HUB_KEY
from support import NOW, FakeClock
from werkzeug.serving import make_server

from appliance_hub.server import create_app
from appliance_hub.store import HubStore

AUDITOR = "auditor-token-" + "a" * 32
ADMIN = "admin-token-" + "b" * 32
T0 = float(NOW)  # the hub's clock at the start of a test
GUNICORN = Path(sys.executable).parent / "gunicorn"


class LiveHub:
    def __init__(self, url: str, store: HubStore, clock: FakeClock, devices: Path) -> None:
        self.url, self.store, self.clock, self.devices = url, store, clock, devices

    def request(
        self, method: str, path: str, body: bytes | None = None, token: str | None = None
    ) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def get_json(self, path: str, token: str | None = None) -> tuple[int, Any]:
        status, data = self.request("GET", path, token=token)
        return status, json.loads(data)

    def heartbeat(self, body: bytes) -> tuple[int, Any]:
        status, data = self.request("POST", "/v1/heartbeats", body)
        return status, json.loads(data)


@contextmanager
def live_hub(tmp_path: Path, dsn: str | None = None) -> Iterator[LiveHub]:
    store = HubStore(dsn or tmp_path / "hub.db")
    clock = FakeClock(T0)
    app = create_app(
        store, tmp_path / "devices", AUDITOR, admin_token=ADMIN, clock=clock, ack_key=HUB_KEY
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveHub(f"http://127.0.0.1:{server.port}", store, clock, tmp_path / "devices")
    finally:
        server.shutdown()
        thread.join()
        store.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def gunicorn_hub(workers: int, env: dict[str, str]) -> Iterator[str]:
    """The hub under gunicorn as appliance-hub.service runs it (``env`` on top of ours), on
    a free loopback port: its URL once /readyz answers, until the block ends. Skips the test
    when gunicorn is not installed."""
    if not GUNICORN.exists() and shutil.which("gunicorn") is None:
        pytest.skip("gunicorn is not installed (pip install -e '.[hub]')")
    port = free_port()
    proc = subprocess.Popen(
        [
            str(GUNICORN if GUNICORN.exists() else shutil.which("gunicorn")),
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "appliance_hub.wsgi:create()",
        ],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # waiting for a child process to listen: nothing asserted on the time
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not start: {proc.communicate(timeout=5)[0][-3000:]}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def heartbeat_fields(device_id: str, sent: float, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "type": "appliance-heartbeat/1",
        "device_id": device_id,
        "time": iso(sent),
        "software_version": "0.1.0",
        "trust_version": 7,
        "trust_age_s": 600.0,
        "last_sync_result": "ok",
        "last_sync_time": iso(sent - 600),
        "audit_backlog": 3,
        "camera": "ok",
        "clock_trusted": True,
        "disk_free_bytes": 5 * 2**30,
        "uptime_s": 3600.0,
    }
    fields.update(overrides)
    return fields


def envelope(payload: bytes, signature: bytes) -> bytes:
    return json.dumps(
        {
            "payload": base64.b64encode(payload).decode(),
            "signature": base64.b64encode(signature).decode(),
        }
    ).encode()


def signed(identity: Any, fields: dict[str, Any]) -> bytes:
    payload = json.dumps(fields, sort_keys=True).encode()
    return envelope(payload, identity.sign(payload))
