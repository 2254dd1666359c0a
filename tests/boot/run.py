"""``make test-boot``: build, converge, boot under qemu, soak, check, report.

1. root.py: the Bookworm root with systemd and a kernel (cached by content hash);
2. converge.py: site.yml and central.yml into it, then an ext4 disk image;
3. here: qemu-system-x86_64 boots the image (KVM when /dev/kvm is usable, else TCG;
   cgroup v2, so MemoryHigh/MemoryMax are enforced), the guest's own check
   (guest_check.py) soaks and checks and writes JSON to the second serial port; this
   prints one table and writes it to benchmarks/results/boot-<arch>.json.

Exit 0 only when every check holds. Environment: BOOT_SOAK_S (default 100: more than
twice every WatchdogSec=30s), BOOT_MEMORY_MB (guest RAM, default 2048), BOOT_KEEP=1 keeps
the work folder, BOOT_ACCEL=tcg forces emulation.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from root import CACHE, REPO, build

RESULTS = REPO / "benchmarks" / "results"
RADIO = "appliance-mdl-radio.service"
CAP_NET_ADMIN = 1 << 12
MARK = re.compile(r"@@BOOT-CHECK@@(.*?)@@END@@", re.S)


KVM = ["-accel", "kvm", "-cpu", "host,-arch-capabilities"]
TCG = ["-accel", "tcg", "-cpu", "max"]


def accelerator(work: Path) -> tuple[list[str], str]:
    """KVM when /dev/kvm is there and a kernel really starts under it, else TCG (nested
    KVM can hang before the kernel's first line: seen on this CI machine)."""
    wanted = os.environ.get("BOOT_ACCEL", "auto")
    if wanted == "tcg" or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return TCG, "tcg: asked for" if wanted == "tcg" else "tcg: no usable /dev/kvm"
    log = work / "kvm-probe.log"
    argv = [
        "qemu-system-x86_64",
        *KVM,
        "-m",
        "256",
        "-nographic",
        "-no-reboot",
        "-nic",
        "none",
        "-monitor",
        "none",
        "-kernel",
        str(work / "vmlinuz"),
        "-initrd",
        str(work / "initrd.img"),
        "-append",
        "console=ttyS0 panic=-1",
        "-serial",
        f"file:{log}",
    ]
    with contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    if log.exists() and "Run /init" in log.read_text(errors="replace"):
        return KVM, "kvm"
    return TCG, "tcg: the kernel did not start under KVM within 30 s"


def boot(
    work: Path, memory_mb: int, timeout_s: float, accel: list[str]
) -> tuple[dict[str, Any], float]:
    console, check_out = work / "console.log", work / "check.out"
    argv = [
        "qemu-system-x86_64",
        *accel,
        "-m",
        str(memory_mb),
        "-smp",
        "2",
        "-nographic",
        "-no-reboot",
        "-nic",
        "none",
        "-kernel",
        str(work / "vmlinuz"),
        "-initrd",
        str(work / "initrd.img"),
        "-append",
        "root=/dev/vda rw console=ttyS0 systemd.unified_cgroup_hierarchy=1 "
        "systemd.show_status=auto",
        "-drive",
        f"file={work / 'disk.img'},if=virtio,format=raw",
        "-serial",
        f"file:{console}",
        "-serial",
        f"file:{check_out}",
        "-monitor",
        "none",
    ]
    print("+", " ".join(argv), flush=True)
    start = time.monotonic()
    try:
        subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        print(f"guest did not power off within {timeout_s:.0f} s", file=sys.stderr)
    seconds = time.monotonic() - start
    found = MARK.search(check_out.read_text(errors="replace") if check_out.exists() else "")
    if not found:
        tail = console.read_text(errors="replace")[-5000:] if console.exists() else ""
        return {"ok": False, "error": "no result from the guest", "console_tail": tail}, seconds
    return json.loads(found.group(1)), seconds


def mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 1048576:.1f}"


def verdict(result: dict[str, Any]) -> list[str]:
    """Every check that failed, in words (empty: all hold)."""
    bad = [] if result.get("ok") else [f"guest check: {result.get('error', '?')}"]
    for row in result.get("units", []):
        if row["always_on"] and row["active"] != "active":
            bad.append(f"{row['unit']} is {row['active']}")
        if row["restarts"]:
            bad.append(f"{row['unit']} restarted {row['restarts']} times")
        if row["result"] not in ("success", None):
            bad.append(f"{row['unit']} result {row['result']}")
        if row["memory_high"] and row["memory_peak"] and row["memory_peak"] > row["memory_high"]:
            bad.append(f"{row['unit']} peak {mib(row['memory_peak'])} MiB above MemoryHigh")
    for unit, state in result.get("timers_and_paths", {}).items():
        if state != "active":
            bad.append(f"{unit} is {state}")
    for key in ("failed", "failed_after_kill_test"):
        if result.get(key):
            bad.append(f"systemctl --failed ({key}): {result[key]}")
    if result.get("ok"):
        bad += mdl_problems(result.get("mdl", {}))
        if not result.get("kill_to_limit", {}).get("fault_shown"):
            bad.append("the fault pattern did not show")
        if not result.get("kill_to_limit", {}).get("kiosk_back"):
            bad.append("the kiosk did not come back")
    return bad


