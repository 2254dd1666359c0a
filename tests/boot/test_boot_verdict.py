"""The boot job's verdict (tests/boot/run.py) on the guest's report: what makes it fail.

The boot itself runs in `make test-boot` (root, qemu); here only the host's reading of the
guest's JSON, so a report with a restart, a unit over its MemoryHigh or a failed unit can
never pass.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from typing import Any

# Loaded by path under its own name: "run" and "root" are common module names.
_spec = importlib.util.spec_from_file_location("boot_run", Path(__file__).with_name("run.py"))
assert _spec and _spec.loader
boot_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(boot_run)
rows, table, verdict = boot_run.rows, boot_run.table, boot_run.verdict

GOOD: dict[str, Any] = {
    "ok": True,
    "units": [
        {
            "unit": "appliance-kiosk.service",
            "active": "active",
            "sub": "running",
            "result": "success",
            "restarts": 0,
            "memory_high": 88 << 20,
            "memory_peak": 75 << 20,
            "always_on": True,
        },
        {
            "unit": "appliance-sync.service",
            "active": "inactive",
            "sub": "dead",
            "result": "success",
            "restarts": 0,
            "memory_high": 96 << 20,
            "memory_peak": 25 << 20,
            "always_on": False,
        },
    ],
    "timers_and_paths": {"appliance-sync.timer": "active", "appliance-sync.path": "active"},
    "failed": "",
    "failed_after_kill_test": "",
    "kill_to_limit": {"fault_shown": True, "kiosk_back": True},
    "mdl": {
        "first_pass": {"profile": "MDOC", "outcome": "PASS", "reason": "OK"},
        "hub_records": 3,
        "capabilities": {
            "appliance-kiosk.service": dict.fromkeys(
                ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"), "0x0"
            ),
            "appliance-mdl-radio.service": {
                "CapInh": "0x0",
                "CapPrm": "0x1000",
                "CapEff": "0x1000",
                "CapBnd": "0x1000",
                "CapAmb": "0x1000",
            },
        },
        "rfkill": {
            "while_blocked": {"MDOC UNVERIFIABLE MDOC_NO_SUPPORTED_TRANSPORT": 1},
            "pass_again_s": 6.0,
        },
        "without_controller": {"mdoc_reason": "MDOC_NO_SUPPORTED_TRANSPORT", "licence": "PASS"},
    },
    "boot_s": 27.0,
    "soak_s": 100.0,
    "host": {"arch": "amd64", "accel": "tcg: no usable /dev/kvm", "timings_s": {"qemu_s": 1.0}},
}


def _with(change: Any) -> dict[str, Any]:
    report = copy.deepcopy(GOOD)
    change(report)
    return report


def test_a_good_report_passes_and_prints_every_unit():
    assert verdict(GOOD) == []
    text = table(GOOD)
    assert "appliance-kiosk.service" in text and "75.0" in text and "88.0" in text
    assert "appliance-mdl-radio.service            CapEff 0x1000 CapBnd 0x1000" in text
    names = [r["name"] for r in rows(GOOD)]
    assert "appliance-kiosk.service: peak memory (cgroup memory.peak)" in names


def test_each_fault_fails_the_job():
    faults = [
        lambda r: r["units"][0].update(restarts=1),
        lambda r: r["units"][0].update(active="failed"),
        lambda r: r["units"][1].update(result="exit-code"),
        lambda r: r["units"][0].update(memory_peak=90 << 20),
        lambda r: r["timers_and_paths"].update({"appliance-sync.timer": "inactive"}),
        lambda r: r.update(failed="appliance-upload.service loaded failed failed"),
        lambda r: r["kill_to_limit"].update(fault_shown=False),
        lambda r: r["kill_to_limit"].update(kiosk_back=False),
        lambda r: r.update(ok=False, error="TimeoutError: PASS verdict"),
        lambda r: r["mdl"].pop("first_pass"),
        lambda r: r["mdl"].update(hub_records=0),
        lambda r: r["mdl"]["capabilities"]["appliance-kiosk.service"].update(CapEff="0x1000"),
        lambda r: r["mdl"]["capabilities"]["appliance-kiosk.service"].update(CapBnd="0x1000"),
        lambda r: r["mdl"]["capabilities"]["appliance-mdl-radio.service"].update(CapEff="0x3000"),
        lambda r: r["mdl"]["capabilities"].pop("appliance-mdl-radio.service"),
        lambda r: r["mdl"]["without_controller"].update(mdoc_reason="MDOC_TRANSPORT_FAILED"),
        lambda r: r["mdl"]["rfkill"].update(while_blocked={"MDOC UNVERIFIABLE MDOC_TIMEOUT": 1}),
        lambda r: r["mdl"]["rfkill"].pop("pass_again_s"),
    ]
    for fault in faults:
        assert verdict(_with(fault)), fault
