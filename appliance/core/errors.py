"""One exception tree for the device package: every exception class of ``appliance`` is here,
under ``ApplianceError`` (as gpiozero keeps ``exc.py``; ADR 0012). The other programs keep
theirs in their own ``errors`` module, under the same root.

Credential outcomes are never exceptions: they are verdicts with a reason code. Inside the
core a stage may raise ``Rejection`` (or a ``MalformedData`` of a parser), which ``verify``
catches in one place. Adapters wrap foreign exceptions with ``raise ... from e``; the CLI
turns any ``ApplianceError`` into one line and an exit status.
"""

from __future__ import annotations

from appliance.core.reasons import Outcome, Reason


class ApplianceError(Exception):
    """Root of every fault the appliance reports to a person."""

    exit_status = 1


class ConfigError(ApplianceError):
    """The configuration file is missing, unreadable or invalid."""

    exit_status = 64  # bad usage, as spec LC1 s.7 counts it for `appliance verify`


class TrustDataError(ApplianceError):
    """A trust source or installed trust store is unreadable or invalid."""

    exit_status = 64  # spec LC1 s.7: unreadable trust source


class CameraError(ApplianceError):
    """The frame source failed (missing, lost, unreadable)."""


class AuditError(ApplianceError):
    """The audit log could not be written or read."""


class AuditUnavailable(AuditError):
    """Raised to the caller when ``audit.required`` and the record could not be written."""


class ImageReadError(ApplianceError):
    """An image file given to ``decode`` or ``verify --image`` cannot be read as a picture."""


class ImageTooLarge(ImageReadError):
    """A picture above ``MAX_IMAGE_PIXELS`` (refused from its header) or the file size cap."""


class SyncError(ApplianceError):
    """Trust-data sync or audit upload failed; the last good state is kept."""


class MalformedData(ApplianceError, ValueError):
    """Bytes a core parser cannot accept (Base45, zlib, CBOR, COSE, an mdoc's session): the
    core turns it into a verdict; a ValueError as well, which its callers catch."""


class UsageError(ApplianceError):
    """The command line was used wrongly (exit status 64)."""

    exit_status = 64


class RateLimited(ApplianceError):
    """More verifications than the per-minute cap: this one got no verdict and no record."""


class InvalidSource(ApplianceError):
    """A verification source that is not a short lower-case name."""


class RequestError(ApplianceError):
    """The request file could not be written."""


class AuditFull(AuditError):
    """The size cap is reached and only records not yet uploaded remain."""


class DeviceKeyError(ApplianceError):
    """The device key is missing, unreadable or not an Ed25519 key."""


class HubKeyError(DeviceKeyError):
    """The hub's signing key (or its pinned public half) is missing or not Ed25519."""


class KeyFileError(ApplianceError):
    """A key file is missing, unreadable or of the wrong kind."""

    exit_status = 64  # a file named on the command line: usage, as spec LC1 s.7 counts it


class PresentationError(ApplianceError):
    """The credential text cannot be presented (not an LC1 text, or not bound to the key)."""

    exit_status = 64  # the holder's input is wrong: usage, as spec LC1 s.7 counts it


class MdocTransportError(ApplianceError):
    """The radio did not carry a message (the session ends with a reason, never a crash)."""


class TransportTimeout(MdocTransportError):
    """A deadline of spec s.3.2 passed: no holder found, no answer, a gap between chunks."""


class TransportFailed(MdocTransportError):
    """No connection, GATT errors, service missing, link lost before the last chunk."""


class MessageTooLarge(MdocTransportError):
    """The holder sent more than ``mdoc.max_response_bytes``."""


class TransportUnavailable(MdocTransportError):
    """This device cannot read mDLs: ``mdoc.transport = "none"`` or no Bluetooth stack."""


class Base45Error(MalformedData):
    """The text is not valid Base45."""


class CborShapeError(MalformedData):
    """The bytes are not one CBOR item of the accepted shape."""


class CoseError(MalformedData):
    """The bytes are not an acceptable COSE_Sign1."""


class InflateError(MalformedData):
    """The bytes are not a complete zlib stream."""


class InflateTooLarge(MalformedData):
    """Inflating would pass the limit (decompression bomb or oversized payload)."""


class MdocCborError(MalformedData):
    """The bytes are not one acceptable CBOR item (spec reason MDOC_MALFORMED)."""


class CoseKeyError(MalformedData):
    """Not a COSE_Key map of the EC2 shape (spec reason MDOC_MALFORMED)."""


class UnsupportedCurve(MalformedData):
    """A well-formed key on a curve or of a type the appliance does not do."""


class SessionClosed(ApplianceError, RuntimeError):
    """The session was used after ``close`` (a programming error, not a holder's doing)."""


class SessionDecryptError(MalformedData):
    """AES-GCM refused the message: wrong key, wrong counter or tampered bytes."""


class SessionDataTooLarge(MalformedData):
    """A SessionData message above the configured limit (spec reason TOO_LARGE)."""


# The core's own: never leave verify or verify_mdoc_response.


class Rejection(ApplianceError):
    """Private to the core: a stage rejects a credential with one reason code."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason = reason


class MdocStop(ApplianceError):
    """Ends the mdoc verification steps with a verdict (``verify_mdoc_response`` catches it)."""

    def __init__(self, outcome: Outcome, reason: Reason) -> None:
        super().__init__(reason)
        self.outcome, self.reason = outcome, reason
