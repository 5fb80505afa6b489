"""Composable operation generators, in the spirit of Jepsen's.

A generator is asked by a free worker for its next step and told how each operation ended::

    step = gen.next(ctx)        # an Op, a Wait, or None (exhausted)
    gen.update(ctx, op, done)   # after the operation completes

``Wait(until)`` means "nothing for this worker yet; ask again at ``until`` seconds (or as soon as
any operation completes when ``until`` is None)". Generators are stateful objects; build a fresh
one per campaign. All randomness comes from ``ctx.rng``: the asking worker's own stream, derived
from the campaign's seed (one per worker and phase, see :mod:`workbench.workers`), so the same
seed gives each worker the same sequence of draws however the workers' operations interleave.
A generator whose choices depend only on ``ctx`` (``from_fn``, ``mix``, ``each_worker``) gives
each worker the same operations for the same seed; one shared by workers (``seq``) hands its
next operation to whichever worker asks first.

Combinators: :func:`from_fn`, :func:`once`, :func:`seq`, :func:`mix`, :func:`stagger`,
:func:`limit`, :func:`time_limit`, :func:`phases`, :func:`each_worker`, :func:`until_ok`,
:func:`sleep`.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from workbench.client import Completion, Op


@dataclass(frozen=True)
class Wait:
    until: float | None = None


Step = Op | Wait | None


@dataclass
class Context:
    """What a generator may know when asked: ``time`` is seconds since the campaign started;
    ``rng`` is the asking worker's own random stream (draw from nothing else)."""

    time: float
    worker: int
    workers: int
    rng: random.Random


@runtime_checkable
class Generator(Protocol):
    def next(self, ctx: Context) -> Step: ...

    def update(self, ctx: Context, op: Op, completion: Completion) -> None: ...


class _Base:
    def update(self, ctx: Context, op: Op, completion: Completion) -> None:
        return None


class FromFn(_Base):
    """Endless operations made by ``fn(ctx)``; ``fn`` may return None to end the generator."""

    def __init__(self, fn: Callable[[Context], Op | None]) -> None:
        self._fn = fn
        self._done = False

    def next(self, ctx: Context) -> Step:
        if self._done:
            return None
        op = self._fn(ctx)
        if op is None:
            self._done = True
            return None
        # Combinators track in-flight operations by identity: hand out a distinct object.
        return copy.copy(op)


def from_fn(fn: Callable[[Context], Op | None]) -> Generator:
    return FromFn(fn)


class Seq(_Base):
    """These operations, in order, each once (to whichever worker asks)."""

    def __init__(self, ops: Iterable[Op]) -> None:
        self._ops = list(ops)
        self._i = 0

    def next(self, ctx: Context) -> Step:
        if self._i >= len(self._ops):
            return None
        op = self._ops[self._i]
        self._i += 1
        return copy.copy(op)


def once(op: Op) -> Generator:
    return Seq([op])


def seq(ops: Iterable[Op]) -> Generator:
    return Seq(ops)


class _Delegating:
    """Passes completions to the inner generator that produced the op."""

    def __init__(self, inner: Generator) -> None:
        self.inner = inner

    def update(self, ctx: Context, op: Op, completion: Completion) -> None:
        self.inner.update(ctx, op, completion)


