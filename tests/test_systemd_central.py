"""The centre's systemd units: `systemd-analyze verify` silent, exposure limits, key scope.

Same method as tests/test_systemd.py (any verify output fails; ExecStart binaries stubbed
in a throw-away root), for the hub under gunicorn and the publisher's timestamp refresh.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
UNITS_DIR = REPO / "systemd" / "central"
UNITS = sorted(p.name for p in UNITS_DIR.iterdir() if p.suffix in {".service", ".timer"})
SERVICES = [u for u in UNITS if u.endswith(".service")]
MAX_EXPOSURE = 1.5
HOST_UNITS = Path("/usr/lib/systemd/system")

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is absent (apt-get install systemd)",
)


def _unit(name: str) -> str:
    return (UNITS_DIR / name).read_text()


def test_expected_units_present():
    assert set(UNITS) >= {"appliance-hub.service", "appliance-publish-timestamp.service",
                          "appliance-publish-timestamp.timer"}


@pytest.fixture(scope="module")
def verify_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("verify-root-central")
    system = root / "etc/systemd/system"
    system.mkdir(parents=True)
    if HOST_UNITS.is_dir():
        shutil.copytree(HOST_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    if not (root / "usr/lib/systemd/system/postgresql.service").exists():
        (system / "postgresql.service").write_text("[Service]\nExecStart=/bin/true\n")
    for unit in UNITS:
        text = _unit(unit)
        (system / unit).write_text(text)
        for exe in re.findall(r"^Exec\w*=[-@:+!]*(/\S+)", text, re.MULTILINE):
            stub = root / exe.lstrip("/")
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text("#!/bin/sh\n")
            stub.chmod(0o755)
    return root


@pytest.mark.parametrize("unit", UNITS)
def test_verify_is_silent(unit: str, verify_root: Path):
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", f"--root={verify_root}", unit],
        capture_output=True, text=True, timeout=120,
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not output, output


@pytest.mark.parametrize("unit", SERVICES)
def test_security_exposure(unit: str):
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(UNITS_DIR / unit)],
        capture_output=True, text=True, timeout=120,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    print(f"{unit}: exposure {match.group(1)}")
    assert float(match.group(1)) <= MAX_EXPOSURE


def test_hub_listens_on_loopback_behind_nginx():
    text = _unit("appliance-hub.service")
    lines = text.splitlines()
    for line in ("Type=notify", "User=appliance-hub", "IPAddressAllow=localhost",
                 "IPAddressDeny=any", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "ReadOnlyPaths=/var/lib/appliance-hub/devices"):
        assert line in lines, line
    assert re.search(r"^ExecStart=\S+/gunicorn .*'appliance_hub\.wsgi:create\(\)'$", text,
                     re.MULTILINE)
    assert not re.search(r"^(Environment=.*(TOKEN|PASSWORD)|ReadWritePaths=)", text,
                         re.MULTILINE), "secrets come as credentials; the hub writes nowhere"


def test_timestamp_refresh_sees_only_the_timestamp_key():
    text = _unit("appliance-publish-timestamp.service")
    credentials = re.findall(r"^LoadCredential=([^:]+):(\S+)$", text, re.MULTILINE)
    assert credentials == [("timestamp.pem",
                            "/etc/appliance-publisher/online-keys/timestamp.pem")]
    for offline in ("root", "targets"):
        assert f"{offline}.pem" not in text, offline
    assert "PrivateNetwork=yes" in text.splitlines()
    timer = _unit("appliance-publish-timestamp.timer")
    for key in ("OnBootSec=", "OnUnitActiveSec=", "RandomizedDelaySec="):
        assert key in timer, key
