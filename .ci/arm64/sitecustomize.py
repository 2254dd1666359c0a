"""Make child interpreters work under qemu-user without binfmt_misc.

Tests start ``sys.executable -m ...``; the emulated interpreter's own path is an aarch64
ELF the host kernel cannot run, so it is swapped for the wrapper script that starts it
under qemu (.ci/test-arm64.sh sets ARM64_PYTHON_WRAPPER). Nothing else is changed.
"""

import os
import sys

_wrapper = os.environ.get("ARM64_PYTHON_WRAPPER")
if _wrapper:
    sys.executable = _wrapper
