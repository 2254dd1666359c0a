"""Structure-aware generators for the verifier fuzzers (hypothesis strategies).

Hostile CBOR trees (every major type, bignums, NaN and infinities, the registered tags,
deep and wide nesting) are placed in one part of an otherwise well-formed COSE_Sign1 (the
protected header, the unprotected header, or the claims of a payload signed by a trusted
key, so it reaches claims parsing) and encoded for every prefix: ``LC1:``, ``LP1:``,
``HC1:`` and ``shc:/`` (the tree as JSON in a compact JWS). Used by
tests/security/test_sec_structure_fuzz.py (short, derandomized) and by fuzz_verify.py
(atheris, ``make fuzz``).
"""

from __future__ import annotations

import base64
import json
import math
import random
import zlib
from typing import Any

import cbor2
from hypothesis import strategies as st

from appliance.core.credential.base45 import b45encode
from appliance.tools.issuer import ALG_IDS, SigningKey

# Registered tags cbor2 knows (RFC 8949 and the IANA registry), plus the COSE/CWT ones.
REGISTERED_TAGS = (
    0,
    1,
    2,
    3,
    4,
    5,
    18,
    21,
    22,
    23,
    24,
    25,
    28,
    29,
    30,
    32,
    33,
    34,
    35,
    36,
    37,
    61,
    256,
    258,
    260,
    261,
    1004,
    55799,
)
PLACES = (
    "protected-entry",
    "protected-alg",
    "protected-kid",
    "protected-whole",
    "unprotected-entry",
    "payload-claim",
    "payload-licence",
    "payload-whole",
)
PREFIXES = ("LC1:", "LP1:", "HC1:", "shc:/")
# Larger envelopes only test the outer size limits (covered elsewhere) and slow the fuzzer.
MAX_COSE_BYTES = 40_000

