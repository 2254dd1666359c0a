"""Attack replay: a screen request must not grow the web process past its memory budget.

Issue 14: ``appliance web`` serving ``/kiosk`` and ``/status`` peaked at 49-65 MiB against
its 48 MB ``MemoryHigh``: a screen that reads the kiosk over its socket imported the
verifier's crypto stack (cryptography's own OpenSSL, ~6 MiB) through the staleness rule,
and the first date on a page unpickled Babel's whole CLDR locale (root + th/en, ~3 MiB of
objects) to look up twelve month names. Anyone who can open the status page (or a kiosk
screen that shows a date) thus pushed the screen into throttling.

Replayed in a fresh interpreter (imports are per process), with the real app in kiosk
socket mode (the device's mode; no kiosk listening, so the pages show their fault texts),
through Flask's test client: after every screen and language, none of those heavy stacks
is loaded and no Babel locale data was unpickled. The dates themselves must not change:
the month table the screens use equals Babel's, for each language they offer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Stacks only a verifying process needs (the kiosk, or a standalone screen verifying an upload).
HEAVY = (
    "cryptography",
    "cbor2",
    "numpy",
    "PIL",
    "zxingcpp",
    "pyzbar",
    "tuf",
    "securesystemslib",
    "sqlite3",
)
PAGES = (
    "/kiosk",
    "/status",
    "/healthz",
    "/status?lang=th",
    "/kiosk?lang=th",
    "/status?lang=en",
    "/inspector",
    "/admin/login",
)

CHILD = """
import json, sys
from pathlib import Path
from appliance.config import load_config
from appliance.commands.web import build_app

app = build_app(load_config(Path(sys.argv[1])))
client = app.test_client()
codes = {}
for path in json.loads(sys.argv[2]):
    response = client.get(path, base_url="http://127.0.0.1")
    codes[path] = [response.status_code, response.get_data(as_text=True)]
import babel.localedata
loaded = [m for m in json.loads(sys.argv[3]) if m in sys.modules]
print(json.dumps({"codes": codes, "loaded": loaded, "locales": sorted(babel.localedata._cache)}))
"""


def _device_config(tmp_path: Path) -> Path:
    config = tmp_path / "appliance.toml"
    config.write_text(f"""
[device]
id = "screen-memory"

[paths]
state_dir = "{tmp_path / "state"}"
secrets_dir = "{tmp_path / "secrets"}"

[web]
kiosk_socket = "{tmp_path / "run" / "kiosk.sock"}"
""")
    return config


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict:
    config = _device_config(tmp_path_factory.mktemp("screen-memory"))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(config), json.dumps(PAGES), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_screens_answer_without_a_kiosk(served: dict) -> None:
    codes = {path: status for path, (status, _) in served["codes"].items()}
    assert codes["/kiosk"] == 200 and codes["/status"] == 200, codes
    assert codes["/healthz"] == 503, codes  # the kiosk is not running
    assert all(status < 500 or path == "/healthz" for path, status in codes.items()), codes


def test_screens_do_not_load_the_verifier_stacks(served: dict) -> None:
    assert served["loaded"] == [], served["loaded"]


def test_dates_on_screens_do_not_unpickle_locale_data(served: dict) -> None:
    assert served["locales"] == []


def test_month_table_is_babels() -> None:
    from babel.dates import get_month_names

    from appliance_web import LANGUAGES
    from appliance_web.dates import MONTHS_ABBREVIATED

    assert set(MONTHS_ABBREVIATED) == set(LANGUAGES)
    for language, months in MONTHS_ABBREVIATED.items():
        assert list(months) == [
            get_month_names("abbreviated", "format", language)[m] for m in range(1, 13)
        ], language


@pytest.mark.parametrize("language", ["th", "en", "en_GB"])
def test_dates_read_as_babel_wrote_them(language: str) -> None:
    """The table-based texts equal what the pages showed through Babel before."""
    from datetime import UTC, datetime, timedelta

    from flask import Flask
    from flask_babel import Babel, format_date, format_datetime, to_user_timezone

    from appliance_web import dates

    app = Flask(__name__)
    app.config["BABEL_DEFAULT_TIMEZONE"] = "Asia/Bangkok"
    Babel(app, locale_selector=lambda: language)
    thai = language == "th"
    start = datetime(1999, 12, 31, 16, 59, 59, tzinfo=UTC)
    with app.test_request_context("/"):
        formatter = dates.signed_date_formatter()
        for hours in range(0, 24 * 400, 37):
            instant = start + timedelta(hours=hours)
            epoch = instant.timestamp()
            local = to_user_timezone(instant)
            day = local.date()
            for fmt, clock in (("short", "HH:mm"), ("medium", "HH:mm:ss")):
                if thai:
                    old = (
                        f"{format_datetime(instant, 'd MMM')} "
                        f"{local.year + 543} {format_datetime(instant, clock)}"
                    )
                else:
                    old = format_datetime(instant, f"d MMM y, {clock}")
                assert dates.when(epoch, fmt) == old
            old_day = (
                f"{format_date(day, 'd MMM')} {day.year + 543}"
                if thai
                else format_date(day, "d MMM y")
            )
            assert dates.day_text(day) == old_day
            assert dates.signed_date(epoch) == old_day == formatter(epoch)


# -- the kiosk's scan path ---------------------------------------------------------------

SCAN_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from support import qr_frame
from appliance.devices.scanner import FrameScanner, PresenceGate, make_decoder

frames = [qr_frame(None), qr_frame("LC1:NOT-A-LICENCE"), qr_frame(None), qr_frame("HELLO")]
skip = set(sys.modules)
scanner = FrameScanner(make_decoder("both", live=True), PresenceGate())  # as appliance run
texts = [scanner.scan(frame) for frame in frames]
loaded = sorted({"pyzbar", "numpy.ma"} & (set(sys.modules) - skip))
print(json.dumps({"texts": texts, "loaded": loaded}))
"""


def test_kiosk_scanning_clean_codes_loads_no_second_decoder() -> None:
    """zbar (libzbar, ~2 MiB) only once zxing locates a code it cannot read, and no
    numpy.ma (~1.3 MiB, pulled in by np.percentile) for the presence gate."""
    tests_dir = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-c", SCAN_CHILD, str(tests_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["texts"] == [[], ["LC1:NOT-A-LICENCE"], [], ["HELLO"]]
    assert result["loaded"] == []


def test_presence_gate_percentiles_are_numpys() -> None:
    """The gate's contrast percentiles equal ``np.percentile`` exactly, so the gate decides
    as before on every frame."""
    import numpy as np

    from appliance.devices.scanner import _percentiles

    rng = np.random.default_rng(14)
    shapes = [(1, 1), (1, 2), (2, 3), (60, 80), (45, 60), (7, 13)]
    for i in range(400):
        shape = shapes[i % len(shapes)]
        high = int(rng.integers(1, 256))
        thumb = rng.integers(0, high, size=shape, dtype=np.uint8).astype(np.int16)
        qs = (2, 98) if i % 3 else tuple(rng.uniform(0, 100, size=2))
        assert _percentiles(thumb, qs) == [float(v) for v in np.percentile(thumb, qs)], (shape, qs)
