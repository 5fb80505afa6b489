"""The locks service against real PostgreSQL, Redis and Toxiproxy (start_local_cluster).

Each scenario drives the exact interleaving of a catalogue entry with a failpoint, then judges
the resource's record with the checkers: the bug variant shows the anomaly, its correct sibling
does not. Waits are on conditions with deadlines (the lock's own acquire timeout, a failpoint's
hit counter), never bare sleeps.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from checkers.locks import LockLiveness, MutualExclusion
from checkers.lost_update import LostUpdate
from targets.locks import resource
from targets.locks.client import LocksClient
from targets.locks.target import LocksTarget
from workbench.checker import CheckContext
from workbench.client import Completion, MaybeApplied, NotApplied, Op
from workbench.failpoints import TOKEN_HEADER
from workbench.history import Event
from workbench.runtime.local import LocalCluster, start_local_cluster
from workbench.target import Options, make_plan

pytestmark = pytest.mark.servers

TARGET = LocksTarget()


@contextmanager
def cluster(variant: str) -> Iterator[LocalCluster]:
    with (
        tempfile.TemporaryDirectory(prefix=f"locks-{variant}-") as d,
        start_local_cluster(make_plan(TARGET, variant, Options()).topology, Path(d), seed=1) as c,
    ):
        yield c


class Recorder:
    """Clients per replica and a hand-kept history of what they were told."""

    def __init__(self, c: LocalCluster) -> None:
        self.c = c
        self.events: list[Event] = []
        self.clients: dict[int, LocksClient] = {}
        self.n = 0

    async def client(self, replica: int) -> LocksClient:
        if replica not in self.clients:
            cl = LocksClient()
            await cl.open(self.c, replica)  # worker w talks to replica w % 2
            self.clients[replica] = cl
        return self.clients[replica]

    async def run(self, process: int, replica: int, op: Op) -> Completion:
        cl = await self.client(replica)
        t = time.monotonic_ns()
        self.events.append(Event(len(self.events), t, process, "invoke", op.f, op.value))
        try:
            done = await cl.invoke(op)
        except NotApplied as e:
            done = Completion("fail", None, str(e))
        except MaybeApplied as e:
            done = Completion("info", None, str(e))
        self.events.append(
            Event(
                len(self.events),
                time.monotonic_ns(),
                process,
                done.type,
                op.f,
                done.value,
                done.error,
            )
        )
        return done

    async def incr(self, process: int, replica: int, res: str = "r0", **kw: Any) -> Completion:
        self.n += 1
        return await self.run(
            process, replica, Op("incr", {"op_id": f"t{self.n}", "resource": res, **kw})
        )

    async def close(self) -> None:
        for cl in self.clients.values():
            await cl.close()


def arm(c: LocalCluster, replica: str, point: str, action: str, ms: int = 1500) -> str:
    url = f"{c.replica(replica).url}/_failpoints"
    body = {"point": point, "action": action, "ms": ms}
    r = httpx.post(url, json=body, headers={TOKEN_HEADER: c.failpoint_token}, timeout=5)
    assert r.status_code == 200, r.text
    return url


async def wait_hit(c: LocalCluster, url: str, point: str, deadline_s: float = 5.0) -> None:
    deadline = time.monotonic() + deadline_s
    token = {TOKEN_HEADER: c.failpoint_token}
    async with httpx.AsyncClient(timeout=2, headers=token) as http:
        while time.monotonic() < deadline:
            hits = (await http.get(url)).json()["hits"]
            if hits.get(point, 0) >= 1:
                return
            await asyncio.sleep(0.01)
    raise AssertionError(f"failpoint {point} not hit within {deadline_s} s")


def judge(events: list[Event]) -> dict[str, Any]:
    return {
        c.name: c.check(events, CheckContext())
        for c in (MutualExclusion(), LostUpdate(), LockLiveness())
    }


async def kleppmann(c: LocalCluster) -> tuple[Completion, list[Event]]:
    """worker-1 reads r0 and sleeps 1.5 s before writing (its 1 s lease runs out meanwhile);
    worker-2 takes the lock as soon as it is free and increments. Returns worker-1's answer."""
    rec = Recorder(c)
    url = arm(c, "worker-1", "between-acquire-and-write", "sleep")
    slow = asyncio.create_task(rec.incr(0, 0))
    await wait_hit(c, url, "between-acquire-and-write")
    fast = await rec.incr(1, 1)
    assert fast.type == "ok", fast
    late = await slow
    await rec.incr(3, 1, final=True)
    await rec.run(9, 1, Op("read-resource"))
    await rec.close()
    return late, rec.events


