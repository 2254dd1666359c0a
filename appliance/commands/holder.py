"""``appliance holder keygen|present``: the reference holder (wallet) side of LP1."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from appliance.commands.argtypes import iso_instant, positive_float
from appliance.core.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "holder",
        help="holder tools: key and live LP1 presentations",
        description="The reference holder (wallet) side of LP1 live codes (spec LP1).",
        epilog="example: appliance holder present --credential @taxi.txt --key holder.pem",
    )
    sub = p.add_subparsers(dest="holder_command", metavar="ACTION", required=True)
    k = sub.add_parser(
        "keygen",
        help="new holder key (0600) and its public key (KEY.pub)",
        description="A new holder key (0600) and its public key in KEY.pub, "
        "for 'appliance issuer issue --holder-key KEY.pub'.",
        epilog="example: appliance holder keygen --alg ES256 --out holder.pem",
    )
    k.add_argument(
        "--alg",
        choices=("ES256", "EdDSA"),
        default="ES256",
        help="ES256 (P-256) or EdDSA (Ed25519)",
    )
    k.add_argument(
        "--out",
        type=Path,
        required=True,
        help="private key file to create (PEM, 0600; never overwritten)",
    )
    k.set_defaults(func=run_keygen)

    pr = sub.add_parser(
        "present",
        help="print a fresh LP1 text for a credential",
        description="Print a fresh LP1 text for a holder-bound LC1 credential; "
        "the key must be the credential's holder key (cnf).",
        epilog="example: appliance holder present --credential @taxi.txt "
        "--key holder.pem --every 5",
    )
    pr.add_argument("--credential", required=True, help="LC1 QR text, or @FILE")
    pr.add_argument("--key", type=Path, required=True, help="holder private key (PEM)")
    pr.add_argument("--at", type=iso_instant, help="presentation time (ISO 8601; default now)")
    pr.add_argument("--png", type=Path, help="also write a QR code PNG")
    pr.add_argument(
        "--every",
        type=positive_float,
        metavar="SECONDS",
        help="keep printing fresh presentations, as a phone would",
    )
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


def _credential_text(value: str) -> str:
    """The LC1 text itself, or read from ``@FILE``."""
    if not value.startswith("@"):
        return value.strip()
    path = Path(value[1:])
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError as e:
        raise UsageError(f"cannot read --credential {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise UsageError(f"--credential {path} is not an LC1 text (not ASCII)") from e


def run_present(args: argparse.Namespace) -> int:
    from appliance.commands.issuer import write_outputs
    from appliance.commands.verify import parse_instant
    from appliance.tools.holder import check_bound_to, present
    from appliance.tools.issuer import load_private_key

    text = _credential_text(args.credential)
    key = load_private_key(args.key)
    check_bound_to(text, key)
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
