"""The worker pool's recording rules, with in-process clients (no servers needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from workbench.client import Completion, CompletionType, Op, ok
from workbench.generator import Context, Generator, each_worker, from_fn, limit, mix, repeat, seq
from workbench.history import HistoryWriter, pair_operations, read_history
from workbench.workers import WorkerPool, worker_rngs


class ScriptedClient:
    """Raises or answers per operation ``f``; counts opens to observe reconnects."""

    opens = 0

    async def open(self, cluster: Any, worker: int) -> None:
        ScriptedClient.opens += 1

    async def invoke(self, op: Op) -> Completion:
        if op.f == "slow":
            await asyncio.sleep(10)
        if op.f == "refused":
            raise httpx.ConnectError("connection refused")
        if op.f == "reset":
            raise httpx.ReadError("connection reset by peer")
        if op.f == "conflict":
            raise ValueError("409")
        return ok(op.value)

    def classify(self, error: BaseException) -> CompletionType | None:
        return "fail" if isinstance(error, ValueError) else None

    async def close(self) -> None:
        return None


def run(tmp_path: Path, gen: Generator, workers: int = 1) -> list[Any]:
    ScriptedClient.opens = 0
    path = tmp_path / "h.jsonl"

    async def main() -> None:
        with HistoryWriter(path) as history:
            pool = WorkerPool(
                cluster=None,  # type: ignore[arg-type]
                history=history,
                make_client=ScriptedClient,
                workers=workers,
                op_timeout=0.2,
                seed=0,
            )
            await pool.open()
            await pool.run(gen)
            await pool.close()

    asyncio.run(main())
    return pair_operations(read_history(path).events)


def test_outcomes_follow_jepsen_semantics(tmp_path: Path) -> None:
    ops = run(tmp_path, seq([Op("w", 1), Op("refused", 2), Op("reset", 3), Op("conflict", 4)]))
    assert [(o.f, o.type) for o in ops] == [
        ("w", "ok"),
        ("refused", "fail"),  # nothing was sent: certainly no effect
        ("reset", "info"),  # sent, then lost: may have taken effect
        ("conflict", "fail"),  # the client's own classification wins
    ]
    assert ops[2].completion.error.startswith("ReadError")
    assert ops[1].value == 2  # a fail without a value of its own carries the invocation's


def test_timeout_is_info_and_retires_the_process(tmp_path: Path) -> None:
    ops = run(tmp_path, seq([Op("slow", 1), Op("w", 2), Op("slow", 3), Op("w", 4)]), workers=1)
    assert [(o.process, o.f, o.type) for o in ops] == [
        (0, "slow", "info"),
        (1, "w", "ok"),
        (1, "slow", "info"),
        (2, "w", "ok"),
    ]
    assert ops[0].completion.error == "timeout"
    # A fresh client after every indeterminate operation.
    assert ScriptedClient.opens == 3


def test_each_worker_is_single_threaded(tmp_path: Path) -> None:
    ops = run(tmp_path, limit(200, repeat(Op("w"))), workers=8)
    assert len(ops) == 200
    assert {o.process for o in ops} == set(range(8))
    # pair_operations raises if a process ever had two operations open at once.


class PacedClient:
    """Answers ``ok`` after yielding to the event loop ``pace(worker)`` times: the interleaving
    of workers is fixed by construction (the loop runs ready tasks in order), not by timing."""

    pace: Any = staticmethod(lambda worker: 1)

    async def open(self, cluster: Any, worker: int) -> None:
        self.worker = worker

    async def invoke(self, op: Op) -> Completion:
        for _ in range(PacedClient.pace(self.worker)):
            await asyncio.sleep(0)
        return ok(op.value)

    async def close(self) -> None:
        return None


def _draw(ctx: Context) -> Op:
    return Op("w", ctx.rng.randrange(10**6))


def _workload() -> Generator:
    # Per worker: a weighted choice of generator, then a value, both from ctx.rng.
    return each_worker(
        lambda w: limit(
            12, mix([from_fn(_draw), from_fn(lambda ctx: Op("r", ctx.rng.random()))], [1, 2])
        )
    )


def run_paced(
    tmp_path: Path, seed: int, pace: Any, workers: int = 4
) -> tuple[dict[int, list[tuple[str, Any]]], list[int]]:
    """Per worker, its invocations' (f, value) in order; and the workers in invocation order."""
    PacedClient.pace = staticmethod(pace)
    path = tmp_path / f"h-{seed}-{id(pace)}.jsonl"

    async def main() -> None:
        with HistoryWriter(path) as history:
            pool = WorkerPool(
                cluster=None,  # type: ignore[arg-type]
                history=history,
                make_client=PacedClient,
                workers=workers,
                op_timeout=5,
                seed=seed,
            )
            await pool.open()
            await pool.run(_workload())
            await pool.close()

    asyncio.run(main())
    invokes = [e for e in read_history(path).events if e.type == "invoke"]
    by_worker: dict[int, list[tuple[str, Any]]] = {w: [] for w in range(workers)}
    for e in invokes:
        assert isinstance(e.process, int)
        by_worker[e.process % workers].append((e.f, e.value))
    return by_worker, [int(e.process) % workers for e in invokes]


def test_same_seed_gives_each_worker_the_same_operations_whatever_the_interleaving(
    tmp_path: Path,
) -> None:
    fast_first, order_a = run_paced(tmp_path, 7, lambda w: 1 + w)
    slow_first, order_b = run_paced(tmp_path, 7, lambda w: 8 - 2 * w)
    assert order_a != order_b  # the workers really finished in different orders
    assert fast_first == slow_first
    assert all(len(ops) == 12 for ops in fast_first.values())
    assert {f for ops in fast_first.values() for f, _ in ops} == {"r", "w"}


def test_different_seeds_or_workers_draw_different_operations(tmp_path: Path) -> None:
    a, _ = run_paced(tmp_path, 7, lambda w: 1)
    b, _ = run_paced(tmp_path, 8, lambda w: 1)
    assert a != b
    assert len({tuple(ops) for ops in a.values()}) == len(a)  # each worker its own stream


def test_the_final_phase_draws_from_its_own_stream() -> None:
    main = [r.random() for r in worker_rngs(7, 3, "workload")]
    final = [r.random() for r in worker_rngs(7, 3, "final")]
    assert main == [r.random() for r in worker_rngs(7, 3, "workload")]
    assert set(main).isdisjoint(final)
