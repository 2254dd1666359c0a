"""The demo's mobile driving licence: a simulated phone presenting an mDL over the emulated link.

The demo's licence authority also runs an IACA (kept in the demo's keys/ folder like its other
keys, and added to the trust source under TH-DLT), whose document signer issues the holder's
mDL afresh on every run. The sample held up to the camera is the phone's QR engagement; the
kiosk then reads the phone over Bumble's ``LocalLink`` (``mdoc.transport = "bumble:local"``),
exactly the session code a Pi runs on its controller. A phone shows a new QR code for every
session, so each showing of the sample (and the verdict table) gets a new simulated phone.
"""

from __future__ import annotations

import datetime as dt
import io
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from appliance.core.credential.mdoc.items_request import MDL_NAMESPACE
from appliance.tools.issuer import generate_key, load_private_key, save_private_key
from appliance.tools.issuer_mdoc import (
    Wallet,
    issue_mdoc,
    make_document_signer,
    make_iaca,
    wallet,
)

LABEL = "mobile licence (mDL), phone"
NEW_SHOWING_S = 1.0  # a sample out of view this long is shown anew: a new phone and QR


def mdl_available() -> bool:
    """The demo's phone needs the Bluetooth stack (extra 'mdl'; make demo installs it)."""
    from appliance.devices.mdoc_transport import mdl_available as why_not

    return why_not("bumble:local") is None


def _key(path: Path) -> ec.EllipticCurvePrivateKey:
    if not path.exists():
        save_private_key(generate_key("ES256"), path)
    key = load_private_key(path).private_key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _certificate(path: Path, make: Callable[[], x509.Certificate]) -> x509.Certificate:
    if not path.exists():
        path.write_bytes(make().public_bytes(Encoding.PEM))
    return x509.load_pem_x509_certificate(path.read_bytes())


def portrait_jpeg() -> bytes:
    """A drawn head and shoulders (the demo holds no real person's face)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (120, 160), (214, 226, 240))
    draw = ImageDraw.Draw(img)
    draw.ellipse((35, 22, 85, 82), fill=(176, 132, 100))
    draw.ellipse((14, 92, 106, 200), fill=(40, 70, 120))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def mdl_elements(now: dt.datetime) -> dict[str, Any]:
    """The holder's licence: the checkpoint profile's elements and age attestations."""

    def day(value: dt.date) -> cbor2.CBORTag:
        return cbor2.CBORTag(1004, value.isoformat())

    today = now.date()
    issued = today.replace(year=today.year - 2)
    expires = today.replace(year=today.year + 3)
    return {
        "family_name": "ใจดี",
        "given_name": "สมชาย",
        "birth_date": day(dt.date(1988, 4, 12)),
        "portrait": portrait_jpeg(),
        "document_number": "63-0012345",
        "issuing_authority": "Department of Land Transport",
        "issuing_country": "TH",
        "issue_date": day(issued),
        "expiry_date": day(expires),
        "driving_privileges": [
            {"vehicle_category_code": "B", "issue_date": day(issued), "expiry_date": day(expires)},
            {
                "vehicle_category_code": "A",
                "issue_date": day(issued),
                "expiry_date": day(expires),
                "codes": [{"code": "01"}],
            },
        ],
        "un_distinguishing_sign": "THA",
        "age_over_18": True,
        "age_over_20": True,
    }


@dataclass
class DemoMdl:
    """The demo authority's IACA and signer, the holder's phone wallet, and the link."""

    iaca: x509.Certificate
    wallet: Wallet
    radio: Any = None  # LocalRadio, made on first use (imports Bumble)
    _phone: Any = None
    _started: bool = False
    _last_call: float = -1e9
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def iaca_der(self) -> bytes:
        return self.iaca.public_bytes(Encoding.DER)

    def link(self) -> Any:
        if self.radio is None:
            from appliance.devices.ble_controllers import LocalRadio

            self.radio = LocalRadio()
        return self.radio

    def qr_text(self, monotonic: Callable[[], float] = time.monotonic) -> str:
        """The QR code the phone shows now: a new phone (and engagement) when the last one
        was read, or the sample comes into view again."""
        with self._lock:
            now = monotonic()
            new_showing = now - self._last_call > NEW_SHOWING_S
            self._last_call = now
            if self._phone is None or (self._started and new_showing):
                self._new_phone()
            return str(self._phone.text)

    def _new_phone(self) -> None:
        from appliance.tools.holder_ble import SimulatedPhone

        phone = SimulatedPhone(self.link(), self.wallet)

        async def start() -> Callable[[], Awaitable[None]]:
            self._started = True  # the reader's session took this phone
            await phone.start()
            return phone.stop

        self._phone, self._started = phone, False
        self.radio.invite(start)


def prepare_mdl(keys: Path, now: float | None = None) -> DemoMdl:
    """The authority's IACA and DS (made once, kept in ``keys``), the holder's device key,
    and a freshly issued mDL in the holder's wallet."""
    when = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC)
    iaca_key, ds_key = _key(keys / "mdl-iaca.pem"), _key(keys / "mdl-ds.pem")
    holder_key = _key(keys / "mdl-holder.pem")
    iaca = _certificate(
        keys / "mdl-iaca.crt",
        lambda: make_iaca(iaca_key, "Demo DLT IACA", "TH", not_before=when - dt.timedelta(days=1)),
    )
    ds = _certificate(
        keys / "mdl-ds.crt",
        lambda: make_document_signer(
            ds_key, iaca_key, iaca, "Demo DLT mDL signer", not_before=when - dt.timedelta(days=1)
        ),
    )
    mdl = issue_mdoc(
        ds_key,
        ds,
        {MDL_NAMESPACE: mdl_elements(when)},
        holder_key.public_key(),
        signed=when - dt.timedelta(hours=1),
        valid_until=when + dt.timedelta(days=30),
    )
    return DemoMdl(iaca, wallet(mdl, holder_key))


def read_once(config: Any, mdl: DemoMdl, service: Any, source: str = "demo") -> Any:
    """One audited session with a new phone, as the kiosk runs it: the verdict table's row."""
    from appliance.kiosk.mdoc_session import mdoc_reader, run_session

    reader = mdoc_reader(config, radio=mdl.link())
    return run_session(mdl.qr_text(), reader, service, source).verdict
