"""The worker pool's recording rules, with in-process clients (no servers needed)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import httpx

from workbench.client import Completion, CompletionType, Op, ok
from workbench.generator import Generator, limit, repeat, seq
from workbench.history import HistoryWriter, pair_operations, read_history
from workbench.workers import WorkerPool


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
