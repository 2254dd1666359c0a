"""A short atheris run over the engagement parser and the session's SessionData reading
(the long run: tests/fuzz/fuzz_engagement.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "fuzz" / "fuzz_engagement.py"


def test_short_engagement_fuzz_run_finds_no_crash(tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris is not installed (pip install '.[fuzz]')")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            str(corpus),
            "-runs=5000",
            "-timeout=5",
            f"-artifact_prefix={tmp_path}/",
            "-rss_limit_mb=1024",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done 5000 runs" in proc.stderr
