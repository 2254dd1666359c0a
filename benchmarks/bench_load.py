"""Scale, measured (issue 16): a fleet of devices against one modest centre, on loopback.

The centre as ansible/central.yml builds it, on this machine: the TUF repository published
and served by nginx as static files (the repo_nginx role's cache headers), the hub under
gunicorn (a few sync workers) on a fresh PostgreSQL database, dropped afterwards. Each
simulated device has its own enrolled Ed25519 key; it syncs the repository once with the
real sync client, then, round after round, uploads one signed audit batch (the real
``appliance_sync.upload.batch_body`` wire format, one signed checkpoint per batch, as a device's log
makes) and sends one signed heartbeat (``appliance_sync.heartbeat.sign``), as the
uploader does after every upload. Many devices at once from a thread pool, at a steady
fleet-wide rate (``--rate``) or as fast as the hub answers (the default: its capacity).

Reported: hub ingest records/s, p50/p99 batch latency, heartbeats/s, repository bytes
served (nginx's access log), PostgreSQL bytes per million records (pg_total_relation_size
after ingest, scaled). Client and server share this machine's cores, so the rates are a
floor for a server of its own.

    python benchmarks/bench_load.py [--devices 1000] [--rounds 3] [--records 50]
"""

from __future__ import annotations

import argparse
import base64
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
from cryptography.hazmat.primitives.asymmetric import ed25519

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Row, print_table, row, save

from appliance.audit.chain import checkpoint_message, genesis_hash, iso_time, record_hash
from appliance.audit.head import sign_head
from appliance.audit.identity import DeviceIdentity
from appliance.audit.signed_body import SignedBody
from appliance.core.isotime import format_utc
from appliance.tools.issuer import generate_key
from appliance.trust.editor import TrustSourceEditor
from appliance_hub.server import DeviceRegistry
from appliance_sync.client import SyncClient
from appliance_sync.heartbeat import HEARTBEAT_TYPE
from appliance_sync.heartbeat import sign as sign_heartbeat
from appliance_sync.publisher import init_repository, update_repository
from appliance_sync.trust_parts import digests_array, parts_from_document
from appliance_sync.upload import HubClient, batch_body

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
GUNICORN = Path(sys.executable).parent / "gunicorn"
REPO_PATH = "lc1"  # repo_nginx_path: devices sync from http://host/lc1/
MARKER = "bench-load-marker-"  # in the benchmark's own requests: not counted as served
REVOKED = 10_000  # revoked-hash set published (realistic for a year of one agency)
STATUS_ENTRIES = 1_000_000  # one status list, 1 bit per licence


@dataclass(frozen=True)
class LoadPlan:
    """What to simulate; the defaults keep a run on a 2-core machine under ~3 minutes."""

    devices: int = 1000
    rounds: int = 3  # batches per device, each followed by a heartbeat
    records: int = 50  # per batch: ~10 minutes of a busy checkpoint (upload interval)
    clients: int = 32  # concurrent HTTP clients (devices in flight at once)
    sync_clients: int = 8  # concurrent sync clients
    real_syncs: int = 100  # devices running the real sync client; the rest replay its GETs
    workers: int = 4  # gunicorn workers
    rate: float = 0.0  # batches/s across the fleet; 0: as fast as the hub answers


@dataclass
class LoadResult:
    plan: LoadPlan
    sync_s: float = 0.0
    sync_fetched: int = 0  # bytes the real sync clients counted
    real_syncs: int = 0
    real_sync_s: float = 0.0
    load_s: float = 0.0
    latencies: list[float] = field(default_factory=list)  # per batch, seconds
    heartbeat_latencies: list[float] = field(default_factory=list)
    acks: dict[str, int] = field(default_factory=dict)  # batch ack status -> count
    heartbeats: dict[str, int] = field(default_factory=dict)
    served_bytes: int = 0  # nginx $bytes_sent, headers included
    served_body_bytes: int = 0
    served_requests: dict[str, int] = field(default_factory=dict)  # status -> count
    stored: int = 0
    records_bytes: int = 0  # pg_total_relation_size('records')
    hub_bytes: int = 0  # every hub table, indexes included
    database: str = ""  # "database" or "schema" (no CREATE DATABASE right anywhere)

    @property
    def sent(self) -> int:
        return self.plan.devices * self.plan.rounds * self.plan.records


