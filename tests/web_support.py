"""Shared set-up of the web tests: a real issuer key, trust snapshot, service, bus and app."""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from support import NOW
from werkzeug.security import generate_password_hash

from appliance.config import Config, config_from_mapping
from appliance.core.verifier import Checkpoint
from appliance.kiosk.local_port import LocalKioskPort
from appliance.kiosk.verification import VerificationService
from appliance.port.events import EventBus
from appliance.tools.issuer import Claims, LicenceData, SigningKey, generate_key, issue
from appliance.trust.clock import FixedClock
from appliance.trust.editor import TrustSourceEditor
from appliance_web import create_app

ISS = "https://dlt.go.th"
ISSUER_NAME = "กรมการขนส่งทางบก (Department of Land Transport)"
STATUS_URI = "https://dlt.go.th/status/1"
PASSWORD = "correct horse battery staple"
INSPECTOR_PASSWORD = "inspector tray lamp"


def small_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (24, 32), (180, 120, 90)).save(buf, "JPEG", quality=50)
    return buf.getvalue()


@dataclass
class Kit:
    key: SigningKey
    bus: EventBus
    service: VerificationService
    port: LocalKioskPort
    config: Config

    def credential(self, **licence: Any) -> str:
        exp = licence.pop("exp", NOW + 365 * 86400)
        status_uri = licence.pop("status_uri", None)
        data = {
            "typ": "DL",
            "no": "กท 1234/2566",
            "nm": "สมชาย ใจดี",
            "nml": "Somchai Jaidee",
            "dob": "1990-04-01",
            "cls": ["B", "A"],
            "vf": "2025-01-01",
            "vu": "2030-01-01",
        }
        data.update(licence)
        return issue(
            self.key,
            Claims(
                iss=ISS,
                licence=LicenceData(**data),
                iat=NOW - 86400,
                exp=exp,
                status_uri=status_uri,
                status_idx=3,
            ),
        )

    def pass_text(self) -> str:
        return self.credential(ph=small_jpeg())

    def fail_text(self) -> str:  # expired
        return self.credential(exp=NOW - 86400)

    def unverifiable_text(self) -> str:  # status list unknown to this device
        return self.credential(status_uri=STATUS_URI)


def make_kit(
    tmp_path: Path,
    *,
    mode: str = "kiosk",
    show_holder: bool = False,
    language: str = "en",
    idle_after_s: float = 6.0,
    **port_kwargs: Any,
) -> Kit:
    key = generate_key("ES256")
    editor = TrustSourceEditor()
    editor.add_key(ISS, key.trust_entry(), ISSUER_NAME)
    snapshot = dataclasses.replace(
        editor.snapshot(), published_at=NOW - 3600, version=42, expires_at=NOW + 7 * 86400
    )
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    cheap_hash = generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")  # fast tests
    (secrets_dir / "admin_password_hash").write_text(cheap_hash + "\n")
    (secrets_dir / "inspector_password_hash").write_text(
        generate_password_hash(INSPECTOR_PASSWORD, "pbkdf2:sha256:1000") + "\n"
    )
    config = config_from_mapping(
        {
            "device": {"id": "pi-bkk-007", "name": "Test checkpoint", "mode": mode},
            "paths": {"state_dir": str(tmp_path / "state"), "secrets_dir": str(secrets_dir)},
            "web": {
                "language": language,
                "show_holder_details": show_holder,
                "idle_after_s": idle_after_s,
                "trusted_hosts": ["127.0.0.1", "localhost"],
            },
        }
    )
    clock = FixedClock(NOW)
    service = VerificationService(
        trust=lambda: snapshot,
        clock=clock,
        checkpoint=Checkpoint(),
        audit=None,
        audit_required=False,
    )
    bus = EventBus()
    holder = mode == "inspector" or show_holder
    port = LocalKioskPort(
        service,
        bus,
        device={"id": "pi-bkk-007", "name": "Test checkpoint", "mode": mode, "camera": "images"},
        trust=lambda: snapshot,
        clock=clock,
        show_holder=holder,
        wall=lambda: float(NOW),
        **port_kwargs,
    )
    return Kit(key, bus, service, port, config)


def fake_system() -> dict[str, Any]:
    return {
        "disk": {"path": "/", "total_bytes": 32e9, "free_bytes": 20e9, "used_fraction": 0.375},
        "cpu_temperature_c": 51.5,
        "throttled": {
            "value": 0x50000,
            "flags": ["under-voltage has occurred", "throttling has occurred"],
        },
        "load_1m": 0.42,
    }


def make_app(kit: Kit, **kwargs: Any):
    app = create_app(
        kit.port, kit.config, secret_key=b"k" * 32, system_info=fake_system, testing=True, **kwargs
    )
    return app


def form_token(client, path: str) -> str:
    """The CSRF token of the form on ``path``."""
    import re

    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login_inspector(client, password: str = INSPECTOR_PASSWORD, **kwargs: Any):
    token = form_token(client, "/inspector/login")
    return client.post(
        "/inspector/login", data={"csrf_token": token, "password": password}, **kwargs
    )


def login_admin(client, password: str = PASSWORD, **kwargs: Any):
    token = form_token(client, "/admin/login")
    return client.post("/admin/login", data={"csrf_token": token, "password": password}, **kwargs)


class LiveServer:
    """The app on a real server on 127.0.0.1 (the bounded threaded server ``appliance web``
    creates, with its limits)."""

    def __init__(self, app: Any) -> None:
        import threading

        from appliance.platform.bounded_server import make_bounded_server, screen_limits

        self.app = app
        limits = screen_limits(app.config["APPLIANCE"].web.max_event_streams)
        self.httpd = make_bounded_server("127.0.0.1", 0, app, limits)
        self.port = self.httpd.server_port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def connect(self, timeout_s: float = 10.0):
        import http.client

        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout_s)

    def get(self, path: str, cookie: str = "", timeout_s: float = 10.0):
        """(status, headers, body) of one GET."""
        conn = self.connect(timeout_s)
        conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        r = conn.getresponse()
        body = r.read()
        conn.close()
        return r.status, r.headers, body

    def form_session(self, path: str) -> tuple[str, str]:
        """(cookie, csrf token) of a fresh session, from the form on ``path``."""
        import re

        _status, headers, body = self.get(path)
        cookie = headers["Set-Cookie"].split(";", 1)[0]
        token = re.search(rb'name="csrf_token" value="([^"]+)"', body).group(1).decode()
        return cookie, token

    def post_multipart(
        self, path: str, cookie: str, fields: dict[str, str], files: dict[str, tuple[str, bytes]]
    ):
        """(status, body) of a multipart POST built in memory (no temporary files)."""
        boundary = "----appliance-test-boundary"
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        ]
        for name, (filename, data) in files.items():
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: application/octet-stream'
                "\r\n\r\n".encode()
                + data
                + b"\r\n"
            )
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        conn = self.connect()
        conn.request(
            "POST",
            path,
            body=body,
            headers={"Cookie": cookie, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        r = conn.getresponse()
        out = r.status, r.read()
        conn.close()
        return out

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
