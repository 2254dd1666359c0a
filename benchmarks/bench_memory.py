"""Peak memory of every device process against its budget, and start-up CPU (issue 14).

Each process runs as the device runs it (``appliance run``, ``web``, ``verify``, ``sync``,
``upload`` from the command line), in its own process, so its peak is its own:

- servers (kiosk, web): ``VmHWM`` of ``/proc/<pid>/status`` once they said READY=1 on a
  notify socket (as under systemd ``Type=notify``) and did some work; CPU time to READY
  from ``/proc/<pid>/stat``;
- one-shot commands: ``ru_maxrss`` from ``wait4`` in a tiny launcher process, because a
  child forked from this (large) benchmark process would inherit its resident size.

The budgets are the ``MemoryMax=`` of the systemd units (tests/deploy/test_systemd.py checks that
they match). A Pi Zero 2 W runs Python about 8-10x slower per core than this machine.

    python benchmarks/bench_memory.py [--scale 0.1]   # scale: the sync data (default full)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from common import Row, print_table, row, save

BUDGET_MB = {"kiosk": 64, "web": 48, "stack": 160, "sync": 96, "upload": 64}
# Installed on this development machine (awscli, moto) but not on a Pi: securesystemslib
# imports each cloud signer's SDK when it is present (boto3 alone costs ~15 MiB), so the
# children are measured with them hidden, as a Pi's venv sees its site-packages.
NOT_ON_A_PI = (
    "boto3",
    "botocore",
    "s3transfer",
    "google",
    "azure",
    "hvac",
    "PyKCS11",
    "pykcs11",
    "sigstore",
)
APPLIANCE = (
    "import sys\n"
    f"sys.modules.update(dict.fromkeys({NOT_ON_A_PI!r}))\n"
    "from appliance.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)
ZERO_2W_FACTOR = (8, 10)
UPLOAD_BACKLOG = 100_000

# Runs the command in argv[2:] and writes [exit status, ru_maxrss KiB, CPU s] to argv[1].
LAUNCHER = (
    "import json, os, sys\n"
    "pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)\n"
    "_, status, ru = os.wait4(pid, 0)\n"
    "open(sys.argv[1], 'w').write(json.dumps([os.waitstatus_to_exitcode(status), "
    "ru.ru_maxrss, ru.ru_utime + ru.ru_stime]))\n"
)


def measured(argv: list[str], tmp: Path, timeout_s: float = 3600) -> dict:
    """Run ``appliance ARGV`` to completion; its exit status, peak RSS (MiB) and CPU (s)."""
    out = tmp / f"rusage-{time.monotonic_ns()}.json"
    cmd = [sys.executable, "-S", "-c", LAUNCHER, str(out), sys.executable, "-c", APPLIANCE, *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    status, maxrss_kb, cpu = json.loads(out.read_text())
    return {
        "status": status,
        "peak_mb": maxrss_kb / 1024,
        "cpu_s": cpu,
        "stdout": proc.stdout,
        "stderr": proc.stderr,
    }


# -- servers ----------------------------------------------------------------------------------


class Server:
    """``appliance ARGV`` with a notify socket; knows its peak RSS and CPU time."""

    def __init__(self, argv: list[str], tmp: Path, name: str) -> None:
        self.notify_path = tmp / f"{name}.notify"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        env = {**os.environ, "NOTIFY_SOCKET": str(self.notify_path), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", APPLIANCE, *argv],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.ready_cpu_s = 0.0

    def wait_ready(self, timeout_s: float = 60) -> float:
        """Block until READY=1; the CPU seconds the process took to get there."""
        self.notify.settimeout(timeout_s)
        while True:
            try:
                message = self.notify.recv(4096).decode()
            except TimeoutError as e:
                self.proc.kill()
                raise RuntimeError(f"no READY=1: {self.proc.communicate()[1][-2000:]}") from e
            if "READY=1" in message.split("\n"):
                self.ready_cpu_s = self.cpu_s()
                return self.ready_cpu_s

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()
        self.notify.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _budget(name: str, peak: float) -> str:
    budget = BUDGET_MB.get(name)
    if budget is None:
        return "no budget of its own (one-shot, run by an administrator)"
    return f"budget {budget} MiB (MemoryHigh={budget}M): {'within' if peak <= budget else 'OVER'}"


def _zero(cpu_s: float) -> str:
    lo, hi = ZERO_2W_FACTOR
    return f"Pi Zero 2 W estimate {cpu_s * lo:.1f}-{cpu_s * hi:.1f} s (x{lo}-{hi})"


# -- the device -------------------------------------------------------------------------------


def _device(tmp: Path) -> tuple[Path, list[str], object]:
    """Trust data synced from a loopback repository, frames with codes, a config file."""
    import segno
    from PIL import Image
    from sync_support import Authority, RepoServer, device

    authority = Authority.create(tmp / "authority")
    authority.publish()
    server = RepoServer(authority.repo)
    device(tmp / "state", server.url, authority.root_file).sync_once()
    texts = [authority.credential(no=f"DL-{i:04d}") for i in range(3)]
    frames = tmp / "frames"
    frames.mkdir()
    for i, text in enumerate(texts):
        Image.new("L", (640, 480), 200).save(frames / f"{2 * i}-blank.png")
        segno.make(text, error="m", micro=False).save(
            frames / f"{2 * i + 1}-code.png", scale=5, border=4
        )
    config = tmp / "appliance.toml"
    config.write_text(f"""
