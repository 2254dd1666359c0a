"""Docs checked against the code where a test can (issue 15): processes.md, ADRs 0002/0004."""

from __future__ import annotations

import ast
import inspect
import io
import re
from pathlib import Path

from appliance.config import ScannerConfig
from appliance.kiosk import compose
from appliance_web.uploads import InMemoryRequest

REPO = Path(__file__).resolve().parents[2]
PROCESSES = (REPO / "docs" / "processes.md").read_text(encoding="utf-8")
ADR_0002 = (REPO / "docs" / "adr" / "0002-dependencies.md").read_text(encoding="utf-8")
ADR_0004 = (REPO / "docs" / "adr" / "0004-hand-written-parts.md").read_text(encoding="utf-8")
PYPROJECT = (REPO / "pyproject.toml").read_text(encoding="utf-8")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_hid_scanners_are_documented_as_supported_because_they_are() -> None:
    assert "hid_device" in {f.name for f in __import__("dataclasses").fields(ScannerConfig)}
    assert "scanner.hid_device" in inspect.getsource(compose.KioskParts.start_inputs)
    assert "not supported" not in PROCESSES
    assert "hid_device" in PROCESSES


def test_sync_and_upload_triggers_are_documented_as_wired_because_they_are() -> None:
    source = inspect.getsource(compose.kiosk_port)
    assert 'file_trigger(config.paths.run_dir, "sync")' in source
    assert 'file_trigger(config.paths.run_dir, "upload")' in source
    assert "sync.request" in PROCESSES and "by default neither is available" not in PROCESSES


def test_uploads_stay_in_memory_as_documented() -> None:
    assert "InMemoryRequest" in PROCESSES
    request = InMemoryRequest.from_values("/")
    stream = request._get_file_stream(5 * 1024 * 1024, "image/png", "big.png", None)
    assert isinstance(stream, io.BytesIO)  # Werkzeug's own would spool this to a file


def test_adr_0002_says_what_carries_sync_and_upload() -> None:
    fetcher = _imports(REPO / "sync" / "fetcher.py")
    assert "http.client" in fetcher and "urllib3" not in fetcher
    assert "urllib3" in _imports(REPO / "sync" / "upload.py")
    assert "http.client" in ADR_0002
    assert not re.search(r"\| urllib3 \| sync and upload", ADR_0002)


def test_private_tuf_api_use_is_bounded_and_securesystemslib_declared() -> None:
    client = (REPO / "sync" / "client.py").read_text(encoding="utf-8")
    uses_private = "_persist_file" in client or "_trusted_set" in client
    assert not uses_private or re.search(r'"tuf>=[\d.]+,<\d+"', PYPROJECT)
    assert re.search(r'"securesystemslib>=[\d.]+', PYPROJECT)


def test_adr_0004_names_every_hand_written_part_that_exists() -> None:
    for path in (
        "appliance/kiosk/bridge.py",
        "appliance/port/wire.py",
        "web/socket_port.py",
        "appliance/core/credential/cbor_scan.py",
        "appliance/core/credential/hc1.py",
        "hub/store.py",
        "appliance/devices/hid_scanner.py",
        "appliance/core/credential/base45.py",
        "appliance/trust/revocation.py",
        "appliance/platform/systemd_notify.py",
    ):
        assert f"`{path}" in ADR_0004, path
        assert (REPO / path).is_file(), path
    hc1 = (REPO / "appliance/core/credential/hc1.py").read_text(encoding="utf-8")
    assert "def _tlv(" in hc1 and "_tlv" in ADR_0004
    assert "def _sql(" in (REPO / "hub/store.py").read_text(encoding="utf-8")
