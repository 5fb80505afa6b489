"""The locks target: a lock protecting a read-modify-write, in correct and broken variants.

Two ``worker`` replicas (separate processes, so a ``pause`` freezes a holder like a GC pause)
each take a lock, read a PostgreSQL row, compute, write it back and release. The row's record
of accepted writes is the ground truth the checkers judge. Register it as::

    [project.entry-points."workbench.targets"]
    locks = "targets.locks.target:LocksTarget"
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

from checkers.locks import Fencing, LockLiveness, MutexLinearizable, MutualExclusion
from checkers.lost_update import LostUpdate
from targets.locks import workload as wl
from targets.locks.client import SERVICE, LocksClient
from targets.locks.resource import SCHEMA
from targets.locks.variants import VARIANTS, get_variant
from workbench.checker import Checker
from workbench.generator import Generator
from workbench.target import WorkloadOptions
from workbench.topology import Postgres, Redis, Service, Topology

REPO = Path(__file__).resolve().parents[2]
REPLICAS = 2


class LocksTarget:
    name = "locks"
    description = (
        "a lock (Redis lease, PostgreSQL advisory lock, or none) protecting a read-modify-write "
        "of a PostgreSQL row that records every write it accepts"
    )
    variants: Mapping[str, str] = MappingProxyType({n: v.line for n, v in VARIANTS.items()})
    op_timeout = 5.0

    def __init__(self) -> None:
        self._ids = itertools.count()

    def default_faults(self, variant: str) -> Sequence[str]:
        return list(get_variant(variant).faults)

    def topology(self, variant: str) -> Topology:
        v = get_variant(variant)
        deps = ["pg", "redis"] if v.uses_redis else ["pg"]
        return Topology(
            postgres=[Postgres("pg", init_sql=SCHEMA)],
            redis=[Redis("redis", persistence=v.redis_persistence)] if v.uses_redis else [],
            services=[
                Service(
                    SERVICE,
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        "targets.locks.service:app",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        "{port}",
                        "--log-level",
                        "warning",
                    ],
                    replicas=REPLICAS,
                    env={"LOCKS_VARIANT": v.name, "PYTHONPATH": str(REPO)},
                    depends_on=deps,
                )
            ],
        )

    def client(self, variant: str) -> LocksClient:
        return LocksClient()

    def workload(self, variant: str, options: WorkloadOptions) -> Generator:
        return wl.workload(get_variant(variant), options, self._ids)

    def final(self, variant: str, options: WorkloadOptions) -> Generator | None:
        return wl.final(get_variant(variant), options, self._ids)

    def checkers(self, variant: str) -> Sequence[Checker]:
        v = get_variant(variant)
        out: list[Checker] = [MutualExclusion(), Fencing(), LostUpdate(), LockLiveness()]
        if v.probes:
            out.append(MutexLinearizable())
        return out
