#!/usr/bin/env bash
# Install the Debian packages listed in .ci/apt-packages.txt that are missing; with
# --services also run the set-up hooks in .ci/setup.d (PostgreSQL for the hub tests,
# which otherwise skip with a reason). Used by both
# `make demo` / `make test` (through the Makefile) and CI, so a fresh Debian machine
# needs nothing else. Needs root (or password-less sudo) only when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t wanted < <(grep -vE '^\s*(#|$)' .ci/apt-packages.txt)
missing=()
for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo -n);
    else
        echo "missing Debian packages: ${missing[*]}" >&2
        echo "install them with: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ "${1:-}" = "--services" ] && [ "$(id -u)" -eq 0 ]; then
    for hook in .ci/setup.d/*.sh; do
        [ -e "$hook" ] && bash "$hook"
    done
fi
exit 0