def mdl_problems(mdl: dict[str, Any]) -> list[str]:
    """The mDL reader's checks (guest_mdl.py), read again from the report."""
    bad = [] if mdl.get("first_pass") else ["no mDL PASS from the phone"]
    if not mdl.get("hub_records"):
        bad.append("no mDL audit record at the hub")
    caps = mdl.get("capabilities", {})
    kiosk, radio = caps.get("appliance-kiosk.service", {}), caps.get(RADIO, {})
    if not kiosk or any(int(v, 16) for v in kiosk.values()):
        bad.append(f"kiosk capabilities {kiosk}")
    if not radio or any(
        int(radio.get(k, "0"), 16) != CAP_NET_ADMIN for k in ("CapPrm", "CapEff", "CapBnd")
    ):
        bad.append(f"radio capabilities {radio}")
    rfkill = mdl.get("rfkill", {})
    if not rfkill.get("while_blocked", {}).get("MDOC UNVERIFIABLE MDOC_NO_SUPPORTED_TRANSPORT"):
        bad.append(f"mDL with the controller blocked: {rfkill.get('while_blocked')}")
    if rfkill.get("pass_again_s") is None:
        bad.append("no mDL PASS once the controller was unblocked")
    reason = mdl.get("without_controller", {}).get("mdoc_reason")
    if reason != "MDOC_NO_SUPPORTED_TRANSPORT":
        bad.append(f"mDL without a controller: {reason}")
    return bad


def rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The measured figures in benchmarks/results' row shape (name, value, unit, notes)."""
    host = result.get("host", {})
    where = f"qemu {host.get('arch')} ({host.get('accel', '?').split(':')[0]}), 2 vCPUs"
    out = [
        {
            "name": "boot to system up (guest uptime)",
            "value": result.get("boot_s"),
            "unit": "s",
            "notes": where,
        },
        {
            "name": "soak of the always-on units",
            "value": result.get("soak_s"),
            "unit": "s",
            "notes": "more than twice WatchdogSec=30s; NRestarts 0 checked after it",
        },
    ]
    for row in result.get("units", []):
        if row.get("memory_peak"):
            high = row.get("memory_high")
            out.append(
                {
                    "name": f"{row['unit']}: peak memory (cgroup memory.peak)",
                    "value": round(row["memory_peak"] / 1048576, 1),
                    "unit": "MiB",
                    "notes": f"MemoryHigh {mib(high)} MiB" if high else "no MemoryHigh",
                }
            )
    for row in result.get("units", []):
        if row.get("always_on") and row.get("start_s") is not None:
            out.append(
                {
                    "name": f"{row['unit']}: start (activating to active)",
                    "value": row["start_s"],
                    "unit": "s",
                    "notes": "at boot; Type=notify units: until READY=1",
                }
            )
    for name, seconds in host.get("timings_s", {}).items():
        out.append({"name": f"job: {name[:-2]}", "value": seconds, "unit": "s", "notes": ""})
    return out


def table(result: dict[str, Any]) -> str:
    lines = [f"{'unit':38} {'state':18} {'restarts':>8} {'peak MiB':>9} {'MemoryHigh':>10}"]
    for row in result.get("units", []):
        lines.append(
            f"{row['unit']:38} {row['active'] + '/' + row['sub']:18} "
            f"{row['restarts']:>8} {mib(row['memory_peak']):>9} "
            f"{mib(row['memory_high']):>10}"
        )
    for unit, state in result.get("timers_and_paths", {}).items():
        lines.append(f"{unit:38} {state:18}")
    for unit, caps in result.get("mdl", {}).get("capabilities", {}).items():
        lines.append(f"{unit:38} CapEff {caps.get('CapEff')} CapBnd {caps.get('CapBnd')}")
    return "\n".join(lines)


def main(arch: str = "amd64") -> int:
    from converge import converge

    soak_s = float(os.environ.get("BOOT_SOAK_S", "100"))
    memory_mb = int(os.environ.get("BOOT_MEMORY_MB", "2048"))
    timings: dict[str, float] = {}
    total = time.monotonic()
    start = time.monotonic()
    tarball = build(arch)
    timings["root_s"] = time.monotonic() - start
    work = CACHE / f"work-{arch}"
    if os.environ.get("BOOT_REUSE") == "1" and (work / "disk.img").exists():
        print(f"reusing the converged image in {work}", flush=True)
    else:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        timings.update(converge(work, tarball, soak_s))
    accel, why = accelerator(work)
    print(f"accelerator: {why}", flush=True)
    result, timings["qemu_s"] = boot(work, memory_mb, soak_s + 1500, accel)
    timings["total_s"] = time.monotonic() - total
    result["host"] = {
        "arch": arch,
        "accel": why,
        "memory_mb": memory_mb,
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
    }
    problems = verdict(result)
    result["problems"] = problems
    result["rows"] = rows(result)
    print(table(result))
    print(
        json.dumps(
            {
                k: result.get(k)
                for k in (
                    "boot_s",
                    "soak_s",
                    "sync",
                    "hub_records",
                    "fleet",
                    "kill_once",
                    "kill_to_limit",
                    "mdl",
                    "host",
                )
            },
            indent=1,
        )
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"boot-{arch}.json").write_text(json.dumps(result, indent=1) + "\n")
    if os.environ.get("BOOT_KEEP") != "1":
        for name in ("disk.img", "root"):
            path = work / name
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(
                missing_ok=True
            )
    if problems:
        print("test-boot FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        if result.get("journal_tail"):
            print(result["journal_tail"][-4000:], file=sys.stderr)
        return 1
    print(f"test-boot passed in {timings['total_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