class Mix:
    """Each step from a randomly chosen generator (weighted), until all are exhausted."""

    def __init__(self, gens: Sequence[Generator], weights: Sequence[float] | None = None) -> None:
        self._gens = list(gens)
        self._weights = list(weights) if weights is not None else [1.0] * len(self._gens)
        if len(self._weights) != len(self._gens):
            raise ValueError("mix: one weight per generator")
        self._owner: dict[int, Generator] = {}

    def next(self, ctx: Context) -> Step:
        earliest: float | None = None
        waiting = False
        while self._gens:
            i = ctx.rng.choices(range(len(self._gens)), weights=self._weights)[0]
            step = self._gens[i].next(ctx)
            if step is None:
                del self._gens[i]
                del self._weights[i]
                continue
            if isinstance(step, Wait):
                # Another generator may have work now: try each once before waiting.
                waiting = True
                if step.until is not None:
                    earliest = step.until if earliest is None else min(earliest, step.until)
                for g in self._gens:
                    if g is self._gens[i]:
                        continue
                    other = g.next(ctx)
                    if isinstance(other, Op):
                        self._owner[id(other)] = g
                        return other
                return Wait(earliest)
            self._owner[id(step)] = self._gens[i]
            return step
        return Wait(earliest) if waiting else None

    def update(self, ctx: Context, op: Op, completion: Completion) -> None:
        g = self._owner.pop(id(op), None)
        if g is not None:
            g.update(ctx, op, completion)


def mix(gens: Sequence[Generator], weights: Sequence[float] | None = None) -> Generator:
    return Mix(gens, weights)


class Stagger(_Delegating):
    """Spaces operations so that, across all workers, they arrive at about ``rate`` per second:
    each gap is uniform in [0, 2/rate], as Jepsen's ``stagger``."""

    def __init__(self, rate: float, inner: Generator) -> None:
        if rate <= 0:
            raise ValueError("stagger: rate must be positive")
        super().__init__(inner)
        self._dt = 1.0 / rate
        self._next_at: float | None = None

    def next(self, ctx: Context) -> Step:
        if self._next_at is None:
            self._next_at = ctx.time
        if ctx.time < self._next_at:
            return Wait(self._next_at)
        step = self.inner.next(ctx)
        if isinstance(step, Op):
            self._next_at = max(self._next_at, ctx.time - self._dt) + ctx.rng.uniform(
                0, 2 * self._dt
            )
        return step


def stagger(rate: float, inner: Generator) -> Generator:
    return Stagger(rate, inner)


class Limit(_Delegating):
    def __init__(self, n: int, inner: Generator) -> None:
        super().__init__(inner)
        self._left = n

    def next(self, ctx: Context) -> Step:
        if self._left <= 0:
            return None
        step = self.inner.next(ctx)
        if isinstance(step, Op):
            self._left -= 1
        return step


def limit(n: int, inner: Generator) -> Generator:
    """At most ``n`` operations from ``inner``."""
    return Limit(n, inner)


class TimeLimit(_Delegating):
    def __init__(self, seconds: float, inner: Generator) -> None:
        super().__init__(inner)
        self._seconds = seconds
        self._deadline: float | None = None

    def next(self, ctx: Context) -> Step:
        if self._deadline is None:
            self._deadline = ctx.time + self._seconds
        if ctx.time >= self._deadline:
            return None
        step = self.inner.next(ctx)
        if isinstance(step, Wait) and (step.until is None or step.until > self._deadline):
            return Wait(self._deadline if step.until is not None else step.until)
        return step


def time_limit(seconds: float, inner: Generator) -> Generator:
    """Operations from ``inner`` until ``seconds`` after this generator is first asked."""
    return TimeLimit(seconds, inner)


