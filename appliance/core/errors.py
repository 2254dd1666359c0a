"""One exception tree for real faults (bad config, corrupt trust data, lost camera, ...).

Credential outcomes are never exceptions: they are verdicts with a reason code.
Adapters wrap foreign exceptions with ``raise ... from e``; the CLI turns any
``ApplianceError`` into one line and an exit status.
"""


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
