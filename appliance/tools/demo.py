"""``make demo``: a whole checkpoint on one machine, with nothing but this repository.

First run: demo issuer and holder keys, a trust source, a signed TUF repository served on
loopback, a sync into the device state, sample credentials. Every run: republish (so the
data is fresh), sync, print a table of sample verdicts, then run the kiosk with a
simulated camera that presents the samples one after another, LEDs on gpiozero mock pins
drawn on a terminal status line, and the web screen on http://127.0.0.1:8080/. One sample is
a phone with a mobile driving licence (ISO 18013-5), read over Bumble's emulated link
(``demo_mdl``).
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from appliance.core.credential.mdoc.items_request import MDL_DOCTYPE
from appliance.devices.camera import Frame, FramePacer
from appliance.platform.secret_files import create_secret
from appliance.tools.demo_mdl import LABEL as MDL_LABEL
from appliance.tools.demo_mdl import DemoMdl, mdl_available, prepare_mdl
from appliance.tools.holder import cose_key, present
from appliance.tools.issuer import (
    Claims,
    LicenceData,
    SigningKey,
    generate_key,
    issue,
    load_private_key,
    save_private_key,
)
from appliance.trust.editor import TrustSourceEditor

log = logging.getLogger(__name__)

STATUS_URI = "https://status.dlt.go.th/dl/1"
DLT, DBD = "TH-DLT", "TH-DBD"
FRAME_W, FRAME_H = 640, 480


@dataclass(frozen=True)
class Sample:
    """One thing held in front of the camera; ``make`` builds its QR text at a given time."""

    label: str
    make: Callable[[float], str | None]
    expected: str  # verdict/reason the demo expects, shown in the table
    session: bool = False  # an mDL engagement: read over a session with the phone


@dataclass
class DemoWorld:
    root: Path
    dlt: SigningKey
    dbd: SigningKey
    rogue: SigningKey
    holder: SigningKey
    mdl: DemoMdl | None = None  # the phone with an mDL (None: no Bluetooth stack)

    @property
    def trust_source(self) -> Path:
        return self.root / "trust.json"

    def samples(self) -> list[Sample]:
        now = int(time.time())
        year = 365 * 86400

        def licence(**kw: object) -> LicenceData:
            fields: dict[str, Any] = {
                "typ": "DL",
                "no": "63-0012345",
                "nm": "สมชาย ใจดี",
                "nml": "Somchai Jaidee",
                "dob": "1988-04-12",
                "cls": ["B", "A"],
                "vf": "2024-01-10",
                "vu": "2029-01-09",
                "ext": {"Blood group": "O"},
            }
            fields.update(kw)
            return LicenceData(**fields)

        cred_id = {"n": 0}

        def fixed(key: SigningKey, claims: Claims) -> Callable[[float], str]:
            cred_id["n"] += 1
            claims.cti = bytes([cred_id["n"]]) * 16  # stable across runs: revocations hold
            text = issue(key, claims)
            return lambda _t: text

        taxi = issue(
            self.dlt,
            Claims(
                DLT,
                licence(typ="TX", no="TX-77881", cls=["Taxi"]),
                iat=now - 86400,
                exp=now + year,
                holder_cose_key=cose_key(self.holder.private_key.public_key()),
            ),
        )
        forged_claims = Claims(
            DLT, licence(nm="ปลอม ไม่จริง", nml="Forged"), iat=now - 60, exp=now + year
        )
        forged = _forge(self.rogue, self.dlt, forged_claims)
        return [
            Sample(
                "driving licence ES256",
                fixed(
                    self.dlt,
                    Claims(
                        DLT,
                        licence(),
                        iat=now - 86400,
                        exp=now + year,
                        status_uri=STATUS_URI,
                        status_idx=7,
                    ),
                ),
                "PASS OK",
            ),
            *self._mdl_samples(),
            Sample(
                "business permit EdDSA",
                fixed(
                    self.dbd,
                    Claims(
                        DBD,
                        licence(
                            typ="BP",
                            no="0105559001234",
                            nm="บริษัท ตัวอย่าง จำกัด",
                            nml="Example Co., Ltd.",
                            dob=None,
                            cls=[],
                        ),
                        iat=now - 86400,
                        exp=now + year,
                    ),
                ),
                "PASS OK",
            ),
            Sample(
                "expired licence",
                fixed(
                    self.dlt,
                    Claims(DLT, licence(no="63-0099999"), iat=now - 2 * year, exp=now - 86400),
                ),
                "FAIL EXPIRED",
            ),
            Sample(
                "revoked licence",
                fixed(
                    self.dlt,
                    Claims(
                        DLT,
                        licence(no="63-0042042"),
                        iat=now - 86400,
                        exp=now + year,
                        status_uri=STATUS_URI,
                        status_idx=42,
                    ),
                ),
                "FAIL REVOKED",
            ),
            Sample("forged signature", lambda _t: forged, "FAIL BAD_SIGNATURE"),
            Sample("not a licence", lambda _t: "https://example.com/promo", "FAIL UNKNOWN_FORMAT"),
            Sample("nothing in view", lambda _t: None, "-"),
            Sample("taxi, screenshot", lambda _t: taxi, "FAIL PRESENTATION_REQUIRED"),
            Sample("taxi, live LP1 code", lambda t: present(taxi, self.holder, int(t)), "PASS OK"),
            Sample(
                "unknown status list",
                fixed(
                    self.dlt,
                    Claims(
                        DLT,
                        licence(no="63-0077777"),
                        iat=now - 86400,
                        exp=now + year,
                        status_uri="https://status.dlt.go.th/dl/9",
                        status_idx=1,
                    ),
                ),
                "UNVERIFIABLE STATUS_UNKNOWN",
            ),
        ]

    def _mdl_samples(self) -> list[Sample]:
        mdl = self.mdl
        if mdl is None:
            return []
        return [Sample(MDL_LABEL, lambda _t: mdl.qr_text(), "PASS OK", session=True)]


def _forge(rogue: SigningKey, victim: SigningKey, claims: Claims) -> str:
    """A credential signed by a rogue key under the victim's trusted kid."""
    from appliance.core.credential.cose import HEADER_ALG, HEADER_KID, encode_sign1
    from appliance.tools.issuer import ALG_IDS, qr_text

    cose = encode_sign1(
        {HEADER_ALG: ALG_IDS[victim.alg], HEADER_KID: victim.kid}, claims.to_cbor(), rogue.sign
    )
    return qr_text("LC1:", cose)


