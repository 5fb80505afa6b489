"""The outbox services against real PostgreSQL, Redis and Toxiproxy (the local runtime).

- the order service's contract: 201 / idempotent replay / 409 / 404 / 400, every change
  applied once by the consumer, in order;
- the late commit, played out deterministically: a transaction takes its outbox id, stalls in a
  failpoint while a later one commits and is relayed; the serial cursor then never publishes
  the first, the xid cursor publishes both;
- relay crashes between taking and publishing events: the CDC relay that advances its slot
  after the broker's ack delivers every event (once in effect), the one that consumes the slot
  first loses them;
- a crash right after the commit: the dual write loses the event for good (a retry replays the
  answer), the side-effect machine sends it again on the retry.

Every wait polls a condition under a deadline; nothing sleeps blindly.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from faults.failpoint import Failpoint
from faults.process import heal_nodes
from targets.outbox.target import OutboxTarget
from tests.runtime.support import wait_for
from workbench.failpoints import TOKEN_HEADER
from workbench.runtime.local import LocalCluster, start_local_cluster
from workbench.target import Options, make_plan

pytestmark = [pytest.mark.servers, pytest.mark.slow]


def start(variant: str, tmp: Path) -> LocalCluster:
    plan = make_plan(OutboxTarget(), variant, Options())
    return start_local_cluster(plan.topology, tmp / variant, seed=0)


@pytest.fixture(scope="module")
def skip_locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = start("skip-locked", tmp_path_factory.mktemp("outbox"))
    try:
        yield cluster
    finally:
        cluster.teardown()


def place(base: str, order: str, command: str | None = None) -> httpx.Response:
    body = {"order": order, "command": command or f"{order}:created"}
    return httpx.post(f"{base}/orders", json=body, timeout=10)


def move(base: str, order: str, status: str, command: str | None = None) -> httpx.Response:
    body = {"status": status, "command": command or f"{order}:{status}"}
    return httpx.post(f"{base}/orders/{order}/status", json=body, timeout=10)


def effects(cluster: LocalCluster) -> dict[str, dict[str, Any]]:
    url = cluster.direct_endpoints("consumer")[0]
    rows = httpx.get(f"{url}/_effects", timeout=10).json()["effects"]
    return {r["event"]: r for r in rows}


def stream_events(cluster: LocalCluster) -> list[str]:
    url = cluster.direct_endpoints("consumer")[0]
    streams = httpx.get(f"{url}/_stream", timeout=10).json()["streams"]
    return [e["event"] for entries in streams.values() for e in entries]


def arm(cluster: LocalCluster, service: str, replica: int, body: dict[str, Any]) -> None:
    url = cluster.direct_endpoints(service)[replica]
    token = {TOKEN_HEADER: cluster.failpoint_token}
    resp = httpx.post(f"{url}/_failpoints", json=body, headers=token, timeout=5)
    assert resp.status_code == 200, resp.text


def test_contract_and_every_change_applied_once_in_order(skip_locked: LocalCluster) -> None:
    api1, api2 = skip_locked.endpoints("orders-api")
    first = place(api1, "c1")
    assert first.status_code == 201, first.text
    placed = first.json()
    assert placed["version"] == 1 and placed["status"] == "created"
    replay = place(api2, "c1")  # the other replica, the same command: the same answer
    assert replay.status_code == 200 and replay.json() == {**placed, "replayed": True}
    assert place(api1, "c1", "another-command").json()["error"] == "duplicate_order"
    assert move(api1, "c1", "shipped").status_code == 409  # created -> shipped: not allowed
    assert move(api1, "nope", "paid").status_code == 404
    assert httpx.post(f"{api1}/orders", json={"order": "c2"}, timeout=5).status_code == 400
    paid = move(api2, "c1", "paid").json()
    shipped = move(api1, "c1", "shipped").json()
    assert (paid["version"], shipped["version"]) == (2, 3)

    events = [placed["event"], paid["event"], shipped["event"]]
    got = wait_for("three effects", lambda: (e := effects(skip_locked)) and len(e) >= 3 and e)
    assert sorted(got) == sorted(events)
    assert all(got[e]["applied"] == 1 for e in events)
    assert [got[e]["version"] for e in sorted(events, key=lambda e: got[e]["first_seq"])] == [
        1,
        2,
        3,
    ]
    truth = httpx.get(f"{skip_locked.direct_endpoints('orders-api')[0]}/_orders", timeout=10)
    body = truth.json()
    assert body["orders"]["c1"] == {"status": "shipped", "version": 3}
    assert {c["event"] for c in body["changes"]} == set(events)
    assert wait_for(
        "the outbox rows marked sent",
        lambda: all(
            r["state"] == "sent"
            for r in httpx.get(f"{skip_locked.direct_endpoints('orders-api')[0]}/_orders")
            .json()["outbox"]
            .values()
        ),
    )


def late_commit(variant: str, tmp: Path) -> tuple[str, str, set[str]]:
    """Order ``late`` takes its outbox id, then stalls 2 s before committing while order
    ``early`` commits and is published; returns both events and what reached the stream."""
    cluster = start(variant, tmp)
    try:
        api1, api2 = cluster.endpoints("orders-api")
        arm(cluster, "orders-api", 0, {"point": "before-commit", "action": "sleep", "ms": 2000})
        answers: dict[str, httpx.Response] = {}
        slow = threading.Thread(target=lambda: answers.setdefault("late", place(api1, "late")))
        slow.start()
        # Replica 1's transaction is in its failpoint once its outbox row took an id: the row
        # exists, uncommitted, so the sequence has moved past it.
        wait_for("the late transaction's row", lambda: _uncommitted_rows(cluster) >= 1)
        early = place(api2, "early").json()["event"]
        wait_for("the early event published", lambda: early in stream_events(cluster))
        slow.join(timeout=15)
        late = answers["late"].json()["event"]
        wait_for("the relay idle", lambda: _backlog(cluster) == 0)
        # Give a cursor relay every chance: a few more passes after it says it is idle.
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and late not in stream_events(cluster):
            time.sleep(0.05)
        return early, late, set(stream_events(cluster))
    finally:
        cluster.teardown()


def _uncommitted_rows(cluster: LocalCluster) -> int:
    import psycopg

    with psycopg.connect(cluster.postgres["pg"].dsn(direct=True), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'orders-api'"
            " AND state = 'idle in transaction'"
        ).fetchone()
    return int(row[0]) if row else 0


def _backlog(cluster: LocalCluster) -> int:
    url = cluster.direct_endpoints("relay")[0]
    return int(httpx.get(f"{url}/progress", timeout=10).json()["backlog"])


def test_serial_cursor_skips_a_late_commit(tmp_path: Path) -> None:
    early, late, published = late_commit("serial-cursor", tmp_path)
    assert early in published
    assert late not in published


def test_xid_cursor_waits_for_the_late_commit(tmp_path: Path) -> None:
    early, late, published = late_commit("xid-cursor", tmp_path)
    assert {early, late} <= published


def test_xid_cursor_publishes_in_transaction_order_across_a_power_of_ten(tmp_path: Path) -> None:
    # Transaction ids compared as text put "1000" before "999": orders whose changes straddle
    # xid 1000 would be published out of order (a relay once sorted by txid::text).
    import psycopg

    cluster = start("xid-cursor", tmp_path)
    try:
        with psycopg.connect(cluster.postgres["pg"].dsn(direct=True), autocommit=True) as conn:
            row = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
            assert row is not None and row[0] < 990
            for _ in range(990 - int(row[0])):
                conn.execute("SELECT pg_current_xact_id()")
        api = cluster.endpoints("orders-api")[0]
        for i in range(6):
            place(api, f"p{i}")
            move(api, f"p{i}", "paid")
            move(api, f"p{i}", "shipped")
        url = cluster.direct_endpoints("consumer")[0]

        def entries() -> list[dict[str, Any]]:
            streams = httpx.get(f"{url}/_stream", timeout=10).json()["streams"]
            return [e for es in streams.values() for e in es if e["order"].startswith("p")]

        got = wait_for("18 events published", lambda: len(e := entries()) >= 18 and e)
        for i in range(6):
            assert [e["version"] for e in got if e["order"] == f"p{i}"] == [1, 2, 3]
    finally:
        cluster.teardown()


def relay_crash(variant: str, tmp: Path, point: str) -> tuple[set[str], dict[str, Any]]:
    """Places three orders while the relay is armed to crash at ``point``; restarts it; returns
    the three events and the consumer's effects once the relay is idle again."""
    cluster = start(variant, tmp)
    try:
        api = cluster.endpoints("orders-api")[0]
        fault = Failpoint(service="relay", point=point, action="crash", replicas="all")
        fault.start(cluster, random.Random(1))
        events = {place(api, f"r{i}").json()["event"] for i in range(3)}
        wait_for("the relay to crash", lambda: not cluster.nodes["relay-1"].is_running())
        fault.stop(cluster)
        fault.verify_healed(cluster)
        wait_for("the relay idle", lambda: _backlog(cluster) == 0)
        # Whatever reached the stream is applied within a few polls of the consumer.
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline and not events <= set(effects(cluster)):
            time.sleep(0.05)
        return events, effects(cluster)
    finally:
        cluster.teardown()


