"""One TOML configuration read into frozen dataclasses with validated defaults.

Units live in key names (``interval_minutes``, ``clock_skew_s``). Unknown keys are
rejected with the dotted key named, so a typo never silently falls back to a default.
Secrets (fleet audit key, admin password hash) live in separate root-only files that
the configuration names by path. Choice fields are ``Literal`` types, checked when
loading: a misspelt mode or backend is refused at start, never run as some other one.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from appliance.core.errors import ConfigError

DeviceMode = Literal["kiosk", "inspector"]
CameraSource = Literal["picamera2", "images", "video", "none"]
ScannerBackend = Literal["both", "zxing", "zbar"]
IndicatorBackend = Literal["gpiozero", "mock", "none"]
Language = Literal["th", "en"]

_T = TypeVar("_T")


@dataclass(frozen=True)
class DeviceConfig:
    id: str = "demo-device"
    name: str = "Demo checkpoint"
    # "kiosk": walk-up, pass/fail only; "inspector": holder details shown to an officer.
    mode: DeviceMode = "kiosk"


@dataclass(frozen=True)
class PathsConfig:
    state_dir: Path = Path("/var/lib/appliance")
    # Root-only files: device signing key, fleet audit secret.
    secrets_dir: Path = Path("/etc/appliance/secrets")
    # Runtime files: the kiosk socket's folder, requests to the sync/upload path units.
    run_dir: Path = Path("/run/appliance")


@dataclass(frozen=True)
class PolicyConfig:
    # Licence types accepted at this checkpoint; empty means any (spec LC1 s.5 step 7).
    accepted_types: tuple[str, ...] = ()
    # Types that must be shown as live LP1 presentations, added to the trust data's list.
    require_presentation_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class CameraConfig:
    # "picamera2" (Pi), "images" (a folder of pictures, looped), "video" (a file), "none".
    source: CameraSource = "images"
    images_dir: Path = Path("demo/frames")
    video_file: Path | None = None
    width: int = 640
    height: int = 480
    fps: float = 10.0
    loop: bool = True
    # "images": how many frames each picture stays in view.
    frames_per_image: int = 10
    # "picamera2": continuous autofocus where the module has it (Camera Module 3).
    autofocus: bool = True
    # "picamera2": stops below auto exposure, so bright phone screens keep their modules.
    exposure_ev_down: float = 1.0


@dataclass(frozen=True)
class ScannerConfig:
    # "both" (zxing-cpp, then second looks incl. pyzbar: the measured winner, ADR 0003),
    # "zxing" (zxing-cpp alone) or "zbar" (pyzbar alone).
    backend: ScannerBackend = "both"
    # A code held in view gives one verdict; after it left the view this long it counts anew.
    repeat_after_absent_s: float = 2.0
    # Optional CDC serial scanner, e.g. "/dev/ttyACM0"; empty: none.
    serial_device: str = ""
    # Optional keyboard-wedge (USB HID) scanner, e.g. "/dev/input/by-id/usb-...-event-kbd".
    hid_device: str = ""
    # Decoder CPU time per camera frame for the "both" cascade: a second look starts only
    # while it lasts, an overspent frame is owed by the next ones (issue 21). 0: no budget.
    frame_budget_ms: float = 40.0


@dataclass(frozen=True)
class IndicatorConfig:
    # "gpiozero" (real or mock pins chosen by gpiozero), "mock" (gpiozero MockFactory), "none".
    backend: IndicatorBackend = "mock"
    green_pin: int = 17
    red_pin: int = 27
    amber_pin: int | None = 22
    buzzer_pin: int | None = None
    relay_pin: int | None = None
    relay_pulse_s: float = 1.0
    active_high: bool = True
    verdict_hold_s: float = 2.0


@dataclass(frozen=True)
class AuditConfig:
    required: bool = True
    checkpoint_every: int = 100
    checkpoint_interval_s: float = 300.0
    retention_days: int = 90
    max_db_mb: int = 512
    # Verdicts (each an audit record) a minute from every input together, a tenth of it
    # at once; more are dropped and counted (kiosk status audit.verdicts_dropped). 0: no cap.
    max_verdicts_per_minute: int = 120


@dataclass(frozen=True)
class SyncConfig:
    url: str = ""
    root: Path | None = None
    interval_minutes: float = 15.0
    jitter_s: float = 60.0
    timeout_s: float = 30.0
    # Total time one download may take (timeout_s bounds only the gap between bytes).
    download_deadline_s: float = 600.0
    retries: int = 3
    retry_backoff_s: float = 1.0
    keep_versions: int = 2


@dataclass(frozen=True)
class UploadConfig:
    url: str = ""
    interval_minutes: float = 10.0
    batch_size: int = 500
    timeout_s: float = 30.0
    # The hub's public key (``appliance hub keygen`` writes it as KEY.pub), pinned: only an
    # acknowledgement signed by it marks records uploaded, and only those are ever pruned.
    hub_key: Path | None = None


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    language: Language = "th"
    show_holder_details: bool = False
    idle_after_s: float = 6.0
    trusted_hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
    # Name of a file under secrets_dir holding the admin password hash (werkzeug format).
    admin_password_file: str = "admin_password_hash"
    # The same for the inspector role (holder details); without it inspector login is off.
    inspector_password_file: str = "inspector_password_hash"
    # Sessions end after this long without a request (and at logout, on the server).
    admin_idle_s: float = 1800.0
    inspector_idle_s: float = 900.0
    # Failed logins per client answered at once; each further one doubles the wait before
    # the next try (from login_delay_base_s up to login_delay_cap_s). A client's failures
    # are forgotten after login_window_s without one. Never a lockout.
    login_max_failures: int = 5
    login_window_s: float = 300.0
    login_delay_base_s: float = 1.0
    login_delay_cap_s: float = 60.0
    # Live screens (event streams) served at once; more answer 503 with Retry-After.
    max_event_streams: int = 16
    # Largest image accepted by "verify by image" (kilobytes).
    max_upload_kb: int = 10240
    # Verdicts of this session held in memory for the inspector view (never written).
    history_size: int = 50
    # Unix socket where the kiosk process (``appliance run``) serves the screens and where
    # ``appliance web`` reads it (docs/processes.md). Empty: ``appliance web`` runs standalone
    # and verifies uploads and pasted texts in its own process (no camera, no live verdicts).
    kiosk_socket: str = "/run/appliance/kiosk.sock"
    # Seconds the web waits for one answer from the kiosk.
    kiosk_socket_timeout_s: float = 10.0
    # Largest message either way on the kiosk socket (kilobytes); an uploaded picture's
    # raw bytes too, so keep it above max_upload_kb.
    kiosk_socket_max_kb: int = 16384


MdocRequestProfile = Literal["checkpoint", "age"]


@dataclass(frozen=True)
class MdocConfig:
    """ISO 18013-5 mDL reading (spec mdl-reader s.3): transport, request and timeouts."""

    # "bumble:hci-socket:0" (the Pi's controller), "bumble:local" (tests, demo) or "none"
    # (a board without Bluetooth: mDL off, every other format keeps working).
    transport: str = "bumble:hci-socket:0"
    # Empty: the process that runs the session drives ``transport`` itself (appliance mdoc
    # read, tests, make demo). A path: the kiosk loads no Bluetooth code and moves whole
    # messages through the radio service (`appliance mdl-radio`) listening on that Unix
    # socket (docs: the mDL radio split, issue 23).
    radio_socket: str = ""
    # mdoc central client mode (the appliance advertises and serves GATT); off: only
    # peripheral server mode is used and central-client-only engagements are refused.
    central_client_mode: bool = True
    request: MdocRequestProfile = "checkpoint"
    age_threshold: int = 20
    max_response_bytes: int = 262_144
    # Names of files under secrets_dir with the reader certificate (DER or PEM) and its
    # key (PEM); both empty: no reader authentication (s.3.4).
    reader_cert_file: str = ""
    reader_key_file: str = ""
    scan_timeout_s: float = 10.0
    connect_timeout_s: float = 5.0
    connect_retries: int = 1
    discovery_timeout_s: float = 5.0
    first_response_timeout_s: float = 45.0
    chunk_gap_timeout_s: float = 5.0
    session_timeout_s: float = 90.0


@dataclass(frozen=True)
class Config:
    device: DeviceConfig = field(default_factory=DeviceConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    scanner: ScannerConfig = field(default_factory=ScannerConfig)
    indicator: IndicatorConfig = field(default_factory=IndicatorConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    upload: UploadConfig = field(default_factory=UploadConfig)
    web: WebConfig = field(default_factory=WebConfig)
    mdoc: MdocConfig = field(default_factory=MdocConfig)

    @property
    def trust_dir(self) -> Path:
        """Where sync installs trust data and verifiers read it."""
        return self.paths.state_dir / "trust"

    @property
    def audit_db(self) -> Path:
        return self.paths.state_dir / "audit.db"


def not_configured(config: Config) -> dict[str, str]:
    """What the network services cannot do with ``config`` ("sync", "upload") and why.

    A setting missing here is not fixed by trying again: those services stop on it (exit
    64, ``RestartPreventExitStatus=64``) and the status page says why (issue 24).
    """
    missing = {}
    if not config.sync.url:
        missing["sync"] = "no trust-data server: set [sync] url in the configuration"
    elif config.sync.root is None:
        missing["sync"] = "no pinned trust root: set [sync] root in the configuration"
    if not config.upload.url:
        missing["upload"] = "no hub to upload to: set [upload] url in the configuration"
    return missing


def load_config(path: Path) -> Config:
    """Read and validate a TOML configuration; relative paths resolve against its folder."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read configuration {path}: {e.strerror or e}") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"configuration {path} is not valid TOML: {e}") from e
    return config_from_mapping(raw, base_dir=Path(path).resolve().parent)


