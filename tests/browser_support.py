"""Headless Chromium for the browser tests: Debian's binary driven by Playwright, and the
screens on a real threaded werkzeug server on loopback.

Test modules call ``require_chromium()`` at import, so a machine without Chromium or
Playwright skips them with a reason.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

CHROMIUM = os.environ.get("APPLIANCE_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling out, which this machine's
# closed network refuses.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SIZES = [(800, 480), (1920, 1080)]


def require_chromium() -> Any:
    """Playwright's sync API, or a module-level skip naming what to install."""
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip(
            f"Chromium not found at {CHROMIUM} (apt-get install chromium)", allow_module_level=True
        )
    return pytest.importorskip("playwright.sync_api")


def launch(sync_api: Any, profile: Path) -> Iterator[Any]:
    """A persistent browser context at 800x480, British English, Bangkok time."""
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 800, "height": 480},
            locale="en-GB",
            timezone_id="Asia/Bangkok",
        )
        yield context
        context.close()


class Server:
    """A WSGI app on a real threaded werkzeug server on loopback."""

    def __init__(self, app: Any, kit: Any = None) -> None:
        self.kit = kit
        self.app = app
        self.httpd = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
