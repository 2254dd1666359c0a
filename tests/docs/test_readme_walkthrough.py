"""The README's Walkthrough runs top to bottom as written and ends in the verdicts it shows.

Its ```console blocks are read as a terminal shows them: ``$ `` starts a command, ``> ``
continues it, other lines are output. All commands run in one bash, in a temp folder, with
the venv's ``appliance`` first on PATH; only the loopback ports 8000 and 8443 are swapped
for free ones. Each command must exit 0 (or the ``# exit N`` its line names) and print
the shown lines in order (``...`` within a line is any text, a line of ``...`` any lines,
runs of spaces match tabs).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
VENV_BIN = Path(sys.executable).parent
DEADLINE_S = 300.0
EXIT = re.compile(r"#\s*exit\s+(\d+)\s*$")


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)

    @property
    def exit_status(self) -> int:
        m = EXIT.search(self.command.splitlines()[0])
        return int(m.group(1)) if m else 0


def walkthrough_steps(text: str) -> list[Step]:
    section = text.split("\n## Walkthrough\n", 1)[1].split("\n## ", 1)[0]
    steps: list[Step] = []
    for block in re.findall(r"```console\n(.*?)```", section, flags=re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append(Step(line[2:]))
            elif line.startswith("> ") or line == ">":
                steps[-1].command += "\n" + line[2:]
            elif line.strip():
                steps[-1].expected.append(line)
    return steps


def _matches(pattern: str, line: str) -> bool:
    parts = [r"\s+".join(map(re.escape, p.split())) for p in pattern.split("...")]
    return re.fullmatch(r"\s*" + ".*".join(parts) + r"\s*", line) is not None


def _missing(expected: list[str], output: str) -> list[str]:
    """Expected lines not found, in order, among the output lines."""
    lines = output.splitlines()
    at, missing = 0, []
    for pattern in expected:
        if pattern.strip() == "...":
            continue
        for i in range(at, len(lines)):
            if _matches(pattern, lines[i]):
                at = i + 1
                break
        else:
            missing.append(pattern)
    return missing


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_walkthrough_is_found_with_its_verdicts() -> None:
    steps = walkthrough_steps(README.read_text(encoding="utf-8"))
    shown = [line.split()[:2] for s in steps for line in s.expected]
    assert ["PASS", "OK"] in shown and ["FAIL", "REVOKED"] in shown
    assert ["FAIL", "PRESENTATION_REQUIRED"] in shown
    assert any(s.exit_status == 1 for s in steps)


def test_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    steps = walkthrough_steps(README.read_text(encoding="utf-8"))
    ports = {"8000": str(_free_port()), "8443": str(_free_port())}
    script = ["set -u"]
    for i, step in enumerate(steps):
        command = re.sub(r"\b(8000|8443)\b", lambda m: ports[m.group(1)], step.command)
        script += [f"printf '\\n@@start {i}@@\\n'", command, f"printf '\\n@@end {i} %d@@\\n' $?"]
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        "NO_PROXY": "*",
    }
    proc = subprocess.Popen(
        ["bash", "-c", "\n".join(script)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=DEADLINE_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # servers the walkthrough left running
    problems = []
    for i, step in enumerate(steps):
        m = re.search(rf"@@start {i}@@\n(.*?)\n@@end {i} (\d+)@@", output, flags=re.S)
        if m is None:
            problems.append(f"step {i} did not finish: {step.command}")
            continue
        if int(m.group(2)) != step.exit_status:
            problems.append(
                f"step {i} exited {m.group(2)}, README says {step.exit_status}: "
                f"{step.command}\n{m.group(1)}"
            )
        missing = _missing(step.expected, m.group(1))
        if missing:
            problems.append(f"step {i} did not print {missing}: {step.command}\n{m.group(1)}")
    assert problems == [], "\n\n".join(problems)


@pytest.mark.parametrize(
    ("pattern", "line", "ok"),
    [
        ("PASS  OK  LC1", "PASS\tOK\tLC1", True),
        ("enrolled kiosk-01 (key id ...)", "enrolled kiosk-01 (key id 5e2b)", True),
        ("PASS  OK  LC1", "FAIL\tREVOKED\tLC1", False),
    ],
)
def test_output_lines_match_as_documented(pattern: str, line: str, ok: bool) -> None:
    assert _matches(pattern, line) is ok
