"""The outbox workload: orders placed, paid, shipped or cancelled, each command retried until it
resolves; then the final phase that lets the relay and consumer drain and reads the truth.

Each order moves one command at a time (``created -> paid -> shipped``, a cancel from created or
paid): the next command of an order is sent as soon as the previous one is acknowledged, so an
order's events are written in quick succession, which is when per-order ordering breaks. A
command's id is ``"{order}:{status}"``; an indeterminate command (``info``, or refused before
sending) is retried with the same id, which the service answers idempotently.

A :class:`Book` holds every order's state and is shared by the main phase and the final phase,
which resolves the commands the main phase left indeterminate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench import Completion, Context, Generator, Op, Step, Wait, gen

#: Errors after which the command is settled (nothing to retry).
SETTLED_ERRORS = frozenset({"invalid_transition", "duplicate_order", "unknown_order"})
NEXT = {"created": ("paid", "cancelled"), "paid": ("shipped", "cancelled")}


@dataclass
class Order:
    order: str
    status: str | None = None  # the last acknowledged status; None before the place is
    command: str | None = None  # the unresolved command, if any
    target: str = "created"  # the status that command asks for
    in_flight: bool = False
    attempts: int = 0
    failures: int = 0
    retry_at: float | None = None

    @property
    def ready(self) -> bool:
        """Free to move on: its last command is resolved and it can still change."""
        return self.command is None and not self.in_flight and self.status in NEXT


@dataclass
class Book:
    orders: dict[str, Order] = field(default_factory=dict)

    def op(self, o: Order, ctx: Context, replicas: int, *, final: bool = False) -> Op:
        o.in_flight = True
        o.attempts += 1
        o.retry_at = None
        assert o.command is not None
        v = {"order": o.order, "command": o.command, "replica": ctx.rng.randrange(replicas)}
        if o.target == "created":
            return Op("place", {**v, "final": final})
        return Op("set-status", {**v, "status": o.target, "final": final})

    def record(self, op: Op, completion: Completion) -> Order | None:
        """Notes how a command ended; returns the order when the command needs a retry."""
        if op.f not in ("place", "set-status"):
            return None
        o = self.orders[op.value["order"]]
        o.in_flight = False
        if completion.type == "ok":
            o.status = o.target
            o.command = None
            o.failures = 0
            return None
        if completion.type == "fail" and completion.error in SETTLED_ERRORS:
            o.command = None
            o.status = None  # unsure where it stands: leave the order alone from now on
            return None
        o.failures += 1
        return o

    def unresolved(self) -> list[Order]:
        return [o for o in self.orders.values() if o.command is not None]


def backoff(failures: int, ctx: Context, base: float = 0.2, cap: float = 1.5) -> float:
    delay: float = min(cap, base * 2.0 ** max(0, failures - 1))
    return delay * ctx.rng.uniform(0.5, 1.5)


class OrdersWorkload:
    """Endless main-phase commands: a retry that is due; else, with ``advance`` probability, the
    next command of an order that is ready; else a new order."""

    def __init__(
        self, book: Book, *, replicas: int, advance: float = 0.7, cancel: float = 0.15
    ) -> None:
        self.book = book
        self.replicas = replicas
        self.advance = advance
        self.cancel = cancel
        self.max_attempts = 6
        self._ready: list[str] = []
        self._n = 0

    def next(self, ctx: Context) -> Step:
        for o in self.book.orders.values():
            if o.retry_at is not None and o.retry_at <= ctx.time and not o.in_flight:
                return self.book.op(o, ctx, self.replicas)
        while self._ready and not self.book.orders[self._ready[0]].ready:
            self._ready.pop(0)
        if self._ready and ctx.rng.random() < self.advance:
            o = self.book.orders[self._ready.pop(0)]
            assert o.status is not None
            ahead, stop = NEXT[o.status]
            o.target = stop if ctx.rng.random() < self.cancel else ahead
            o.command = f"{o.order}:{o.target}"
            return self.book.op(o, ctx, self.replicas)
        self._n += 1
        o = Order(f"o{self._n}", command=f"o{self._n}:created")
        self.book.orders[o.order] = o
        return self.book.op(o, ctx, self.replicas)

    def update(self, ctx: Context, op: Op, completion: Completion) -> None:
        o = self.book.record(op, completion)
        if o is None:
            order = self.book.orders.get(op.value.get("order", ""))
            if order is not None and order.ready:
                self._ready.append(order.order)
            return
        if o.attempts < self.max_attempts:
            o.retry_at = ctx.time + backoff(o.failures, ctx)


class Resolver:
    """Final phase: retries every unresolved command (one at a time per order, with backoff)
    until it resolves, ``attempts`` more tries each, or ``budget`` seconds pass."""

    def __init__(self, book: Book, *, replicas: int, attempts: int = 8, budget: float = 20.0):
        self.book = book
        self.replicas = replicas
        self.attempts = attempts
        self.budget = budget
        self._deadline: float | None = None
        self._tries: dict[str, int] = {}
        self._ready_at: dict[str, float] = {}

    def next(self, ctx: Context) -> Step:
        if self._deadline is None:
            self._deadline = ctx.time + self.budget
        if ctx.time >= self._deadline:
            return None
        earliest: float | None = None
        pending = False
        for o in self.book.unresolved():
            if self._tries.get(o.order, 0) >= self.attempts:
                continue
            pending = True
            if o.in_flight:
                continue
            at = self._ready_at.get(o.order, 0.0)
            if at <= ctx.time:
                self._tries[o.order] = self._tries.get(o.order, 0) + 1
                return self.book.op(o, ctx, self.replicas, final=True)
            earliest = at if earliest is None else min(earliest, at)
        if not pending:
            return None
        return Wait(earliest)

    def update(self, ctx: Context, op: Op, completion: Completion) -> None:
        o = self.book.record(op, completion)
        if o is not None:
            self._ready_at[o.order] = ctx.time + backoff(o.failures, ctx, base=0.3, cap=1.0)


class UntilIdle:
    """Polls ``progress`` (one at a time, every ``every`` seconds) until nothing is left to
    publish or consume and the consumer applied nothing new for ``quiet`` seconds, or ``budget``
    seconds pass: a relay or consumer that stopped for good must not stall the campaign."""

    def __init__(self, *, budget: float = 20.0, quiet: float = 1.0, every: float = 0.3) -> None:
        self.budget = budget
        self.quiet = quiet
        self.every = every
        self._deadline: float | None = None
        self._in_flight = False
        self._next_at = 0.0
        self._applied: int | None = None
        self._since = 0.0
        self._done = False

    def next(self, ctx: Context) -> Step:
        if self._deadline is None:
            self._deadline = ctx.time + self.budget
        if self._done or ctx.time >= self._deadline:
            return None
        if self._in_flight:
            return Wait(None)
        if ctx.time < self._next_at:
            return Wait(self._next_at)
        self._in_flight = True
        return Op("progress", {})

    def update(self, ctx: Context, op: Op, completion: Completion) -> None:
        self._in_flight = False
        self._next_at = ctx.time + self.every
        if completion.type != "ok" or not isinstance(completion.value, dict):
            self._applied = None
            return
        v = completion.value
        applied = int(v.get("applied", 0))
        if applied != self._applied:
            self._applied, self._since = applied, ctx.time
        drained = not (v.get("relay_backlog") or v.get("pending") or v.get("lag"))
        if drained and ctx.time - self._since >= self.quiet:
            self._done = True


def final_phase(book: Book, *, replicas: int) -> Generator:
    """Resolve every command, wait until the relay and consumer are idle, then read the orders
    (the committed truth), the consumer's effects, and the streams: in that order, so that any
    effect the reads show has its change in the first read unless it is a phantom."""
    return gen.phases(
        Resolver(book, replicas=replicas),
        UntilIdle(),
        gen.read_until_ok(Op("read-orders", {})),
        gen.read_until_ok(Op("read-effects", {})),
        gen.read_until_ok(Op("read-stream", {})),
    )
