"""The architecture's arrows hold: the import-linter contract in pyproject.toml, and what
the kiosk process and the core actually load (architecture: arrows point inwards)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")
# Folder -> import name, as pyproject's package-dir maps them (docs/adr/0001).
PACKAGES = {
    "appliance": "appliance",
    "sync": "appliance_sync",
    "web": "appliance_web",
    "hub": "appliance_hub",
}

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    """Run lint-imports with the repository's contract over the packages found in ``tree``."""
    return subprocess.run(
        [str(LINT), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _copy_tree(dest: Path) -> Path:
    for folder, name in PACKAGES.items():
        shutil.copytree(
            REPO / folder,
            dest / name,
            ignore=shutil.ignore_patterns("__pycache__", "templates", "static", "translations"),
        )
    return dest


def test_layer_contract_holds() -> None:
    done = _lint(REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "contract"),
    [
        ("appliance/core/verifier.py", "import numpy", "The core is pure"),
        ("appliance/core/verifier.py", "import appliance.trust.store", "Layers"),
        # The core is below the platform; the platform is the bottom of the rest.
        ("appliance/core/snapshot.py", "import appliance.platform.files", "Layers"),
        ("appliance/platform/files.py", "import appliance.trust.store", "Layers"),
        ("appliance/config.py", "import appliance.audit.log", "Layers"),
        # Tools use core and trust only (issue 22: tools/holder.py could import the kiosk loop).
        ("appliance/tools/holder.py", "import appliance.kiosk.loop", "Layers"),
        ("appliance/kiosk/status.py", "import appliance.tools.demo", "Tools are loaded only"),
        ("appliance/kiosk/status.py", "import appliance.webauth.passwords", "webauth is the login"),
        ("appliance/kiosk/status.py", "import appliance_sync.client", "no network"),
        # Allow-lists: a kiosk module no deny-list ever named is refused as well.
        ("appliance_web/live.py", "import appliance.kiosk.local_port", "The web imports only"),
        ("appliance_web/live.py", "import appliance.kiosk.mdoc_flow", "The web imports only"),
        ("appliance_sync/client.py", "import appliance.devices.camera", "Sync imports only"),
        ("appliance_hub/server.py", "import appliance.devices.camera", "The hub imports only"),
        ("appliance_hub/server.py", "import appliance.audit.log", "The hub imports only"),
        ("appliance_hub/store.py", "import flask", "The hub's records know no Flask"),
    ],
)
def test_contract_refuses_a_crossing_import(
    tmp_path: Path, module: str, bad_import: str, contract: str
) -> None:
    tree = _copy_tree(tmp_path)
    target = tree / module
    target.write_text(target.read_text() + f"\n{bad_import}  # a crossing import\n")
    done = _lint(tree)
    assert done.returncode != 0
    broken = [line for line in done.stdout.splitlines() if "BROKEN" in line]
    assert any(contract in line for line in broken), done.stdout[-3000:]


def test_layers_refuse_a_module_in_no_part(tmp_path: Path) -> None:
    """The layers are exhaustive: a new flat module under appliance/ must be placed in one."""
    tree = _copy_tree(tmp_path)
    (tree / "appliance" / "stray.py").write_text('"""A helper in no part."""\n')
    done = _lint(tree)
    assert done.returncode != 0
    assert "appliance.stray" in done.stdout, done.stdout[-3000:]


CYCLES = """
import grimp
graph = grimp.build_graph("appliance", cache_dir=None)
core = {m for m in graph.modules if m.startswith("appliance.core")}
for module in sorted(core):
    for imported in sorted(graph.find_modules_directly_imported_by(module) & core):
        if imported != module and graph.chain_exists(importer=imported, imported=module):
            print(module, "->", imported)
"""


def _core_cycles(tree: Path) -> list[str]:
    """Imports inside the core that are part of a cycle (TYPE_CHECKING imports count)."""
    done = subprocess.run(
        [sys.executable, "-c", CYCLES],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return done.stdout.splitlines()


def test_core_has_no_import_cycle(tmp_path: Path) -> None:
    assert _core_cycles(_copy_tree(tmp_path)) == []


def test_core_cycle_is_found(tmp_path: Path) -> None:
    """The check above can fail: key_ring importing snapshot (which imports it) is a cycle."""
    tree = _copy_tree(tmp_path)
    target = tree / "appliance" / "core" / "key_ring.py"
    target.write_text(target.read_text() + "\nimport appliance.core.snapshot  # a cycle\n")
    assert "appliance.core.key_ring -> appliance.core.snapshot" in _core_cycles(tree)


def _loaded(modules: list[str]) -> set[str]:
    code = (
        f"import sys\nfor m in {modules!r}: __import__(m)\nprint('\\n'.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return set(out.split())


def test_core_loads_no_adapter() -> None:
    """Function-level imports escape the static contract: what verify() really loads."""
    loaded = _loaded(["appliance.core.verifier", "appliance.core.credential.registry"])
    bad = {
        m
        for m in loaded
        if m.split(".")[0]
        in {
            "numpy",
            "PIL",
            "flask",
            "sqlite3",
            "sqlite_utils",
            "tuf",
            "urllib3",
            "pyzbar",
            "zxingcpp",
            "gpiozero",
            "appliance_web",
            "appliance_sync",
            "appliance_hub",
        }
    }
    bad |= {
        m
        for m in loaded
        if m.startswith("appliance.") and not m.startswith(("appliance.core", "appliance.core."))
    }
    assert not bad, sorted(bad)


def test_kiosk_process_loads_no_network_client() -> None:
    """The kiosk's modules (loop, port, bridge, status, composition) load no sync package
    and no TUF network client: tuf.api alone checks metadata offline. (tuf.api's signer
    dependencies load urllib3 as a library; nothing in the kiosk opens a connection.)"""
    loaded = _loaded(
        [
            "appliance.kiosk.loop",
            "appliance.kiosk.compose",
            "appliance.kiosk.bridge",
            "appliance.kiosk.status",
            "appliance.kiosk.local_port",
            "appliance.devices.camera",
            "appliance.audit.log",
        ]
    )
    bad = {
        m
        for m in loaded
        if m.split(".")[0] in {"appliance_sync", "appliance_hub", "appliance_web", "flask"}
        or m.startswith("tuf.ngclient")
    }
    assert not bad, sorted(bad)


MAX_MODULE_LINES = 450


def test_no_module_passes_450_lines() -> None:
    """Modules small, one job each (issue 15): a module past the limit is split by its jobs."""
    long = {
        str(path.relative_to(REPO)): n
        for folder in PACKAGES
        for path in sorted((REPO / folder).rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"over {MAX_MODULE_LINES} lines, split by job: {long}"
