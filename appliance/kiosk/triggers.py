"""Asking the network services to run now, from processes that have no network.

The kiosk (and the web screen behind it) may not reach the network, and should not hold
the privilege to start units. An administrator's "sync now" / "upload now" therefore
writes a request file in the runtime directory; a systemd path unit
(``appliance-sync.path``, ``appliance-upload.path``) starts the matching service, which
runs with the network and without devices. Without systemd (the demo, a laptop) the
caller passes a direct runner instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from appliance.core.errors import RequestError
from appliance.platform.files import write_atomic

REQUESTS = ("sync", "upload")


def request_file(run_dir: Path, name: str) -> Path:
    if name not in REQUESTS:
        raise ValueError(f"unknown request {name!r}")
    return run_dir / "requests" / f"{name}.request"


def file_trigger(
    run_dir: Path, name: str, wall: Callable[[], float] = time.time
) -> Callable[[], str]:
    """A trigger that records the request for the path unit; returns a message for screens."""

    def trigger() -> str:
        path = request_file(run_dir, name)
        try:
            path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
            write_atomic(path, f"{wall():.0f}\n".encode())  # a path unit sees one change
        except OSError as e:
            raise RequestError(f"cannot request {name}: {e.strerror or e}") from e
        return f"{name} requested; it starts within seconds"

    return trigger