def prepare_world(root: Path) -> DemoWorld:
    """Keys are made once and kept; the trust source is rewritten every run."""
    keys = root / "keys"
    keys.mkdir(parents=True, exist_ok=True)

    def key(name: str, alg: str) -> SigningKey:
        path = keys / f"{name}.pem"
        if not path.exists():
            save_private_key(generate_key(alg), path)
        return load_private_key(path)

    world = DemoWorld(
        root,
        key("dlt-es256", "ES256"),
        key("dbd-eddsa", "EdDSA"),
        key("rogue", "ES256"),
        key("holder", "EdDSA"),
        prepare_mdl(keys) if mdl_available() else None,
    )
    editor = TrustSourceEditor()
    editor.add_key(
        DLT,
        world.dlt.trust_entry(types=["DL", "TX"]),
        "Department of Land Transport / กรมการขนส่งทางบก",
    )
    if world.mdl is not None:  # the same authority's mDL root (IACA)
        editor.add_iaca(DLT, world.mdl.iaca_der, [MDL_DOCTYPE])
    editor.add_key(
        DBD,
        world.dbd.trust_entry(types=["BP"]),
        "Department of Business Development / กรมพัฒนาธุรกิจการค้า",
    )
    for index in range(64):
        editor.set_status(STATUS_URI, index, 0, bits=2)
    editor.set_status(STATUS_URI, 42, 1)
    editor.set_status(STATUS_URI, 43, 2)
    editor.set_policy(
        max_age_hours=72, unknown_status="unverifiable", require_presentation_types=["TX"]
    )
    editor.save(world.trust_source)
    return world


