"""Attack replays against the audit hub over real HTTP on loopback.

Every malformed body is a 400 with a JSON error (never a 500), an unsigned body is never
parsed (401) and a signed deep one is refused before the parser recurses, the hub never
says which device ids are enrolled, and the SQLite files are not world-readable whatever
the umask.
"""

from __future__ import annotations

import json
import os
import stat
import threading

import pytest
import urllib3
from audit_support import Scenario, device, record_many
from werkzeug.serving import make_server

from appliance.audit.chain import canonical, genesis_hash, record_hash
from appliance.audit.signed_body import SIGNATURE_HEADER, SignedBody, sign_body
from appliance_hub.server import create_app
from appliance_hub.store import HubStore

TOKEN = "auditor-secret-token"
DEEP = 200_000


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return Scenario()


class LiveHub:
    """The hub app served by werkzeug on an ephemeral loopback port, in a thread."""

    def __init__(self, tmp_path) -> None:
        self.devices = tmp_path / "devices"
        self.store = HubStore(tmp_path / "hub.db")
        self.server = make_server(
            "127.0.0.1", 0, create_app(self.store, self.devices, TOKEN), threaded=True
        )
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.http = urllib3.PoolManager(retries=False, timeout=30.0)

    def post(self, body: bytes | SignedBody) -> tuple[int, dict]:
        """``body`` signed in its headers, or bytes sent unsigned."""
        signed = (
            body
            if isinstance(body, SignedBody)
            else SignedBody(body, {"Content-Type": "application/json"})
        )
        resp = self.http.request(
            "POST", self.url + "/v1/batches", body=signed.body, headers=dict(signed.headers)
        )
        return resp.status, json.loads(resp.data)

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join()
        self.store.close()


@pytest.fixture
def hub(tmp_path):
    live = LiveHub(tmp_path)
    yield live
    live.close()


def _signed(identity, batch: dict, device_id: str = "kiosk-01") -> SignedBody:
    return sign_body(identity, device_id, canonical(batch))


def _rechain(log_id: str, records: list[dict]) -> None:
    """Give altered records honest hashes, so only the altered shape is wrong."""
    prev = genesis_hash(log_id)
    for rec in records:
        rec["prev_hash"] = prev
        rec["hash"] = prev = record_hash(rec)


@pytest.fixture
def kiosk(tmp_path, hub, scenario):
    _, log, identity = device(tmp_path, "kiosk-01", hub.devices, checkpoint_every=2)
    record_many(log, scenario, 4)
    records, cps = log.pending(10)
    batch = {
        "type": "appliance-audit-batch-v1",
        "device_id": "kiosk-01",
        "log_id": log.log_id,
        "first_seq": 1,
        "last_seq": len(records),
        "records": records,
        "checkpoints": cps,
        "sent_at": 1.5,
    }
    return identity, batch


def _assert_clean_400(status: int, answer: dict) -> None:
    assert status == 400, (status, answer)
    assert answer["status"] == "error" and isinstance(answer["error"], str) and answer["error"]


def test_the_valid_batch_is_stored_so_the_attacks_below_differ_only_by_their_shape(hub, kiosk):
    identity, batch = kiosk
    status, answer = hub.post(_signed(identity, batch))
    assert status == 200 and answer["status"] == "stored" and hub.store.count() == 4


DEEP_BODIES = [
    b"[" * DEEP + b"]" * DEEP,
    b'{"payload": ' + b"[" * DEEP + b"]" * DEEP + b', "signature": ""}',
    b'{"a": ' * DEEP + b"1" + b"}" * DEEP,
    b'{"type": ' * DEEP + b"1" + b"}" * DEEP,
]
DEEP_IDS = ["deep-body", "deep-field", "deep-objects", "deep-type"]


@pytest.mark.parametrize("body", DEEP_BODIES, ids=DEEP_IDS)
def test_deep_json_unsigned_is_a_401_never_parsed(hub, body):
    status, answer = hub.post(body)
    assert status == 401 and answer["status"] == "error"


@pytest.mark.parametrize("body", DEEP_BODIES, ids=DEEP_IDS)
def test_deep_json_signed_by_an_enrolled_device_is_a_400(hub, kiosk, body):
    identity, _ = kiosk
    _assert_clean_400(*hub.post(sign_body(identity, "kiosk-01", body)))


def test_non_utf8_and_non_finite_bodies_are_400(hub, kiosk):
    identity, _ = kiosk
    for body in (
        b'{"type": "\xff\xfe"}',
        b'{"first_seq": NaN, "last_seq": Infinity}',
        b'{"type": NaN}',
    ):
        _assert_clean_400(*hub.post(sign_body(identity, "kiosk-01", body)))


def _records_not_objects(b: dict) -> None:
    b["records"] = [1, 2, 3, 4]


def _records_not_a_list(b: dict) -> None:
    b["records"] = {"seq": 1}


def _first_seq_missing(b: dict) -> None:
    del b["first_seq"]


def _first_seq_text(b: dict) -> None:
    b["first_seq"] = "1"


