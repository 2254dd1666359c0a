#!/usr/bin/env bash
# Run the core suites (.ci/core-tests.txt) with the package versions a Pi really gets:
# Debian Bookworm's python3-numpy, python3-pil, python3-cryptography ... (.ci/pi-mix-packages.txt)
# installed with apt, a venv made from Debian's /usr/bin/python3 (3.11) with
# --system-site-packages, and `pip install -e .`, which keeps every system package the
# pyproject floors allow (pip's only-if-needed upgrades). Prints which came from where.
# amd64 is fine: the versions are under test here, the architecture in make test-arm64.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${PI_MIX_VENV:-.cache/pi-mix/venv}
MUST_BE_DEBIAN=(numpy pillow)

mapfile -t packages < <(grep -vE '^\s*(#|$)' .ci/pi-mix-packages.txt)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages: apt-get install ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

rm -rf "$VENV"
/usr/bin/python3 -m venv --system-site-packages "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -e .
"$VENV/bin/pip" install -q --disable-pip-version-check pytest hypothesis
"$VENV/bin/python" .ci/pi_mix_report.py "${MUST_BE_DEBIAN[@]}"

mapfile -t suites < <(grep -vE '^\s*(#|$)' .ci/core-tests.txt)
for suite in "${suites[@]}"; do
    [ -e "$suite" ] || { echo "pi-mix: core suite $suite is missing (renamed?)" >&2; exit 1; }
done
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "${suites[@]}" "$@"
