"""A small target for end-to-end tests: two replicas of an HTTP service adding unique elements
to PostgreSQL, judged by the set checker.

Run it with ``workbench run tests.e2e.counter_target:SetTarget`` from the repository's root.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import httpx

from checkers.sets import SetChecker
from workbench.checker import Checker
from workbench.client import Completion, Op, fail, ok
from workbench.generator import Generator, from_fn, limit, repeat, until_ok
from workbench.runtime.cluster import Cluster
from workbench.target import WorkloadOptions
from workbench.topology import Postgres, Service, Topology

REPO = Path(__file__).resolve().parents[2]


class SetClient:
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
    op_timeout = 1.0

    def __init__(self, faults: Sequence[str] = ("partition", "kill", "pause")) -> None:
        self._faults = list(faults)

    def default_faults(self, variant: str) -> Sequence[str]:
        return self._faults

    def topology(self, variant: str) -> Topology:
        return Topology(
            postgres=[
                Postgres("pg", init_sql="CREATE TABLE elements (element bigint PRIMARY KEY)")
            ],
            services=[
                Service(
                    "api",
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        "tests.e2e.counter_service:app",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        "{port}",
                        "--log-level",
                        "warning",
                    ],
                    replicas=2,
                    env={"PYTHONPATH": str(REPO)},
                    depends_on=["pg"],
                )
            ],
        )

    def client(self, variant: str) -> SetClient:
        return SetClient()

    def workload(self, variant: str, options: WorkloadOptions) -> Generator:
        counter = itertools.count()
        return from_fn(lambda ctx: Op("add", next(counter)))

    def final(self, variant: str, options: WorkloadOptions) -> Generator:
        return limit(20, until_ok(repeat(Op("read"))))

    def checkers(self, variant: str) -> Sequence[Checker]:
        return [SetChecker()]
