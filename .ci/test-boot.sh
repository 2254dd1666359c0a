#!/usr/bin/env bash
# Boot the device image and the centre under qemu (tests/boot/run.py): the Bookworm root
# (cached by content hash under .cache/boot), both playbooks converged into it, booted
# with KVM when /dev/kvm is usable (else TCG), soaked and checked from inside the guest;
# the table goes to benchmarks/results/boot-<arch>.json. Needs root (debootstrap, chroot,
# mounts) and network to the Debian mirror and PyPI. x86_64 only (no arm64 variant yet).
# mDL is on: the guest kernel's hci_vhci gives it a Bluetooth controller whose far end is
# Bumble's emulated one, linked to a simulated phone (tests/boot/virtual_phone.py).
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH=amd64
mapfile -t wanted < <(grep -vE '^\s*(#|$)' .ci/boot-packages.txt)
missing=()
for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages: ${missing[*]} (apt-get install them as root)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "make test-boot needs root (debootstrap, chroot, mounts)" >&2
    exit 1
fi
start=$SECONDS
.venv/bin/python tests/boot/run.py "$ARCH"
echo "test-boot ($ARCH): $((SECONDS - start)) s"
