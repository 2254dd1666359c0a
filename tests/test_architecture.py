"""The core imports nothing from the adapters (architecture: arrows point inwards)."""

from __future__ import annotations

import subprocess
import sys

CORE = ["appliance.core.verifier", "appliance.core.credential.lc1", "appliance.core.credential.lp1",
        "appliance.trust.source", "appliance.trust.revocation", "appliance.core.credential.registry"]
ADAPTERS = ("picamera2", "pyzbar", "zxingcpp", "gpiozero", "flask", "sqlite_utils", "tuf",
            "urllib3", "httpx", "numpy", "PIL", "appliance_web", "appliance_sync",
            "appliance.devices.camera", "appliance.devices.scanner", "appliance.audit.log", "appliance.kiosk.loop")


def test_core_imports_no_adapter() -> None:
    code = (
        "import sys\n"
        f"for m in {CORE!r}: __import__(m)\n"
        "from appliance.core.credential.registry import profiles; profiles()\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {ADAPTERS!r} or m in {ADAPTERS!r}]\n"
        "print(','.join(sorted(bad)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout.strip()
    assert out == "", f"core imported adapters: {out}"