class Sleep(_Base):
    """Gives no operation for ``seconds`` after first asked, then is exhausted (use in phases)."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._until: float | None = None

    def next(self, ctx: Context) -> Step:
        if self._until is None:
            self._until = ctx.time + self._seconds
        return Wait(self._until) if ctx.time < self._until else None


def sleep(seconds: float) -> Generator:
    return Sleep(seconds)


class Phases:
    """Runs each generator to exhaustion, and waits for all its operations to complete, before
    the next one starts (a barrier, as Jepsen's ``phases``)."""

    def __init__(self, gens: Sequence[Generator]) -> None:
        self._gens = list(gens)
        self._i = 0
        self._in_flight = 0
        self._phase_of: dict[int, int] = {}

    def next(self, ctx: Context) -> Step:
        while self._i < len(self._gens):
            step = self._gens[self._i].next(ctx)
            if step is not None:
                if isinstance(step, Op):
                    self._in_flight += 1
                    self._phase_of[id(step)] = self._i
                return step
            if self._in_flight > 0:
                return Wait(None)  # barrier: the phase's last operations are still running
            self._i += 1
        return None

    def update(self, ctx: Context, op: Op, completion: Completion) -> None:
        i = self._phase_of.pop(id(op), None)
        if i is not None:
            self._in_flight -= 1
            self._gens[i].update(ctx, op, completion)


def phases(*gens: Generator) -> Generator:
    return Phases(gens)


class EachWorker:
    """A separate generator per worker, made by ``factory(worker)``; e.g. one final read each."""

    def __init__(self, factory: Callable[[int], Generator]) -> None:
        self._factory = factory
        self._gens: dict[int, Generator] = {}
        self._worker_of: dict[int, int] = {}
        self._exhausted: set[int] = set()

    def next(self, ctx: Context) -> Step:
        g = self._gens.get(ctx.worker)
        if g is None:
            g = self._gens[ctx.worker] = self._factory(ctx.worker)
        step = None if ctx.worker in self._exhausted else g.next(ctx)
        if step is None:
            self._exhausted.add(ctx.worker)
            # Exhausted only when every worker's generator is, so that phases() does not move
            # on while another worker still has operations to run.
            return None if len(self._exhausted) >= ctx.workers else Wait(None)
        if isinstance(step, Op):
            self._worker_of[id(step)] = ctx.worker
        return step

    def update(self, ctx: Context, op: Op, completion: Completion) -> None:
        w = self._worker_of.pop(id(op), None)
        if w is not None:
            self._gens[w].update(ctx, op, completion)


def each_worker(factory: Callable[[int], Generator]) -> Generator:
    return EachWorker(factory)


class UntilOk(_Delegating):
    """Operations from ``inner`` until one completes ``ok``; then exhausted."""

    def __init__(self, inner: Generator) -> None:
        super().__init__(inner)
        self._done = False

    def next(self, ctx: Context) -> Step:
        return None if self._done else self.inner.next(ctx)

    def update(self, ctx: Context, op: Op, completion: Completion) -> None:
        if completion.type == "ok":
            self._done = True
        self.inner.update(ctx, op, completion)


def until_ok(inner: Generator) -> Generator:
    return UntilOk(inner)


def repeat(op: Op) -> Generator:
    """The same operation forever."""
    return FromFn(lambda ctx: op)


class ReadUntilOk:
    """``op`` one at a time (never two copies in flight) until one completes ``ok`` or ``tries``
    were made: the shape of a final read, cheap to repeat, but whose concurrent copies would only
    add noise to the history."""

    def __init__(self, op: Op, tries: int = 5) -> None:
        self.op = op
        self.tries = tries
        self._in_flight = False
        self._done = False

    def next(self, ctx: Context) -> Step:
        if self._done or (self.tries <= 0 and not self._in_flight):
            return None
        if self._in_flight:
            return Wait(None)
        self.tries -= 1
        self._in_flight = True
        return Op(self.op.f, self.op.value, dict(self.op.extra))

    def update(self, ctx: Context, op: Op, completion: Completion) -> None:
        self._in_flight = False
        if completion.type == "ok":
            self._done = True


def read_until_ok(op: Op, tries: int = 5) -> Generator:
    return ReadUntilOk(op, tries)


class Lazy:
    """The generator ``make()`` returns, built when first asked for an operation: for a phase
    whose operations depend on what earlier phases learnt (the keys a final read must cover)."""

    def __init__(self, make: Callable[[], Generator]) -> None:
        self._make = make
        self._gen: Generator | None = None

    def next(self, ctx: Context) -> Step:
        if self._gen is None:
            self._gen = self._make()
        return self._gen.next(ctx)

    def update(self, ctx: Context, op: Op, completion: Completion) -> None:
        if self._gen is not None:
            self._gen.update(ctx, op, completion)


def lazy(make: Callable[[], Generator]) -> Generator:
    return Lazy(make)
