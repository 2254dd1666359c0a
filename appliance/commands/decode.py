"""``appliance decode [--json] IMAGE ...``: the QR texts in image files (spec LC1 s.7).

Exit 0 when every image held at least one QR code, 1 otherwise, 64 on bad usage. An
unreadable file is reported on standard error and counts as an image without a code.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    from appliance.devices.scanner import BACKENDS, DEFAULT_BACKEND

    parser = subparsers.add_parser(
        "decode",
        help="print the QR texts found in image files",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--json", action="store_true", help='one {"file", "texts"} per line')
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=DEFAULT_BACKEND,
        help=f"QR decoder (default {DEFAULT_BACKEND}, the measured best; see docs/adr/0003)",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from appliance.core.errors import ImageReadError
    from appliance.devices.scanner import decode_image_file, make_decoder

    decoder = make_decoder(args.backend)
    status = 0
    for path in args.images:
        try:
            texts = decode_image_file(path, decoder)
        except ImageReadError as e:
            print(f"appliance decode: {e}", file=sys.stderr)
            texts = []
        if not texts:
            status = 1
        if args.json:
            print(json.dumps({"file": path, "texts": texts}, ensure_ascii=False))
        else:
            for text in texts:
                print(text)
    return status
