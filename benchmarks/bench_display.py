"""Memory of the kiosk screen in each browser engine, and which Pi model it fits (issue 14).

The device stack runs as in ``bench_memory`` (kiosk on the folder camera, web screen on
loopback); a browser then shows ``/kiosk`` and, after it settled, the proportional (PSS)
and resident (RSS) sizes are summed over the browser's whole process tree from
``/proc/<pid>/smaps_rollup`` (PSS counts shared libraries once across the tree, so it is
what the browser costs the device; RSS counts them in every process).

- Chromium: ``--headless=new --window-size=800,480``, software rendering, as Debian ships it.
- WPE WebKit: ``cog -P headless`` (Debian's ``cog``; its headless platform has a fixed view
  size, it takes no 800x480), only where ``cog`` is installed.

A model fits a display when the browser's PSS leaves room for the device stack and a full
sync at their budgets (bench_memory.BUDGET_MB) and the OS (``OS_MIB``).

    python benchmarks/bench_display.py [--settle 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from bench_memory import BUDGET_MB, Server, _device, _web_port
from common import Row, print_table, row

# Memory a model has, and what Raspberry Pi OS Lite with the kernel, firmware CMA and
# systemd takes before the appliance (measured as "used" after boot on a 3B+: ~110 MiB).
MODELS_MIB = {"Zero 2 W": 512, "3B+": 1024, "4 / 5 (2 GB+)": 2048}
OS_MIB = 128


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def tree_memory_mib(pid: int) -> tuple[float, float, int]:
    """PSS and RSS (MiB) summed over ``pid`` and its descendants, and how many processes."""
    children = _children()
    pending, pss, rss, count = [pid], 0, 0, 0
    while pending:
        current = pending.pop()
        pending.extend(children.get(current, []))
        try:
            text = Path(f"/proc/{current}/smaps_rollup").read_text()
        except OSError:
            continue  # gone, or a kernel thread
        count += 1
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key == "Pss":
                pss += int(value.split()[0])
            elif key == "Rss":
                rss += int(value.split()[0])
    return pss / 1024, rss / 1024, count


def _browsers(url: str, profile: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium:
        found["Chromium (800x480, software)"] = [
            chromium,
            "--headless=new",
            "--window-size=800,480",
            "--no-first-run",
            "--password-store=basic",
            "--incognito",
            f"--user-data-dir={profile / 'chromium'}",
            *(["--no-sandbox"] if os.geteuid() == 0 else []),
            url,
        ]
    cog = shutil.which("cog")
    if cog:
        found["WPE WebKit (cog, headless)"] = [cog, "--platform=headless", url]
    return found


def measure(
    argv: list[str], home: Path, settle_s: float, sleep: Callable[[float], None] = time.sleep
) -> dict[str, float]:
    """Start a browser, sample its tree every half second; the settled and the peak sizes."""
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOME": str(home)}  # caches and profiles go to the run's folder
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak_pss = peak_rss = 0.0
    pss = rss = 0.0
    count = 0
    try:
        for _ in range(max(1, int(settle_s / 0.5))):
            sleep(0.5)
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited with {proc.returncode}")
            pss, rss, count = tree_memory_mib(proc.pid)
            peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return {"pss": pss, "rss": rss, "peak_pss": peak_pss, "peak_rss": peak_rss, "processes": count}


def _fits(pss: float) -> str:
    room = {
        model: mib - OS_MIB - BUDGET_MB["stack"] - BUDGET_MB["sync"]
        for model, mib in MODELS_MIB.items()
    }
    return "; ".join(
        f"{model}: {'fits' if pss <= free else 'NO'} ({free} MiB free)"
        for model, free in room.items()
    )


def run(settle_s: float = 20.0) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-display-") as name:
        tmp = Path(name)
        config, _texts, server = _device(tmp)
        kiosk = Server(["run", "--config", str(config)], tmp, "kiosk")
        web = None
        try:
            kiosk.wait_ready()
            web = Server(["web", "--config", str(config)], tmp, "web")
            web.wait_ready()
            url = f"http://127.0.0.1:{_web_port(config)}/kiosk"
            browsers = _browsers(url, tmp)
            if not browsers:
                rows.append(row("no browser installed (chromium, cog)", 0, "-"))
            for label, argv in browsers.items():
                m = measure(argv, tmp / "home", settle_s)
                rows.append(
                    row(
                        f"{label}: PSS, settled",
                        m["pss"],
                        "MiB",
                        f"{m['processes']} processes; peak {m['peak_pss']:.0f} MiB; "
                        + _fits(m["peak_pss"]),
                    )
                )
                rows.append(
                    row(
                        f"{label}: RSS summed, settled",
                        m["rss"],
                        "MiB",
                        f"peak {m['peak_rss']:.0f} MiB (shared pages counted per process)",
                    )
                )
        finally:
            if web is not None:
                web.stop()
            kiosk.stop()
            server.stop()  # type: ignore[attr-defined]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=20.0, help="seconds to let it settle")
    args = parser.parse_args()
    print_table("Kiosk screen memory per browser engine", run(args.settle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
