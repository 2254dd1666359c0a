"""Shared set-up of the web tests: a real issuer key, trust snapshot, service, bus and app."""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from werkzeug.security import generate_password_hash

from appliance.clock import FixedClock
from appliance.config import Config, config_from_mapping
from appliance.events import EventBus
from appliance.issuer import Claims, LicenceData, SigningKey, generate_key, issue
from appliance.service import VerificationService
from appliance.trust_source import TrustSourceEditor
from appliance.verifier import Checkpoint
from appliance_web import create_app
from appliance_web.ports import LocalKioskPort

NOW = 1_800_000_000  # 2027-01-15T08:00:00Z
ISS = "https://dlt.go.th"
ISSUER_NAME = "กรมการขนส่งทางบก (Department of Land Transport)"
STATUS_URI = "https://dlt.go.th/status/1"
PASSWORD = "correct horse battery staple"


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
        data = {"typ": "DL", "no": "กท 1234/2566", "nm": "สมชาย ใจดี", "nml": "Somchai Jaidee",
                "dob": "1990-04-01", "cls": ["B", "A"], "vf": "2025-01-01", "vu": "2030-01-01"}
        data.update(licence)
        return issue(self.key, Claims(iss=ISS, licence=LicenceData(**data), iat=NOW - 86400,
                                      exp=exp, status_uri=status_uri, status_idx=3))

    def pass_text(self) -> str:
        return self.credential(ph=small_jpeg())

    def fail_text(self) -> str:  # expired
        return self.credential(exp=NOW - 86400)

    def unverifiable_text(self) -> str:  # status list unknown to this device
        return self.credential(status_uri=STATUS_URI)


def make_kit(tmp_path: Path, *, mode: str = "kiosk", show_holder: bool = False,
             language: str = "en", idle_after_s: float = 6.0, **port_kwargs: Any) -> Kit:
    key = generate_key("ES256")
    editor = TrustSourceEditor()
    editor.add_key(ISS, key.trust_entry(), ISSUER_NAME)
    snapshot = dataclasses.replace(editor.snapshot(), published_at=NOW - 3600, version=42,
                                   expires_at=NOW + 7 * 86400)
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    cheap_hash = generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")  # fast tests
    (secrets_dir / "admin_password_hash").write_text(cheap_hash + "\n")
    config = config_from_mapping({
        "device": {"id": "pi-bkk-007", "name": "Test checkpoint", "mode": mode},
        "paths": {"state_dir": str(tmp_path / "state"), "secrets_dir": str(secrets_dir)},
        "web": {"language": language, "show_holder_details": show_holder,
                "idle_after_s": idle_after_s,
                "trusted_hosts": ["127.0.0.1", "localhost"]},
    })
    clock = FixedClock(NOW)
    service = VerificationService(trust=lambda: snapshot, clock=clock, checkpoint=Checkpoint(),
                                  audit=None, audit_required=False)
    bus = EventBus()
    holder = mode == "inspector" or show_holder
    port = LocalKioskPort(service, bus, device={"id": "pi-bkk-007", "name": "Test checkpoint",
                                                "mode": mode, "camera": "images"},
                          trust=lambda: snapshot, clock=clock, show_holder=holder,
                          wall=lambda: float(NOW), **port_kwargs)
    return Kit(key, bus, service, port, config)


def fake_system() -> dict[str, Any]:
    return {"disk": {"path": "/", "total_bytes": 32e9, "free_bytes": 20e9, "used_fraction": .375},
            "cpu_temperature_c": 51.5, "throttled": {"value": 0x50000, "flags": [
                "under-voltage has occurred", "throttling has occurred"]}, "load_1m": 0.42}


def make_app(kit: Kit):
    app = create_app(kit.port, kit.config, secret_key=b"k" * 32, system_info=fake_system,
                     testing=True)
    return app
