"""Regenerate the Thai catalogue: extract messages, fill from th_messages.py, compile.

Run from the repository root: ``.venv/bin/python web/translations/make_catalog.py``.
The compiled ``messages.mo`` is committed (package data), so installing needs no build step;
``tests/test_web_i18n.py`` fails when the .po, the .mo or the sources disagree.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from appliance_web.translations.th_messages import TH

HERE = Path(__file__).resolve().parent
WEB = HERE.parent


def main() -> int:
    pot = HERE / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
                    str(WEB / "babel.cfg"), "-k", "lazy_gettext", "--no-location",
                    "--sort-output", "--omit-header", "-o", str(pot), str(WEB)],
                   check=True, capture_output=True, cwd=WEB)
    with pot.open("rb") as f:
        catalog = read_po(f, locale="th")
    missing = []
    for message in catalog:
        if message.id and isinstance(message.id, str):
            message.string = TH.get(message.id, "")
            if not message.string:
                missing.append(message.id)
    catalog.fuzzy = False
    out = HERE / "th" / "LC_MESSAGES"
    out.mkdir(parents=True, exist_ok=True)
    with (out / "messages.po").open("wb") as f:
        write_po(f, catalog, omit_header=False, sort_output=True, no_location=True)
    with (out / "messages.mo").open("wb") as f:
        write_mo(f, catalog)
    for m in missing:
        print("untranslated:", m)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
