"""The spec's worked examples, through the Python API and the command-line contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.commands.verify import parse_instant
from appliance.core.verifier import Checkpoint, verify
from appliance.trust.source import load_trust_source


@pytest.fixture(scope="module")
def examples(shared_data: Path) -> tuple[Path, list[dict]]:
    folder = shared_data / "lc1-examples"
    cases = [json.loads(line) for line in (folder / "cases.jsonl").read_text().splitlines()]
    return folder / "trust.json", cases


def test_every_example_through_the_api(examples: tuple[Path, list[dict]]) -> None:
    trust_path, cases = examples
    trust = load_trust_source(trust_path)
    for case in cases:
        v = verify(
            case["text"],
            trust,
            parse_instant(case["at"]),
            checkpoint=Checkpoint(check_staleness=False),
        )
        assert (str(v.outcome), str(v.reason)) == (case["verdict"], case["reason"]), case["name"]


def test_every_example_through_the_command_line(examples: tuple[Path, list[dict]]) -> None:
    trust_path, cases = examples
    stdin = "".join(case["text"] + "\n" for case in cases)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance.cli",
            "verify",
            "--trust-source",
            str(trust_path),
            "--at",
            cases[0]["at"],
            "--json",
            "-",
        ],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    got = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(g["verdict"], g["reason"]) for g in got] == [
        (c["verdict"], c["reason"]) for c in cases
    ]
    assert proc.returncode == 1  # some FAIL
    first = got[0]
    assert first["profile"] == "LC1" and first["iss"] == "TH-DLT"
    assert len(first["kid"]) == 16 and first["typ"] == "DL" and first["exp"].endswith("Z")
