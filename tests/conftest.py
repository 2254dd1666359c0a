"""Shared fixtures: the external test data, temporary state, the trust authority, the device
web and the hub as Flask apps (the fake clock and NOW: tests/support.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only shared test data (env APPLIANCE_SHARED_DATA, default ../shared/data).

    Skips with a clear reason where it is absent, so a checkout without it still tests
    everything else.
    """
    root = Path(os.environ.get("APPLIANCE_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not root.is_dir():
        pytest.skip(f"shared test data not found at {root} (set APPLIANCE_SHARED_DATA)")
    return root


@pytest.fixture(scope="session")
def docs_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where tests write generated docs (screenshots, the interop report).

    A temporary folder, so tests never rewrite tracked files; ``make docs`` sets
    APPLIANCE_WRITE_DOCS=1 to regenerate the committed copies under docs/.
    """
    if os.environ.get("APPLIANCE_WRITE_DOCS") == "1":
        return REPO / "docs"
    return tmp_path_factory.mktemp("docs")


@pytest.fixture
def authority(tmp_path: Path) -> Any:
    """A trust authority (tests/sync_support.py) that has published once. Modules that need
    another shape (a served URL beside it, a wider scope) define their own."""
    from sync_support import Authority

    a = Authority.create(tmp_path / "authority")
    a.publish()
    return a


@pytest.fixture
def server(authority: Any) -> Iterator[Any]:
    """The authority's repository served over HTTP on loopback."""
    from sync_support import RepoServer

    s = RepoServer(authority.repo)
    yield s
    s.stop()


# --- The device web and the hub as Flask apps: one way to build each, for every folder -----
# (tests/web, tests/hub, tests/security, tests/mdoc). A module that needs another shape
# overrides the first fixture of the chain (web_kit, hub_app), e.g. a kit with recorded calls.


@pytest.fixture
def web_kit(tmp_path: Path) -> Any:
    """The device web's parts in kiosk mode (tests/web_support.py: a real kiosk port)."""
    from web_support import make_kit

    return make_kit(tmp_path)


@pytest.fixture
def web_app(web_kit: Any) -> Any:
    from web_support import make_app

    return make_app(web_kit)


@pytest.fixture
def web_client(web_app: Any) -> Any:
    return web_app.test_client()


@pytest.fixture
def admin_client(web_client: Any) -> Any:
    """``web_client`` logged in on the admin screen."""
    from web_support import login_admin

    assert login_admin(web_client).status_code == 302
    return web_client


@pytest.fixture
def inspector_kit(tmp_path: Path) -> Any:
    """The device web's parts in inspector mode (holder details shown after login)."""
    from web_support import make_kit

    return make_kit(tmp_path, mode="inspector")


@pytest.fixture
def inspector_client(inspector_kit: Any) -> Any:
    """A client of the inspector-mode web, logged in as the inspector."""
    from web_support import login_inspector, make_app

    client = make_app(inspector_kit).test_client()
    assert login_inspector(client).status_code == 302
    return client


@dataclass
class HubApp:
    app: Any
    store: Any
    clock: Any


@pytest.fixture
def hub_app(tmp_path: Path) -> Iterator[HubApp]:
    """A hub with logins over SQLite (tests/hub_auditor_support.py ``make_hub``)."""
    from hub_auditor_support import make_hub

    app, store, clock = make_hub(tmp_path)
    yield HubApp(app, store, clock)
    store.close()


@pytest.fixture
def hub_client(hub_app: HubApp) -> Any:
    return hub_app.app.test_client()


@pytest.fixture
def auditor_client(hub_client: Any) -> Any:
    """``hub_client`` logged in as the auditor."""
    from hub_auditor_support import AUDITOR, AUDITOR_PW, login

    assert login(hub_client, AUDITOR, AUDITOR_PW).status_code == 302
    return hub_client


@pytest.fixture
def hub_admin_client(hub_app: HubApp) -> Any:
    """A client of the same hub logged in as its administrator."""
    from hub_auditor_support import ADMIN, ADMIN_PW, login

    client = hub_app.app.test_client()
    assert login(client, ADMIN, ADMIN_PW).status_code == 302
    return client


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder short enough for a Unix socket's path (108 bytes; pytest's tmp_path is not)."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="sock-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
