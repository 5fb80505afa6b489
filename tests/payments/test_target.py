"""The payments target's seams: protocol, variants, fault mixes, topology, and the workload's
generators (driven here by a fake, deterministic service)."""

from __future__ import annotations

import random
from typing import Any

import pytest

import faults.registry as registry
from faults.failpoint import Failpoint
from targets.payments.client import classify_payment
from targets.payments.target import BUG_FAULTS, PaymentsTarget, all_faults
from targets.payments.variants import CORRECT_VARIANTS, VARIANTS, variant
from workbench.client import Completion, Op, fail, info, ok
from workbench.generator import Context, Generator, Wait
from workbench.schedule import FaultSpec
from workbench.target import Options, Target, check_target, make_plan

OPTIONS = Options(workers=4, time_limit=10, rate=None, seed=7)


def test_is_a_target_with_correct_pg_first() -> None:
    target = PaymentsTarget()
    assert isinstance(target, Target)
    check_target(target)
    assert next(iter(target.variants)) == "correct-pg"
    assert set(target.variants) == set(VARIANTS)
    assert set(BUG_FAULTS) == set(VARIANTS) - set(CORRECT_VARIANTS)
    with pytest.raises(ValueError, match="unknown payments variant"):
        variant("nope")


@pytest.mark.parametrize("name", list(VARIANTS))
def test_default_faults_build_and_topology_validates(name: str) -> None:
    plan = make_plan(PaymentsTarget(), name, OPTIONS)
    specs = list(plan.faults)
    assert specs
    for text in [*specs, *all_faults(variant(name))]:
        spec = FaultSpec.parse(text)
        registry.make_fault(spec.name, **spec.options)
    topo = plan.topology
    topo.validate()
    api = topo.services[-1]
    assert api.name == "payments-api" and api.replicas >= 2
    assert api.env["PAYMENTS_VARIANT"] == name
    if variant(name).store == "redis":
        assert topo.redis[0].persistence == ("none" if name == "redis-volatile" else "aof-always")


def test_failpoint_options_are_checked() -> None:
    with pytest.raises(ValueError, match="point"):
        Failpoint()
    with pytest.raises(ValueError, match="action"):
        Failpoint(point="x", action="explode")
    with pytest.raises(ValueError, match="replicas"):
        Failpoint(point="x", replicas="some")


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (201, {}, ("ok", None)),
        (200, {}, ("ok", None)),
        (409, {}, ("fail", "in_progress")),
        (422, {}, ("fail", "fingerprint_mismatch")),
        (400, {}, ("fail", "bad_request")),
        (503, {"charged": False}, ("fail", "store_unavailable")),
        (503, {"error": "store_unavailable"}, ("info", "http 503")),
        (502, {}, ("info", "http 502")),
        (500, "oops", ("info", "http 500")),
    ],
)
def test_client_classification(status: int, body: Any, expected: tuple[str, Any]) -> None:
    assert classify_payment(status, body) == expected


def fake_service(op: Op, rng: random.Random, seen: dict[str, Any]) -> Completion:
    """Answers like a correct API under faults: some requests end info or 409."""
    v = op.value
    if op.f != "pay":
        return ok({"read": op.f})
    first = seen.setdefault(v["key"], (v["amount_cents"], v["currency"]))
    if first != (v["amount_cents"], v["currency"]):
        return fail("fingerprint_mismatch", {"status": 422})
    roll = rng.random()
    if roll < 0.15:
        return info("timeout")
    if roll < 0.25:
        return fail("in_progress", {"status": 409})
    return ok({"status": 201, "body": {"amount_cents": v["amount_cents"]}})


def drive(gen: Generator, seed: int, steps: int, t0: float = 0.0) -> list[Op]:
    """Runs ``gen`` with 4 workers taking turns, every operation completing at once."""
    rng = random.Random(seed)
    answers = random.Random(seed + 1)
    seen: dict[str, Any] = {}
    ops: list[Op] = []
    t = t0
    for i in range(steps):
        ctx = Context(time=t, worker=i % 4, workers=4, rng=rng)
        step = gen.next(ctx)
        if step is None:
            break
        if isinstance(step, Wait):
            t = step.until if step.until is not None else t + 0.1
            continue
        ops.append(step)
        gen.update(ctx, step, fake_service(step, answers, seen))
        t += 0.05
    return ops


def test_workload_is_deterministic_and_mixes_its_requests() -> None:
    a = drive(make_plan(PaymentsTarget(), "correct-pg", OPTIONS).workload, seed=3, steps=600)
    b = drive(make_plan(PaymentsTarget(), "correct-pg", OPTIONS).workload, seed=3, steps=600)
    assert [(o.f, o.value) for o in a] == [(o.f, o.value) for o in b]
    pays = [o.value for o in a]
    assert len({p["rid"] for p in pays}) == len(pays), "request ids are unique"
    by_key: dict[str, list[dict[str, Any]]] = {}
    for p in pays:
        by_key.setdefault(p["key"], []).append(p)
    retried = [ps for ps in by_key.values() if len([p for p in ps if not p["reuse"]]) > 1]
    assert retried, "indeterminate and 409 requests are retried"
    for ps in retried:
        own = {(p["account"], p["amount_cents"], p["currency"]) for p in ps if not p["reuse"]}
        assert len(own) == 1, "a retry sends the same body"
    reused = [p for p in pays if p["reuse"]]
    assert reused, "some keys are reused with another body"
    for p in reused:
        assert p["amount_cents"] != by_key[p["key"]][0]["amount_cents"]


def test_final_phase_resolves_then_reads_in_order() -> None:
    plan = make_plan(PaymentsTarget(), "correct-pg", OPTIONS)
    main = drive(plan.workload, seed=5, steps=300)
    final = drive(plan.final or pytest.fail("no final"), 9, 3000, 100.0)
    reads = [o.f for o in final if o.f != "pay"]
    assert reads == ["read-balances", "read-provider", "read-records"]
    retries = [o for o in final if o.f == "pay"]
    assert retries and all(o.value["final"] for o in retries)
    assert final[-1].f == "read-records"
    keys = {o.value["key"] for o in main if not o.value["reuse"]}
    assert {k for _, k in final[-1].value["keys"]} == keys
