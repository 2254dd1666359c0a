"""Admin "sync now" / "upload now" from processes without network: request files that
systemd path units watch (systemd/appliance-*.path)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from appliance.core.errors import RequestError
from appliance.kiosk.triggers import file_trigger, request_file

UNITS = Path(__file__).resolve().parents[2] / "systemd"


@pytest.mark.parametrize("name", ["sync", "upload"])
def test_trigger_writes_the_file_its_path_unit_watches(tmp_path: Path, name: str) -> None:
    message = file_trigger(tmp_path, name, wall=lambda: 1234.0)()
    assert name in message
    written = request_file(tmp_path, name)
    assert written.read_text() == "1234\n"
    unit = (UNITS / f"appliance-{name}.path").read_text()
    watched = re.search(r"^PathChanged=(\S+)$", unit, re.MULTILINE).group(1)
    # the unit watches the same name under the default run_dir (/run/appliance)
    assert watched == str(request_file(Path("/run/appliance"), name))
    assert f"Unit=appliance-{name}.service" in unit


def test_unwritable_run_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(RequestError, match="cannot request sync"):
        file_trigger(blocker, "sync")()
