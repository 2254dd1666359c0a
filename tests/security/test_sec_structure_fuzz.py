"""Structure-aware fuzzing of ``verify`` (short, deterministic run; ``make fuzz`` is long).

Every generated input must end in a Verdict with a Reason *without* the last-resort net
in ``verify`` firing (the net logs an error): a fault the net catches is a bug found.
Also: the CBOR pre-scan agrees with cbor2 on every well-formed input it accepts, and the
regression seeds in tests/fuzz/seeds/ (attacks and fuzzer finds) replay cleanly.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import NOW, World

from appliance.core.credential import hc1, lc1
from appliance.core.credential.cbor_scan import scan
from appliance.core.errors import CborShapeError, Rejection
from appliance.core.reasons import Outcome, Reason
from appliance.core.verifier import Checkpoint, Verdict, verify

FUZZ_DIR = Path(__file__).resolve().parents[1] / "fuzz"
sys.path.insert(0, str(FUZZ_DIR))
from structure import PLACES, cbor_trees, dumps, qr_texts  # noqa: E402

SEEDS = sorted((FUZZ_DIR / "seeds").glob("*"))
WORLD = World()
TRUST = WORLD.trust()
CHECK = Checkpoint(check_staleness=False)
SHORT = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def net() -> _Records:
    """Records the verifier's last-resort net (module-scoped: hypothesis runs many inputs)."""
    handler = _Records()
    logger = logging.getLogger("appliance.core.verifier")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def assert_clean_verdict(text: str, net: _Records) -> Verdict:
    net.records.clear()
    v = verify(text, TRUST, NOW, checkpoint=CHECK)
    assert isinstance(v, Verdict)
    assert isinstance(v.outcome, Outcome) and isinstance(v.reason, Reason)
    assert [r.getMessage() for r in net.records] == []  # the net did not have to catch
    return v


@pytest.mark.parametrize("place", PLACES)
def test_every_structured_input_gets_a_verdict_without_the_net(net: _Records, place: str) -> None:
    @settings(SHORT, max_examples=50)
    @given(text=qr_texts(WORLD.es256, (place,)))
    def one(text: str) -> None:
        assert_clean_verdict(text, net)

    one()


@SHORT
@given(tree=cbor_trees())
def test_claims_parsers_reject_any_tree_with_a_reason(tree) -> None:
    """Claims parsing runs only after a signature: fuzz it directly, for LC1 and HC1."""
    payload = dumps(tree)
    if payload is None:
        return
    for parse in (lc1.parse_claims, hc1.parse_claims):
        try:
            parse(payload)
        except Rejection as r:
            assert r.reason is Reason.MALFORMED_CLAIMS


PLAIN = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**64), 2**64 - 1),
        st.text(max_size=20),
        st.binary(max_size=20),
        st.floats(allow_nan=False),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=8), st.binary(max_size=8)),
            children,
            max_size=5,
        ),
    ),
    max_leaves=30,
)


@SHORT
@given(value=PLAIN, trailing=st.binary(max_size=3))
def test_prescan_accepts_plain_data_and_agrees_with_cbor2(value, trailing: bytes) -> None:
    data = cbor2.dumps(value)
    end = scan(data + trailing, max_items=10**6)
    assert end == len(data)
    assert cbor2.loads(data) == value


@SHORT
@given(tree=cbor_trees(), cut=st.integers(0, 2**16))
def test_prescan_is_total_and_what_it_accepts_cbor2_decodes(tree, cut: int) -> None:
    data = dumps(tree)
    if data is None:
        return
    data = data[: cut % (len(data) + 1)] if cut % 3 == 0 else data
    try:
        end = scan(data, tags=frozenset())
    except CborShapeError:
        return
    decoded = cbor2.loads(data[:end])
    assert cbor2.dumps(decoded) is not None  # a plain value, nothing semantic


@pytest.mark.parametrize("seed", SEEDS, ids=[p.name for p in SEEDS])
def test_regression_seeds_replay_cleanly(net: _Records, seed: Path) -> None:
    text = seed.read_bytes().decode("utf-8", "replace")
    assert_clean_verdict(text, net)


def test_seeds_include_the_reported_attacks() -> None:
    names = {p.name for p in SEEDS}
    assert {
        "attack-lc1-bignum-alg",
        "attack-hc1-bignum-alg",
        "attack-shc-chunk-digits",
        "attack-lc1-mime-header",
    } <= names


def test_atheris_harness_runs_the_structured_generator(tmp_path: Path) -> None:
    """A few hundred structure-aware atheris inputs (the long run is ``make fuzz``)."""
    pytest.importorskip("atheris", reason="atheris is not installed (pip install '.[fuzz]')")
    import os
    import subprocess

    corpus, seeds = tmp_path / "corpus", tmp_path / "seeds"
    corpus.mkdir()
    env = {**os.environ, "FUZZ_STRUCTURED": "1", "FUZZ_SEEDS_DIR": str(seeds)}
    proc = subprocess.run(
        [
            sys.executable,
            str(FUZZ_DIR / "fuzz_verify.py"),
            str(corpus),
            "-runs=400",
            "-seed=1",
            "-timeout=10",
            f"-artifact_prefix={tmp_path}/",
            "-rss_limit_mb=1024",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done 400 runs" in proc.stderr
    assert not seeds.exists()  # nothing raised or needed the net
