"""The locks target's declarations: variants, fault mixes, topology, workload shape."""

from __future__ import annotations

import random

from faults.registry import make_fault
from targets.locks.target import LocksTarget
from targets.locks.variants import BUGGY, CORRECT, RESOURCES, VARIANTS
from workbench.checker import Checker
from workbench.client import Completion, Op
from workbench.generator import Context, Wait
from workbench.registry import resolve_checkers
from workbench.schedule import FaultSpec
from workbench.target import Options, Plan, Target, check_target, make_plan

T = LocksTarget()
OPTS = Options(workers=8, time_limit=10, rate=None, seed=1)


def plan(variant: str) -> Plan:
    return make_plan(T, variant, OPTS)


def checkers(variant: str) -> list[Checker]:
    return resolve_checkers(plan(variant).checkers)


def test_is_a_target_with_redis_fenced_first() -> None:
    assert isinstance(T, Target)
    check_target(T)
    assert next(iter(T.variants)) == "redis-fenced"
    assert set(CORRECT) == {
        "redis-fenced",
        "pg-advisory-fenced",
        "optimistic-version",
        "serializable",
    }
    assert len(BUGGY) == 7 and set(T.variants) == set(VARIANTS)


def test_every_default_fault_spec_builds() -> None:
    for variant in T.variants:
        specs = [FaultSpec.parse(s) for s in plan(variant).faults]
        assert specs, variant
        for spec in specs:
            make_fault(spec.name, **spec.options)


def _topology(variant: str):  # type: ignore[no-untyped-def]
    return plan(variant).topology


def test_topologies_validate_and_only_redis_variants_start_redis() -> None:
    for variant in T.variants:
        topo = _topology(variant)
        topo.validate()
        (svc,) = topo.services
        assert svc.replicas >= 2 and svc.env["LOCKS_VARIANT"] == variant
        assert bool(topo.redis) == ("redis" in svc.depends_on)
    assert _topology("redis-volatile").redis[0].persistence == "none"
    assert _topology("redis-fenced").redis[0].persistence == "aof-always"


def test_checkers_per_variant() -> None:
    names = [c.name for c in checkers("redis-fenced")]
    assert names == ["mutual-exclusion", "fencing", "lost-update", "lock-liveness"]
    assert "linearizable" in [c.name for c in checkers("pg-advisory-session-lost")]


def drain(gen, workers: int = 8, steps: int = 400) -> list[tuple[int, Op]]:  # type: ignore[no-untyped-def]
    rng = random.Random(1)
    out: list[tuple[int, Op]] = []
    t = 0.0
    for i in range(steps):
        ctx = Context(time=t, worker=i % workers, workers=workers, rng=rng)
        step = gen.next(ctx)
        if step is None:
            break
        if isinstance(step, Wait):
            t = step.until if step.until is not None else t + 0.1
            continue
        out.append((ctx.worker, step))
        gen.update(ctx, step, Completion("ok"))
    return out


def test_workload_ops_are_unique_and_probes_pair_up() -> None:
    ops = drain(plan("pg-advisory-session-lost").workload)
    ids = [op.value["op_id"] for _, op in ops if op.f in ("incr", "append")]
    assert len(ids) == len(set(ids))
    assert {op.value["resource"] for _, op in ops if op.f == "incr"} == set(RESOURCES)
    last: dict[int, Op] = {}
    for worker, op in ops:
        if worker in last and last[worker].f == "acquire":
            assert op.f == "release" and op.value == last[worker].value
        last[worker] = op
    assert any(op.f == "acquire" for _, op in ops)
    assert not any(op.f == "acquire" for _, op in drain(plan("redis-fenced").workload))


def test_final_phase_covers_every_resource_then_reads() -> None:
    ops = drain(plan("redis-fenced").final, steps=2000)
    finals = [op for _, op in ops if op.f == "incr"]
    assert all(op.value["final"] for op in finals)
    assert {op.value["resource"] for op in finals} == set(RESOURCES)
    assert ops[-1][1].f == "read-resource"
