"""Runs inside the booted guest (make test-boot): soak, check, report, power off.

Started by appliance-boot-check.service (installed by tests/boot/converge.py only). Python
standard library only (the guest's /usr/bin/python3). Every fact comes from the guest:
systemd's unit properties, the cgroup's memory.peak (systemd 252 has no MemoryPeak=), the
web's API, the hub's API over nginx and TLS. The result is one JSON line on the second
serial port (/dev/ttyS1), between markers, for the host (tests/boot/run.py).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import ssl
import subprocess
import threading
import time
import traceback
import urllib.request
from pathlib import Path
from typing import Any

import guest_mdl  # beside this file in the guest

SETTINGS = json.loads((Path(__file__).parent / "settings.json").read_text())
OUT = "/dev/ttyS1"
CGROUP = Path("/sys/fs/cgroup/system.slice")
STATE = Path("/var/lib/appliance")
DEVICE_UNITS = [
    "appliance-kiosk.service",
    "appliance-web.service",
    "appliance-sync.service",
    "appliance-upload.service",
    "appliance-heartbeat.service",
    "appliance-fault.service",
    "appliance-mdl-radio.service",
]
CENTRE_UNITS = [
    "appliance-hub.service",
    "nginx.service",
    "postgresql@15-main.service",
    "appliance-publish-timestamp.service",
]
ALWAYS_ON = {
    "appliance-kiosk.service",
    "appliance-mdl-radio.service",
    "appliance-web.service",
    "appliance-hub.service",
    "nginx.service",
    "postgresql@15-main.service",
}
TIMERS_AND_PATHS = [
    "appliance-sync.timer",
    "appliance-upload.timer",
    "appliance-heartbeat.timer",
    "appliance-publish-timestamp.timer",
    "appliance-sync.path",
    "appliance-upload.path",
]
PROPS = [
    "ActiveState",
    "SubState",
    "Result",
    "NRestarts",
    "MainPID",
    "MemoryHigh",
    "MemoryMax",
    "MemoryCurrent",
    "ActiveEnterTimestampMonotonic",
    "InactiveExitTimestampMonotonic",
    "ExecMainStatus",
]


def show(unit: str) -> dict[str, str]:
    out = subprocess.run(
        ["systemctl", "show", unit, *(f"--property={p}" for p in PROPS)],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def uptime() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def say(text: str) -> None:
    """Progress on the console log (the unit's output goes to the console too)."""
    print(f"boot-check [{uptime():7.1f}] {text}", flush=True)


def wait_for(what: str, check: Any, timeout_s: float, step_s: float = 1.0) -> Any:
    say(f"waiting: {what}")
    deadline = uptime() + timeout_s
    while True:
        try:
            value = check()
        except Exception as e:
            value, last = None, e
        else:
            last = None
        if value:
            return value
        if uptime() > deadline:
            raise TimeoutError(
                f"{what}: not within {timeout_s:.0f} s" + (f" (last error: {last})" if last else "")
            )
        time.sleep(step_s)


CGROUPS: dict[str, Path] = {}


def cgroup_of(unit: str) -> Path:
    """The unit's cgroup: system.slice's, or for a template instance (postgresql@15-main
    lives in a slice of its own) the one systemd names while it runs."""
    if "@" not in unit:
        return CGROUP / unit
    if unit not in CGROUPS:
        out = subprocess.run(
            ["systemctl", "show", unit, "--property=ControlGroup", "--value"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
        if not out:
            return CGROUP / unit
        CGROUPS[unit] = Path("/sys/fs/cgroup" + out)
    return CGROUPS[unit]


class PeakSampler(threading.Thread):
    """memory.peak of every unit's cgroup, kept after a oneshot's cgroup is gone."""

    def __init__(self, units: list[str]) -> None:
        super().__init__(daemon=True)
        self.units = units
        self.peak: dict[str, int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(1.0):  # cheap: emulated CPUs are scarce (TCG)
            for unit in self.units:
                try:
                    value = int((cgroup_of(unit) / "memory.peak").read_text())
                except (OSError, ValueError):
                    continue
                self.peak[unit] = max(self.peak.get(unit, 0), value)


def get(url: str, token: str | None = None, timeout_s: float = 20.0) -> bytes:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(
        request, timeout=timeout_s, context=ssl.create_default_context()
    ) as response:
        return response.read(4 << 20)


def request_run(name: str) -> None:
    """What the admin screen does: a request file the .path unit turns into a run."""
    folder = Path("/run/appliance/requests")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.request").write_text(str(time.time()))


def sync_state() -> dict[str, Any]:
    try:
        return json.loads((STATE / "sync_state.json").read_text())
    except (OSError, ValueError):
        return {}


def pass_verdicts() -> list[dict[str, Any]]:
    body = json.loads(get("http://127.0.0.1:8080/api/verdicts?limit=50"))
    return [v for v in body["verdicts"] if v.get("outcome") == "PASS"]


def kiosk_status() -> Any:
    """The web's /api/status camera and trust sections (frames read, decode errors, ...)."""
    try:
        body = json.loads(get("http://127.0.0.1:8080/api/status"))
    except (OSError, ValueError) as e:
        return {"error": str(e)}
    return {k: body.get(k) for k in ("camera", "trust", "kiosk", "clock")}


def hub_records() -> int:
    body = get(
        f"{SETTINGS['hub']}/v1/records?device_id={SETTINGS['device_id']}", SETTINGS["auditor_token"]
    )
    return len([line for line in body.splitlines() if line.strip()])


def hub_device() -> dict[str, Any] | None:
    body = json.loads(
        get(
            f"{SETTINGS['hub']}/v1/devices?device_id={SETTINGS['device_id']}",
            SETTINGS["auditor_token"],
        )
    )
    return body["devices"][0] if body["devices"] else None


def unit_started_after(unit: str, since: float) -> bool:
    return int(show(unit).get("ActiveEnterTimestampMonotonic") or 0) / 1e6 > since


def kill_test(result: dict[str, Any]) -> None:
    """kill -9 the kiosk once (systemd restarts it), then until its start limit: the
    fault pattern (appliance-fault.service) must show, and starting the kiosk ends it."""
    kiosk = "appliance-kiosk.service"
    before = show(kiosk)
    killed_at = uptime()
    os.kill(int(before["MainPID"]), 9)
    wait_for(
        "kiosk back after kill -9",
        lambda: (
            (s := show(kiosk))["ActiveState"] == "active"
            and s["MainPID"] != before["MainPID"]
            and s["MainPID"] != "0"
        ),
        120,
    )
    result["kill_once"] = {
        "kiosk_back_s": round(uptime() - killed_at, 1),
        "restarts": int(show(kiosk)["NRestarts"]),
        "fault_shown": unit_started_after("appliance-fault.service", killed_at),
    }
    kills, last_pid = 1, before["MainPID"]
    while kills < 10:
        state = wait_for(
            "kiosk running again, or failed for good",
            lambda pid=last_pid: (
                s
                if (s := show(kiosk))["ActiveState"] == "failed"
                or (s["ActiveState"] == "active" and s["MainPID"] not in ("0", pid))
                else None
            ),
            120,
        )
        if state["ActiveState"] == "failed":
            break
        last_pid = state["MainPID"]
        try:
            os.kill(int(last_pid), 9)
        except ProcessLookupError:
            continue
        kills += 1
    wait_for("kiosk failed for good", lambda: show(kiosk)["ActiveState"] == "failed", 60)
    fault = wait_for(
        "fault pattern",
        lambda: (
            show("appliance-fault.service")
            if show("appliance-fault.service")["ActiveState"] == "active"
            else None
        ),
        60,
    )
    restart_at = uptime()
    subprocess.run(["systemctl", "reset-failed", kiosk], check=True, timeout=30)
    subprocess.run(["systemctl", "start", kiosk], check=True, timeout=120)
    wait_for(
        "fault pattern ends", lambda: show("appliance-fault.service")["ActiveState"] != "active", 60
    )
    result["kill_to_limit"] = {
        "kills": kills,
        "fault_shown": fault["ActiveState"] == "active",
        "kiosk_back": show(kiosk)["ActiveState"] == "active",
        "kiosk_back_s": round(uptime() - restart_at, 1),
    }


# Built by the guest's own venv (Pillow, segno and the caps of the installed appliance):
# the RGBA PNG exactly at the picture budget's cap, and issue 21's flat 4000x3000 RGBA PNG
# (the way tests/security/test_sec_picture_memory.py builds them).
VENV_PYTHON = "/opt/appliance/venv/bin/python"
PICTURES = Path("/run/boot-check-pictures")
MAKE_PICTURES = r"""
import io, math, struct, sys, zlib
from pathlib import Path
import segno
from PIL import Image
from appliance.devices.pictures import PICTURE_BUDGET_BYTES, max_pixels, peak_bytes

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

def flat_rgba_png(width, height):
    z = zlib.compressobj(9)
    row = b"\x00" + bytes([200]) * (width * 4)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")

guess = max_pixels("PNG", "RGBA", data_bytes=256 * 1024)
width = math.isqrt(guess * 4 // 3)
height = guess // width
while peak_bytes("PNG", "RGBA", (width, height), data_bytes=256 * 1024) > PICTURE_BUDGET_BYTES:
    height -= 1
img = Image.new("RGBA", (width, height), (230, 230, 230, 255))
code = io.BytesIO()
segno.make("LC1:AT-THE-CAP", error="m", micro=False).save(code, kind="png", scale=8, border=4)
img.paste(Image.open(code).convert("RGBA"), (40, 40))
out = io.BytesIO()
img.save(out, "PNG")
folder = Path(sys.argv[1])
folder.mkdir(parents=True, exist_ok=True)
(folder / f"RGBA PNG at the cap, {width}x{height}.png").write_bytes(out.getvalue())
(folder / "4000x3000 RGBA PNG (issue 21).png").write_bytes(flat_rgba_png(4000, 3000))
"""


def upload_to_verify(data: bytes, timeout_s: float = 60.0) -> tuple[int, bytes]:
    """What a person does on the web's /verify page: GET the form (session cookie and CSRF
    token), POST the picture as multipart."""
    conn = http.client.HTTPConnection("127.0.0.1", 8080, timeout=timeout_s)
    try:
        conn.request("GET", "/verify")
        form = conn.getresponse()
        page = form.read(1 << 20)
        cookie = (form.getheader("Set-Cookie") or "").split(";", 1)[0]
        found = re.search(rb'name="csrf_token" value="([^"]+)"', page)
        if form.status != 200 or not found:
            raise RuntimeError(f"/verify form: HTTP {form.status}, no CSRF token")
        boundary = "----boot-check-boundary"
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'.encode()
            + found.group(1)
            + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="image"; '
            'filename="picture.png"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        conn.request(
            "POST",
            "/verify",
            body=body,
            headers={"Cookie": cookie, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        answer = conn.getresponse()
        return answer.status, answer.read(4 << 20)
    finally:
        conn.close()


def oom_kills(unit: str) -> int | None:
    try:
        found = re.search(
            r"^oom_kill (\d+)$", (cgroup_of(unit) / "memory.events").read_text(), re.M
        )
    except OSError:
        return None
    return int(found.group(1)) if found else None


def picture_test(result: dict[str, Any]) -> None:
    """Issue 21's memory fix under the units' own limits: a picture at the cap and the
    field's 4000x3000 RGBA PNG through the web's /verify (decoded by the kiosk's worker);
    neither may cost the kiosk or the web a restart or an OOM kill, and the web answers."""
    units = ["appliance-kiosk.service", "appliance-web.service"]
    before = {u: show(u) for u in units}
    made = subprocess.run(
        [VENV_PYTHON, "-c", MAKE_PICTURES, str(PICTURES)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if made.returncode != 0:
        raise RuntimeError(f"building the pictures failed: {made.stderr[-2000:]}")
    uploads: list[dict[str, Any]] = []
    for path in sorted(PICTURES.iterdir(), key=lambda p: "4000x3000" in p.name):
        data = path.read_bytes()
        started = uptime()
        status, _page = upload_to_verify(data)  # the page's text is in the web's language
        say(f"upload {path.name}: HTTP {status}")
        uploads.append(
            {
                "picture": path.stem,
                "bytes": len(data),
                "status": status,
                "seconds": round(uptime() - started, 1),
            }
        )
    web_status = urllib.request.urlopen("http://127.0.0.1:8080/api/status", timeout=20).status
    after = {u: show(u) for u in units}
    result["picture_upload"] = {
        "uploads": uploads,
        "web_answers": web_status,
        "units": {
            u: {
                "active": after[u]["ActiveState"],
                "restarts_before": int(before[u]["NRestarts"] or 0),
                "restarts_after": int(after[u]["NRestarts"] or 0),
                "main_pid_same": after[u]["MainPID"] == before[u]["MainPID"],
                "oom_kill": oom_kills(u),
                "memory_peak": int((cgroup_of(u) / "memory.peak").read_text()),
                "memory_events_high": memory_stat(u).get("events_high"),
            }
            for u in units
        },
    }
    problems = [f"upload {u['picture']}: HTTP {u['status']}" for u in uploads if u["status"] >= 500]
    problems += [] if web_status == 200 else [f"web /api/status: HTTP {web_status}"]
    for unit, facts in result["picture_upload"]["units"].items():
        if facts["active"] != "active" or facts["restarts_after"] != facts["restarts_before"]:
            problems.append(f"{unit}: {facts['active']}, restarts {facts['restarts_after']}")
        if facts["oom_kill"] != 0:
            problems.append(f"{unit}: oom_kill {facts['oom_kill']}")
    if problems:
        raise AssertionError("picture upload: " + "; ".join(problems))


def memory_stat(unit: str) -> dict[str, int]:
    """anon (the process's own memory) and file (page cache, reclaimable) now, and how
    often the cgroup went over MemoryHigh (memory.events ``high``: reclaimed, throttled)."""
    found: dict[str, int] = {}
    for name, keys in (("memory.stat", ("anon", "file")), ("memory.events", ("high", "max"))):
        try:
            lines = (cgroup_of(unit) / name).read_text().splitlines()
        except OSError:
            continue
        values = dict(line.split() for line in lines)
        found.update(
            {
                f"events_{k}" if name == "memory.events" else k: int(values[k])
                for k in keys
                if k in values
            }
        )
    return found


def start_seconds(s: dict[str, str]) -> float | None:
    """From leaving inactive to active (READY for Type=notify): its last start."""
    began, ready = (
        int(s.get(k) or 0)
        for k in ("InactiveExitTimestampMonotonic", "ActiveEnterTimestampMonotonic")
    )
    return round((ready - began) / 1e6, 1) if began and ready >= began else None


def units_table(sampler: PeakSampler) -> list[dict[str, Any]]:
    rows = []
    for unit in DEVICE_UNITS + CENTRE_UNITS:
        s = show(unit)
        now = memory_stat(unit)
        high = s.get("MemoryHigh", "infinity")
        rows.append(
            {
                "unit": unit,
                "active": s.get("ActiveState"),
                "sub": s.get("SubState"),
                "result": s.get("Result"),
                "restarts": int(s.get("NRestarts") or 0),
                "exit_status": int(s.get("ExecMainStatus") or 0),
                "memory_high": None if high == "infinity" else int(high),
                "memory_peak": sampler.peak.get(unit),
                "memory_current": None
                if not s.get("MemoryCurrent", "").isdigit()
                else int(s["MemoryCurrent"]),
                "anon": now.get("anon"),
                "file": now.get("file"),
                "events_high": now.get("events_high"),
                "events_max": now.get("events_max"),
                "always_on": unit in ALWAYS_ON,
                "start_s": start_seconds(s),
            }
        )
    return rows


def check(result: dict[str, Any], sampler: PeakSampler) -> None:
    state = wait_for(
        "system up",
        lambda: (
            subprocess.run(
                ["systemctl", "is-system-running"], capture_output=True, text=True
            ).stdout.strip()
            in ("running", "degraded")
            and subprocess.run(
                ["systemctl", "is-system-running"], capture_output=True, text=True
            ).stdout.strip()
        ),
        600,
    )
    result["system_state_at_boot"] = state
    # The virtual phone (hci0) after the system is up: off the boot's critical path.
    subprocess.run(["systemctl", "start", "--no-block", guest_mdl.PHONE], check=True, timeout=30)
    result["boot_s"] = round(uptime(), 1)
    result["systemd_analyze"] = subprocess.run(
        ["systemd-analyze"], capture_output=True, text=True
    ).stdout.strip()
    result["cgroup"] = subprocess.run(
        ["stat", "-f", "-c", "%T", "/sys/fs/cgroup"], capture_output=True, text=True
    ).stdout.strip()
    # Trust data: the admin screen's "sync now" path, the sync service as appliance-sync.
    start = uptime()
    request_run("sync")
    synced = wait_for(
        "sync installs trust data",
        lambda: (
            (s := sync_state()).get("last_success")
            and s.get("last_success") == s.get("last_attempt")
            and s
        ),
        300,
    )
    result["sync"] = {
        "version": synced.get("version"),
        "seconds": round(uptime() - start, 1),
        "trust_link": os.path.realpath(STATE / "trust"),
        "trust_owner": (STATE / "trust").resolve().stat().st_uid,
    }
    # The simulated camera's verdict on the web's API (the kiosk picked up the data itself).
    try:
        verdicts = wait_for("PASS verdict on the web's API", pass_verdicts, 600, 10.0)
    finally:
        result["kiosk_status"] = kiosk_status()
    result["verdicts"] = {"pass": len(verdicts), "first": verdicts[0]}
    # The mDL reader: the phone's QR on the camera, the session through the radio unit.
    guest = guest_mdl.Guest(show, get, wait_for, say, SETTINGS)
    guest_mdl.read_from_phone(guest, result)
    guest_mdl.check_capabilities(guest, result)
    # Audit records to the hub over nginx and TLS; a heartbeat on the fleet view.
    request_run("upload")
    result["hub_records"] = wait_for("audit records at the hub", hub_records, 300, 3.0)
    result["mdl"]["hub_records"] = wait_for(
        "mDL audit records at the hub", lambda: guest_mdl.hub_mdoc_records(guest), 120, 3.0
    )
    subprocess.run(["systemctl", "start", "appliance-heartbeat.service"], timeout=180)
    device = wait_for("device on the fleet view", hub_device, 120, 3.0)
    result["fleet"] = {
        k: device.get(k)
        for k in ("device_id", "trust_version", "camera", "last_sync_result", "audit_backlog")
    }
    # Soak: every always-on unit up at least soak_s (more than twice every WatchdogSec).
    soak = float(SETTINGS["soak_s"])
    since = max(int(show(u).get("ActiveEnterTimestampMonotonic") or 0) / 1e6 for u in ALWAYS_ON)
    time.sleep(max(0.0, since + soak - uptime()))
    result["soak_s"] = round(uptime() - since, 1)
    result["units"] = units_table(sampler)
    result["timers_and_paths"] = {u: show(u)["ActiveState"] for u in TIMERS_AND_PATHS}
    result["failed"] = subprocess.run(
        ["systemctl", "--failed", "--plain", "--no-legend"], capture_output=True, text=True
    ).stdout.strip()
    picture_test(result)
    kill_test(result)
    guest_mdl.blocked_and_back(guest, result)
    guest_mdl.without_controller(guest, result)
    result["failed_after_kill_test"] = subprocess.run(
        ["systemctl", "--failed", "--plain", "--no-legend"], capture_output=True, text=True
    ).stdout.strip()


def main() -> None:
    result: dict[str, Any] = {"ok": False}
    sampler = PeakSampler(DEVICE_UNITS + CENTRE_UNITS)
    sampler.start()
    try:
        check(result, sampler)
        result["ok"] = True
    except Exception:
        result["error"] = traceback.format_exc()[-3000:]
    sampler.stop.set()
    result.setdefault("units", units_table(sampler))
    result["journal_tail"] = subprocess.run(
        ["journalctl", "-b", "--no-pager", "-o", "short-monotonic", "-p", "warning", "-n", "80"],
        capture_output=True,
        text=True,
    ).stdout[-12000:]
    with open(OUT, "w") as out:
        out.write("\n@@BOOT-CHECK@@" + json.dumps(result) + "@@END@@\n")
        out.flush()
    subprocess.run(["systemctl", "poweroff", "--no-block"])


if __name__ == "__main__":
    main()