def test_cdc_relay_redelivers_after_a_crash_and_the_inbox_applies_once(tmp_path: Path) -> None:
    events, applied = relay_crash("cdc", tmp_path, "after-publish")
    assert events <= set(applied)
    assert all(applied[e]["applied"] == 1 for e in events)
    assert any(applied[e]["deliveries"] >= 2 for e in events)  # published before the crash


def test_cdc_relay_that_consumes_the_slot_first_loses_events(tmp_path: Path) -> None:
    # The crashing pass took at least the first order's event out of the slot; later ones may
    # have come after it and been published by the restarted relay.
    events, applied = relay_crash("cdc-advance-first", tmp_path, "after-claim")
    assert events - set(applied)


def crash_after_commit(variant: str, tmp: Path) -> tuple[str, set[str]]:
    """Replica 1 crashes right after committing a place; the command is retried (same id)
    until answered; returns the order's event and what reached the stream."""
    cluster = start(variant, tmp)
    try:
        api1, api2 = cluster.endpoints("orders-api")
        arm(cluster, "orders-api", 0, {"point": "after-commit", "action": "crash"})
        with pytest.raises(httpx.HTTPError):
            place(api1, "x1")  # replica 1 commits, then dies before publishing
        wait_for("replica 1 down", lambda: not cluster.nodes["orders-api-1"].is_running())
        heal_nodes(cluster)
        retry = wait_for("the retry", lambda: (r := place(api2, "x1")).status_code == 200 and r)
        assert retry.json()["replayed"] is True
        event = str(retry.json()["event"])
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline and event not in stream_events(cluster):
            time.sleep(0.05)
        return event, set(stream_events(cluster))
    finally:
        cluster.teardown()


def test_dual_write_loses_the_event_of_a_crash_after_commit(tmp_path: Path) -> None:
    event, published = crash_after_commit("dual-write", tmp_path)
    assert event not in published


def test_side_effect_machine_sends_again_on_the_replay(tmp_path: Path) -> None:
    event, published = crash_after_commit("side-effect-machine", tmp_path)
    assert event in published
