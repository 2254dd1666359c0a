"""Host health for the status page: disk, CPU temperature, throttling. ``None`` where absent.

Reads ``/sys`` and runs ``vcgencmd`` (Raspberry Pi firmware tool) only where present, with a
short timeout, so the page works the same on a laptop (values shown as "n/a").
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

THERMAL = Path("/sys/class/thermal/thermal_zone0/temp")
# Bits of ``vcgencmd get_throttled`` (Raspberry Pi documentation).
THROTTLE_BITS = {
    0: "under-voltage now",
    1: "frequency capped now",
    2: "throttled now",
    3: "soft temperature limit now",
    16: "under-voltage has occurred",
    17: "frequency capping has occurred",
    18: "throttling has occurred",
    19: "soft temperature limit has occurred",
}


def cpu_temperature_c(thermal: Path = THERMAL) -> float | None:
    try:
        return int(thermal.read_text().strip()) / 1000.0
    except (OSError, ValueError):
        return None


def throttled(vcgencmd: str | None = None) -> dict[str, Any] | None:
    """``{"value": int, "flags": [...]}`` from ``vcgencmd get_throttled``, or None."""
    tool = vcgencmd or shutil.which("vcgencmd")
    if not tool:
        return None
    try:
        out = subprocess.run(
            [tool, "get_throttled"], capture_output=True, text=True, timeout=1.0, check=True
        ).stdout
        value = int(out.strip().split("=", 1)[1], 16)
    except (OSError, subprocess.SubprocessError, IndexError, ValueError):
        return None
    return {
        "value": value,
        "flags": [name for bit, name in THROTTLE_BITS.items() if value & (1 << bit)],
    }


def disk(path: Path) -> dict[str, Any] | None:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        usage = shutil.disk_usage(probe)
    except OSError:
        return None
    return {
        "path": str(probe),
        "total_bytes": usage.total,
        "free_bytes": usage.free,
        "used_fraction": (usage.total - usage.free) / usage.total if usage.total else None,
    }


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def snapshot(state_dir: Path) -> dict[str, Any]:
    return {
        "disk": disk(state_dir),
        "cpu_temperature_c": cpu_temperature_c(),
        "throttled": throttled(),
        "load_1m": load_average(),
    }
