"""appliance mdoc read: one live mDL session from the command line (spec mdl-reader s.5.2).

The kiosk's code path (``kiosk.mdoc_session.run_session``): the device's trust store, clock,
checkpoint rules and audit (source ``cli-live``), the ``[mdoc]`` settings and radio (on a
device with ``radio_socket`` set, through the radio service, like the kiosk). The
engagement comes from ``--engagement`` or from the camera (the first `mdoc:` QR seen).
Prints the ``appliance mdoc verify`` line and exits like it; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

PROGRESS = {"connecting": "Connecting to phone...", "approve": "Approve on your phone..."}


def register_read(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "read",
        help="read an mDL from a phone over Bluetooth LE",
        description="Read one ISO 18013-5 mDL live: the phone's QR engagement (from the "
        "camera, or --engagement), a BLE session, the verdict decided and audited as the "
        "kiosk does. Prints VERDICT REASON MDOC ISS DOCTYPE NUMBER; exit 0 PASS, 1 FAIL, "
        "2 UNVERIFIABLE, 64 bad usage or unreadable configuration, 74 audit not written.",
        epilog="example: appliance mdoc read --config /etc/appliance/appliance.toml",
    )
    p.add_argument(
        "--config",
        type=Path,
        required=True,
        metavar="FILE",
        help="device configuration (trust store, clock, audit, [mdoc])",
    )
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument(
        "--transport",
        metavar="NAME",
        help="override mdoc.transport: bumble:hci-socket:N, bumble:local (tests); drives "
        "that controller from this process, not through mdoc.radio_socket",
    )
    p.add_argument(
        "--engagement",
        metavar="TEXT",
        help="the phone's mdoc: QR text (default: wait for it on the camera)",
    )
    p.set_defaults(func=run_read)


def run_read(args: argparse.Namespace, *, radio: Any = None) -> int:
    """``radio``: the ``LocalRadio`` a test shares with a simulated phone (bumble:local)."""
    from appliance.commands.mdoc_output import print_result
    from appliance.commands.verify import EXIT_NO_AUDIT, _require_enrolled, exit_status
    from appliance.config import load_config
    from appliance.core.errors import AuditUnavailable
    from appliance.kiosk.compose import build_service
    from appliance.kiosk.mdoc_session import mdoc_reader, run_session

    config = load_config(args.config)
    if args.transport:
        config = dataclasses.replace(
            config, mdoc=dataclasses.replace(config.mdoc, transport=args.transport, radio_socket="")
        )
    try:
        _require_enrolled(config, args.config)
        service = build_service(config)
        reader = mdoc_reader(config, radio=radio)
        text = args.engagement if args.engagement is not None else wait_for_engagement(config)
        result = run_session(text, reader, service, "cli-live", on_event=_progress)
    except AuditUnavailable as e:
        print(f"appliance mdoc read: could not audit: {e}", file=sys.stderr)
        return EXIT_NO_AUDIT
    print_result(result, args.json)
    return exit_status([result.verdict.outcome])


def _progress(state: str) -> None:
    print(PROGRESS.get(state, state), file=sys.stderr, flush=True)


def wait_for_engagement(config: Any) -> str:
    """The first `mdoc:` text the camera sees (other codes are ignored); Ctrl-C to stop."""
    from appliance.devices.camera import open_frame_source
    from appliance.devices.scanner import FrameScanner, make_decoder
    from appliance.kiosk.mdoc_session import is_mdoc

    source = open_frame_source(config.camera)
    scanner = FrameScanner(make_decoder(config.scanner.backend, live=True))
    print("Show the phone's QR code to the camera...", file=sys.stderr, flush=True)
    source.open()
    try:
        while True:
            frame = source.read(0.2)
            if frame is None:
                continue
            for text in scanner.scan(frame.grey):
                if is_mdoc(text):
                    return str(text)
    finally:
        source.close()