# -- the repository behind nginx ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, alive: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    """Poll ``url`` until it answers 200 (waiting for a child process to listen)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if not alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.1)


def publish(base: Path) -> tuple[Path, Path]:
    """A repository with two issuers, a revoked-hash set and a status list; (served, root)."""
    served = base / "www"
    repo, keys, root = served / REPO_PATH, base / "keys", base / "root.json"
    init_repository(repo, keys, root)
    editor = TrustSourceEditor()
    editor.add_key("TH-DLT", generate_key("ES256").trust_entry(), "Department of Land Transport")
    editor.add_key("TH-DBD", generate_key("EdDSA").trust_entry(), "Business Development")
    editor.set_policy(max_age_hours=72)
    parts = parts_from_document(editor.doc)
    rng = np.random.default_rng(16)
    parts.revoked = {
        "cti_sha256": digests_array(rng.integers(0, 256, size=(REVOKED, 16), dtype=np.uint8))
    }
    bits = np.zeros(STATUS_ENTRIES // 8, dtype=np.uint8)
    bits[rng.integers(0, len(bits), size=STATUS_ENTRIES // 800)] = 1
    parts.status_lists = [("https://status.example/dl/1", 1, bits.tobytes())]
    update_repository(repo, keys, parts)
    return served, root


NGINX_CONF = """\
daemon off;
user {user};
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {prefix}/tmp-body;
    proxy_temp_path {prefix}/tmp-proxy;
    fastcgi_temp_path {prefix}/tmp-fastcgi;
    uwsgi_temp_path {prefix}/tmp-uwsgi;
    scgi_temp_path {prefix}/tmp-scgi;
    log_format bytes '$status $bytes_sent $body_bytes_sent "$request_uri"';
    access_log {prefix}/access.log bytes;
    sendfile on;
    server {{
        listen 127.0.0.1:{port};
        server_tokens off;
        root {root};
        autoindex off;
        etag on;
        gzip on;
        gzip_types application/json;
        default_type application/octet-stream;
        types {{ application/json json; }}
        error_page 403 404 = @missing;
        location @missing {{
            add_header Cache-Control "no-store" always;
            return 404;
        }}
        location / {{ return 404; }}
        location ~ "^/{path}/metadata/(timestamp|root)\\.json$" {{
            add_header Cache-Control "public, max-age=60, must-revalidate";
        }}
        location ~ "^/{path}/metadata/[0-9]+\\.(root|snapshot|targets)\\.json$" {{
            add_header Cache-Control "public, max-age=31536000, immutable";
        }}
        location ~ "^/{path}/targets/([a-z0-9_/-]+/)?[0-9a-f]{{64}}\\.[A-Za-z0-9._-]+$" {{
            add_header Cache-Control "public, max-age=31536000, immutable";
        }}
    }}
}}
"""


@dataclass
class Served:
    url: str
    access_log: Path


@contextmanager
def nginx(root: Path, prefix: Path) -> Iterator[Served]:
    """nginx serving ``root`` on a free loopback port with the repo_nginx cache headers."""
    prefix.mkdir(parents=True)
    port = _free_port()
    conf = prefix / "nginx.conf"
    # workers as this process's user (root would make them nobody): the files are ours
    user = pwd.getpwuid(os.geteuid()).pw_name
    conf.write_text(
        NGINX_CONF.format(prefix=prefix, port=port, root=root, path=REPO_PATH, user=user)
    )
    proc = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}/{REPO_PATH}"
        try:
            _wait_http(
                f"{url}/metadata/timestamp.json?{MARKER}", lambda: proc.poll() is None, "nginx"
            )
        except RuntimeError as e:
            errors = (prefix / "error.log").read_text()[-2000:]
            raise RuntimeError(f"{e}: {errors}") from None
        yield Served(url, prefix / "access.log")
    finally:
        proc.send_signal(signal.SIGQUIT)  # graceful: the access log is complete
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def read_access_log(path: Path, result: LoadResult) -> None:
    for line in path.read_text().splitlines():
        status, sent, body, uri = line.split(" ", 3)
        if MARKER in uri:
            continue
        result.served_requests[status] = result.served_requests.get(status, 0) + 1
        result.served_bytes += int(sent)
        result.served_body_bytes += int(body)


# -- the hub: a fresh PostgreSQL database, gunicorn ------------------------------------------


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _admin_sql(dsn: str, sql: str) -> None:
    """As the DSN's role if it may, else as the local superuser (root on a test box)."""
    import psycopg

    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)  # type: ignore[arg-type]
    except psycopg.errors.InsufficientPrivilege:
        if os.geteuid() != 0 or not shutil.which("runuser"):
            raise
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                "psql",
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
            cwd="/",
        )


