"""Shared fixtures: the external test data, a fake clock, temporary state."""

from __future__ import annotations

import os
from collections.abc import Iterator
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
