"""Print what the arm64 job really ran on, so the log proves it (not a test).

The machine, the interpreter, each compiled dependency's version and the shared objects
it mapped: the cbor2 C extension, cryptography's Rust binding, zxing-cpp, numpy, Pillow
and the sysroot's libzbar, all aarch64 ELF files.
"""

from __future__ import annotations

import platform
import sys
from importlib import import_module, metadata
from pathlib import Path

MODULES = {
    "cbor2": "cbor2._cbor2",
    "cryptography": "cryptography.hazmat.bindings._rust",
    "zxing-cpp": "zxingcpp",
    "numpy": "numpy",
    "pillow": "PIL._imaging",
    "pyzbar": "pyzbar.pyzbar",
}
AARCH64 = 183  # e_machine of an ELF file built for aarch64


def elf_machine(path: Path) -> int:
    """The ELF e_machine field (little-endian, at byte 18)."""
    head = path.read_bytes()[:20]
    return int.from_bytes(head[18:20], "little")


def main() -> int:
    """Import each compiled dependency; fail unless every mapped object is aarch64."""
    print(f"machine {platform.machine()}, Python {platform.python_version()} ({sys.executable})")
    for dist, module in MODULES.items():
        import_module(module)
        print(f"  {dist} {metadata.version(dist)}")
    from pyzbar import wrapper  # libzbar is loaded on first use

    wrapper.load_libzbar()
    mapped = sorted(
        {
            line.split()[-1]
            for line in Path("/proc/self/maps").read_text().splitlines()
            if ".so" in line.rsplit("/", 1)[-1]
        }
    )
    wrong = [p for p in mapped if elf_machine(Path(p)) != AARCH64]
    for path in mapped:
        if "zbar" in path or "_cbor2" in path or "zxing" in path:
            print(f"  mapped {path}")
    print(f"  {len(mapped)} shared objects mapped, {len(wrong)} not aarch64")
    for path in wrong:
        print(f"  NOT aarch64: {path}")
    return 1 if wrong or platform.machine() != "aarch64" else 0


if __name__ == "__main__":
    sys.exit(main())
