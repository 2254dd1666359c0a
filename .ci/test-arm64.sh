#!/usr/bin/env bash
# Run the core suites (.ci/core-tests.txt) on aarch64 under qemu-user, in a sysroot holding
# Debian Bookworm's arm64 Python 3.11 and libzbar0, with the aarch64 wheels from PyPI.
# No emulated dpkg: apt (a private configuration, the host's sources, Architecture arm64,
# an empty package status) downloads the packages and their dependencies, `dpkg -x` unpacks
# them. The sysroot and the wheels are cached under .cache/arm64 by content hash, so a warm
# run only rebuilds the project wheel. Needs root (or qemu-user-static already installed)
# and network to the Debian mirror and PyPI. What it proves: README, "What the arm64 and
# Pi-mix jobs prove".
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
CACHE=${ARM64_CACHE:-$REPO/.cache/arm64}
PLATFORMS=(manylinux2014_aarch64 manylinux_2_28_aarch64 manylinux_2_34_aarch64)
TEST_TOOLS=(pytest hypothesis)
start=$SECONDS
mkdir -p "$CACHE"

if ! command -v qemu-aarch64-static >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "qemu-aarch64-static missing: apt-get install qemu-user-static" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends qemu-user-static >/dev/null
fi

# --- the sysroot: Debian's arm64 packages, unpacked, keyed by the package list ----------
mapfile -t packages < <(grep -vE '^\s*(#|$)' .ci/arm64-packages.txt)
root_key=$(cat .ci/arm64-packages.txt .ci/test-arm64.sh | sha256sum | cut -c1-16)
SYSROOT="$CACHE/sysroot-$root_key"
if [ ! -x "$SYSROOT/usr/bin/python3.11" ]; then
    echo "arm64: building sysroot $SYSROOT (${packages[*]})"
    apt_dir="$CACHE/apt"
    rm -rf "$apt_dir" "$SYSROOT.tmp"
    mkdir -p "$apt_dir"/{lists/partial,archives/partial,prefs} "$SYSROOT.tmp"
    : > "$apt_dir/status"
    cat > "$apt_dir/apt.conf" <<CONF
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
APT::Install-Recommends "false";
Dir::State "$apt_dir";
Dir::State::Lists "$apt_dir/lists";
Dir::State::status "$apt_dir/status";
Dir::Cache "$apt_dir";
Dir::Cache::archives "$apt_dir/archives";
Dir::Etc::preferences "/dev/null";
Dir::Etc::preferencesparts "$apt_dir/prefs";
CONF
    export APT_CONFIG="$apt_dir/apt.conf"
    apt-get update -qq
    apt-get install -y -qq --download-only "${packages[@]}" >/dev/null
    unset APT_CONFIG
    for deb in "$apt_dir"/archives/*.deb; do
        dpkg -x "$deb" "$SYSROOT.tmp"
    done
    ls "$apt_dir"/archives/*.deb | sed 's|.*/||' > "$SYSROOT.tmp/ARM64-DEBS.txt"
    rm -rf "$apt_dir"
    find "$CACHE" -maxdepth 1 -name 'sysroot-*' ! -name "sysroot-$root_key*" -exec rm -rf {} +
    mv "$SYSROOT.tmp" "$SYSROOT"
fi
echo "arm64: sysroot has $(wc -l < "$SYSROOT/ARM64-DEBS.txt") Debian packages"

# --- the aarch64 wheels: pyproject's runtime dependencies and the test tools ------------
tools="$CACHE/tools"
[ -x "$tools/bin/pip" ] || python3 -m venv "$tools"
PIP=("$tools/bin/pip" -q --disable-pip-version-check)
deps=$(python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))')
site_key=$(printf '%s\n' "$deps" "${TEST_TOOLS[@]}" "${PLATFORMS[@]}" | sha256sum | cut -c1-16)
SITE="$CACHE/site-$site_key"
if [ ! -d "$SITE" ]; then
    echo "arm64: installing aarch64 wheels into $SITE"
    rm -rf "$SITE.tmp"
    printf '%s\n' "$deps" "${TEST_TOOLS[@]}" > "$CACHE/requirements.txt"
    "${PIP[@]}" install --target "$SITE.tmp" --python-version 3.11 --implementation cp \
        "${PLATFORMS[@]/#/--platform=}" --only-binary=:all: -r "$CACHE/requirements.txt"
    find "$CACHE" -maxdepth 1 -name 'site-*' ! -name "site-$site_key*" -exec rm -rf {} +
    mv "$SITE.tmp" "$SITE"
fi

# --- the project itself: a pure-Python wheel of this checkout, fresh every run ----------
PROJECT="$CACHE/project"
rm -rf "$PROJECT" "$CACHE/dist"
"${PIP[@]}" wheel --no-deps -w "$CACHE/dist" . >/dev/null
"${PIP[@]}" install --no-deps --target "$PROJECT" "$CACHE"/dist/*.whl

# --- run under qemu-user: a wrapper is the interpreter tests start as sys.executable ----
WRAPPER="$CACHE/python3.11-aarch64"
cat > "$WRAPPER" <<WRAP
#!/bin/sh
exec qemu-aarch64-static -L "$SYSROOT" "$SYSROOT/usr/bin/python3.11" "\$@"
WRAP
chmod +x "$WRAPPER"
# A .pth in the interpreter's own dist-packages, not PYTHONPATH (tests that start a child
# with their own PYTHONPATH still find the wheels). Without binfmt_misc the host kernel
# cannot run the aarch64 interpreter, so children started as sys.executable get the wrapper.
mkdir -p "$SYSROOT/usr/lib/python3/dist-packages"
cat > "$SYSROOT/usr/lib/python3/dist-packages/appliance-arm64.pth" <<PTH
$PROJECT
$SITE
import sys; sys.executable = "$WRAPPER"
PTH
"$WRAPPER" "$REPO/.ci/arm64/arm64_report.py"
echo "arm64: set-up took $((SECONDS - start)) s"

mapfile -t suites < <(grep -vE '^\s*(#|$)' .ci/core-tests.txt)
for suite in "${suites[@]}"; do
    [ -e "$suite" ] || { echo "arm64: core suite $suite is missing (renamed?)" >&2; exit 1; }
done
# -v names each test before it runs and faulthandler dumps every thread's stack after 5
# minutes in one test, so a hang (qemu-user has deadlocked here once in six runs, all
# threads waiting on a futex) names itself. Each run is cut at 10 minutes (warm runs take
# about 3); a failed or hung run is tried once more, so an emulator deadlock costs time,
# not the build, while a real failure fails twice.
run_suites() {
    timeout -k 30 600 "$WRAPPER" -m pytest -v -p no:cacheprovider -o faulthandler_timeout=300 \
        "${suites[@]}" "$@"
}
if ! run_suites "$@"; then
    echo "arm64: the run failed or hung; running it once more" >&2
    run_suites "$@"
fi
echo "arm64: total $((SECONDS - start)) s"
