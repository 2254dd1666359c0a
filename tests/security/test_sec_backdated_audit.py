"""Back-dated audit records (issue 21, finding 9).

Attacks replayed: ``appliance verify --config FILE --at T`` wrote an audited record whose
time was T, so anyone who may run the command could put a verification into the log at a
time of their choosing (before an incident, say); and ``appliance audit verify`` said OK
over a log whose record times went backwards.

What holds now (spec LC1 s.7 keeps ``--at`` with ``--config``): ``--at`` still evaluates at
that instant with the installed trust data, but writes no record and says so on standard
error; ``audit verify`` names the first record whose time goes backwards beyond a few
seconds. Real CLI, real sync over loopback HTTP, real SQLite.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sync_support import Authority, RepoServer, device

from appliance.audit.log import from_config
from appliance.audit.verification import TIME_BACK_TOLERANCE_S
from appliance.cli import main
from appliance.config import load_config
from appliance.core.reasons import Outcome, Reason
from appliance.core.verifier import Verdict


@pytest.fixture
def enrolled(tmp_path: Path, authority: Authority, server: RepoServer) -> Path:
    """A synced device with its device key and a test fleet key; returns its config."""
    device(tmp_path / "state", server.url, authority.root_file).sync_once()
    config = tmp_path / "device.toml"
    config.write_text(
        f'[paths]\nstate_dir = "{tmp_path / "state"}"\nsecrets_dir = "{tmp_path / "secrets"}"\n'
    )
    assert main(["device", "keygen", "--config", str(config), "--test-audit-key"]) == 0
    return config


def _records(config: Path) -> int:
    with from_config(load_config(config), create_key=False) as audit:
        return int(audit.status()["records"])


def test_at_with_config_writes_no_record(
    enrolled: Path, authority: Authority, capsys: pytest.CaptureFixture[str]
) -> None:
    licence = authority.credential()
    assert main(["verify", "--config", str(enrolled), licence]) == 0
    assert _records(enrolled) == 1
    capsys.readouterr()
    back = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    # The verdict is still given, at that instant, with the installed data...
    assert main(["verify", "--config", str(enrolled), "--at", back, licence]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("PASS\tOK\tLC1")
    assert "not audited" in err
    # ...but the log holds no record of it, back-dated or otherwise.
    assert _records(enrolled) == 1
    assert main(["audit", "verify", "--config", str(enrolled)]) == 0


def test_at_with_config_needs_no_audit_keys(
    tmp_path: Path, authority: Authority, server: RepoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not audited, so nothing to refuse for missing device or fleet keys (and none made)."""
    device(tmp_path / "state", server.url, authority.root_file).sync_once()
    config = tmp_path / "device.toml"
    config.write_text(
        f'[paths]\nstate_dir = "{tmp_path / "state"}"\nsecrets_dir = "{tmp_path / "secrets"}"\n'
    )
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    assert main(["verify", "--config", str(config), "--at", at, authority.credential()]) == 0
    assert not (tmp_path / "state" / "audit.db").exists()
    assert not (tmp_path / "secrets").exists() or not any((tmp_path / "secrets").iterdir())


def test_audit_verify_flags_times_that_go_backwards(
    enrolled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(enrolled)
    from appliance.trust.store import load_trust_store

    trust = load_trust_store(config.trust_dir)
    verdict = Verdict(Outcome.PASS, Reason.OK, "LC1")
    now = time.time()
    with from_config(config) as audit:  # the keys exist: it opens them, makes none
        audit.record(verdict, now=now, source="cli", trust=trust)
        # Clock slew within the tolerance is no finding.
        audit.record(verdict, now=now - TIME_BACK_TOLERANCE_S / 2, source="cli", trust=trust)
        audit.record(verdict, now=now + 10, source="cli", trust=trust)
    assert main(["audit", "verify", "--config", str(enrolled)]) == 0
    capsys.readouterr()
    with from_config(config) as audit:
        audit.record(verdict, now=now - 86400, source="cli", trust=trust)  # back-dated
        audit.record(verdict, now=now + 20, source="cli", trust=trust)
    assert main(["audit", "verify", "--config", str(enrolled)]) == 1
    out = capsys.readouterr().out
    assert "seq 4" in out and "time goes backwards" in out
