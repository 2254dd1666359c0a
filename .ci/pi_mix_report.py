"""Say where each runtime dependency came from in the Pi-mix venv (not a test).

A Pi's venv is made with --system-site-packages, so Debian's numpy 1.24 and Pillow 9.4
(brought by python3-picamera2) are what the kiosk imports. This prints, for every runtime
dependency in pyproject.toml, its version and whether Debian or pip put it there; a Debian
package pip replaced because a floor excludes it is named, for the lead to decide. Exit 1
when a package that must come from Debian (argv) did not: then the job proves nothing.
"""

from __future__ import annotations

import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

DEBIAN_SITE = Path("/usr/lib/python3/dist-packages")


def debian_version(name: str) -> str | None:
    """The version of ``name`` in Debian's dist-packages, if Debian installed it."""
    for dist in metadata.distributions(path=[str(DEBIAN_SITE)]):
        if dist.metadata["Name"] and dist.metadata["Name"].lower() == name.lower():
            return dist.version
    return None


def main(must_be_debian: list[str]) -> int:
    """Print one line per runtime dependency; fail if a must-be-Debian one is not."""
    pyproject = tomllib.loads(Path("pyproject.toml").read_text())
    specs = pyproject["project"]["dependencies"]
    wrong = []
    print(f"{'dependency':<17} {'version':<12} {'from':<7} note")
    for spec in specs:
        name = Requirement(spec).name
        dist = metadata.distribution(name)
        origin = Path(str(dist.locate_file(""))).resolve()
        source = "debian" if origin == DEBIAN_SITE else "pip"
        note = ""
        deb = debian_version(name)
        if source == "pip" and deb is not None:
            if Requirement(spec).specifier.contains(deb, prereleases=True):
                note = f"Debian has {deb}; another requirement needs a newer one"
            else:
                note = f"Debian has {deb}, excluded by the floor {spec!r}"
        print(f"{name:<17} {dist.version:<12} {source:<7} {note}")
        if name in must_be_debian and source != "debian":
            wrong.append(name)
    for name in wrong:
        print(f"pi-mix: {name} did not come from Debian: the job would not test the Pi's mix")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