def _huge_seq(b: dict) -> None:
    for i, rec in enumerate(b["records"]):
        rec["seq"] = 2**70 + i
    b["first_seq"], b["last_seq"] = 2**70, 2**70 + len(b["records"]) - 1
    _rechain(b["log_id"], b["records"])
    b["checkpoints"] = []


def _nan_trust_version(b: dict) -> None:
    b["records"][0]["trust_version"] = float("nan")


def _huge_trust_version(b: dict) -> None:
    b["records"][0]["trust_version"] = 10**40
    _rechain(b["log_id"], b["records"])
    b["checkpoints"] = []


def _lone_surrogate(b: dict) -> None:
    b["records"][0]["source"] = "\ud800"
    _rechain(b["log_id"], b["records"])
    b["checkpoints"] = []


def _nul_in_text(b: dict) -> None:
    b["records"][0]["source"] = "cam\x00era"
    _rechain(b["log_id"], b["records"])
    b["checkpoints"] = []


def _checkpoints_not_a_list(b: dict) -> None:
    b["checkpoints"] = 7


def _checkpoints_not_objects(b: dict) -> None:
    b["checkpoints"] = ["x"]


def _checkpoint_seq_text(b: dict) -> None:
    b["checkpoints"][0]["seq"] = "2"


def _record_field_a_list(b: dict) -> None:
    b["records"][1]["verdict"] = ["PASS"]


@pytest.mark.parametrize(
    "mutate",
    [
        _records_not_objects,
        _records_not_a_list,
        _first_seq_missing,
        _first_seq_text,
        _huge_seq,
        _nan_trust_version,
        _huge_trust_version,
        _lone_surrogate,
        _nul_in_text,
        _checkpoints_not_a_list,
        _checkpoints_not_objects,
        _checkpoint_seq_text,
        _record_field_a_list,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_signed_but_malformed_batches_are_400_and_store_nothing(hub, kiosk, mutate):
    identity, batch = kiosk
    mutate(batch)
    _assert_clean_400(*hub.post(_signed(identity, batch)))
    assert hub.store.count() == 0


def test_unknown_device_and_bad_signature_answer_alike(tmp_path, hub, kiosk):
    identity, batch = kiosk
    good = _signed(identity, batch)
    answers = [
        hub.post(SignedBody(good.body, {**good.headers, SIGNATURE_HEADER: "A" * 86 + "=="})),
        hub.post(_signed(identity, dict(batch, device_id="kiosk-99"), "kiosk-99")),
        hub.post(_signed(identity, batch, "../kiosk-01")),
        hub.post(SignedBody(good.body, {**good.headers, SIGNATURE_HEADER: "not base64!"})),
        hub.post(good.body),  # no headers at all: the old envelope-less client
    ]
    assert {status for status, _ in answers} == {401}
    assert all(answer == answers[0][1] for _, answer in answers)
    assert "kiosk" not in json.dumps(answers[1][1])
    assert hub.store.count() == 0


def test_a_batch_naming_another_device_than_its_signer_is_refused(hub, kiosk):
    identity, batch = kiosk
    for claimed in ("kiosk-02", "kiosk-01\n", ["kiosk-01"]):
        _assert_clean_400(*hub.post(_signed(identity, dict(batch, device_id=claimed))))
    assert hub.store.count() == 0


def test_oversized_body_is_a_json_error_not_html(hub):
    from appliance_hub.server import MAX_BATCH_BYTES

    resp = hub.http.request(
        "POST",
        hub.url + "/v1/batches",
        body=b" " * (MAX_BATCH_BYTES + 1),
        headers={"Content-Type": "application/json"},
    )
    assert resp.status == 413 and json.loads(resp.data)["status"] == "error"


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_auditor_time_bounds_out_of_range_are_400(hub, since):
    resp = hub.http.request(
        "GET",
        hub.url + "/v1/records",
        fields={"since": since},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert resp.status == 400, resp.status
    assert json.loads(resp.data)["status"] == "error"


def test_hub_database_files_are_not_world_readable_under_umask_022(tmp_path, scenario):
    old = os.umask(0o022)
    try:
        store = HubStore(tmp_path / "db" / "hub.db")
        try:
            _, log, _ = device(tmp_path, "kiosk-02", tmp_path / "devices")
            record_many(log, scenario, 3)
            records, _ = log.pending(10)
            store.ingest(
                {
                    "type": "appliance-audit-batch-v1",
                    "device_id": "kiosk-02",
                    "log_id": log.log_id,
                    "first_seq": 1,
                    "last_seq": 3,
                    "records": records,
                    "checkpoints": [],
                }
            )
            names = sorted(p.name for p in (tmp_path / "db").iterdir())
            assert names == ["hub.db", "hub.db-shm", "hub.db-wal"]
            for path in (tmp_path / "db").iterdir():
                mode = stat.S_IMODE(path.stat().st_mode)
                assert mode & 0o137 == 0, f"{path.name} is {mode:o}"
        finally:
            store.close()
    finally:
        os.umask(old)


def test_an_existing_world_readable_hub_database_is_tightened(tmp_path):
    db = tmp_path / "hub.db"
    HubStore(db).close()
    db.chmod(0o644)
    HubStore(db).close()
    assert stat.S_IMODE(db.stat().st_mode) & 0o137 == 0