def config_from_mapping(raw: dict[str, Any], base_dir: Path | None = None) -> Config:
    return _build(Config, raw, prefix="", base_dir=base_dir)


def _build(cls: type[_T], raw: Any, prefix: str, base_dir: Path | None) -> _T:
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'configuration'} must be a table")
    if not dataclasses.is_dataclass(cls):  # pragma: no cover - callers pass the classes above
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in known:
            raise ConfigError(f"unknown configuration key '{prefix}{key}'")
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            continue
        dotted = prefix + f.name
        hint = hints[f.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            values[f.name] = _build(hint, raw[f.name], dotted + ".", base_dir)
        else:
            values[f.name] = _coerce(hint, raw[f.name], dotted, base_dir)
    return cls(**values)


def _coerce(hint: Any, value: Any, dotted: str, base_dir: Path | None) -> Any:
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if not isinstance(value, str) or value not in choices:
            raise ConfigError(
                f"configuration key '{dotted}' must be one of "
                f"{', '.join(map(repr, choices))}, not {value!r}"
            )
        return value
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _coerce(options[0], value, dotted, base_dir)
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"configuration key '{dotted}' must be a list of strings")
        return tuple(value)
    if hint is Path:
        if not isinstance(value, str):
            raise ConfigError(f"configuration key '{dotted}' must be a path string")
        p = Path(value)
        return base_dir / p if base_dir is not None and not p.is_absolute() else p
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"configuration key '{dotted}' must be true or false")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"configuration key '{dotted}' must be a non-negative number")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"configuration key '{dotted}' must be a non-negative integer")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"configuration key '{dotted}' must be a string")
        return value
    raise ConfigError(f"configuration key '{dotted}' has an unsupported type")  # pragma: no cover
