"""A small target for end-to-end tests: two replicas of an HTTP service adding unique elements
to PostgreSQL, judged by the set checker.

Run it with ``workbench run tests.e2e.counter_target:SetTarget`` from the repository's root.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import ClassVar

from workbench import (
    Completion,
    HttpClient,
    Op,
    Options,
    Plan,
    Postgres,
    Service,
    Topology,
    gen,
)


class SetClient(HttpClient):
    service = "api"
    timeout = 0.9  # below the plan's op_timeout, so the client reports its own timeouts

    async def invoke(self, op: Op) -> Completion:
        if op.f == "add":
            # A 5xx may come after the INSERT committed: info, never fail (the default mapping).
            resp = await self.post("/add", json={"element": op.value})
            return self.complete(resp, value=op.value)
        resp = await self.get("/read")
        return self.complete(resp, value=resp.body["elements"] if resp.ok else None)


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