def test_redis_unfenced_paused_holder_overlaps() -> None:
    with cluster("redis-unfenced") as c:
        late, events = asyncio.run(kleppmann(c))
    assert late.type == "ok"  # nothing stopped the stale write
    results = judge(events)
    me = results["mutual-exclusion"]
    assert me.valid is False, me.summary
    assert me.anomalies[0].data["holders"] == ["worker-1", "worker-2"]
    assert results["lost-update"].valid is False


def test_redis_fenced_refuses_the_paused_holder() -> None:
    with cluster("redis-fenced") as c:
        late, events = asyncio.run(kleppmann(c))
    assert late.type == "fail" and "fenced out" in str(late.error)
    for name, r in judge(events).items():
        assert r.valid is True, (name, r.summary)


def test_pg_advisory_session_lost_to_idle_timeout() -> None:
    with cluster("pg-advisory-session-lost") as c:
        late, events = asyncio.run(kleppmann(c))
    assert late.type == "ok"
    assert judge(events)["mutual-exclusion"].valid is False


def test_setnx_then_expire_crash_leaves_a_lock_forever() -> None:
    async def scenario(c: LocalCluster) -> tuple[Completion, Completion, int]:
        rec = Recorder(c)
        arm(c, "worker-1", "between-setnx-and-expire", "crash")
        crashed = await rec.incr(0, 0, res="r1")
        after = await rec.incr(1, 1, res="r1", final=True)  # polls for the 2 s acquire timeout
        ttl = int(redis.Redis.from_url(c.redis["redis"].url()).pttl("lock:r1"))
        await rec.close()
        return crashed, after, ttl

    with cluster("setnx-then-expire") as c:
        crashed, after, ttl = asyncio.run(scenario(c))
    assert crashed.type == "info"  # the replica died mid-request
    assert after.type == "fail" and "could not take lock r1" in str(after.error)
    assert ttl == -1  # the key exists and has no expiry


async def concurrent_increments(c: LocalCluster, n: int = 8) -> tuple[list[Completion], int]:
    rec = Recorder(c)
    done = await asyncio.gather(*(rec.incr(i, i % 2) for i in range(n)))
    with psycopg.connect(c.postgres["pg"].dsn()) as conn:
        record = resource.read_record(conn)
    await rec.close()
    return list(done), int(record["resources"]["r0"]["value"])


@pytest.mark.parametrize("variant", ["read-committed-rmw", "version-ignored"])
def test_lockless_bugs_lose_concurrent_increments(variant: str) -> None:
    with cluster(variant) as c:
        done, value = asyncio.run(concurrent_increments(c))
    assert all(d.type == "ok" for d in done)
    assert value < len(done)


@pytest.mark.parametrize("variant", ["optimistic-version", "serializable", "pg-advisory-fenced"])
def test_correct_pg_variants_keep_concurrent_increments(variant: str) -> None:
    with cluster(variant) as c:
        done, value = asyncio.run(concurrent_increments(c))
    assert value == sum(1 for d in done if d.type == "ok") == len(done)


def test_fencing_at_the_resource() -> None:
    """A read registers its token; older tokens are refused on read and on write."""

    async def scenario(dsn: str) -> None:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            s5 = await resource.read(conn, "r2", token=5, fenced=True)
            assert s5 is not None
            assert await resource.read(conn, "r2", token=4, fenced=True) is None
            args: dict[str, Any] = {"kind": "incr", "arg": None, "op_id": "x", "writer": "t"}
            assert await resource.write(conn, "r2", s5, token=4, fenced=True, **args) is None
            assert await resource.write(conn, "r2", s5, token=5, fenced=True, **args) == 1

    with cluster("optimistic-version") as c:
        asyncio.run(scenario(c.postgres["pg"].dsn()))
