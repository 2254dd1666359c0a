"""Attack replay (issue 21, finding 11): the uploader trusted an unsigned answer.

A fake hub on plain HTTP (a wrong ``[upload] url``, a captive portal, anyone in the middle)
that answered ``{"status": "stored", "acked": [first, last], "log_id": ...}`` got the
records marked uploaded, and retention later deleted them: the hub never had them. Now the
device pins the hub's public key (``[upload] hub_key``) and marks records uploaded only on
an acknowledgement that key signed for the exact last record sent; pruning needs one too.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from audit_support import NOW, Scenario, device, record_many
from cryptography.hazmat.primitives.asymmetric import ed25519
from hub_fleet_support import live_hub

from appliance.audit.head import HubSigner
from appliance.cli import main
from appliance.core.errors import ConfigError, SyncError
from appliance_sync.upload import HubClient, Uploader


class FakeHub:
    """Plain HTTP on loopback: answers every batch as the real hub would, from its body,
    stores nothing; ``signer`` adds an acknowledgement signed by a key of its own."""

    def __init__(self, signer: HubSigner | None = None) -> None:
        self.seen = 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(inner) -> None:  # noqa: N805 - the handler's self
                batch = json.loads(inner.rfile.read(int(inner.headers["Content-Length"])))
                if "payload" in batch:  # a body signed as {"payload": base64, "signature"}
                    batch = json.loads(base64.b64decode(batch["payload"]))
                answer: dict = {"status": "stored"}  # a heartbeat: "stored" too
                if inner.path.endswith("/v1/batches"):
                    self.seen += 1
                    last = batch["records"][-1]
                    answer.update(
                        device_id=batch["device_id"],
                        log_id=batch["log_id"],
                        acked=[batch["first_seq"], batch["last_seq"]],
                        stored=len(batch["records"]),
                        duplicates=0,
                        gaps=[],
                    )
                if signer is not None and inner.path.endswith("/v1/batches"):
                    answer["ack"] = signer.ack(
                        batch["device_id"], batch["log_id"], last["seq"], last["hash"]
                    ).as_dict()
                body = json.dumps(answer).encode()
                inner.send_response(200)
                inner.send_header("Content-Type", "application/json")
                inner.send_header("Content-Length", str(len(body)))
                inner.end_headers()
                inner.wfile.write(body)

            def log_message(inner, *args: object) -> None:  # noqa: N805
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(params=["unsigned", "own-key"])
def fake_hub(request):
    hub = FakeHub(
        None if request.param == "unsigned" else HubSigner(ed25519.Ed25519PrivateKey.generate())
    )
    yield hub
    hub.stop()


def test_a_fake_hub_marks_nothing_and_nothing_is_pruned(tmp_path, fake_hub, capsys):
    config, log, identity = device(tmp_path, "kiosk-01", retention_days=1)
    record_many(log, Scenario(), 20, step=3600)
    uploader = Uploader(log, identity, HubClient(fake_hub.url, timeout_s=5), batch_size=8)
    with pytest.raises(SyncError, match="acknowledgement"):
        uploader.upload_pending(max_attempts=2, sleep=lambda _s: None)
    assert fake_hub.seen >= 1
    assert log.status()["pending_upload"] == 20 and log.hub_ack() is None
    assert log.prune(NOW + 30 * 86400) == 0 and log.status()["records"] == 20
    log.close()

    cfg = tmp_path / "appliance.toml"
    cfg.write_text(
        f'[device]\nid = "kiosk-01"\n[paths]\n'
        f'state_dir = "{config.paths.state_dir}"\n'
        f'secrets_dir = "{config.paths.secrets_dir}"\n'
        f'[upload]\nurl = "{fake_hub.url}"\ntimeout_s = 5\n'
        f'hub_key = "{config.upload.hub_key}"\n[web]\nkiosk_socket = ""\n'
    )
    assert main(["upload", "--config", str(cfg), "--once"]) == 1
    err = capsys.readouterr().err
    assert "acknowledgement" in err and "Traceback" not in err
    with log:
        assert log.status()["pending_upload"] == 20 and log.status()["records"] == 20


def test_a_genuine_acknowledgement_replayed_for_other_records_is_refused(tmp_path):
    with live_hub(tmp_path) as hub:
        _, log, identity = device(tmp_path, "kiosk-02", hub.devices)
        record_many(log, Scenario(), 5)
        genuine: list[dict] = []
        client = HubClient(hub.url, timeout_s=5)

        def keep(body):
            genuine.append(client.post_batch(body))
            return genuine[-1]

        Uploader(log, identity, keep).upload_pending()
        assert log.status()["pending_upload"] == 0 and log.hub_ack().seq == 5
        record_many(log, Scenario(), 3, start=NOW + 100)
        replay = Uploader(log, identity, lambda _body: {**genuine[-1], "acked": [6, 8]})
        with pytest.raises(SyncError, match="another record"):
            replay.upload_batch()
        assert log.status()["pending_upload"] == 3


def test_upload_without_a_pinned_hub_key_is_a_configuration_error(tmp_path, capsys):
    config, log, identity = device(tmp_path, "kiosk-03")
    log.hub_key = None
    with pytest.raises(ConfigError, match="hub_key"):
        Uploader(log, identity, lambda _body: {})
    log.close()
    cfg = tmp_path / "appliance.toml"
    cfg.write_text(
        f'[device]\nid = "kiosk-03"\n[paths]\n'
        f'state_dir = "{config.paths.state_dir}"\n'
        f'secrets_dir = "{config.paths.secrets_dir}"\n'
        '[upload]\nurl = "http://127.0.0.1:9/"\n'
    )
    assert main(["upload", "--config", str(cfg), "--once"]) == 64
    assert "[upload] hub_key" in capsys.readouterr().err


def test_the_hub_under_wsgi_signs_with_its_credential(tmp_path):
    """appliance-hub.service: the key arrives as the systemd credential hub_ack_key."""
    from audit_support import FlaskPoster, hub_private_file

    from appliance_hub.wsgi import app_from_environment

    env = {
        "APPLIANCE_HUB_DB": str(tmp_path / "hub.db"),
        "APPLIANCE_HUB_DEVICES": str(tmp_path / "devices"),
    }
    _, log, identity = device(tmp_path, "kiosk-04", tmp_path / "devices")
    record_many(log, Scenario(), 4)
    unsigned = FlaskPoster(app_from_environment(env).test_client())
    with pytest.raises(SyncError, match="no signed acknowledgement"):
        Uploader(log, identity, unsigned).upload_pending(max_attempts=1)
    assert log.status()["pending_upload"] == 4

    credentials = tmp_path / "credentials"
    hub_private_file(credentials).rename(credentials / "hub_ack_key")
    signing = FlaskPoster(
        app_from_environment({**env, "CREDENTIALS_DIRECTORY": str(credentials)}).test_client()
    )
    assert Uploader(log, identity, signing).upload_pending().records == 4
    assert log.status()["pending_upload"] == 0 and log.hub_ack().seq == 4
