"""Shared pieces of the mdoc verifier tests: a session, a generated world, mutation helpers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec
from issuer_support import NOW, DocumentSigner, TestIaca, checkpoint_elements

from appliance.core.credential.mdoc.cbor import Embedded, Tagged, decode
from appliance.core.credential.mdoc.cose_key import cose_key_bytes
from appliance.core.credential.mdoc.session_crypto import embed, session_transcript_bytes
from appliance.core.credential.mdoc.verify import MdocResult, verify_mdoc
from appliance.core.snapshot import TrustSnapshot
from appliance.core.verifier import Checkpoint
from appliance.tools.issuer_mdoc import IssuedMdoc, Raw, device_response, dumps
from appliance.trust.source import snapshot_from_document

AUTHORING = Checkpoint(check_staleness=False)


def reencode(value: Any) -> Any:
    """A decoded value (``cbor.decode``) back into something ``issuer_mdoc.dumps`` writes
    with every ``#6.24`` item's bytes as received."""
    if isinstance(value, Embedded):
        return Raw(value.raw)
    if isinstance(value, Tagged):
        return cbor2.CBORTag(value.tag, reencode(value.value))
    if isinstance(value, dict):
        return {k: reencode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reencode(v) for v in value]
    return value


def mutate(response: bytes, change: Any) -> bytes:
    """Decode, let ``change(item)`` edit the decoded DeviceResponse in place, encode."""
    item = decode(response)
    change(item)
    return dumps(reencode(item))


@dataclass
class Session:
    """A reader's side of a session: EReaderKey and a QR-handover transcript."""

    reader_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    engagement: bytes = cbor2.dumps({0: "1.0"})  # DeviceEngagement CBOR

    @property
    def transcript(self) -> bytes:
        return session_transcript_bytes(
            embed(self.engagement), embed(cose_key_bytes(self.reader_key.public_key()))
        )


@dataclass
class World:
    """A test IACA, a DS, a holder key and a session; ``response()`` issues and presents."""

    iaca: TestIaca = field(default_factory=TestIaca.create)
    holder_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    session: Session = field(default_factory=Session)
    ds: DocumentSigner | None = None

    def signer(self) -> DocumentSigner:
        if self.ds is None:
            self.ds = self.iaca.document_signer()
        return self.ds

    def issue(self, elements: dict[str, dict[str, Any]] | None = None, **kwargs: Any) -> IssuedMdoc:
        return self.signer().issue(
            elements or checkpoint_elements(), self.holder_key.public_key(), **kwargs
        )

    def response(self, mdoc: IssuedMdoc | None = None, *, mac: bool = True, **kwargs: Any) -> bytes:
        return device_response(
            mdoc or self.issue(),
            session_transcript_bytes=self.session.transcript,
            device_key=self.holder_key,
            e_reader_public_key=self.session.reader_key.public_key() if mac else None,
            **kwargs,
        )

    def trust(self, **doc_changes: Any) -> TrustSnapshot:
        doc = self.iaca.trust_document()
        doc.update(doc_changes)
        return snapshot_from_document(doc)

    def verify(
        self,
        response: bytes,
        *,
        trust: TrustSnapshot | None = None,
        now: dt.datetime = NOW,
        **kwargs: Any,
    ) -> MdocResult:
        kwargs.setdefault("checkpoint", AUTHORING)
        return verify_mdoc(
            response,
            session_transcript_bytes=self.session.transcript,
            e_reader_key=self.session.reader_key,
            trust=trust or self.trust(),
            now=now.timestamp(),
            **kwargs,
        )
