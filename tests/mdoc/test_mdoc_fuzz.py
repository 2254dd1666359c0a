"""A short atheris run over the mdoc verifier (the long run: tests/fuzz/fuzz_mdoc.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "fuzz" / "fuzz_mdoc.py"


@pytest.mark.parametrize("structured", ["0", "1"])
def test_short_mdoc_fuzz_run_finds_no_crash(tmp_path: Path, structured: str) -> None:
    pytest.importorskip("atheris", reason="atheris is not installed (pip install '.[fuzz]')")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            str(corpus),
            "-runs=3000",
            "-timeout=5",
            f"-artifact_prefix={tmp_path}/",
            "-rss_limit_mb=1024",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "FUZZ_STRUCTURED": structured},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done 3000 runs" in proc.stderr
