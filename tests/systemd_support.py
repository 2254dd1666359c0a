"""Checking systemd units offline, for the device's and the centre's units alike.

`systemd-analyze verify` exits 0 on a misspelt key and only prints a warning, so any output
at all is a failure. It runs against a throw-away root holding the host's system units, the
units under test and an empty executable for every absolute Exec*= path, so a binary
missing on this machine is not reported while a misspelt one in a unit is.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

HOST_UNITS = Path("/usr/lib/systemd/system")


def executables(unit_text: str) -> set[str]:
    return set(re.findall(r"^Exec\w*=[-@:+!]*(/\S+)", unit_text, re.MULTILINE))


def make_verify_root(root: Path, units: dict[str, str]) -> Path:
    """``root`` holding the host's units, ``units`` (name -> text) and stub executables."""
    system = root / "etc/systemd/system"
    system.mkdir(parents=True)
    if HOST_UNITS.is_dir():
        shutil.copytree(HOST_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    for name, text in units.items():
        (system / name).write_text(text)
        for exe in executables(text):
            stub = root / exe.lstrip("/")
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text("#!/bin/sh\n")
            stub.chmod(0o755)
    return root


def verify_output(root: Path, unit: str) -> tuple[int, str]:
    """The exit status and everything `systemd-analyze verify` printed for ``unit``."""
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", f"--root={root}", unit],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.returncode, (result.stdout + result.stderr).strip()


def exposure(unit_file: Path) -> float:
    """`systemd-analyze security`'s overall exposure level of a unit file."""
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    return float(match.group(1))


def security_checks(unit_file: Path) -> dict[str, bool]:
    """`systemd-analyze security`'s checks of a unit file (its drop-ins beside it included):
    name ("CapabilityBoundingSet=~CAP_NET_ADMIN", "PrivateNetwork=", ...) -> passed."""
    command = ["systemd-analyze", "security", "--offline=true", "--no-pager", "--json=short"]
    result = subprocess.run(
        [*command, str(unit_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return {check["name"]: bool(check["set"]) for check in json.loads(result.stdout)}
