"""The load generator (benchmarks/bench_load.py) against a real centre: every record once.

Not a speed test (nothing here is timed): 5 devices and a few batches through nginx,
the hub under gunicorn and a fresh PostgreSQL database, to show that what the benchmark
counts as ingested is what devices sent, each record exactly once, chained as sent.
"""

from __future__ import annotations

import shutil
import sys
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from audit_support import find_postgres_dsn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
psycopg = pytest.importorskip("psycopg", reason="psycopg not installed (pip install psycopg)")

import bench_load  # noqa: E402


def _needs(dsn: str | None) -> str:
    if not dsn:
        pytest.skip("no PostgreSQL: set APPLIANCE_TEST_POSTGRES_DSN")
    if not Path(bench_load.NGINX).exists():
        pytest.skip("nginx is not installed (apt-get install nginx)")
    if not bench_load.GUNICORN.exists() and shutil.which("gunicorn") is None:
        pytest.skip("gunicorn is not installed (pip install -e '.[hub]')")
    return dsn


def test_load_generator_delivers_every_record_exactly_once(tmp_path):
    dsn = _needs(find_postgres_dsn())
    plan = bench_load.LoadPlan(
        devices=5, rounds=3, records=7, clients=3, sync_clients=2, real_syncs=2, workers=2
    )
    seen: dict[str, object] = {}

    def inspect(hub_dsn: str) -> None:
        seen["dsn"] = hub_dsn
        with psycopg.connect(hub_dsn) as conn:
            seen["rows"] = conn.execute(
                "SELECT device_id, log_id, seq, hash, prev_hash FROM records "
                "ORDER BY device_id, log_id, seq"
            ).fetchall()
            seen["batches"] = conn.execute("SELECT count(*) FROM batches").fetchone()[0]
            seen["heartbeats"] = dict(
                conn.execute(
                    "SELECT device_id, count(*) FROM heartbeats GROUP BY device_id"
                ).fetchall()
            )

    result = bench_load.run_load(plan, dsn, tmp_path, inspect=inspect)

    per_log: dict[tuple[str, str], list[tuple[int, str, str]]] = defaultdict(list)
    for device_id, log_id, seq, hash_, prev in seen["rows"]:
        per_log[(device_id, log_id)].append((seq, hash_, prev))
    devices = sorted(d for d, _ in per_log)
    assert devices == [f"load-{i:05d}" for i in range(plan.devices)], "one log per device"
    sent = plan.rounds * plan.records
    for chain in per_log.values():
        assert [seq for seq, _, _ in chain] == list(range(1, sent + 1)), "each seq once"
        assert all(chain[i][2] == chain[i - 1][1] for i in range(1, sent)), "chain as sent"
    assert result.stored == len(seen["rows"]) == plan.devices * sent == result.sent
    batches = plan.devices * plan.rounds
    assert result.acks == {"stored": batches}, "no batch acknowledged as a duplicate"
    assert seen["batches"] == batches
    assert result.heartbeats == {"stored": batches}
    assert seen["heartbeats"] == {d: plan.rounds for d in devices}

    # every device synced through nginx: the same requests each, bytes counted from its log
    assert sum(result.served_requests.values()) % plan.devices == 0
    assert result.served_requests.get("200", 0) > 0 and result.served_bytes > 0
    assert set(result.served_requests) <= {"200", "404"}

    if result.database == "database":  # the fresh database is gone afterwards
        name = urlsplit(str(seen["dsn"])).path.lstrip("/")
        with psycopg.connect(dsn) as conn:
            assert (
                conn.execute(
                    "SELECT count(*) FROM pg_database WHERE datname = %s", (name,)
                ).fetchone()[0]
                == 0
            )
