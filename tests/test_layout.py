"""Tests mirror the code: the test of a module is in the folder named after its part.

Each folder of tests/ is a package of the code (tests/core for appliance/core, tests/hub for
hub/, ...) or one of the few named below with what it holds instead; a test file at the top
is one of the whole-tree checks or tests a module at the top of appliance/. Test modules
import helpers by bare name (pyproject's ``pythonpath``), so file names are unique.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"

# Folders that are not a package of the code, each with the paths it tests.
NOT_PACKAGES = {
    "deploy": ("ansible", "systemd"),  # the playbooks and the units
    "docs": ("docs", "README.md"),  # the pages, checked against the code
    "benchmarks": ("benchmarks",),  # the benchmarks' own generators
    # The mDL reader end to end (core.credential.mdoc, devices.ble_*, kiosk.mdoc_*, commands
    # mdoc): one folder, for the Annex D vectors and the holder simulator all its tests share.
    "mdoc": ("appliance/core/credential/mdoc",),
    "security": (),  # hostile-input replays across parts: test_sec_<topic>.py per finding
    "fuzz": (),  # fuzzing harnesses, their seeds and the short run
    "boot": (),  # the images booted under qemu (.ci/test-boot.sh)
    "data": (),  # fixed test data (golden vectors)
}
# Test files at the top of tests/: whole-tree checks, and modules at the top of appliance/.
TOP = {"test_architecture.py", "test_floors.py", "test_layout.py", "test_config.py"}


def _package_folders() -> dict[str, Path]:
    """Test folder name -> package folder: appliance's sub-packages and the packages that
    pyproject maps from a folder of their own (sync/, web/, hub/)."""
    folders = {p.parent.name: p.parent for p in (REPO / "appliance").glob("*/__init__.py")}
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    for folder in setuptools["package-dir"].values():
        if folder != "appliance":
            folders[folder] = REPO / folder
    return folders


def _test_folders() -> list[Path]:
    return sorted(p for p in TESTS.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def test_every_test_folder_mirrors_a_package_or_says_what_it_holds() -> None:
    packages = _package_folders()
    strays = [
        p.name for p in _test_folders() if p.name not in packages and p.name not in NOT_PACKAGES
    ]
    assert strays == [], f"name a test folder after its package ({sorted(packages)})"
    for name, paths in NOT_PACKAGES.items():
        assert all((REPO / path).exists() for path in paths), name


def test_the_top_holds_only_whole_tree_checks() -> None:
    top = {p.name for p in TESTS.glob("test_*.py")}
    assert top <= TOP, f"move into the folder of the part they test: {sorted(top - TOP)}"


def test_module_names_are_unique_across_folders() -> None:
    """pytest imports test files by bare name (no __init__.py): two of one name collide."""
    names = Counter(
        p.name for p in TESTS.rglob("*.py") if p.name != "conftest.py" and "seeds" not in p.parts
    )
    assert [n for n, c in names.items() if c > 1] == []


def test_helpers_are_importable_from_every_folder() -> None:
    pytest_options = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]
    paths = pytest_options["ini_options"]["pythonpath"]
    assert "tests" in paths
    assert all((REPO / p).is_dir() for p in paths), paths
