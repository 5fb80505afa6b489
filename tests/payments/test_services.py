"""The payments services against real PostgreSQL, Redis and Toxiproxy (the local runtime).

- the HTTP contract of both correct variants: 400 / 201 / identical replay / 422 / 409 / 503;
- a crash after the provider charged, then a retry: one charge on correct-pg, two on
  no-downstream-key (the failpoint fault does the crashing and the restart).

Every wait polls a condition under a deadline; nothing sleeps blindly.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from faults.failpoint import Failpoint
from targets.payments.target import PaymentsTarget
from targets.payments.variants import LEASE_SECONDS
from tests.runtime.support import wait_for
from workbench.failpoints import TOKEN_HEADER
from workbench.fault import FaultError, FaultNotHealed
from workbench.runtime.local import LocalCluster, start_local_cluster
from workbench.target import Options, make_plan

pytestmark = [pytest.mark.servers, pytest.mark.slow]

BODY = {"account": "acct-1", "amount_cents": 1250, "currency": "usd"}


def start(variant: str, tmp: Path) -> LocalCluster:
    return start_local_cluster(
        make_plan(PaymentsTarget(), variant, Options()).topology, tmp / variant, seed=0
    )


@pytest.fixture(scope="module", params=["correct-pg", "correct-redis"])
def correct(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    cluster = start(request.param, tmp_path_factory.mktemp("payments"))
    try:
        yield cluster
    finally:
        cluster.teardown()


def pay(
    base: str, key: str | None, body: dict[str, Any] = BODY, timeout: float = 10.0
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return httpx.post(f"{base}/payments", json=body, headers=headers, timeout=timeout)


def charges_for(cluster: LocalCluster, key: str) -> list[dict[str, Any]]:
    url = cluster.direct_endpoints("provider")[0]
    charges = httpx.get(f"{url}/charges", timeout=10).json()["charges"]
    return [c for c in charges if c["metadata"].get("idempotency_key") == key]


def failpoint(cluster: LocalCluster, replica: int, body: dict[str, Any]) -> None:
    url = cluster.direct_endpoints("payments-api")[replica]
    token = {TOKEN_HEADER: cluster.failpoint_token}
    resp = httpx.post(f"{url}/_failpoints", json=body, headers=token, timeout=5)
    assert resp.status_code == 200, resp.text


def test_contract(correct: LocalCluster) -> None:
    api1, api2 = correct.endpoints("payments-api")
    key = f"contract-{uuid.uuid4().hex[:8]}"

    missing = pay(api1, None)
    assert missing.status_code == 400
    assert (
        pay(api1, key, {"account": "acct-1", "amount_cents": -5, "currency": "usd"}).status_code
        == 400
    )

    first = pay(api1, key)
    assert first.status_code == 201, first.text
    payment = first.json()
    assert payment["amount_cents"] == 1250 and payment["idempotency_key"] == key

    replay = pay(api2, key)  # through the other replica: same store, same answer
    assert replay.status_code == 201
    assert replay.json() == payment
    assert replay.headers["Idempotent-Replayed"] == "true"

    other = pay(api1, key, dict(BODY, amount_cents=9999))
    assert other.status_code == 422
    assert len(charges_for(correct, key)) == 1

    balance = httpx.get(f"{api1}/accounts/acct-1", timeout=5).json()["balance_cents"]
    record = httpx.get(f"{api1}/payments/acct-1/{key}", timeout=5).json()
    assert record["state"] == "finished" and record["response_body"] == payment
    assert httpx.get(f"{api1}/payments/acct-1/nope", timeout=5).status_code == 404
    assert balance <= 100_000_000 - 1250


def test_in_progress_is_409_with_retry_after(correct: LocalCluster) -> None:
    api1, api2 = correct.endpoints("payments-api")
    key = f"busy-{uuid.uuid4().hex[:8]}"
    failpoint(correct, 0, {"point": "after-provider-charge", "action": "sleep", "ms": 1500})
    try:
        results: dict[str, httpx.Response] = {}
        slow = threading.Thread(target=lambda: results.setdefault("first", pay(api1, key)))
        slow.start()
        # Once the provider holds the charge, the first request sits in its failpoint.
        wait_for("the first request's charge", lambda: charges_for(correct, key), timeout=10)
        busy = pay(api2, key)
        assert busy.status_code == 409
        assert int(busy.headers["Retry-After"]) >= 1
        slow.join(timeout=10)
        assert results["first"].status_code == 201
        assert pay(api2, key).json() == results["first"].json()
    finally:
        failpoint(correct, 0, {"disarm": "all"})


def test_store_unreachable_fails_closed(correct: LocalCluster) -> None:
    api1 = correct.endpoints("payments-api")[0]
    store = "redis" if correct.redis else "pg"
    link = correct.links[f"payments-api-1->{store}"]
    key = f"closed-{uuid.uuid4().hex[:8]}"
    correct.toxiproxy.disable(link.proxy)
    try:
        resp = pay(api1, key)
        assert resp.status_code == 503
        assert resp.json()["charged"] is False
        assert resp.headers.get("Retry-After")
    finally:
        correct.toxiproxy.enable(link.proxy)
    assert charges_for(correct, key) == []
    # Once the store is back, the same key goes through.
    assert wait_for("the payment after healing", lambda: pay(api1, key).status_code == 201)


def crash_then_retry(variant: str, tmp: Path) -> list[dict[str, Any]]:
    """Crash replica 1 right after the provider charged, restart it, retry the key until it
    resolves; returns the provider's charges for the key."""
    cluster = start(variant, tmp)
    try:
        fault = Failpoint(point="after-provider-charge", action="crash", replicas="all")
        started = fault.start(cluster, random.Random(1))
        assert started["replicas"] == ["payments-api-1", "payments-api-2"]
        api1 = cluster.endpoints("payments-api")[0]
        key = f"crash-{uuid.uuid4().hex[:8]}"
        with pytest.raises(httpx.HTTPError):
            pay(api1, key)  # the replica dies mid-request: the client sees no answer
        assert len(charges_for(cluster, key)) == 1
        with pytest.raises(FaultNotHealed, match="payments-api-1 is not running"):
            fault.verify_healed(cluster)
        stopped = fault.stop(cluster)
        assert "payments-api-1" in stopped["restarted"]
        fault.verify_healed(cluster)
        # 409 while the dead request's lease runs out, then recovery from "started".
        resp = wait_for(
            "the retry to resolve",
            lambda: (r := pay(api1, key)).status_code == 201 and r,
            LEASE_SECONDS + 15,
        )
        assert resp.json()["idempotency_key"] == key
        return charges_for(cluster, key)
    finally:
        cluster.teardown()


def test_crash_after_charge_then_retry_charges_once_on_correct_pg(tmp_path: Path) -> None:
    assert len(crash_then_retry("correct-pg", tmp_path)) == 1


def test_crash_after_charge_then_retry_charges_twice_without_downstream_key(
    tmp_path: Path,
) -> None:
    assert len(crash_then_retry("no-downstream-key", tmp_path)) == 2


def test_failpoint_fault_rejects_an_unknown_point(correct: LocalCluster) -> None:
    with pytest.raises(FaultError, match="no replica declares point 'nope'"):
        Failpoint(point="nope").start(correct, random.Random(0))
    Failpoint(point="nope").verify_healed(correct)  # nothing was armed
