"""The command line as an operator types it: ``appliance`` in a child process, a world's
trust source and issuer key as files, and ``issuer issue``'s arguments."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import ISS, World

from appliance.tools.issuer import save_private_key

AT = "2027-01-15T08:00:00Z"  # support.NOW, as --at takes it


def run_cli(*args: str, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m appliance.cli ARGS`` with ``stdin`` as its input; output captured."""
    return subprocess.run(
        [sys.executable, "-m", "appliance.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


def world_files(directory: Path) -> tuple[World, Path, Path]:
    """A world, its trust source and its ES256 key as a PEM file, in ``directory``."""
    w = World()
    w.editor.save(directory / "trust.json")
    save_private_key(w.es256, directory / "issuer.pem")
    return w, directory / "trust.json", directory / "issuer.pem"


def issue_args(key: Path | str, *extra: str) -> list[str]:
    """``issuer issue`` with the licence fields every licence needs, then ``extra``."""
    return [
        "issuer",
        "issue",
        "--key",
        str(key),
        "--iss",
        ISS,
        "--typ",
        "DL",
        "--no",
        "1",
        "--nm",
        "A",
        *extra,
    ]
