"""The holder simulator of the E2E tests: a phone (``appliance.tools.holder_ble``) whose
wallet holds an mDL issued by a test IACA (``issuer_support``), and the reader's judge.

    radio = LocalRadio()
    wallet = TestWallet()
    async with SimulatedPhone(radio, wallet, behaviour=Behaviour(Misbehaviour.STALL)) as phone:
        result = await read_mdoc(phone.text, reader_transport(radio, deadlines), settings,
                                 wallet.judge)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from issuer_support import NOW, TestIaca, checkpoint_elements

from appliance.core.credential.mdoc.items_request import MDL_NAMESPACE, device_request_from_bytes
from appliance.core.credential.mdoc.session import ReaderSession
from appliance.core.credential.mdoc.verify import MdocResult, verify_mdoc
from appliance.core.snapshot import TrustSnapshot
from appliance.core.verifier import Checkpoint
from appliance.devices.ble_bumble import BumbleTransport
from appliance.devices.ble_controllers import LocalRadio
from appliance.devices.mdoc_transport import Deadlines
from appliance.tools.issuer_mdoc import IssuedMdoc, device_response
from appliance.trust.source import snapshot_from_document

# Deadlines with room for a loaded machine (a session takes ~0.2 s here); a test of one
# deadline shortens that one alone (``stalled``), so nothing else can fire first.
ROOMY = Deadlines(
    scan_s=10.0,
    connect_s=10.0,
    connect_retries=0,
    discovery_s=10.0,
    first_response_s=10.0,
    chunk_gap_s=5.0,
    session_s=30.0,
    close_s=2.0,
)


def stalled(**short: float) -> Deadlines:
    """ROOMY with the named deadlines shortened (seconds)."""
    return dataclasses.replace(ROOMY, **short)


@dataclass
class TestWallet:
    """A phone's wallet: one mDL (checkpoint elements plus age_over_NN) under a test IACA.
    Called by the phone with the reader's request, it discloses what was asked."""

    __test__ = False

    iaca: TestIaca = field(default_factory=TestIaca.create)
    holder_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    extra: dict[str, Any] = field(
        default_factory=lambda: {"age_over_18": True, "age_over_20": True}
    )
    mdoc: IssuedMdoc | None = None
    signed: dt.datetime = NOW - dt.timedelta(days=1)

    def __post_init__(self) -> None:
        elements = checkpoint_elements()
        elements[MDL_NAMESPACE].update(self.extra)
        self.mdoc = self.iaca.document_signer().issue(
            elements, self.holder_key.public_key(), signed=self.signed
        )

    def __call__(
        self, request: bytes, transcript: bytes, e_reader_key: ec.EllipticCurvePublicKey
    ) -> bytes:
        asked = device_request_from_bytes(request)
        disclose = {ns: sorted(names) for ns, names in asked.elements.items()}
        assert self.mdoc is not None
        return device_response(
            self.mdoc,
            session_transcript_bytes=transcript,
            device_key=self.holder_key,
            e_reader_public_key=e_reader_key,
            disclose=disclose,
        )

    def trust(self) -> TrustSnapshot:
        return snapshot_from_document(self.iaca.trust_document())

    def judge(
        self,
        response: bytes,
        session: ReaderSession,
        *,
        profile: str = "checkpoint",
        age_threshold: int = 20,
    ) -> MdocResult:
        """The core verifier as the kiosk calls it, at the issuer's test time."""
        return verify_mdoc(
            response,
            session_transcript_bytes=session.transcript,
            e_reader_key=session.e_reader_key,
            trust=self.trust(),
            now=NOW.timestamp(),
            profile=profile,
            age_threshold=age_threshold,
            checkpoint=Checkpoint(check_staleness=False),
        )


def reader_transport(
    radio: LocalRadio, deadlines: Deadlines = ROOMY
) -> Callable[[], BumbleTransport]:
    """The appliance's transport on the shared emulated link (``bumble:local``)."""
    return lambda: BumbleTransport.open("local", deadlines, radio=radio)
