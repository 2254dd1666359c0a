"""Step 1 of ``make test-boot``: a bootable Debian Bookworm root, cached by content hash.

debootstrap (minbase) with systemd as init, a kernel and its initramfs, and the Debian
packages both playbooks install (so the converge does not download them on every run).
PostgreSQL is installed in a second step inside the root, with /proc and a /dev/shm
mounted, so Debian makes its first cluster as on a booted host. Nothing starts in the
chroot (policy-rc.d). The result is a tarball under ``.cache/boot/``, named by the hash
of everything that decides its content (this file, the mirror, the architecture).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("APPLIANCE_BOOT_CACHE", REPO / ".cache" / "boot"))
MIRROR = os.environ.get("APPLIANCE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"

# Kernel per architecture (Debian package names).
KERNELS = {"amd64": "linux-image-amd64", "arm64": "linux-image-arm64"}
# Booted with systemd; the rest is what site.yml and central.yml install (packages role,
# hub_nginx, repo_nginx), so the converge finds them and changes only the appliance.
PACKAGES = [
    "systemd",
    "systemd-sysv",
    "udev",
    "dbus",
    "kmod",
    "initramfs-tools",
    "procps",
    "python3",
    "python3-venv",
    "python3-apt",
    "python3-packaging",
    "python3-psycopg2",
    "libzbar0",
    "fonts-thai-tlwg",
    "tzdata",
    "ca-certificates",
    "curl",
    "systemd-timesyncd",
    "openssh-server",
    "nginx",
    "sudo",
]
SECOND_STAGE = ["postgresql"]  # its postinst runs initdb: needs /proc and /dev/shm


# Bump when build() changes what it makes (the lists below are hashed themselves).
RECIPE = "2: cluster on port 5432"


def cache_key(arch: str) -> str:
    recipe = json.dumps([RECIPE, MIRROR, SUITE, arch, PACKAGES, SECOND_STAGE, KERNELS[arch]])
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def tarball_path(arch: str) -> Path:
    return CACHE / f"root-{SUITE}-{arch}-{cache_key(arch)}.tar"


def run(argv: list[str], timeout_s: float = 3600, **kw: object) -> None:
    print("+", " ".join(argv), flush=True)
    subprocess.run(argv, check=True, timeout=timeout_s, **kw)  # type: ignore[call-overload]


class Mounts:
    """/proc, /sys, /dev (bind) and a fresh /dev/shm inside ``root``, undone on exit."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.done: list[Path] = []

    def __enter__(self) -> Mounts:
        for src, rel, args in (
            ("proc", "proc", ["-t", "proc"]),
            ("sysfs", "sys", ["-t", "sysfs"]),
            ("/dev", "dev", ["--bind"]),
            ("tmpfs", "dev/shm", ["-t", "tmpfs"]),
        ):
            target = self.root / rel
            target.mkdir(parents=True, exist_ok=True)
            subprocess.run(["mount", *args, src, str(target)], check=True)
            self.done.append(target)
        return self

    def __exit__(self, *exc: object) -> None:
        for target in reversed(self.done):
            subprocess.run(["umount", "-l", str(target)], check=False)


def no_service_starts(root: Path) -> None:
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)


def build(arch: str = "amd64") -> Path:
    """The cached root tarball for ``arch``, built when absent."""
    tarball = tarball_path(arch)
    if tarball.exists():
        print(f"root: cached {tarball.name}", flush=True)
        return tarball
    CACHE.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="root-", dir=CACHE))
    root = work / "root"
    try:
        include = ",".join([*PACKAGES, KERNELS[arch]])
        argv = ["debootstrap", "--variant=minbase", f"--include={include}", f"--arch={arch}"]
        if arch != host_arch():
            argv.append("--foreign")
        run([*argv, SUITE, str(root), MIRROR])
        if arch != host_arch():
            run(["chroot", str(root), "/debootstrap/debootstrap", "--second-stage"])
        no_service_starts(root)
        shutil.copy2("/etc/resolv.conf", root / "etc/resolv.conf")
        with Mounts(root):
            env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
            run(
                [
                    "chroot",
                    str(root),
                    "apt-get",
                    "install",
                    "-y",
                    "-q",
                    "--no-install-recommends",
                    *SECOND_STAGE,
                ],
                env=env,
            )
            run(["chroot", str(root), "apt-get", "clean"], env=env)
        # pg_createcluster skips ports in use, and the chroot shares the host's network:
        # a host PostgreSQL on 5432 would move the guest's cluster to 5433.
        conf = next(root.glob("etc/postgresql/*/main/postgresql.conf"))
        conf.write_text(re.sub(r"(?m)^port = \d+", "port = 5432", conf.read_text()))
        partial = tarball.with_suffix(".partial")
        with tarfile.open(partial, "w") as tar:
            tar.add(root, arcname=".")
        partial.rename(tarball)
        for old in CACHE.glob(f"root-{SUITE}-{arch}-*.tar"):
            if old != tarball:
                old.unlink()  # an outdated recipe's root
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"root: built {tarball.name} in {time.monotonic() - start:.0f} s", flush=True)
    return tarball


def host_arch() -> str:
    return subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()


def extract(tarball: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(dest, filter="fully_trusted")
    return dest


if __name__ == "__main__":
    import sys

    print(build(sys.argv[1] if len(sys.argv) > 1 else "amd64"))