INT64 = st.integers(-(2**63), 2**63 - 1)
WIDE_INT = st.one_of(
    st.integers(-(2**64), 2**64 - 1), st.integers(0, 20_000).map(lambda bits: (1 << bits) - 1)
)
TEXT = st.text(max_size=40)
_MIME = "Content-Type: multipart/mixed; boundary=b\n\n" + "--b\n\n" * 3000
# Values known to hurt a naive decoder, drawn as often as any other kind of leaf.
_NASTY = (
    (1 << 16_000) - 1,
    -(1 << 16_000),
    2**64 - 1,
    -(2**64),
    2**63,
    float("nan"),
    float("inf"),
    -float("inf"),
    "A" * 5_000,
    b"\xff" * 3_000,
    cbor2.CBORTag(2, b"\xff" * 2_000),
    cbor2.CBORTag(36, _MIME),
    cbor2.CBORTag(35, "(a+)+$"),
    cbor2.CBORTag(4, [2**63, 1]),
    cbor2.CBORTag(1, 1e300),
)
# By index: hypothesis hashes sampled elements, and a tag around a list is not hashable.
NASTY = st.sampled_from(range(len(_NASTY))).map(_NASTY.__getitem__)
SCALARS = st.one_of(
    NASTY,
    st.none(),
    st.booleans(),
    INT64,
    WIDE_INT,
    TEXT,
    st.binary(max_size=64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.just(cbor2.undefined),
)
KEYS = st.one_of(
    INT64,
    TEXT,
    st.binary(max_size=8),
    st.floats(allow_nan=False),
    st.booleans(),
    st.tuples(st.integers(0, 5)),
)


def _tag_content(tag: int) -> st.SearchStrategy[Any]:
    """Content that makes cbor2's semantic decoder for ``tag`` do real work."""
    specific: dict[int, st.SearchStrategy[Any]] = {
        0: st.sampled_from(["2026-01-01T00:00:00Z", "9999-12-31T23:59:59.999999+14:00", "x"]),
        1: st.one_of(WIDE_INT, st.floats(allow_nan=True, allow_infinity=True)),
        2: st.binary(max_size=2_100),
        3: st.binary(max_size=2_100),
        4: st.tuples(WIDE_INT, WIDE_INT).map(list),
        5: st.tuples(WIDE_INT, WIDE_INT).map(list),
        30: st.tuples(WIDE_INT, WIDE_INT).map(list),
        35: st.sampled_from(["(a+)+$", "(?:" * 90 + ")" * 90, "[", "a{1000000}"]),
        36: st.integers(1, 4_000).map(
            lambda n: "Content-Type: multipart/mixed; boundary=b\n\n" + "--b\n\n" * n
        ),
        258: st.lists(SCALARS.filter(_hashable), max_size=20),
        28: st.lists(INT64, max_size=3),
        29: st.integers(0, 3),
        1004: st.sampled_from(["2026-01-01", "0000-00-00", "x"]),
    }
    return specific.get(tag, SCALARS)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except (TypeError, RuntimeError):  # cbor2 raises RuntimeError for a tag around a list
        return False
    return not (isinstance(value, float) and math.isnan(value))


def tagged(children: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[Any]:
    tag = st.one_of(st.sampled_from(REGISTERED_TAGS), st.integers(0, 2**64 - 1))
    content = tag.flatmap(
        lambda t: st.one_of(_tag_content(t), children if children is not None else SCALARS).map(
            lambda v: cbor2.CBORTag(t, v)
        )
    )
    return content


def cbor_trees() -> st.SearchStrategy[Any]:
    """Any CBOR tree: nested arrays, maps and tags of scalars, plus deep and wide shapes."""
    trees = st.recursive(
        st.one_of(SCALARS, tagged()),
        lambda children: st.one_of(
            st.lists(children, max_size=6),
            st.dictionaries(KEYS, children, max_size=6),
            tagged(children),
        ),
        max_leaves=24,
    )
    deep = st.tuples(st.integers(1, 40), trees).map(lambda dv: _nest(*dv))
    small = st.one_of(st.none(), st.integers(-24, 300), st.floats(width=16), st.text(max_size=3))
    wide = st.tuples(st.integers(0, 6_000), small).map(lambda nv: [nv[1]] * nv[0])
    return st.one_of(trees, deep, wide)


def _nest(depth: int, value: Any) -> Any:
    for _ in range(depth):
        value = [value]
    return value


def dumps(value: Any) -> bytes | None:
    """cbor2's encoding, or None where cbor2 cannot encode the generated value."""
    try:
        return cbor2.dumps(value)
    except (TypeError, ValueError, OverflowError, cbor2.CBOREncodeError, RecursionError):
        return None


def _claims(licence_extra: Any = None, extra: Any = None) -> dict[Any, Any]:
    licence: dict[str, Any] = {"typ": "DL", "no": "63001234", "nm": "n"}
    if licence_extra is not None:
        licence["nm"] = licence_extra
    claims: dict[Any, Any] = {
        1: "TH-DLT",
        4: 1_900_000_000,
        6: 1_799_990_000,
        7: b"\x07" * 16,
        -65537: licence,
    }
    if extra is not None:
        claims[99] = extra
    return claims


def sign1(key: SigningKey, place: str, hostile: Any) -> bytes | None:
    """A tag-18 COSE_Sign1 by ``key`` with ``hostile`` at ``place``, signed over its bytes."""
    alg, kid = ALG_IDS[key.alg], key.kid
    protected: Any = {1: alg, 4: kid}
    unprotected: dict[Any, Any] = {}
    payload: Any = _claims()
    if place == "protected-entry":
        protected[99] = hostile
    elif place == "protected-alg":
        protected[1] = hostile
    elif place == "protected-kid":
        protected[4] = hostile
    elif place == "protected-whole":
        protected = hostile
    elif place == "unprotected-entry":
        unprotected[99] = hostile
    elif place == "payload-claim":
        payload = _claims(extra=hostile)
    elif place == "payload-licence":
        payload = _claims(licence_extra=hostile)
    else:
        payload = hostile
    protected_bytes, payload_bytes = dumps(protected), dumps(payload)
    if protected_bytes is None or payload_bytes is None or dumps(unprotected) is None:
        return None
    tbs = cbor2.dumps(["Signature1", protected_bytes, b"", payload_bytes])
    return cbor2.dumps(
        cbor2.CBORTag(18, [protected_bytes, unprotected, payload_bytes, key.sign(tbs)])
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_able(value: Any) -> Any:
    if isinstance(value, cbor2.CBORTag):
        return {"tag": str(value.tag), "value": _json_able(value.value)}
    if isinstance(value, bytes):
        return _b64(value)
    if isinstance(value, dict):
        return {str(k): _json_able(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_able(v) for v in value]
    if value is cbor2.undefined:
        return None
    return value


def shc_text(place: str, hostile: Any, chunks: int) -> str | None:
    """``shc:/`` numeric text of a compact JWS whose header or payload holds the tree."""
    tree = _json_able(hostile)
    header: Any = {"alg": "ES256", "zip": "DEF", "kid": _b64(b"\x01" * 32)}
    if place.startswith("protected"):
        header = tree if place == "protected-whole" else {**header, "x": tree}
    payload = {"iss": "https://x", "nbf": 1, "vc": tree}
    try:
        header_json = json.dumps(header)
        payload_json = json.dumps(payload)
    except (TypeError, ValueError, RecursionError):
        return None
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = deflate.compress(payload_json.encode()) + deflate.flush()
    jws = ".".join((_b64(header_json.encode()), _b64(body), _b64(bytes(64))))
    digits = "".join(f"{ord(c) - 45:02d}" for c in jws)
    if chunks <= 1:
        return "shc:/" + digits
    size = -(-len(digits) // chunks)
    size += size % 2
    parts = [digits[i : i + size] for i in range(0, len(digits), size)]
    return " ".join(f"shc:/{i}/{len(parts)}/{p}" for i, p in enumerate(parts, 1))


def qr_text(
    key: SigningKey, prefix: str, place: str, hostile: Any, chunks: int = 1, compress: bool = True
) -> str | None:
    """The QR text for one prefix with the hostile tree at ``place``."""
    if prefix == "shc:/":
        return shc_text(place, hostile, chunks)
    cose = sign1(key, place, hostile)
    if cose is None or len(cose) > MAX_COSE_BYTES:
        return None
    if prefix == "LP1:":
        presentation = sign1(key, place, hostile) if place.startswith("protected") else cose
        cose = cbor2.dumps([cose, presentation])
    body = zlib.compress(cose, 9) if compress or prefix != "HC1:" else cose
    return prefix + b45encode(body)


def qr_texts(key: SigningKey, places: tuple[str, ...] = PLACES) -> st.SearchStrategy[str]:
    """QR texts of every prefix, each with one hostile tree (a known-nasty value as often
    as a generated tree) in one of ``places``."""
    return st.builds(
        qr_text,
        st.just(key),
        st.sampled_from(PREFIXES),
        st.sampled_from(places),
        st.one_of(NASTY, cbor_trees()),
        st.integers(1, 3),
        st.booleans(),
    ).filter(lambda t: t is not None)


def mutants(data: bytes, rng: random.Random, count: int, pieces: tuple[bytes, ...]) -> list[bytes]:
    """``count`` copies of ``data``, each with one change: a byte set or nudged, a cut, a
    deletion, a run repeated, or one of ``pieces`` put in (the pre-scan tests)."""
    out = []
    for _ in range(count):
        d = bytearray(data)
        i = rng.randrange(len(d) + 1)
        op = rng.randrange(6)
        if op == 0 and i < len(d):
            d[i] = rng.randrange(256)
        elif op == 1 and i < len(d):
            d[i] = (d[i] + rng.choice((1, -1, 2, 24, 32, -32))) % 256
        elif op == 2:
            del d[i:]
        elif op == 3:
            del d[i : i + rng.randrange(1, 4)]
        elif op == 4 and d:
            j = rng.randrange(len(d))
            d[i:i] = d[j : j + rng.randrange(1, 9)]
        else:
            d[i:i] = rng.choice(pieces)
        out.append(bytes(d))
    return out
