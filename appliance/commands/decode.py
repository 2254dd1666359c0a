"""appliance decode [--json] IMAGE ...: the QR texts in image files (spec LC1 s.7).

Exit statuses follow verify's: 0 when every image held at least one QR code, 1 when one
held none (said on standard error, one line per picture), 64 on bad usage or an
unreadable image (nothing is printed then: every image is decoded before any output).
"""

from __future__ import annotations

import argparse
import json
import sys

from appliance.core.errors import UsageError

# The scanner's backends, spelled here so registering the command loads neither numpy nor
# PIL; tests/commands/test_decode_command.py checks they match appliance.devices.scanner.BACKENDS.
BACKENDS: tuple[str, ...] = ("zxing", "zbar", "both")
DEFAULT_BACKEND = "both"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "decode",
        help="print the QR texts found in image files",
        description=__doc__.splitlines()[0],
        epilog="example: appliance decode --json photo.jpg screenshot.png",
    )
    parser.add_argument("--json", action="store_true", help='one {"file", "texts"} per line')
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=DEFAULT_BACKEND,
        help=f"QR decoder (default {DEFAULT_BACKEND}, the measured best; see docs/adr/0003)",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG or WebP file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from appliance.core.errors import ImageReadError
    from appliance.devices.scanner import decode_image_file, make_decoder

    decoder = make_decoder(args.backend)
    found: list[tuple[str, list[str]]] = []
    for path in args.images:
        try:
            found.append((path, decode_image_file(path, decoder)))
        except ImageReadError as e:  # as verify --image: unreadable input is usage
            raise UsageError(str(e)) from e
    status = 0
    for path, texts in found:
        if not texts:
            status = 1
            print(f"appliance decode: no QR code in {path}", file=sys.stderr)
        if args.json:
            print(json.dumps({"file": path, "texts": texts}, ensure_ascii=False))
        else:
            for text in texts:
                print(text)
    return status
