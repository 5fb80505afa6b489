"""A small target for end-to-end tests: two replicas of an HTTP service adding unique elements
to PostgreSQL, judged by the set checker.

Run it with ``workbench run tests.e2e.counter_target:SetTarget`` from the repository's root.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import ClassVar

import httpx

from workbench import (
    Client,
    Completion,
    Op,
    Options,
    Plan,
    Postgres,
    Service,
    Topology,
    fail,
    gen,
    ok,
)
from workbench.runtime.cluster import Cluster


class SetClient(Client):
    def __init__(self) -> None:
        self._http: httpx.AsyncClient | None = None

    async def open(self, cluster: Cluster, worker: int) -> None:
        urls = cluster.endpoints("api")
        self._http = httpx.AsyncClient(base_url=urls[worker % len(urls)], timeout=10)

    async def invoke(self, op: Op) -> Completion:
        assert self._http is not None
        if op.f == "add":
            r = await self._http.post("/add", json={"element": op.value})
            return ok() if r.status_code == 200 else fail(f"http {r.status_code}")
        r = await self._http.get("/read")
        if r.status_code != 200:
            return fail(f"http {r.status_code}")
        return ok(r.json()["elements"])

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()


class SetTarget:
    name = "set-test"
    description = "test target: unique elements added to PostgreSQL through two API replicas"
    variants: ClassVar[dict[str, str]] = {"default": "every add is one INSERT in autocommit"}

    def __init__(self, faults: Sequence[str] = ("partition", "kill", "pause")) -> None:
        self._faults = list(faults)

    def plan(self, variant: str, options: Options) -> Plan:
        counter = itertools.count()
        return Plan(
            topology=Topology(
                postgres=[
                    Postgres("pg", init_sql="CREATE TABLE elements (element bigint PRIMARY KEY)")
                ],
                services=[
                    Service.asgi(
                        "api", "tests.e2e.counter_service:app", replicas=2, depends_on=["pg"]
                    )
                ],
            ),
            client=SetClient,
            workload=gen.from_fn(lambda ctx: Op("add", next(counter))),
            final=gen.limit(20, gen.until_ok(gen.repeat(Op("read")))),
            checkers=["set"],
            faults=self._faults,
            op_timeout=1.0,
        )
