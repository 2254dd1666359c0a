"""The camera's state for the heartbeat, asked of the running kiosk over its socket.

Only the kiosk process holds the camera; the upload and heartbeat services ask it for its
``status`` (one request, bounded in time and size) and keep one word of the answer:
``ok``, ``failed`` (the kiosk has no frames), ``none`` (no camera is configured) or
``kiosk-down`` (nothing answers: the kiosk is not verifying either).
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from appliance.port.errors import BridgeError
from appliance.port.wire import LineReader, encode

log = logging.getLogger(__name__)

MAX_STATUS_BYTES = 256 * 1024


def camera_state(socket_path: str | Path, source: str, timeout_s: float = 5.0) -> str:
    """One word for the camera; never raises, never waits longer than ``timeout_s`` a step."""
    if source == "none":
        return "none"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(timeout_s)
            sock.connect(str(socket_path))
            sock.sendall(encode({"id": 1, "method": "status", "args": {}}, MAX_STATUS_BYTES))
            reply = LineReader(sock, MAX_STATUS_BYTES).read()
    except (OSError, BridgeError) as e:
        log.info("kiosk not answering on %s: %s", socket_path, getattr(e, "strerror", None) or e)
        return "kiosk-down"
    result = reply.get("result") if isinstance(reply, dict) and reply.get("ok") else None
    camera = result.get("camera") if isinstance(result, dict) else None
    if not isinstance(camera, dict) or not isinstance(camera.get("camera_ok"), bool):
        return "unknown"
    return "ok" if camera["camera_ok"] else "failed"