class DemoCamera:
    """A simulated camera presenting samples in turn, with empty frames between them.

    Each sample is in view for ``show_s`` and then taken away for ``gap_s`` (longer than
    the repeat-suppression time, so the next showing counts). Live LP1 codes are re-signed
    every ``refresh_s`` while in view, as a phone would.
    """

    def __init__(
        self,
        samples: list[Sample],
        *,
        fps: float = 10.0,
        show_s: float = 3.0,
        gap_s: float = 2.5,
        refresh_s: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._samples = samples
        self._pacer = FramePacer(fps, monotonic, sleep)
        self._show_s, self._gap_s, self._refresh_s = show_s, gap_s, refresh_s
        self._wall = wall
        self._blank = np.full((FRAME_H, FRAME_W), 200, dtype=np.uint8)
        self._cache: dict[str, np.ndarray] = {}
        self._start = 0.0
        self.current: Sample | None = None

    def open(self) -> None:
        self._start = self._pacer.restart()

    def read(self, timeout_s: float) -> Frame | None:
        now = self._pacer.next_frame(timeout_s)
        if now is None:
            return None
        cycle = self._show_s + self._gap_s
        slot, within = divmod(now - self._start, cycle)
        sample = self._samples[int(slot) % len(self._samples)]
        text = None
        if within < self._show_s:
            self.current = sample
            refresh_at = self._wall() - (within % self._refresh_s)
            text = sample.make(refresh_at)
        else:
            self.current = None
        return Frame(self._frame(text), now)

    def close(self) -> None:
        self._cache.clear()

    def _frame(self, text: str | None) -> np.ndarray:
        if text is None:
            return self._blank
        frame = self._cache.get(text)
        if frame is None:
            if len(self._cache) > 32:
                self._cache.clear()
            frame = render_qr_frame(text)
            self._cache[text] = frame
        return frame


def render_qr_frame(text: str) -> np.ndarray:
    """The QR code as a phone screen shows it, centred in a grey camera frame."""
    import segno
    from PIL import Image

    buf = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buf, kind="png", scale=4, border=4)
    code = Image.open(io.BytesIO(buf.getvalue())).convert("L")
    side = FRAME_H - 60
    code = code.resize((side, side), Image.Resampling.NEAREST)
    canvas = Image.new("L", (FRAME_W, FRAME_H), 90)
    canvas.paste(code, ((FRAME_W - side) // 2, 30))
    return np.asarray(canvas, dtype=np.uint8).copy()


def write_config(root: Path, url: str, web_port: int, *, mdl: bool = False) -> Path:
    """The demo device's configuration: the same file format a Pi uses (``mdl``: mDL read
    over the emulated link, else off)."""
    path = root / "appliance.toml"
    path.write_text(
        "# Demo device configuration (written by `appliance demo`).\n"
        '[device]\nid = "demo-kiosk-01"\nname = "Demo checkpoint"\nmode = "inspector"\n\n'
        '[paths]\nstate_dir = "state"\nsecrets_dir = "secrets"\n\n'
        '[camera]\nsource = "none"\n\n'
        '[indicator]\nbackend = "mock"\nverdict_hold_s = 2.0\n\n'
        f'[sync]\nurl = "{url}"\nroot = "root.json"\ninterval_minutes = 5\n\n'
        f'[web]\nhost = "127.0.0.1"\nport = {web_port}\nlanguage = "th"\n'
        "show_holder_details = true\n\n"
        f'[mdoc]\ntransport = "{"bumble:local" if mdl else "none"}"\n'
        'request = "checkpoint"\n',
        encoding="utf-8",
    )
    return path


# The demo's logins, printed when it starts: the device runs in inspector mode, so the
# inspector screen needs its own password (without one it was reachable only as admin).
DEMO_PASSWORDS = {"admin": "demo-admin", "inspector": "demo-inspector"}


def ensure_secrets(root: Path) -> None:
    """Each role's password hash, made once (a workspace from an older demo gets the
    missing one)."""
    secrets = root / "secrets"
    secrets.mkdir(mode=0o700, exist_ok=True)
    for role, password in DEMO_PASSWORDS.items():
        path = secrets / f"{role}_password_hash"
        if not path.exists():
            from werkzeug.security import generate_password_hash

            create_secret(path, generate_password_hash(password).encode())


def table(rows: list[tuple[str, str, str]]) -> str:
    """Sample verdicts in at most 80 columns: a mismatch names the expected verdict below."""
    width = max(len(r[0]) for r in rows)
    lines = [f"{'sample':<{width}}  verdict", "-" * min(80, width + 32)]
    for label, got, expected in rows:
        lines.append(f"{label:<{width}}  {got}" + ("" if got == expected else "  (unexpected)"))
        if got != expected:
            lines.append(f"{'':<{width}}  expected {expected}")
    return "\n".join(lines)


def summary_json(rows: list[tuple[str, str, str]]) -> str:
    return json.dumps([{"sample": a, "verdict": b, "expected": c} for a, b, c in rows])