@contextmanager
def fresh_database(dsn: str) -> Iterator[tuple[str, str]]:
    """A new database owned by the DSN's role, dropped after: (its DSN, "database"),
    or a schema in the DSN's database where no database may be created: (DSN, "schema")."""
    import psycopg

    name = f"hub_load_{secrets.token_hex(4)}"
    owner = urlsplit(dsn).username or "postgres"
    try:
        _admin_sql(dsn, f'CREATE DATABASE "{name}" OWNER "{owner}"')
    except (psycopg.Error, subprocess.CalledProcessError):
        from urllib.parse import quote

        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")  # type: ignore[arg-type]
        sep = "&" if "?" in dsn else "?"
        try:
            yield f"{dsn}{sep}options={quote(f'-csearch_path={name}')}", "schema"
        finally:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {name} CASCADE")  # type: ignore[arg-type]
        return
    try:
        yield _with_database(dsn, name), "database"
    finally:
        _admin_sql(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def gunicorn_hub(dsn: str, devices_dir: Path, workers: int) -> Iterator[str]:
    """The hub as appliance-hub.service runs it: gunicorn, settings from the environment."""
    exe = str(GUNICORN) if GUNICORN.exists() else shutil.which("gunicorn")
    if exe is None:
        raise RuntimeError("gunicorn is not installed (pip install -e '.[hub]')")
    port = _free_port()
    env = {**os.environ, "APPLIANCE_HUB_DB": dsn, "APPLIANCE_HUB_DEVICES": str(devices_dir)}
    proc = subprocess.Popen(
        [
            exe,
            "--workers",
            str(workers),
            "--worker-class",
            "sync",
            "--timeout",
            "60",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "appliance_hub.wsgi:create()",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_http(url + "/readyz", lambda: proc.poll() is None, "gunicorn")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the devices --------------------------------------------------------------------------


@dataclass
class Device:
    """One simulated device: its key, its audit log's name and chain head, its clock."""

    identity: DeviceIdentity
    log_id: str = field(default_factory=lambda: secrets.token_hex(16))
    seq: int = 0
    head: str = ""
    verifications: int = 0

    def __post_init__(self) -> None:
        self.head = genesis_hash(self.log_id)


_VERDICTS = (
    [("PASS", "OK")] * 90
    + [("FAIL", "EXPIRED")] * 5
    + [("FAIL", "REVOKED")] * 2
    + [("UNVERIFIABLE", "STATUS_UNKNOWN")] * 3
)


def enrol_fleet(n: int, devices_dir: Path) -> list[Device]:
    registry = DeviceRegistry(devices_dir)
    fleet = []
    for i in range(n):
        identity = DeviceIdentity(f"load-{i:05d}", ed25519.Ed25519PrivateKey.generate())
        registry.enrol(identity.device_id, identity.public.pem)
        fleet.append(Device(identity))
    return fleet


def next_batch(dev: Device, n: int, now: float) -> SignedBody:
    """The next ``n`` records of the device's chain and a checkpoint on the last, signed."""
    records = []
    for _ in range(n):
        dev.seq += 1
        verdict, reason = _VERDICTS[dev.seq * 37 % len(_VERDICTS)]
        rec: dict[str, Any] = {
            "seq": dev.seq,
            "time": iso_time(now - (n - len(records)) * 12.0),
            "device_id": dev.identity.device_id,
            "log_id": dev.log_id,
            "source": "camera",
            "verdict": verdict,
            "reason": reason,
            "profile": "LC1",
            "iss": "TH-DLT",
            "kid": secrets.token_hex(8),
            "licence_type": "DL",
            "licence_hash": secrets.token_hex(32),
            "cti_hash": secrets.token_hex(32),
            "live": False,
            "trust_version": 2,
            "software_version": "0.1.0",
            "prev_hash": dev.head,
        }
        rec["hash"] = dev.head = record_hash(rec)
        records.append(rec)
    at = iso_time(now)
    checkpoint = {
        "seq": dev.seq,
        "time": at,
        "hash": dev.head,
        "key_id": dev.identity.public.key_id,
        "signature": base64.b64encode(
            dev.identity.sign(
                checkpoint_message(dev.identity.device_id, dev.log_id, dev.seq, dev.head, at)
            )
        ).decode(),
    }
    head = sign_head(dev.identity, dev.identity.device_id, dev.log_id, dev.seq, dev.head, at)
    return batch_body(
        dev.identity, dev.identity.device_id, dev.log_id, records, [checkpoint], head, now
    )


def heartbeat(dev: Device, sent: float, backlog: int) -> bytes:
    """A heartbeat with the fields ``appliance_sync.heartbeat.collect`` gathers, signed."""
    return sign_heartbeat(
        dev.identity,
        {
            "type": HEARTBEAT_TYPE,
            "device_id": dev.identity.device_id,
            "time": format_utc(sent),
            "software_version": "0.1.0",
            "trust_version": 2,
            "trust_age_s": 600.0,
            "last_sync_result": "ok",
            "last_sync_time": format_utc(sent - 600),
            "audit_backlog": backlog,
            "camera": "ok",
            "clock_trusted": True,
            "disk_free_bytes": 20 * 2**30,
            "uptime_s": 86400.0,
            "out_of_service": None,
        },
    )


def _requests(access_log: Path, skip: int) -> list[tuple[str, str]]:
    """(status, path) of the access log's lines after the first ``skip``."""
    lines = access_log.read_text().splitlines()[skip:]
    return [(status, uri) for status, _, _, uri in (ln.split(" ", 3) for ln in lines)]


def _first_sync_requests(repo: Served, pool: Any) -> list[tuple[str, str]]:
    """The requests of the one sync so far, once nginx has logged them all (a marker
    request, logged after them by the single worker, says when)."""
    marker = f"/{MARKER}{secrets.token_hex(4)}"
    pool.request("GET", repo.url + marker, timeout=30)
    deadline = time.monotonic() + 30
    while True:
        wire = _requests(repo.access_log, 0)
        if any(uri.endswith(marker + '"') for _, uri in wire):
            return [(s, u) for s, u in wire if MARKER not in u]
        if time.monotonic() > deadline:
            raise RuntimeError("nginx did not log the first sync")
        time.sleep(0.05)


def sync_fleet(
    fleet: list[Device], repo: Served, root: Path, states: Path, plan: LoadPlan, result: LoadResult
) -> None:
    """The first ``real_syncs`` devices sync with the real client (its state removed after,
    for disk); the others replay, byte for byte, the requests the first one made."""
    import urllib3

    lock = threading.Lock()

    def real(dev: Device) -> None:
        state = states / dev.identity.device_id
        client = SyncClient(
            state_dir=state,
            url=repo.url,
            root=root,
            deadline_s=120,
            retries=3,
            backoff_s=0.2,
            clock_synchronised=lambda: False,
        )
        got = client.sync_once()
        if not got.updated:
            raise RuntimeError(f"{dev.identity.device_id}: sync installed nothing")
        with lock:
            result.sync_fetched += got.bytes_fetched
        shutil.rmtree(state, ignore_errors=True)

    pool = urllib3.PoolManager(maxsize=plan.sync_clients, retries=False)
    base = repo.url[: -len(REPO_PATH) - 1]

    def replay(_: Device) -> None:
        for status, uri in wire:
            resp = pool.request(
                "GET", base + uri.strip('"'), timeout=30, headers={"Accept-Encoding": "identity"}
            )
            if str(resp.status) != status:
                raise RuntimeError(f"replayed {uri}: {resp.status}, the client had {status}")

    n_real = max(1, min(plan.real_syncs, len(fleet)))
    start = time.perf_counter()
    real(fleet[0])
    wire = _first_sync_requests(repo, pool)
    with ThreadPoolExecutor(max_workers=plan.sync_clients) as executor:
        list(executor.map(real, fleet[1:n_real]))
        result.real_sync_s = time.perf_counter() - start
        list(executor.map(replay, fleet[n_real:]))
    result.sync_s = time.perf_counter() - start
    result.real_syncs = n_real
    pool.clear()


def upload_fleet(fleet: list[Device], hub_url: str, plan: LoadPlan, result: LoadResult) -> None:
    """Rounds of batch + heartbeat per device; ``clients`` devices in flight at once."""
    import urllib3

    pool = urllib3.PoolManager(maxsize=plan.clients, retries=False)
    client = HubClient(hub_url, timeout_s=120, pool=pool)
    lock = threading.Lock()
    wall0 = time.time()
    start = time.perf_counter()

    def count(table: dict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1

    def lane(k: int) -> None:
        mine = fleet[k :: plan.clients]
        for r in range(plan.rounds):
            for j, dev in enumerate(mine):
                slot = r * plan.devices + k + j * plan.clients  # steady, spread over the fleet
                if plan.rate > 0:
                    delay = start + slot / plan.rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                now = wall0 + r
                body = next_batch(dev, plan.records, now)
                t = time.perf_counter()
                ack = client.post_batch(body)
                took = time.perf_counter() - t
                if ack.get("acked") != [dev.seq - plan.records + 1, dev.seq]:
                    raise RuntimeError(f"{dev.identity.device_id}: not acknowledged: {ack}")
                hb = heartbeat(dev, now, 0)
                t = time.perf_counter()
                answer = client.post_heartbeat(hb)
                hb_took = time.perf_counter() - t
                with lock:
                    result.latencies.append(took)
                    result.heartbeat_latencies.append(hb_took)
                    count(result.acks, str(ack.get("status")))
                    count(result.heartbeats, str(answer.get("status")))

    with ThreadPoolExecutor(max_workers=plan.clients) as executor:
        for f in [executor.submit(lane, k) for k in range(min(plan.clients, len(fleet)))]:
            f.result()
    result.load_s = time.perf_counter() - start
    pool.clear()


def measure_database(dsn: str, result: LoadResult) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # settled sizes, as a day later
        result.stored = conn.execute("SELECT count(*) FROM records").fetchone()[0]  # type: ignore[index]
        result.records_bytes = conn.execute("SELECT pg_total_relation_size('records')").fetchone()[
            0
        ]  # type: ignore[index]
        result.hub_bytes = int(
            conn.execute(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'r' AND n.nspname = current_schema()"
            ).fetchone()[0]
        )  # type: ignore[index]


# -- the whole run ------------------------------------------------------------------------


def run_load(
    plan: LoadPlan, dsn: str, workdir: Path, inspect: Callable[[str], object] | None = None
) -> LoadResult:
    """Publish, serve, start the hub, sync and upload the fleet, measure; everything that
    was started is stopped and the database dropped. ``inspect(dsn)`` runs before that."""
    result = LoadResult(plan)
    served, root = publish(workdir / "central")
    fleet = enrol_fleet(plan.devices, workdir / "devices")
    with nginx(served, workdir / "nginx") as repo:
        sync_fleet(fleet, repo, root, workdir / "states", plan, result)
    read_access_log(repo.access_log, result)
    with fresh_database(dsn) as (hub_dsn, kind):
        result.database = kind
        with gunicorn_hub(hub_dsn, workdir / "devices", plan.workers) as hub_url:
            upload_fleet(fleet, hub_url, plan, result)
        measure_database(hub_dsn, result)
        if inspect is not None:
            inspect(hub_dsn)
    return result


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def rows(r: LoadResult) -> list[Row]:
    p = r.plan
    shape = (
        f"{p.devices} devices x {p.rounds} batches of {p.records} records + a heartbeat "
        f"each, {p.clients} concurrent clients, gunicorn {p.workers} workers, "
        f"PostgreSQL ({r.database}); clients share the machine's cores with the hub"
    )
    pace = f"paced at {p.rate:g} batches/s" if p.rate > 0 else "unpaced: capacity"
    per_million = 1e6 / max(1, r.stored)
    return [
        row(
            "full syncs, real client",
            r.real_syncs / r.real_sync_s,
            "syncs/s",
            f"{r.real_syncs} devices' first sync through nginx, {p.sync_clients} at once "
            f"(TUF checks, install, fsync: the client's own cost)",
        ),
        row(
            "repository, whole fleet synced",
            r.sync_s,
            "s",
            f"{p.devices - r.real_syncs} more devices replay the real client's GETs",
        ),
        row(
            "repository bytes served",
            r.served_bytes,
            "bytes",
            f"nginx access log, {sum(r.served_requests.values())} requests "
            f"({', '.join(f'{k}: {v}' for k, v in sorted(r.served_requests.items()))}); "
            f"{r.served_bytes / max(1, p.devices):,.0f} bytes per device",
        ),
        row("hub ingest", r.stored / r.load_s, "records/s", f"{shape}; {pace}"),
        row(
            "hub batches",
            len(r.latencies) / r.load_s,
            "batches/s",
            "signature, checkpoint signature and hash chain checked; one transaction each",
        ),
        row("batch latency p50", _pct(r.latencies, 50) * 1e3, "ms", "post to acknowledgement"),
        row("batch latency p99", _pct(r.latencies, 99) * 1e3, "ms", "post to acknowledgement"),
        row(
            "heartbeats",
            len(r.heartbeat_latencies) / r.load_s,
            "heartbeats/s",
            f"interleaved with the batches; p99 {_pct(r.heartbeat_latencies, 99) * 1e3:.0f} ms",
        ),
        row(
            "PostgreSQL records table per million records",
            r.records_bytes * per_million / 2**20,
            "MiB",
            f"pg_total_relation_size('records') after VACUUM, {r.stored:,} stored",
        ),
        row(
            "PostgreSQL hub tables per million records",
            r.hub_bytes * per_million / 2**20,
            "MiB",
            "every table and index of the hub's schema, heartbeats included",
        ),
    ]


def run(plan: LoadPlan | None = None) -> list[Row]:
    from audit_support import find_postgres_dsn

    plan = plan or LoadPlan()
    dsn = find_postgres_dsn()
    if not dsn:
        return [row("hub ingest", 0, "records/s", "skipped: no PostgreSQL DSN")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
    try:
        result = run_load(plan, dsn, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if result.stored != result.sent or result.acks != {"stored": result.sent // plan.records}:
        raise RuntimeError(
            f"records lost or doubled: sent {result.sent}, stored "
            f"{result.stored}, acks {result.acks}"
        )
    return rows(result)


def main(argv: list[str]) -> int:
    d = LoadPlan()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=d.devices)
    ap.add_argument("--rounds", type=int, default=d.rounds, help="batches per device")
    ap.add_argument("--records", type=int, default=d.records, help="records per batch")
    ap.add_argument("--clients", type=int, default=d.clients)
    ap.add_argument("--workers", type=int, default=d.workers, help="gunicorn workers")
    ap.add_argument(
        "--rate",
        type=float,
        default=d.rate,
        help="batches/s across the fleet (0: as fast as the hub answers)",
    )
    a = ap.parse_args(argv)
    plan = LoadPlan(
        devices=a.devices,
        rounds=a.rounds,
        records=a.records,
        clients=a.clients,
        workers=a.workers,
        rate=a.rate,
    )
    result = run(plan)
    print_table("Scale: a fleet against one centre on loopback", result)
    print(f"\nwritten to {save('load', result)}")
    return 0


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.ERROR)
    sys.exit(main(sys.argv[1:]))
