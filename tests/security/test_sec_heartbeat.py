"""Attack replays for device heartbeats and the fleet page (issue 16).

- A device's text fields (software version, camera word) rendered into an administrator's
  page: script must come out escaped.
- The remote-policy field is a closed set: anything else is refused, not stored.
- A hub that takes the connection and never answers must not hang the device's heartbeat
  or upload service: the timeout ends it, the failure is recorded, one line, no traceback.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from audit_support import device
from hub_fleet_support import ADMIN, T0, heartbeat_fields, live_hub, signed

from appliance.cli import main
from appliance_sync.heartbeat import read_state

SCRIPT = "<script>alert(1)</script>"


def test_a_device_cannot_script_the_fleet_page(tmp_path):
    with live_hub(tmp_path) as hub:
        _, _, identity = device(tmp_path, "kiosk-01", hub.devices)
        fields = heartbeat_fields(
            "kiosk-01", T0, software_version=SCRIPT, camera='"><img src=x onerror=alert(1)>'
        )
        assert hub.heartbeat(signed(identity, fields))[0] == 200
        status, body = hub.request("GET", "/fleet", token=ADMIN)
    html = body.decode()
    assert status == 200
    assert SCRIPT not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_out_of_service_is_a_closed_set(tmp_path):
    with live_hub(tmp_path) as hub:
        _, _, identity = device(tmp_path, "kiosk-01", hub.devices)
        for i, value in enumerate(("DISABLED<b>", "OK", "", 1, True)):
            fields = heartbeat_fields("kiosk-01", T0 + i, out_of_service=value)
            assert hub.heartbeat(signed(identity, fields))[0] == 400, value
        fields = heartbeat_fields("kiosk-01", T0 + 10, out_of_service="SOFTWARE_OUTDATED")
        assert hub.heartbeat(signed(identity, fields))[0] == 200
        status, listed = hub.get_json("/v1/devices", token=ADMIN)
    assert status == 200
    assert [d["out_of_service"] for d in listed["devices"]] == ["SOFTWARE_OUTDATED"]


class SilentHub:
    """Accepts connections, reads nothing, answers nothing (a tarpit)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_a_hub_that_never_answers_does_not_hang_the_device(tmp_path: Path, capsys):
    hub = SilentHub()
    try:
        config = tmp_path / "device.toml"
        config.write_text(
            f'[device]\nid = "kiosk-01"\n'
            f'[paths]\nstate_dir = "{tmp_path / "state"}"\n'
            f'secrets_dir = "{tmp_path / "secrets"}"\n'
            f'[upload]\nurl = "{hub.url}"\ntimeout_s = 1\n'
            f'[camera]\nsource = "none"\n'
        )
        assert main(["device", "keygen", "--config", str(config)]) == 0
        capsys.readouterr()
        status = main(["heartbeat", "--config", str(config)])
    finally:
        hub.close()
    err = capsys.readouterr().err
    assert status == 1
    assert err.count("\n") == 1 and "Traceback" not in err and "hub unreachable" in err
    assert "hub unreachable" in read_state(tmp_path / "state")["last_error"]
