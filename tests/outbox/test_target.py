"""The outbox target: its declarations, its workload's shape, and whole campaigns from the CLI.

The campaigns are the issue's claims, run as a user would run them: ``workbench run outbox
--variant dual-write`` exits 1 naming lost messages; the serial cursor loses messages although
no process crashes; the correct SKIP LOCKED relay exits 0 under its every-fault mix.
"""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from faults.registry import make_fault
from targets.outbox.target import ALL_FAULTS, BUG_FAULTS, OutboxTarget, all_faults
from targets.outbox.variants import VARIANTS
from targets.outbox.workload import Book, OrdersWorkload
from workbench.client import Completion, Op, ok
from workbench.generator import Context, Wait
from workbench.schedule import FaultSpec
from workbench.target import Options, Target, check_target, make_plan

REPO = Path(__file__).resolve().parents[2]
T = OutboxTarget()


def test_is_a_target_whose_bug_variants_each_have_a_fault_mix() -> None:
    assert isinstance(T, Target)
    check_target(T)
    assert next(iter(T.variants)) == "skip-locked"
    bugs = {n for n, v in VARIANTS.items() if not v.correct}
    assert bugs == set(BUG_FAULTS)
    assert {n for n, v in VARIANTS.items() if v.correct} == {
        "skip-locked", "xid-cursor", "cdc", "side-effect-machine",
    }  # fmt: skip
    for name in T.variants:
        plan = make_plan(T, name, Options())
        plan.topology.validate()
        for spec in map(FaultSpec.parse, plan.faults):
            make_fault(spec.name, **spec.options)


def test_topology_follows_the_variant() -> None:
    def topo(name: str) -> Any:
        return make_plan(T, name, Options()).topology

    names = [s.name for s in topo("skip-locked").services]
    assert names == ["orders-api", "relay", "consumer"]
    assert [s.name for s in topo("dual-write").services] == ["orders-api", "consumer"]
    assert "redis" in topo("dual-write").services[0].depends_on
    assert "redis" not in topo("skip-locked").services[0].depends_on
    assert topo("cdc").postgres[0].settings["wal_level"] == "logical"
    assert not topo("skip-locked").postgres[0].settings
    assert topo("volatile-broker").redis[0].persistence == "none"
    # Without a relay, no relay fault is drawn.
    side = all_faults(VARIANTS["side-effect-machine"])
    assert side and not any("relay" in f for f in side)
    assert all_faults(VARIANTS["skip-locked"]) == list(ALL_FAULTS)


def test_workload_moves_each_order_one_command_at_a_time_and_retries_with_the_same_id() -> None:
    book = Book()
    w = OrdersWorkload(book, replicas=2)
    rng = random.Random(3)
    in_flight: dict[str, Op] = {}
    commands: dict[str, list[str]] = {}
    t = 0.0
    for i in range(600):
        ctx = Context(time=t, worker=i % 4, workers=4, rng=rng)
        step = w.next(ctx)
        assert step is not None and not isinstance(step, Wait)
        order = step.value["order"]
        assert order not in in_flight, "two commands of one order in flight"
        in_flight[order] = step
        commands.setdefault(order, []).append(step.value["command"])
        # Complete the oldest in-flight command: ok, except every fifth, which is info.
        first = next(iter(in_flight))
        op = in_flight.pop(first)
        done: Completion
        if i % 5 == 4:
            done = Completion("info", None, "http 503")
        else:
            status = op.value.get("status", "created")
            done = ok({"order": first, "status": status})
        w.update(ctx, op, done)
        t += 0.5
    statuses = [c.split(":")[1] for cs in commands.values() for c in cs]
    assert {"created", "paid", "shipped", "cancelled"} <= set(statuses)
    for order, cs in commands.items():
        # A command is repeated only as a retry, right after itself; the lifecycle is legal.
        distinct = list(dict.fromkeys(cs))
        assert all(c.startswith(f"{order}:") for c in cs)
        path = [c.split(":")[1] for c in distinct]
        assert path[0] == "created"
        for a, b in itertools.pairwise(path):
            assert b in {"created": ("paid", "cancelled"), "paid": ("shipped", "cancelled")}[a]
        assert cs == sorted(cs, key=distinct.index)
    assert any(len(cs) > len(set(cs)) for cs in commands.values())  # some retries happened


def run_cli(tmp: Path, *args: str) -> tuple[int, str, dict[str, Any], list[dict[str, Any]]]:
    store = tmp / "store"
    proc = subprocess.run(
        [sys.executable, "-m", "workbench", "run", "outbox", *args, "--store", str(store),
         "--quiet"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    run_dir = (store / "latest").resolve()
    results = json.loads((run_dir / "results.json").read_text())
    events = [json.loads(line) for line in (run_dir / "history.jsonl").open()]
    return proc.returncode, proc.stdout + proc.stderr, results, events


def by_checker(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["checker"]: c for c in results["checkers"]}


@pytest.mark.servers
@pytest.mark.slow
def test_dual_write_loses_messages_and_names_them(tmp_path: Path) -> None:
    code, out, results, _ = run_cli(tmp_path, "--variant", "dual-write", "--time-limit", "20")
    assert code == 1, out
    lost = by_checker(results)["lost-messages"]
    assert lost["valid"] is False and lost["impact"]["lost"] >= 1
    assert "messages lost (orders o" in out or "message lost (orders o" in out
    first = lost["anomalies"][0]
    assert first["data"]["order"] in first["explanation"]
    assert "never reached the broker" in first["explanation"]


@pytest.mark.servers
@pytest.mark.slow
def test_serial_cursor_loses_messages_although_no_process_crashes(tmp_path: Path) -> None:
    code, out, results, events = run_cli(
        tmp_path, "--variant", "serial-cursor", "--time-limit", "20", "--seed", "3"
    )
    assert code == 1, out
    faults = {e["value"]["fault"] for e in events if e["process"] == "nemesis"}
    assert faults and faults <= {"failpoint", "latency"}
    starts = [e["value"] for e in events if e["process"] == "nemesis" and e["f"] == "start"]
    assert all(s.get("action", "sleep") == "sleep" for s in starts)
    assert by_checker(results)["lost-messages"]["impact"]["lost"] >= 1


@pytest.mark.servers
@pytest.mark.slow
def test_skip_locked_is_clean_under_its_every_fault_mix(tmp_path: Path) -> None:
    code, out, results, events = run_cli(
        tmp_path, "--variant", "skip-locked", "--time-limit", "20", "--seed", "5"
    )
    assert code == 0, out
    checks = by_checker(results)
    assert all(c["valid"] is True for c in checks.values()), out
    assert checks["lost-messages"]["stats"]["committed"] > 100
    assert any(e["process"] == "nemesis" and e["f"] == "start" for e in events)


def test_cdc_relay_reads_the_event_from_a_test_decoding_insert_line() -> None:
    from targets.outbox.relay import parse_insert

    line = (
        "table public.outbox: INSERT: id[bigint]:7 txid[xid8]:'1003' event_id[uuid]:'e-1'"
        " aggregate_id[text]:'o1' version[integer]:2"
        ' payload[jsonb]:\'{"order": "o1", "note": "it\'\'s"}\''
        " claimed_by[text]:null claimed_at[timestamp with time zone]:null"
        " sent_at[timestamp with time zone]:null"
    )
    assert parse_insert(line) == {"order": "o1", "note": "it's"}
    assert parse_insert("table public.orders: INSERT: order_id[text]:'o1'") is None
    assert parse_insert("BEGIN 1003") is None
