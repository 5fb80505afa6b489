"""The locks target: a lock protecting a read-modify-write, in correct and broken variants.

Two ``worker`` replicas (separate processes, so a ``pause`` freezes a holder like a GC pause)
each take a lock, read a PostgreSQL row, compute, write it back and release. The row's record
of accepted writes is the ground truth the checkers judge. Register it as::

    [project.entry-points."workbench.targets"]
    locks = "targets.locks.target:LocksTarget"
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from types import MappingProxyType

from checkers.locks import Fencing, LockLiveness, MutexLinearizable, MutualExclusion
from checkers.lost_update import LostUpdate
from targets.locks import workload as wl
from targets.locks.client import SERVICE, LocksClient
from targets.locks.resource import SCHEMA
from targets.locks.variants import VARIANTS, Variant, get_variant
from workbench import Checker, Options, Plan, Postgres, Redis, Service, Topology

REPLICAS = 2


class LocksTarget:
    name = "locks"
    description = (
        "a lock (Redis lease, PostgreSQL advisory lock, or none) protecting a read-modify-write "
        "of a PostgreSQL row that records every write it accepts"
    )
    variants: Mapping[str, str] = MappingProxyType({n: v.line for n, v in VARIANTS.items()})

    def plan(self, variant: str, options: Options) -> Plan:
        v = get_variant(variant)
        # Operation ids are unique within a campaign: main and final phase draw from one counter.
        ids = itertools.count()
        checkers: list[Checker] = [MutualExclusion(), Fencing(), LostUpdate(), LockLiveness()]
        if v.probes:
            checkers.append(MutexLinearizable())
        return Plan(
            topology=topology(v),
            client=LocksClient,
            workload=wl.workload(v, options, ids),
            final=wl.final(v, options, ids),
            checkers=checkers,
            faults=list(v.faults),
            op_timeout=5.0,
        )


def topology(v: Variant) -> Topology:
    deps = ["pg", "redis"] if v.uses_redis else ["pg"]
    return Topology(
        postgres=[Postgres("pg", init_sql=SCHEMA)],
        redis=[Redis("redis", persistence=v.redis_persistence)] if v.uses_redis else [],
        services=[
            Service.asgi(
                SERVICE,
                "targets.locks.service:app",
                replicas=REPLICAS,
                env={"LOCKS_VARIANT": v.name},
                depends_on=deps,
            )
        ],
    )
