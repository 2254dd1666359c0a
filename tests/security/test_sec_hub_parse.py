"""Replay of issue 21 finding 4: the hub parsed a whole 15 MB batch before it checked who
signed it (0.4 s of CPU and up to 249 MB per unauthenticated request).

Real HTTP on loopback, memory measured with tracemalloc across the server's threads: a
sender that is not enrolled is refused before its body is read, an enrolled device's id
with a bad signature costs one read of the body and nothing more, and only a body whose
signature verifies reaches the JSON parser.
"""

from __future__ import annotations

import json
import threading
import tracemalloc

import pytest
import urllib3
from audit_support import Scenario, device, record_many

from appliance.audit.chain import canonical
from appliance.audit.signed_body import SIGNATURE_HEADER, SignedBody, sign_body
from appliance.platform.bounded_server import make_bounded_server
from appliance_hub.server import MAX_BATCH_BYTES, create_app
from appliance_hub.store import HubStore

# 7.5 million list items: parsed, a list of 60 MB of pointers; as bytes, 15 MB.
BIG = b"[" + b"0," * 7_499_999 + b"0]"


class Hub:
    """The hub on a loopback port, served as ``appliance hub serve`` serves it."""

    def __init__(self, tmp_path) -> None:
        self.devices = tmp_path / "devices"
        self.store = HubStore(tmp_path / "hub.db")
        self.server = make_bounded_server(
            "127.0.0.1", 0, create_app(self.store, self.devices, "t" * 32)
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/batches"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.http = urllib3.PoolManager(retries=False, timeout=60.0)

    def __call__(self, signed: SignedBody) -> tuple[int, dict, int]:
        """Status, answer and the peak of memory allocated while the hub handled it."""
        tracemalloc.start()
        try:
            resp = self.http.request(
                "POST", self.url, body=signed.body, headers=dict(signed.headers)
            )
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        return resp.status, json.loads(resp.data), peak


@pytest.fixture
def hub(tmp_path):
    live = Hub(tmp_path)
    yield live
    live.server.shutdown()
    live.server.server_close()
    live.thread.join()
    live.store.close()


def test_the_big_body_fits_the_size_limit_so_only_the_order_decides():
    assert 15_000_000 < len(BIG) < MAX_BATCH_BYTES


def test_an_unenrolled_sender_is_refused_before_the_body_is_read(tmp_path, hub):
    _, _, stranger = device(tmp_path, "kiosk-x", None)
    for signed in (
        sign_body(stranger, "kiosk-x", BIG),
        SignedBody(BIG, {"Content-Type": "application/json"}),
    ):
        status, answer, peak = hub(signed)
        assert status == 401 and answer["status"] == "error"
        assert peak < len(BIG) // 10, f"{peak} bytes allocated for a sender nobody enrolled"


def test_a_bad_signature_costs_one_read_of_the_body_never_a_parse(tmp_path, hub):
    _, _, identity = device(tmp_path, "kiosk-01", hub.devices)
    forged = sign_body(identity, "kiosk-01", b"something else")
    status, answer, peak = hub(SignedBody(BIG, forged.headers))
    assert status == 401 and answer["status"] == "error"
    assert peak < 2 * len(BIG), f"{peak} bytes allocated: the body was parsed"
    bad = SignedBody(BIG, {**forged.headers, SIGNATURE_HEADER: "x" * 200})
    assert hub(bad)[0] == 401


def test_a_signed_batch_is_parsed_and_stored(tmp_path, hub):
    _, log, identity = device(tmp_path, "kiosk-01", hub.devices)
    record_many(log, Scenario(), 3)
    records, cps = log.pending(10)
    batch = {
        "type": "appliance-audit-batch-v1",
        "device_id": "kiosk-01",
        "log_id": log.log_id,
        "first_seq": 1,
        "last_seq": 3,
        "records": records,
        "checkpoints": cps,
        "sent_at": 1.5,
    }
    status, answer, _ = hub(sign_body(identity, "kiosk-01", canonical(batch)))
    assert status == 200 and answer["status"] == "stored" and hub.store.count() == 3


def test_a_body_without_length_or_over_the_limit_is_refused_unread(tmp_path, hub):
    _, _, identity = device(tmp_path, "kiosk-01", hub.devices)
    signed = sign_body(identity, "kiosk-01", b"{}")
    resp = hub.http.request(
        "POST", hub.url, body=iter([b"{}"]), headers=dict(signed.headers), chunked=True
    )
    assert resp.status == 411
    over = {**signed.headers, "Content-Length": str(MAX_BATCH_BYTES + 1)}
    resp = hub.http.request("POST", hub.url, body=b"{}", headers=over)
    assert resp.status == 413 and json.loads(resp.data)["status"] == "error"
