"""Upload to a real hub process over HTTP on loopback: down, killed mid-batch, lost answers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import urllib3
from audit_support import NOW, Scenario, device, hub_private_file, record_many, wait_for

from appliance.cli import main
from appliance.core.errors import SyncError
from appliance_hub.store import HubStore
from appliance_sync.upload import HubClient, Uploader, backoff_delay

TOKEN = "t0ken"


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return Scenario()


class HubProcess:
    """``appliance hub serve`` in its own process, so it can be killed with SIGKILL."""

    def __init__(self, tmp_path) -> None:
        self.db = tmp_path / "hub.db"
        self.devices = tmp_path / "devices"
        self.devices.mkdir(exist_ok=True)
        (tmp_path / "token").write_text(TOKEN)
        self.token_file = tmp_path / "token"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "appliance.cli",
                "hub",
                "serve",
                "--db",
                str(self.db),
                "--devices",
                str(self.devices),
                "--auditor-token-file",
                str(self.token_file),
                "--port",
                str(self.port),
                "--ack-key",
                str(hub_private_file(self.devices.parent)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        http = urllib3.PoolManager(retries=False, timeout=1.0)

        def up() -> bool:
            try:
                return http.request("GET", self.url + "/healthz").status == 200
            except urllib3.exceptions.HTTPError:
                return False

        assert wait_for(up, timeout=20), "hub did not start"

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def count(self) -> int:
        store = HubStore(self.db)
        try:
            return store.count()
        finally:
            store.close()

    def integrity(self) -> list[dict]:
        store = HubStore(self.db)
        try:
            return store.integrity()
        finally:
            store.close()


@pytest.fixture
def hub(tmp_path):
    h = HubProcess(tmp_path)
    yield h
    h.kill()


def test_hub_down_nothing_marked_then_upload_once_cli(tmp_path, hub, scenario, capsys):
    config, log, identity = device(tmp_path, "kiosk-01", hub.devices)
    record_many(log, scenario, 30)
    uploader = Uploader(log, identity, HubClient(hub.url, timeout_s=2), batch_size=8)
    slept: list[float] = []
    with pytest.raises(SyncError, match="gave up after 3 attempts"):
        uploader.upload_pending(max_attempts=3, sleep=slept.append)
    assert len(slept) == 2 and slept[1] > slept[0] * 0.5
    assert log.status()["pending_upload"] == 30
    hub.start()
    cfg = tmp_path / "appliance.toml"
    cfg.write_text(
        f'[device]\nid = "kiosk-01"\n[paths]\n'
        f'state_dir = "{config.paths.state_dir}"\n'
        f'secrets_dir = "{config.paths.secrets_dir}"\n'
        f'[upload]\nurl = "{hub.url}"\nbatch_size = 8\ntimeout_s = 5\n'
        f'hub_key = "{config.upload.hub_key}"\n'
    )
    log.close()
    assert main(["upload", "--config", str(cfg), "--once"]) == 0
    assert "uploaded 30 records in 4 batches" in capsys.readouterr().out
    assert main(["upload", "--config", str(cfg), "--once"]) == 0
    assert "uploaded 0 records" in capsys.readouterr().out
    log.open()
    assert log.status()["pending_upload"] == 0 and hub.count() == 30


def test_hub_killed_mid_batch_and_lost_acks_each_record_held_once(tmp_path, hub, scenario):
    _, log, identity = device(tmp_path, "kiosk-02", hub.devices, checkpoint_every=50)
    n = 1500
    record_many(log, scenario, n, step=0.5)
    client = HubClient(hub.url, timeout_s=2)
    lost = {"n": 0}

    def post_losing_some_answers(body: bytes) -> dict:
        answer = client.post_batch(body)
        if lost["n"] < 5 and answer["acked"][0] % 7 == 1:
            lost["n"] += 1
            raise SyncError("answer lost")  # stored at the hub, the device never heard
        return answer

    uploader = Uploader(log, identity, post_losing_some_answers, batch_size=20)
    hub.start()
    errors: list[BaseException] = []
    stop = threading.Event()

    def run() -> None:
        try:
            uploader.upload_pending(
                max_attempts=None, base_delay_s=0.02, max_delay_s=0.2, stop=stop
            )
        except BaseException as e:
            errors.append(e)

    worker = threading.Thread(target=run)
    worker.start()
    for pause in (0.15, 0.3, 0.2):  # kill -9 while batches are in flight, restart
        time.sleep(pause)
        hub.kill()
        time.sleep(0.1)
        hub.start()
    worker.join(timeout=40)
    stop.set()
    assert not worker.is_alive() and not errors, errors
    assert lost["n"] == 5
    assert log.status()["pending_upload"] == 0
    assert hub.count() == n
    [integrity] = hub.integrity()
    assert integrity["complete"] and integrity["records"] == n and not integrity["anomalies"]
    assert log.verify().ok


def test_reflashed_device_is_a_new_log_not_duplicates(tmp_path, hub, scenario):
    hub.start()
    config, log, identity = device(tmp_path, "kiosk-03", hub.devices)
    record_many(log, scenario, 10)
    Uploader(log, identity, HubClient(hub.url, timeout_s=2)).upload_pending()
    log.close()
    config.audit_db.unlink()  # a new SD card image: same device id and key, new log
    for suffix in ("-wal", "-shm"):
        config.audit_db.with_name(config.audit_db.name + suffix).unlink(missing_ok=True)
    _, log2, _ = device(tmp_path, "kiosk-03", hub.devices)
    record_many(log2, scenario, 10, start=NOW + 100)
    report = Uploader(log2, identity, HubClient(hub.url, timeout_s=2)).upload_pending()
    assert report.records == 10 and report.duplicates == 0
    assert hub.count() == 20 and len(hub.integrity()) == 2


def test_backoff_grows_with_jitter_and_is_capped():
    delays = [backoff_delay(n, 1.0, 30.0, rng=lambda: 1.0) for n in range(1, 8)]
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert backoff_delay(3, 1.0, 30.0, rng=lambda: 0.0) == 2.0
