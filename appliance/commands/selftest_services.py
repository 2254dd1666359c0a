"""``appliance selftest``'s checks of what verdicts rest on beyond the hardware: trust
data fresh, the clock trusted, the audit log durable, the repository and the hub reachable,
and the mDL radio service answering on its socket.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.commands.selftest import FAIL, PASS, WARN

if TYPE_CHECKING:
    from appliance.commands.selftest import Context


# -- trust, clock, audit ------------------------------------------------------------------


def check_clock(ctx: Context) -> tuple[str, str]:
    from appliance.trust.clock import (
        FileTimeFloor,
        is_trusted,
        system_clock_synchronised,
        time_floor,
    )

    last_sync = FileTimeFloor(ctx.config.paths.state_dir / "clock.json").last_synchronised()
    published = ctx.facts.get("published_at")
    now = ctx.wall()
    floor = time_floor(last_sync, published)
    ntp = (ctx.ntp or system_clock_synchronised)()
    if not is_trusted(now, floor):
        return FAIL, "the clock is behind the trusted-time floor: verdicts are withheld"
    if not ntp:
        return WARN, "clock not NTP-synchronised (above the trusted floor)"
    return PASS, "NTP-synchronised, above the trusted-time floor"


def check_trust(ctx: Context) -> tuple[str, str]:
    from appliance.core.errors import TrustDataError
    from appliance.trust.store import load_trust_store

    try:
        snap = load_trust_store(ctx.config.trust_dir, ctx.config.sync.root)
    except TrustDataError as e:
        return FAIL, str(e)
    ctx.facts["published_at"] = snap.published_at
    if snap.published_at is None:  # installed data always has it; an authoring file has not
        return FAIL, f"version {snap.version} has no publication time"
    age_h = (ctx.wall() - snap.published_at) / 3600
    limit = snap.policy.max_age_hours
    if age_h > limit:
        return FAIL, f"version {snap.version} is {age_h:.0f} h old (limit {limit:.0f} h): stale"
    if age_h > limit / 2:
        return WARN, f"version {snap.version} is {age_h:.0f} h old (limit {limit:.0f} h)"
    return PASS, f"version {snap.version}, {age_h:.1f} h old (limit {limit:.0f} h)"


def check_audit(ctx: Context) -> tuple[str, str]:
    """A scratch log on the audit log's own disk: written durably and its chain verified;
    the device's log itself is only read (``appliance audit verify``), never written."""
    from appliance.audit.log import open_audit_log

    state = ctx.config.paths.state_dir
    with tempfile.TemporaryDirectory(prefix=".selftest-", dir=state) as tmp:
        paths = replace(ctx.config.paths, state_dir=Path(tmp), secrets_dir=Path(tmp) / "s")
        scratch = open_audit_log(replace(ctx.config, paths=paths))
        try:
            start = time.monotonic()
            for i in range(3):
                scratch.append(
                    {"verdict": "PASS", "reason": "OK", "source": "selftest"}, now=ctx.wall() + i
                )
            write_ms = (time.monotonic() - start) / 3 * 1000
            chain = scratch.verify()
        finally:
            scratch.close()
    if not chain.ok:
        return FAIL, f"scratch audit chain does not verify: {chain}"
    return PASS, f"durable write {write_ms:.1f} ms per record on {state}, chain verified"


# -- network ------------------------------------------------------------------------------


def _reach(url: str, timeout_s: float) -> str | None:
    """None when the server answers HTTP at all (any status), else why not."""
    status, why = _probe(url, timeout_s)
    return why if status is None else None


def _probe(url: str, timeout_s: float) -> tuple[int | None, str | None]:
    """(HTTP status, None) when the server answers, else (None, why not)."""
    import urllib.error
    import urllib.request

    if not url.startswith(("http://", "https://")):
        return None, "not an http(s) URL"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:  # noqa: S310 - checked
            return int(answer.status), None
    except urllib.error.HTTPError as e:
        return int(e.code), None
    except (urllib.error.URLError, OSError, ValueError) as e:
        return None, str(getattr(e, "reason", e))


def check_repository(ctx: Context) -> tuple[str, str]:
    return _check_service(
        ctx,
        ctx.config.sync.url,
        "/metadata/timestamp.json",
        "no repository configured ([sync] url)",
    )


