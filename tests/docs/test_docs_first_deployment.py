"""docs/first-deployment.md is right where a test can tell: its ```console blocks run top
to bottom as written (a signing ceremony, the controller's ansible.cfg, a 500-host
inventory, a vault and the play's checks before any device is touched), every metric it
names is one the hub serves, and the README and deployment.md lead to it. Every relative
link in the README and docs/ stays inside a clone (no ``../shared``).

The blocks run in one bash with ``~`` a temporary folder and ``~/th-licence-appliance`` a
copy of this repository's tracked ``ansible/`` (with ``firmware/`` and ``systemd/`` linked),
so nothing in the working tree is written; ``sh`` blocks need real hosts and are not run.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import yaml
from test_readme_walkthrough import VENV_BIN, Step, _missing

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "first-deployment.md"
DEADLINE_S = 600.0


def console_steps(text: str) -> list[Step]:
    """Every ```console block of the page, read as the README walkthrough's are."""
    steps: list[Step] = []
    for block in re.findall(r"```console\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append(Step(line[2:]))
            elif line.startswith("> ") or line == ">":
                steps[-1].command += "\n" + line[2:]
            elif line.strip():
                steps[-1].expected.append(line)
    return steps


def _clone(home: Path) -> None:
    """``~/th-licence-appliance``: the tracked ansible/ files as they are in the tree."""
    clone = home / "th-licence-appliance"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "ansible"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            target = clone / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    for linked in ("firmware", "systemd"):
        (clone / linked).symlink_to(REPO / linked)


def test_the_page_has_the_steps_that_matter() -> None:
    steps = console_steps(PAGE.read_text(encoding="utf-8"))
    commands = "\n".join(s.command for s in steps)
    for needed in (
        "publish init",
        "trust-source add-key trust.json --create",
        "forks = 50",
        "kiosk-[006:500]",
        "ansible-vault encrypt",
        "--tags appliance_vault_check",
    ):
        assert needed in commands, needed


def test_first_deployment_console_blocks_run_as_written(tmp_path: Path) -> None:
    _clone(tmp_path)
    steps = console_steps(PAGE.read_text(encoding="utf-8"))
    script = ["set -u", "cd ~"]
    for i, step in enumerate(steps):
        script += [
            f"printf '\\n@@start {i}@@\\n'",
            step.command,
            f"printf '\\n@@end {i} %d@@\\n' $?",
        ]
    # the controller's own settings only: none of the test runner's ANSIBLE_* variables
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        HOME=str(tmp_path),
        PATH=f"{VENV_BIN}{os.pathsep}/usr/bin:/bin",
        ANSIBLE_NOCOLOR="1",
        NO_COLOR="1",
    )
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
            os.killpg(proc.pid, signal.SIGKILL)
    problems = []
    for i, step in enumerate(steps):
        m = re.search(rf"@@start {i}@@\n(.*?)\n@@end {i} (\d+)@@", output, flags=re.S)
        if m is None:
            problems.append(f"step {i} did not finish: {step.command}")
            continue
        if int(m.group(2)) != step.exit_status:
            problems.append(
                f"step {i} exited {m.group(2)}, the page says "
                f"{step.exit_status}: {step.command}\n{m.group(1)[-3000:]}"
            )
        missing = _missing(step.expected, m.group(1))
        if missing:
            problems.append(
                f"step {i} did not print {missing}: {step.command}\n{m.group(1)[-3000:]}"
            )
    assert problems == [], "\n\n".join(problems)
    vault = tmp_path / "th-licence-appliance" / "ansible" / "group_vars" / "all" / "vault.yml"
    assert vault.read_text().startswith("$ANSIBLE_VAULT;")  # encrypted, as the page says


def test_every_hub_metric_the_page_names_is_served() -> None:
    source = (REPO / "hub" / "fleet_api.py").read_text(encoding="utf-8")
    served = set(re.findall(r'"(appliance_hub_[a-z_]+)"', source))
    flags = re.search(
        r'for flag in \(([^)]*)\):\s*gauge\(\s*f"appliance_hub_devices_\{flag\}"', source
    )
    assert flags, "the per-flag device counts moved: update this test"
    served |= {f"appliance_hub_devices_{f}" for f in re.findall(r'"([a-z_]+)"', flags[1])}
    named = set(re.findall(r"\bappliance_hub_[a-z_]+", PAGE.read_text(encoding="utf-8")))
    assert named and named <= served, named - served


def test_the_scrape_config_targets_the_hubs_gunicorn() -> None:
    block = re.search(
        r"```yaml\n(# prometheus\.yml.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S
    )
    assert block
    config = yaml.safe_load(block.group(1))
    target = config["scrape_configs"][0]["static_configs"][0]["targets"][0]
    defaults = yaml.safe_load(
        (REPO / "ansible" / "roles" / "hub_app" / "defaults" / "main.yml").read_text(
            encoding="utf-8"
        )
    )
    assert target == defaults["hub_app_bind"]


def test_readme_and_deployment_lead_to_the_page() -> None:
    assert "](docs/first-deployment.md)" in (REPO / "README.md").read_text(encoding="utf-8")
    deployment = (REPO / "docs" / "deployment.md").read_text(encoding="utf-8")
    assert "](first-deployment.md)" in deployment
    assert "mkdir -p files" in deployment  # step 3 once copied into a folder that is not there


def test_every_relative_link_stays_inside_a_clone() -> None:
    """README links into ../shared pointed outside any clone of the repository."""
    broken = []
    for doc in [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            resolved = (doc.parent / target.split("#")[0]).resolve()
            if not resolved.is_relative_to(REPO) or not resolved.exists():
                broken.append(f"{doc.relative_to(REPO)}: {target}")
    assert broken == []


def test_the_provisioning_play_takes_batches_and_a_failure_threshold() -> None:
    """The page's -e appliance_serial / appliance_max_fail_percentage reach the play that
    touches devices (not the checks before it, which run on every host at once)."""
    plays = yaml.safe_load((REPO / "ansible" / "site.yml").read_text(encoding="utf-8"))
    checks, provision = plays[0], plays[1]
    assert "serial" not in checks
    assert "appliance_serial" in provision["serial"]
    assert "appliance_max_fail_percentage" in str(provision["max_fail_percentage"])
    page = PAGE.read_text(encoding="utf-8")
    assert "-e appliance_serial=50 -e appliance_max_fail_percentage=10" in page
