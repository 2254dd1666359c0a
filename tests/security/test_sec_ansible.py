"""Attack replay: a fleet provisioned with the example vault's placeholder secrets.

The play must stop before touching a device when any vault secret is a placeholder or too
short, and say which; a real vault passes. `vault.yml` never goes into git.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from test_ansible import ANSIBLE_DIR, REPO, _env, _tool
from werkzeug.security import generate_password_hash

EXAMPLE = ANSIBLE_DIR / "group_vars" / "all" / "vault.example.yml.txt"
GOOD = {
    "vault_appliance_audit_hmac_key": "3f" * 32,
    "vault_appliance_admin_password_hash": generate_password_hash("a long admin passphrase"),
}


def _vault_check(tmp_path: Path, secrets: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The play's vault check on a local host (tag appliance_vault_check: nothing else runs;
    the board-detection pre-tasks, tagged always, are skipped: they need root)."""
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "appliances": {
                    "hosts": {
                        "kiosk-1": {
                            "ansible_connection": "local",
                            "ansible_become": False,
                            "ansible_python_interpreter": "auto_silent",
                        }
                    }
                }
            }
        )
    )
    extra = tmp_path / "vault.yml"
    extra.write_text(yaml.safe_dump(secrets))
    return subprocess.run(
        [
            _tool("ansible-playbook"),
            "-i",
            str(inventory),
            "-e",
            f"@{extra}",
            "--tags",
            "appliance_vault_check",
            "--skip-tags",
            "always",
            "site.yml",
        ],
        cwd=ANSIBLE_DIR,
        env={**_env(), "ANSIBLE_GATHERING": "explicit"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_example_vault_placeholders_are_refused(tmp_path):
    example = yaml.safe_load(EXAMPLE.read_text())
    result = _vault_check(tmp_path, example)
    assert result.returncode != 0, result.stdout[-3000:]
    assert "placeholder" in result.stdout and "vault_appliance_audit_hmac_key" in result.stdout


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("vault_appliance_audit_hmac_key", "0123456789abcdef"),  # 8 bytes as hex: too short
        ("vault_appliance_audit_hmac_key", "CHANGE-ME-" * 4),
        ("vault_appliance_admin_password_hash", "scrypt:32768:8:1$replace$me"),
        ("vault_appliance_admin_password_hash", "plain-text-password-not-a-hash-at-all"),
    ],
)
def test_a_placeholder_or_short_secret_stops_the_play(tmp_path, name, value):
    result = _vault_check(tmp_path, {**GOOD, name: value})
    assert result.returncode != 0, result.stdout[-3000:]
    assert name in result.stdout
    assert value not in result.stdout + result.stderr, "the secret itself is never printed"


def test_a_real_vault_passes_the_check(tmp_path):
    result = _vault_check(tmp_path, GOOD)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_vault_yml_is_ignored_by_git():
    result = subprocess.run(
        ["git", "check-ignore", "-q", "ansible/group_vars/all/vault.yml"],
        cwd=REPO,
        capture_output=True,
    )
    assert result.returncode == 0, "ansible/group_vars/all/vault.yml is not git-ignored"
