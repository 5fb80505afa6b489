"""The locks target's declarations: variants, fault mixes, topology, workload shape."""

from __future__ import annotations

import random

from faults.failpoint import Failpoint
from faults.registry import load_faults, make_fault
from targets.locks.target import LocksTarget
from targets.locks.variants import BUGGY, CORRECT, RESOURCES, VARIANTS
from workbench.client import Completion, Op
from workbench.generator import Context, Wait
from workbench.schedule import FaultSpec
from workbench.target import Target, WorkloadOptions

T = LocksTarget()
OPTS = WorkloadOptions(workers=8, time_limit=10, rate=None, seed=1)


def test_is_a_target_with_redis_fenced_first() -> None:
    assert isinstance(T, Target)
    assert next(iter(T.variants)) == "redis-fenced"
    assert set(CORRECT) == {
        "redis-fenced",
        "pg-advisory-fenced",
        "optimistic-version",
        "serializable",
    }
    assert len(BUGGY) == 7 and set(T.variants) == set(VARIANTS)


def test_every_default_fault_spec_builds() -> None:
    known = {**load_faults(), "failpoint": Failpoint}
    for variant in T.variants:
        specs = [FaultSpec.parse(s) for s in T.default_faults(variant)]
        assert specs, variant
        for spec in specs:
            assert spec.name in known, (variant, spec.text)
            if spec.name in load_faults():
                make_fault(spec.name, **spec.options)
            else:
                Failpoint(**spec.options)


def test_topologies_validate_and_only_redis_variants_start_redis() -> None:
    for variant in T.variants:
        topo = T.topology(variant)
        topo.validate()
        (svc,) = topo.services
        assert svc.replicas >= 2 and svc.env["LOCKS_VARIANT"] == variant
        assert bool(topo.redis) == ("redis" in svc.depends_on)
    assert T.topology("redis-volatile").redis[0].persistence == "none"
    assert T.topology("redis-fenced").redis[0].persistence == "aof-always"


def test_checkers_per_variant() -> None:
    names = [c.name for c in T.checkers("redis-fenced")]
    assert names == ["mutual-exclusion", "fencing", "lost-update", "lock-liveness"]
    assert "linearizable" in [c.name for c in T.checkers("pg-advisory-session-lost")]


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
    ops = drain(T.workload("pg-advisory-session-lost", OPTS))
    ids = [op.value["op_id"] for _, op in ops if op.f in ("incr", "append")]
    assert len(ids) == len(set(ids))
    assert {op.value["resource"] for _, op in ops if op.f == "incr"} == set(RESOURCES)
    last: dict[int, Op] = {}
    for worker, op in ops:
        if worker in last and last[worker].f == "acquire":
            assert op.f == "release" and op.value == last[worker].value
        last[worker] = op
    assert any(op.f == "acquire" for _, op in ops)
    assert not any(op.f == "acquire" for _, op in drain(T.workload("redis-fenced", OPTS)))


def test_final_phase_covers_every_resource_then_reads() -> None:
    ops = drain(T.final("redis-fenced", OPTS), steps=2000)
    finals = [op for _, op in ops if op.f == "incr"]
    assert all(op.value["final"] for op in finals)
    assert {op.value["resource"] for op in finals} == set(RESOURCES)
    assert ops[-1][1].f == "read-resource"
