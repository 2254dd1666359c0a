#!/usr/bin/env bash
# Prove the dependency floors in pyproject.toml: a fresh virtual environment on Python 3.11
# (the oldest supported) gets the LOWEST allowed version of every runtime dependency
# (uv's "lowest-direct": each direct dependency at its floor), then the core suites run.
# A floor that fails here is false and must be raised to the lowest version that passes.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${FLOORS_VENV:-.venv-floors}
TOOLS="$VENV-uv"
# The device's core suites (.ci/core-tests.txt, shared with the arm64 and Pi-mix jobs),
# plus the screens and the kiosk socket, whose floors (flask, werkzeug) only they prove.
mapfile -t CORE < <(grep -vE '^\s*(#|$)' .ci/core-tests.txt)
CORE+=(tests/web/test_web.py tests/security/test_sec_web.py tests/security/test_sec_socket.py
       tests/security/test_sec_key_scope.py)

rm -rf "$VENV"
if [ ! -x "$TOOLS/bin/uv" ]; then
    python3 -m venv "$TOOLS"
    "$TOOLS/bin/pip" install -q uv
fi
UV="$TOOLS/bin/uv"
# python3.11 from PATH, else uv fetches a standalone CPython 3.11.
"$UV" venv -q --python 3.11 "$VENV"
"$UV" pip install -q --python "$VENV/bin/python" --resolution lowest-direct -e .
# Test tools at their newest: only the runtime floors are under test.
"$UV" pip install -q --python "$VENV/bin/python" pytest hypothesis
echo "runtime dependencies at their floors:"
"$UV" pip freeze --python "$VENV/bin/python" | grep -v '^-e '
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "${CORE[@]}"
