"""``appliance holder keygen|present``: the reference holder (wallet) side of LP1."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from appliance.core.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("holder", help="holder tools: key and live LP1 presentations")
    sub = p.add_subparsers(dest="holder_command", metavar="ACTION", required=True)
    k = sub.add_parser("keygen", help="new holder key (0600) and its public key (KEY.pub)")
    k.add_argument("--alg", choices=("ES256", "EdDSA"), default="ES256",
                   help="ES256 (P-256) or EdDSA (Ed25519)")
    k.add_argument("--out", type=Path, required=True)
    k.set_defaults(func=run_keygen)

    pr = sub.add_parser("present", help="print a fresh LP1 text for a credential")
    pr.add_argument("--credential", required=True, help="LC1 QR text, or @FILE")
    pr.add_argument("--key", type=Path, required=True, help="holder private key (PEM)")
    pr.add_argument("--at", help="presentation time (ISO 8601; default now)")
    pr.add_argument("--png", type=Path, help="also write a QR code PNG")
    pr.add_argument("--every", type=float, metavar="SECONDS",
                    help="keep printing fresh presentations, as a phone would")
    pr.set_defaults(func=run_present)


def run_keygen(args: argparse.Namespace) -> int:
    from appliance.tools.issuer import generate_key, save_private_key

    if args.out.exists():
        raise UsageError(f"{args.out} exists; refusing to overwrite a key")
    key = generate_key(args.alg)
    save_private_key(key, args.out)
    pub = args.out.with_name(args.out.name + ".pub")
    pub.write_text(key.public_pem())
    print(str(pub))
    return 0


def run_present(args: argparse.Namespace) -> int:
    from appliance.commands.issuer import write_outputs
    from appliance.commands.verify import parse_instant
    from appliance.tools.holder import present
    from appliance.tools.issuer import load_private_key

    text = args.credential
    if text.startswith("@"):
        text = Path(text[1:]).read_text().strip()
    key = load_private_key(args.key)
    if args.every is not None and args.every <= 0:
        raise UsageError("--every needs a positive number of seconds")
    while True:
        at = parse_instant(args.at) if args.at else time.time()
        lp1 = present(text, key, int(at))
        write_outputs(lp1, None, args.png)
        print(lp1, flush=True)
        if args.every is None:
            return 0
        try:
            time.sleep(args.every)
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return 0