def check_hub(ctx: Context) -> tuple[str, str]:
    """The address uploads post to (``[upload] url`` + ``/v1/batches``), asked with GET:
    the hub answers 405 (POST only) there; 404 means the URL's path is not the hub's
    (``.../api/audit`` once stopped a whole fleet's uploads and heartbeats)."""
    from appliance_sync.upload import BATCH_PATH

    url = ctx.config.upload.url
    if not url:
        return WARN, "no hub configured ([upload] url)"
    endpoint = url.rstrip("/") + BATCH_PATH
    status, why = _probe(endpoint, ctx.timeout_s)
    if status is None:
        return FAIL, f"{url}: {why}"
    if status == 404:
        return FAIL, (
            f"{endpoint}: HTTP 404, no hub there: [upload] url must be the hub's "
            "base address (https://hub.example.go.th/); the device adds "
            f"{BATCH_PATH} itself"
        )
    if status >= 500:
        return FAIL, f"{endpoint}: HTTP {status} (hub or its proxy failing)"
    return PASS, f"{url} answers at {BATCH_PATH} (HTTP {status} to GET)"


def _check_service(ctx: Context, url: str | None, path: str, unconfigured: str) -> tuple[str, str]:
    """A warning where nothing is configured; else whether ``url + path`` answers."""
    if not url:
        return WARN, unconfigured
    why = _reach(url.rstrip("/") + path, ctx.timeout_s)
    return (FAIL, f"{url}: {why}") if why else (PASS, f"{url} answers")


# -- the mDL radio service ----------------------------------------------------------------


def check_mdl_radio(ctx: Context) -> tuple[str, str]:
    """The radio service (``appliance mdl-radio``, appliance-mdl-radio.service) where the
    kiosk reads mDLs through it: asked to ``close`` a session it never opened, it answers
    without touching the controller. Down with mDL on is a failure: the service starts and
    answers even on a board without a controller, so only a broken set-up is silent."""
    mdoc = ctx.config.mdoc
    if mdoc.transport == "none":
        return PASS, "not used: mDL off"
    if not mdoc.radio_socket:
        if mdoc.transport.startswith("bumble:hci-socket"):
            return WARN, (
                "mdoc.radio_socket is empty: the kiosk would drive the controller itself, "
                "which its unit does not allow"
            )
        return PASS, f"not used: {mdoc.transport} runs in the reading process"
    path = Path(mdoc.radio_socket)
    why = _ask_radio(path, mdoc.max_response_bytes, ctx.timeout_s)
    if why is None:
        return PASS, f"appliance-mdl-radio answers on {path}"
    return FAIL, f"{why} (systemctl status appliance-mdl-radio)"


def _ask_radio(path: Path, max_message_bytes: int, timeout_s: float) -> str | None:
    """None when a radio answers on ``path`` (``ok``, or busy with a session), else why not."""
    import socket

    from appliance.core.errors import MdocTransportError
    from appliance.devices.radio_service import BUSY
    from appliance.devices.radio_wire import Limits, answer_body, decode, encode

    if not path.exists():
        return f"the radio service is not running: no socket {path}"
    limits = Limits.for_messages(max_message_bytes)
    deadline = time.monotonic() + timeout_s
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout_s)
            conn.connect(str(path))
            conn.sendall(encode({"op": "close"}))
            data = b""
            while (decoded := decode(data, limits)) is None:
                conn.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = conn.recv(65536)
                if not chunk:
                    return f"{path} closed without an answer"
                data += chunk
        answer_body(decoded[0])
    except ConnectionRefusedError:
        return f"nothing listens on {path}: the radio service is down"
    except PermissionError:
        return f"not allowed to connect to {path} (run as root or in group appliance-radio)"
    except TimeoutError:
        return f"{path} did not answer within {timeout_s:g} s"
    except OSError as e:
        return f"cannot reach {path}: {e.strerror or e}"
    except MdocTransportError as e:  # an error answer, or a frame that breaks the wire
        if BUSY in str(e):  # a kiosk's session holds it: the radio answered all the same
            return None
        return f"{path} answered {type(e).__name__}: {e}"
    return None
