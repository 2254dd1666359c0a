"""Audit log under faults: kill -9 at random points, a full disk, a read-only file system."""

from __future__ import annotations

import os
import random
import signal
import subprocess

import pytest
from audit_support import NOW, Scenario, make_config, record_many

from appliance.audit.identity import ensure_identity
from appliance.audit.log import open_audit_log
from appliance.core.errors import AuditError

KILL_POINTS = 200  # a count, whatever the machine's speed


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return Scenario()


def _writer(config, scenario, wfd: int) -> None:
    """Child: append records forever, acknowledging each seq only after record() returned."""
    log = open_audit_log(config)
    fields = log.fields(scenario.verdict(), "camera", scenario.trust)
    i = NOW + (log.status()["last_seq"] or 0)  # record times never go backwards
    while True:
        seq = log.append(fields, now=i)
        os.write(wfd, f"{seq}\n".encode())
        i += 1


def _run_and_kill(config, scenario, rng: random.Random) -> list[int]:
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        status = 0
        try:
            os.close(rfd)
            _writer(config, scenario, wfd)
        except BaseException:
            status = 1
        os._exit(status)
    os.close(wfd)
    # The kill point is chosen by progress, not by time: after a random number of
    # acknowledged records (0: while the log is still opening), so a slow machine gets
    # the same spread of points as a fast one. The writer keeps going while the parent
    # reacts, so the kill lands anywhere inside the next append.
    target = rng.choice((0, 0, 1, 2, 3, 5, 8, 13))
    data = b""
    while data.count(b"\n") < target:
        chunk = os.read(rfd, 65536)
        if not chunk:  # the writer died on its own: the assertions below will say so
            break
        data += chunk
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    while chunk := os.read(rfd, 65536):
        data += chunk
    os.close(rfd)
    return [int(x) for x in data.split()]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_kill_9_at_hundreds_of_random_points_loses_no_acknowledged_record(tmp_path, scenario):
    config = make_config(tmp_path, checkpoint_every=7, checkpoint_interval_s=3600)
    ensure_identity(config)
    rng = random.Random(20270115)
    acked: list[int] = []
    for kills in range(1, KILL_POINTS + 1):
        acked += _run_and_kill(config, scenario, rng)
        if kills % 50 == 0:
            with open_audit_log(config) as log:
                assert log.verify().ok
    assert acked == sorted(acked) and len(set(acked)) == len(acked)
    with open_audit_log(config) as log:
        report = log.verify()
        assert report.ok, report
        status = log.status()
        held = {r["seq"] for r in log.pending(10**6)[0]}
    assert set(acked) <= held, "an acknowledged record was lost"
    assert status["last_seq"] >= max(acked) and status["records"] == status["last_seq"]


@pytest.fixture
def small_fs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_clear_error_no_corruption_and_recovery(tmp_path, small_fs, scenario):
    config = make_config(tmp_path, checkpoint_every=20)
    config = type(config)(
        **{
            **config.__dict__,
            "paths": type(config.paths)(
                state_dir=small_fs / "state", secrets_dir=tmp_path / "secrets"
            ),
        }
    )
    log = open_audit_log(config)
    filler = small_fs / "filler"
    filler.write_bytes(b"\0" * (4 * 1024 * 1024 - 1536 * 1024))  # leave 1.5 MiB
    acked: list[int] = []
    with pytest.raises(AuditError) as fault:
        for _ in range(50_000):
            acked += record_many(log, scenario, 1, start=NOW + len(acked))
    assert "full" in str(fault.value).lower()
    assert len(acked) > 10
    with pytest.raises(AuditError):  # still full: still a clear error, not a crash
        record_many(log, scenario, 1)
    report = log.verify()
    assert report.ok and report.records == len(acked)
    log.close()
    with open_audit_log(config) as fresh:  # a restarted kiosk reads the same state
        assert fresh.verify().ok and fresh.status()["last_seq"] == acked[-1]
    filler.unlink()  # space returns
    assert record_many(log, scenario, 5, start=NOW + len(acked)) == list(
        range(acked[-1] + 1, acked[-1] + 6)
    )
    assert log.verify().ok
    log.close()


def test_read_only_file_system_clear_error_and_recovery(tmp_path, small_fs, scenario):
    config = make_config(tmp_path)
    config = type(config)(
        **{
            **config.__dict__,
            "paths": type(config.paths)(
                state_dir=small_fs / "state", secrets_dir=tmp_path / "secrets"
            ),
        }
    )
    log = open_audit_log(config)
    record_many(log, scenario, 3)
    log.close()  # the kernel remounts read-only on errors; mount(8) needs no open writers
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    try:
        for _ in range(2):
            with pytest.raises(AuditError, match="audit log"):
                record_many(log, scenario, 1)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)
    assert record_many(log, scenario, 1) == [4]
    assert log.verify().ok
    log.close()