[device]
id = "bench-memory"
mode = "kiosk"

[paths]
state_dir = "{tmp / "state"}"
secrets_dir = "{tmp / "secrets"}"

[camera]
source = "images"
images_dir = "{frames}"
fps = 15
frames_per_image = 4

[scanner]
backend = "both"
repeat_after_absent_s = 0.2

[indicator]
backend = "mock"

[sync]
url = "{server.url}"
root = "{authority.root_file}"

[web]
port = {_free_port()}
kiosk_socket = "{tmp / "run" / "kiosk.sock"}"
""")
    # The device's identity and audit key, as an installation creates them (a device
    # without them refuses to verify or run).
    subprocess.run(
        [
            sys.executable,
            "-c",
            APPLIANCE,
            "device",
            "keygen",
            "--config",
            str(config),
            "--test-audit-key",
        ],
        check=True,
        capture_output=True,
    )
    return config, texts, server


def _audit_count(config_state: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(f"file:{config_state / 'audit.db'}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT count(*) FROM records").fetchone()[0]
    except sqlite3.Error:
        return 0


def device_rows(tmp: Path) -> list[Row]:
    config, texts, server = _device(tmp)
    rows: list[Row] = []
    try:
        one = measured(["verify", "--config", str(config), texts[0]], tmp)
        assert one["status"] == 0, one["stderr"]
        rows.append(
            row(
                "verify one text (--config): peak RSS",
                one["peak_mb"],
                "MiB",
                _budget("verify", one["peak_mb"]),
            )
        )
        rows.append(row("verify one text: CPU time", one["cpu_s"], "s", _zero(one["cpu_s"])))

        kiosk = Server(["run", "--config", str(config)], tmp, "kiosk")
        web = None
        try:
            cpu = kiosk.wait_ready()
            ready_peak = kiosk.peak_mb()
            before = _audit_count(tmp / "state")
            deadline = time.monotonic() + 60
            while _audit_count(tmp / "state") < before + 3 and time.monotonic() < deadline:
                time.sleep(0.2)
            scanned = _audit_count(tmp / "state") - before
            rows.append(
                row(
                    "kiosk ready to scan: CPU time", cpu, "s", f"target <= 1.0 s here; {_zero(cpu)}"
                )
            )
            rows.append(
                row(
                    "kiosk ready to scan: peak RSS", ready_peak, "MiB", _budget("kiosk", ready_peak)
                )
            )
            kiosk_peak = kiosk.peak_mb()
            rows.append(
                row(
                    "kiosk after scanning: peak RSS",
                    kiosk_peak,
                    "MiB",
                    f"{scanned} codes verified and audited (folder camera, zxing+zbar, "
                    f"mock pins); {_budget('kiosk', kiosk_peak)}",
                )
            )

            web = Server(["web", "--config", str(config)], tmp, "web")
            web_cpu = web.wait_ready()
            port = _web_port(config)
            for path in ("/kiosk", "/kiosk", "/status", "/kiosk"):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
                    r.read()
            web_peak = web.peak_mb()
            rows.append(row("web ready: CPU time", web_cpu, "s", _zero(web_cpu)))
            rows.append(
                row("web serving /kiosk: peak RSS", web_peak, "MiB", _budget("web", web_peak))
            )
            stack = kiosk.peak_mb() + web_peak
            rows.append(
                row(
                    "device stack (kiosk + web): peak RSS",
                    stack,
                    "MiB",
                    f"network-less services, display aside; {_budget('stack', stack)}",
                )
            )
        finally:
            if web is not None:
                web.stop()
            kiosk.stop()
    finally:
        server.stop()  # type: ignore[attr-defined]
    return rows


def _web_port(config: Path) -> int:
    import tomllib

    return int(tomllib.loads(config.read_text())["web"]["port"])


# -- sync and upload --------------------------------------------------------------------------


def sync_rows(tmp: Path, scale: float) -> list[Row]:
    """A full sync of 10M revoked hashes and a 100M-entry status list (times ``scale``)."""
    import numpy as np
    from bench_sync import URI, _serve, _status_bits

    from appliance_sync.publisher import init_repository, update_repository
    from appliance_sync.trust_parts import TrustParts, digests_array

    revoked_n, status_n = int(10_000_000 * scale), int(100_000_000 * scale)
    rng = np.random.default_rng(4)
    repo, keys, root = tmp / "repo", tmp / "keys", tmp / "root.json"
    init_repository(repo, keys, root)
    revoked = digests_array(rng.integers(0, 256, size=(revoked_n, 16), dtype=np.uint8))
    update_repository(
        repo,
        keys,
        TrustParts(
            revoked={"cti_sha256": revoked},
            status_lists=[(URI, 1, _status_bits(status_n, rng).tobytes())],
        ),
    )
    del revoked
    httpd, url = _serve(repo)
    try:
        config = tmp / "sync.toml"
        config.write_text(f"""
