"""Concurrent clients: each worker is a logical single-threaded process that asks the generator
for operations, invokes them through its client, and records invoke and completion events.

How an operation ends (Jepsen's meaning):

- the client returns a :class:`Completion`: that;
- the per-operation timeout fires: ``info`` (it may still take effect);
- a connection refused or a connect timeout (nothing was sent): ``fail``;
- an error the client's ``classify`` calls ``fail`` or ``info``: that;
- anything else: ``info`` — when unsure we never claim an operation had no effect.

After an ``info`` the worker's process is retired and it continues as ``process + workers``
with a freshly opened client, because the old operation may still be in flight.

Each worker draws from its own random stream, ``random.Random(f"{stream}:{seed}:worker:{w}")``
(``stream`` is ``"workload"`` for the main phase, ``"final"`` for the final one), handed to the
generator as ``ctx.rng``. A shared stream would interleave draws in whatever order workers
happened to finish their operations, so one seed would not give one sequence of operations.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from workbench.client import Client, Completion, CompletionType, MaybeApplied, NotApplied, Op
from workbench.generator import Context, Generator, Wait
from workbench.history import HistoryWriter
from workbench.runtime.cluster import Cluster

# Errors that prove nothing reached the server.
_DEFINITE_FAILURES: tuple[type[BaseException], ...] = (
    NotApplied,
    ConnectionRefusedError,
    httpx.ConnectError,
    httpx.ConnectTimeout,
)


def classify_error(client: Client, error: BaseException) -> CompletionType:
    classify = getattr(client, "classify", None)
    if classify is not None:
        verdict: CompletionType | None = classify(error)
        if verdict is not None:
            return verdict
    if isinstance(error, MaybeApplied):
        return "info"
    if isinstance(error, _DEFINITE_FAILURES):
        return "fail"
    return "info"


def describe_error(error: BaseException) -> str:
    text = str(error).strip()
    name = type(error).__name__
    return f"{name}: {text}" if text else name


@dataclass
class Tally:
    """Live counts for progress display."""

    by_type: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    def total(self) -> int:
        return sum(self.by_type.values())


def worker_rngs(seed: int, workers: int, stream: str) -> list[random.Random]:
    """One random stream per worker, derived from ``seed`` and the phase's ``stream`` name."""
    return [random.Random(f"{stream}:{seed}:worker:{w}") for w in range(workers)]


class WorkerPool:
    """Runs ``workers`` concurrent workers over one generator until it is exhausted; ``seed``
    derives each worker's random stream (see :func:`worker_rngs`)."""

    def __init__(
        self,
        *,
        cluster: Cluster,
        history: HistoryWriter,
        make_client: Callable[[], Client],
        workers: int,
        op_timeout: float,
        seed: int,
        tally: Tally | None = None,
    ) -> None:
        self.cluster = cluster
        self.history = history
        self.make_client = make_client
        self.workers = workers
        self.op_timeout = op_timeout
        self.seed = seed
        self.tally = tally or Tally()
        self._clients: dict[int, Client] = {}
        self._process: dict[int, int] = {w: w for w in range(workers)}
        self._completed = asyncio.Event()

    def now(self) -> float:
        return self.history.now() / 1e9

    async def open(self) -> None:
        for w in range(self.workers):
            self._clients[w] = await self._new_client(w)

    async def _new_client(self, worker: int) -> Client:
        client = self.make_client()
        await client.open(self.cluster, worker)
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            try:
                await client.close()
            except Exception:  # a failing close must not hide the campaign's result
                pass
        self._clients.clear()

    async def run(self, gen: Generator, *, stream: str = "workload") -> None:
        """Runs every worker until ``gen`` is exhausted for all of them. Each worker's
        ``ctx.rng`` starts afresh from ``stream`` (use one name per phase: ``"workload"``,
        ``"final"``), so a phase's operations do not depend on how many draws the one before
        it made."""
        rngs = worker_rngs(self.seed, self.workers, stream)
        await asyncio.gather(*(self._worker(w, gen, rngs[w]) for w in range(self.workers)))

    async def _worker(self, worker: int, gen: Generator, rng: random.Random) -> None:
        while True:
            ctx = Context(self.now(), worker, self.workers, rng)
            step = gen.next(ctx)
            if step is None:
                return
            if isinstance(step, Wait):
                await self._wait(step.until)
                continue
            completion = await self._invoke(worker, step)
            gen.update(Context(self.now(), worker, self.workers, rng), step, completion)
            # Wake workers waiting on a barrier or for work that depends on this completion.
            self._completed.set()
            self._completed = asyncio.Event()
            # A client that answers without waiting would otherwise run this worker alone.
            await asyncio.sleep(0)

    async def _wait(self, until: float | None) -> None:
        event = self._completed
        timeout = 0.05 if until is None else max(0.0, until - self.now())
        # A bounded wait even for until=None: a generator may become ready with time alone.
        timeout = min(timeout, 0.5) if until is None else timeout
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass

    async def _invoke(self, worker: int, op: Op) -> Completion:
        process = self._process[worker]
        self.history.record(process, "invoke", op.f, op.value, **op.extra)
        client = self._clients[worker]
        try:
            async with asyncio.timeout(self.op_timeout):
                completion = await client.invoke(op)
        except TimeoutError:
            completion = Completion("info", None, "timeout")
        except asyncio.CancelledError:
            # The campaign is being torn down mid-operation: its outcome is unknown.
            self.history.record(process, "info", op.f, None, "cancelled")
            raise
        except Exception as e:  # every client error becomes a completion
            completion = Completion(classify_error(client, e), None, describe_error(e))
        # As Jepsen: a fail or info without a value of its own carries the invocation's value.
        value = completion.value
        if value is None and completion.type != "ok":
            value = op.value
        self.history.record(
            process, completion.type, op.f, value, completion.error, **completion.extra
        )
        self.tally.by_type[completion.type] += 1
        if completion.type == "info":
            self._process[worker] = process + self.workers
            await self._reopen(worker)
        return completion

    async def _reopen(self, worker: int) -> None:
        old = self._clients[worker]
        try:
            await old.close()
        except Exception:  # the old connection may be broken: that is why we reopen
            pass
        try:
            self._clients[worker] = await self._new_client(worker)
        except Exception:
            # Opening may fail while a fault is active; keep the old client and let the next
            # operation's error say what is wrong.
            self._clients[worker] = old
