"""A short atheris run over the whole verify path (the long run is ``make fuzz``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).parent / "fuzz_verify.py"


def test_short_fuzz_run_finds_no_crash(tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris is not installed (pip install '.[fuzz]')")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    from support import World

    w = World()
    (corpus / "valid").write_bytes(b"\x00" + w.issue().encode())
    proc = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            str(corpus),
            "-runs=20000",
            "-timeout=2",
            f"-artifact_prefix={tmp_path}/",
            "-rss_limit_mb=1024",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done 20000 runs" in proc.stderr