[device]
id = "bench-sync"

[paths]
state_dir = "{tmp / "dev"}"
secrets_dir = "{tmp / "dev-secrets"}"

[sync]
url = "{url}"
root = "{root}"
""")
        result = measured(["sync", "--config", str(config), "--once"], tmp)
        assert result["status"] == 0, result["stderr"]
    finally:
        httpd.shutdown()
        httpd.server_close()
    what = f"{revoked_n:,} revoked hashes + {status_n:,}-entry status list"
    return [
        row(
            "full sync: peak RSS",
            result["peak_mb"],
            "MiB",
            f"{what}; {_budget('sync', result['peak_mb'])}",
        ),
        row("full sync: CPU time", result["cpu_s"], "s", what),
    ]


def upload_rows(tmp: Path) -> list[Row]:
    """``appliance upload --once`` of a 100,000-record backlog to a hub on loopback."""
    from audit_support import NOW, Scenario, device
    from bench_audit import _serve as serve_hub

    from appliance_hub.server import create_app
    from appliance_hub.store import HubStore

    store = HubStore(tmp / "hub.db")
    server = serve_hub(create_app(store, tmp / "devices", None))
    try:
        config, log, _ = device(tmp, "bench-upload", tmp / "devices", checkpoint_every=500)
        scenario = Scenario()
        fields = log.fields(scenario.verdict(), "camera", scenario.trust)
        log.append(fields, now=NOW)
        log._conn.execute("PRAGMA synchronous=OFF")  # filling is set-up, not measured
        for i in range(UPLOAD_BACKLOG - 1):
            log.append(fields, now=NOW + i / 100)
        log.close()
        path = tmp / "upload.toml"
        path.write_text(f"""
[device]
id = "bench-upload"

[paths]
state_dir = "{config.paths.state_dir}"
secrets_dir = "{config.paths.secrets_dir}"

[audit]
checkpoint_every = 500

[upload]
url = "http://127.0.0.1:{server.port}"
batch_size = 500
""")
        result = measured(["upload", "--config", str(path), "--once"], tmp)
        assert result["status"] == 0, result["stderr"]
        assert store.count() == UPLOAD_BACKLOG, store.count()
    finally:
        server.shutdown()
    return [
        row(
            "upload 100,000-record backlog: peak RSS",
            result["peak_mb"],
            "MiB",
            f"batches of 500 to a hub on loopback; {_budget('upload', result['peak_mb'])}",
        ),
        row("upload 100,000-record backlog: CPU time", result["cpu_s"], "s", ""),
    ]


def run(scale: float = 1.0, parts: tuple[str, ...] = ("device", "sync", "upload")) -> list[Row]:
    rows: list[Row] = []
    for part in parts:
        tmp = Path(tempfile.mkdtemp(prefix=f"bench-memory-{part}-"))
        try:
            if part == "device":
                rows += device_rows(tmp)
            elif part == "sync":
                rows += sync_rows(tmp, scale)
            elif part == "upload":
                rows += upload_rows(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the sync data")
    parser.add_argument("parts", nargs="*", default=["device", "sync", "upload"])
    args = parser.parse_args()
    result = run(args.scale, tuple(args.parts))
    print_table("Memory budgets and start-up", result)
    if args.scale == 1.0 and len(args.parts) == 3:
        print(f"\nsaved {save('memory', result)}")
