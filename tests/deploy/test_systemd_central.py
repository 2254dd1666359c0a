"""The centre's systemd units: `systemd-analyze verify` silent, exposure limits, key scope.

Same method as tests/deploy/test_systemd.py (tests/systemd_support.py: any verify output
fails), for the hub under gunicorn and the publisher's timestamp refresh.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from systemd_support import HOST_UNITS, exposure, make_verify_root, verify_output

REPO = Path(__file__).resolve().parents[2]
UNITS_DIR = REPO / "systemd" / "central"
UNITS = sorted(p.name for p in UNITS_DIR.iterdir() if p.suffix in {".service", ".timer"})
SERVICES = [u for u in UNITS if u.endswith(".service")]
MAX_EXPOSURE = 1.5

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is absent (apt-get install systemd)",
)


def _unit(name: str) -> str:
    return (UNITS_DIR / name).read_text()


def test_expected_units_present():
    assert set(UNITS) >= {
        "appliance-hub.service",
        "appliance-publish-timestamp.service",
        "appliance-publish-timestamp.timer",
    }


@pytest.fixture(scope="module")
def verify_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    units = {unit: _unit(unit) for unit in UNITS}
    if not (HOST_UNITS / "postgresql.service").exists():
        units["postgresql.service"] = "[Service]\nExecStart=/bin/true\n"
    return make_verify_root(tmp_path_factory.mktemp("verify-root-central"), units)


@pytest.mark.parametrize("unit", UNITS)
def test_verify_is_silent(unit: str, verify_root: Path):
    status, output = verify_output(verify_root, unit)
    assert status == 0 and not output, output


@pytest.mark.parametrize("unit", SERVICES)
def test_security_exposure(unit: str):
    level = exposure(UNITS_DIR / unit)
    print(f"{unit}: exposure {level}")
    assert level <= MAX_EXPOSURE


def test_hub_listens_on_loopback_behind_nginx():
    text = _unit("appliance-hub.service")
    lines = text.splitlines()
    for line in (
        "Type=notify",
        "User=appliance-hub",
        "IPAddressAllow=localhost",
        "IPAddressDeny=any",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadOnlyPaths=/var/lib/appliance-hub/devices",
    ):
        assert line in lines, line
    assert re.search(
        r"^ExecStart=\S+/gunicorn .*'appliance_hub\.wsgi:create\(\)'$", text, re.MULTILINE
    )
    assert not re.search(
        r"^(Environment=.*(TOKEN|PASSWORD)|ReadWritePaths=)", text, re.MULTILINE
    ), "secrets come as credentials; the hub writes nowhere"


def test_timestamp_refresh_sees_only_the_timestamp_key():
    text = _unit("appliance-publish-timestamp.service")
    credentials = re.findall(r"^LoadCredential=([^:]+):(\S+)$", text, re.MULTILINE)
    assert credentials == [("timestamp.pem", "/etc/appliance-publisher/online-keys/timestamp.pem")]
    for offline in ("root", "targets"):
        assert f"{offline}.pem" not in text, offline
    assert "PrivateNetwork=yes" in text.splitlines()
    timer = _unit("appliance-publish-timestamp.timer")
    for key in ("OnBootSec=", "OnUnitActiveSec=", "RandomizedDelaySec="):
        assert key in timer, key
