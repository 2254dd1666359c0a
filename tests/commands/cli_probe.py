"""Child process for the CLI contract test: runs many ``appliance`` invocations in one process.

Usage: ``python cli_probe.py CASES.json RESULTS.jsonl``. Each case is ``{"argv": [...],
"stdin": "..."}``; each result line ``{"i", "status", "stderr", "escaped"}`` is written and
flushed before the next case starts, so a parent that times out knows which case hung.
``escaped`` holds the traceback of an exception that got past ``appliance.cli.main``:
what a user would see as a traceback on the terminal.
"""

from __future__ import annotations

import io
import json
import os
import sys
import traceback


class _Switch(io.TextIOBase):
    """A stream whose target is swapped per case (logging handlers keep the object)."""

    def __init__(self) -> None:
        self.target = io.StringIO()

    def write(self, s: str) -> int:
        return self.target.write(s)

    def writable(self) -> bool:
        return True


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    results = open(sys.argv[2], "a", encoding="utf-8")  # noqa: SIM115 - os._exit ends us
    out, err = _Switch(), _Switch()
    sys.stdout, sys.stderr = out, err  # type: ignore[assignment]
    from appliance.cli import main as cli_main

    for i, case in enumerate(cases):
        out.target, err.target = io.StringIO(), io.StringIO()
        sys.stdin = io.TextIOWrapper(io.BytesIO(case.get("stdin", "").encode()))
        escaped = None
        try:
            status = cli_main(case["argv"])
        except SystemExit as e:  # argparse --help/--version only
            status = e.code if isinstance(e.code, int) else 1
        except BaseException:  # exactly what the contract forbids
            status, escaped = None, traceback.format_exc()
        results.write(
            json.dumps(
                {"i": i, "status": status, "stderr": err.target.getvalue(), "escaped": escaped}
            )
            + "\n"
        )
        results.flush()
    results.close()
    os._exit(0)  # daemon threads a bad case may have started must not keep us alive


if __name__ == "__main__":
    main()
