"""Reading an outbox history: order writes, the events they commit, and where each event went.

The shapes (written by ``targets/outbox``, but nothing here imports it; any target that records
the same operations can use these checkers). Client writes, each one transaction in the orders
API:

- ``place``: invocation value ``{"order": "o17", "command": "o17:place", "replica": 0,
  "final": false}``; ok value ``{"order": "o17", "version": 1, "status": "created",
  "event": "<uuid>", "replayed": bool}``.
- ``set-status``: invocation value ``{"order": "o17", "status": "paid"|"shipped"|"cancelled",
  "command": "o17:paid", "replica": 1, "final": false}``; ok value ``{"order", "version",
  "status", "event", "replayed"}``.

``fail`` (``error`` e.g. ``invalid_transition``, ``refused``) means the write certainly had no
effect; ``info`` (or no completion) means it may have committed. A command may be retried (the
same ``command``), so several operations can share one; a replayed answer names the event of
the command's first commit.

Final reads; the LAST ok of each counts; every value is a dict:

- ``read-orders``: ok value ``{"orders": {"o17": {"status", "version"}, ...}, "changes":
  [{"event", "order", "version", "status", "command", "committed_at"}, ...], "outbox":
  {"<uuid>": {"state": "pending"|"claimed"|"sent", "claimed_by": "relay-1"|null}}}``.
  ``changes`` is the ground truth: every committed order change, one event each, which the
  consumer must apply exactly once. ``committed_at`` is epoch seconds on the PostgreSQL
  server's clock. ``outbox`` is optional (absent for variants without an outbox table) and only
  explains where a message got stuck.
- ``read-effects``: ok value ``{"effects": [{"event", "order", "version", "status", "command",
  "applied", "deliveries", "first_seq", "applied_at"}, ...]}``: ``applied`` (>= 1) is how many
  times the consumer applied the event's effect, ``deliveries`` how many times it received the
  message (deduplicated ones included), ``first_seq`` the global order of first application,
  ``applied_at`` epoch seconds of the first application on the same PostgreSQL clock.
- ``read-stream``: ok value ``{"streams": {"orders.events.0": [{"id": "1764880000123-0",
  "event", "order", "version"}, ...], ...}}``, entries in stream order. It may be missing: then
  checkers say nothing about the broker.
- ``progress``: ok value ``{"relay_backlog", "pending", "lag", "applied"}`` (sums over the
  relays and consumers): the final phase polls it until the pipeline has drained. The last ok
  one completed before ``read-effects`` began says whether it had (all three counts zero): when
  it had not, an event not yet applied may still be on its way, so it is not called lost.

Because ``changes`` is the database's own account, indeterminate writes need no guessing: an
``info`` write that committed is in ``changes`` and must be applied; one that did not is not, and
must not be. No checker counts an ``info`` write as lost or phantom by itself.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from workbench.checker import Witness
from workbench.history import Event, Operation, pair_operations

WRITE_FS = frozenset({"place", "set-status"})
MAX_WRITES_SHOWN = 20
MAX_ORDERS_NAMED = 5


@dataclass(frozen=True)
class Write:
    """One ``place`` or ``set-status`` operation."""

    op: Operation
    order: str
    command: str
    status: str  # the status asked for ("created" for a place)

    @property
    def type(self) -> str:
        return self.op.type

    @property
    def answer(self) -> Mapping[str, Any]:
        """The ok value (empty unless the write ended ok with a dict)."""
        c = self.op.completion
        if c is None or c.type != "ok" or not isinstance(c.value, dict):
            return {}
        return c.value

    @property
    def event(self) -> str | None:
        """The event id an ok write was acknowledged with."""
        e = self.answer.get("event")
        return None if e is None else str(e)

    def outcome(self) -> str:
        """How the write ended, in a few words (``ok v2``, ``info: http 500``)."""
        c = self.op.completion
        if c is None:
            return "never completed"
        if c.type == "ok":
            a = self.answer
            replayed = " (replayed)" if a.get("replayed") else ""
            return f"ok v{a.get('version')}{replayed}"
        return f"{c.type}: {c.error}" if c.error is not None else c.type


@dataclass(frozen=True)
class Change:
    """One committed order change (a row of ``read-orders``' ``changes``)."""

    event: str
    order: str
    version: int
    status: str
    command: str
    committed_at: float
    row: Mapping[str, Any]

    @property
    def name(self) -> str:
        return change_name(self.order, self.version, self.status)


@dataclass(frozen=True)
class Effect:
    """One applied event (a row of ``read-effects``)."""

    event: str
    order: str
    version: int
    status: str
    command: str
    applied: int
    deliveries: int
    first_seq: int
    applied_at: float
    row: Mapping[str, Any]

    @property
    def name(self) -> str:
        return change_name(self.order, self.version, self.status)


@dataclass(frozen=True)
class StreamEntry:
    stream: str
    id: str
    event: str
    order: str
    version: int | None


@dataclass(frozen=True)
class OutboxHistory:
    """Everything the outbox checkers read, parsed once.

    ``orders_op`` / ``effects_op`` / ``stream_op`` are the last ok final reads (None when the
    history has none); ``changes`` / ``effects`` / ``stream`` their contents (None likewise).
    ``outbox`` is ``read-orders``' optional outbox table. ``effects`` holds one row per event:
    rows repeating an event are merged (applications and deliveries summed, the earliest
    ``first_seq`` and ``applied_at`` kept).
    """

    writes: tuple[Write, ...]
    orders_op: Operation | None
    changes: tuple[Change, ...] | None
    outbox: Mapping[str, Mapping[str, Any]] | None
    effects_op: Operation | None
    effects: tuple[Effect, ...] | None
    stream_op: Operation | None
    stream: tuple[StreamEntry, ...] | None
    backlog: Mapping[str, int] | None = None
    """The last ok ``progress`` before ``read-effects``: its non-zero counts (empty: drained;
    None: no progress was read)."""

    @cached_property
    def by_command(self) -> dict[str, list[Write]]:
        out: dict[str, list[Write]] = defaultdict(list)
        for w in self.writes:
            out[w.command].append(w)
        return dict(out)

    @cached_property
    def changes_by_event(self) -> dict[str, Change]:
        return {c.event: c for c in self.changes or ()}

    @cached_property
    def effects_by_event(self) -> dict[str, Effect]:
        return {e.event: e for e in self.effects or ()}

    @cached_property
    def stream_by_event(self) -> dict[str, list[StreamEntry]]:
        out: dict[str, list[StreamEntry]] = defaultdict(list)
        for s in self.stream or ():
            out[s.event].append(s)
        return dict(out)


def read_outbox(history: Sequence[Event]) -> OutboxHistory:
    """Parses the writes and the last ok final reads of ``history``."""
    writes: list[Write] = []
    last: dict[str, Operation] = {}
    for op in pair_operations(history):
        if op.f in WRITE_FS and isinstance(op.invoke.value, dict):
            v = op.invoke.value
            status = "created" if op.f == "place" else str(v.get("status"))
            writes.append(Write(op, str(v["order"]), str(v["command"]), status))
        elif op.f in ("read-orders", "read-effects", "read-stream") and op.type == "ok":
            last[op.f] = op
    orders_op = _with(last.get("read-orders"), "changes", list)
    effects_op = _with(last.get("read-effects"), "effects", list)
    stream_op = _with(last.get("read-stream"), "streams", dict)
    backlog: dict[str, int] | None = None
    for op in pair_operations(history):
        c = op.completion
        if op.f != "progress" or c is None or c.type != "ok" or not isinstance(c.value, dict):
            continue
        if effects_op is not None and c.index > effects_op.invoke.index:
            break
        backlog = {
            k: int(c.value[k])
            for k in ("relay_backlog", "pending", "lag")
            if isinstance(c.value.get(k), int) and c.value[k] > 0
        }
    outbox = None
    if orders_op is not None:
        raw = _value(orders_op).get("outbox")
        outbox = {str(k): v for k, v in raw.items()} if isinstance(raw, dict) else None
    return OutboxHistory(
        writes=tuple(writes),
        orders_op=orders_op,
        changes=None if orders_op is None else _changes(_value(orders_op)["changes"]),
        outbox=outbox,
        effects_op=effects_op,
        effects=None if effects_op is None else _effects(_value(effects_op)["effects"]),
        stream_op=stream_op,
        stream=None if stream_op is None else _stream(_value(stream_op)["streams"]),
        backlog=backlog,
    )


def _value(op: Operation) -> Mapping[str, Any]:
    v = op.completion.value if op.completion is not None else None
    return v if isinstance(v, dict) else {}


def _with(op: Operation | None, key: str, kind: type) -> Operation | None:
    """``op`` when its value holds ``key`` of the given kind (a read of another shape is no
    read of this one)."""
    return op if op is not None and isinstance(_value(op).get(key), kind) else None


def _changes(rows: Iterable[Any]) -> tuple[Change, ...]:
    out: dict[str, Change] = {}
    for r in rows:
        c = Change(
            event=str(r["event"]),
            order=str(r["order"]),
            version=int(r["version"]),
            status=str(r["status"]),
            command=str(r.get("command", "")),
            committed_at=float(r["committed_at"]),
            row=r,
        )
        out.setdefault(c.event, c)
    return tuple(out.values())


def _effects(rows: Iterable[Any]) -> tuple[Effect, ...]:
    out: dict[str, Effect] = {}
    for r in rows:
        e = Effect(
            event=str(r["event"]),
            order=str(r["order"]),
            version=int(r["version"]),
            status=str(r["status"]),
            command=str(r.get("command", "")),
            applied=int(r["applied"]),
            deliveries=int(r.get("deliveries", r["applied"])),
            first_seq=int(r["first_seq"]),
            applied_at=float(r["applied_at"]),
            row=r,
        )
        prev = out.get(e.event)
        if prev is not None:
            # One row per event is the contract; a repeated row is more applications of it.
            first = prev if prev.first_seq <= e.first_seq else e
            e = Effect(
                e.event, e.order, e.version, e.status, e.command,
                prev.applied + e.applied, prev.deliveries + e.deliveries,
                first.first_seq, min(prev.applied_at, e.applied_at), first.row,
            )  # fmt: skip
        out[e.event] = e
    return tuple(out.values())


def _stream(streams: Mapping[str, Any]) -> tuple[StreamEntry, ...]:
    out: list[StreamEntry] = []
    for name, entries in sorted(streams.items()):
        for r in entries or ():
            v = r.get("version")
            out.append(
                StreamEntry(
                    str(name),
                    str(r.get("id", "")),
                    str(r["event"]),
                    str(r.get("order", "")),
                    None if v is None else int(v),
                )
            )
    return tuple(out)


# -- words --


def change_name(order: str, version: int, status: str) -> str:
    return f"order {order} v{version} ({status})"


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else (words or word + 's')}"


def order_key(order: str) -> tuple[Any, ...]:
    """Sorts order ids naturally (o2 before o12)."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", order))


def orders_named(orders: Iterable[str], limit: int = MAX_ORDERS_NAMED) -> str:
    """``o12, o57, o58, o90, o91, ...``: the first ``limit`` orders, naturally sorted."""
    names = sorted(set(orders), key=order_key)
    shown = ", ".join(names[:limit])
    return shown + (", ..." if len(names) > limit else "")


def seconds(x: float) -> str:
    """A duration in two significant digits (``0.04``, ``0.9``, ``2.1``, ``37``)."""
    if abs(x) >= 10:
        return f"{x:.0f}"
    if x == 0 or abs(x) >= 0.001:
        return f"{x:.2g}"
    return f"{x:.1e}"


# -- witnesses --


def write_witnesses(writes: Sequence[Write], role: str) -> tuple[Witness, ...]:
    """The writes (the first :data:`MAX_WRITES_SHOWN`) as witnesses, each noted with its
    command and how it ended."""
    return tuple(
        Witness.of(w.op, role, f"{w.command}: {w.outcome()}") for w in writes[:MAX_WRITES_SHOWN]
    )


def excerpt(op: Operation | None, role: str, value: Any, note: str = "") -> Witness:
    return Witness.excerpt_of(op, role, value, note)


# -- clocks --


@dataclass(frozen=True)
class ClockOffset:
    """``history_seconds = epoch_seconds + offset``; ``source`` says what it was measured on."""

    offset: float
    source: str

    def to_history(self, epoch: float) -> float:
        return epoch + self.offset


def clock_offset(h: OutboxHistory) -> ClockOffset | None:
    """Maps the PostgreSQL clock (epoch seconds) onto the history's (seconds since start).

    The offset is the median, over acknowledged writes whose event committed, of (the write's
    ok completion time - its change's ``committed_at``): each ok arrived just after its commit,
    so this places commits a response latency late, and the median ignores the stragglers.
    With nothing acknowledged, the ``read-orders`` answer is taken as the moment of the last
    commit (an upper bound). None without a ``read-orders``.
    """
    changes = h.changes_by_event
    diffs: list[float] = []
    for w in h.writes:
        ev = w.event
        c = w.op.completion
        if w.type == "ok" and ev in changes and c is not None:
            diffs.append(c.time / 1e9 - changes[ev].committed_at)
    if diffs:
        return ClockOffset(statistics.median(diffs), f"{plural(len(diffs), 'acknowledged write')}")
    if h.orders_op is None or h.orders_op.completion is None:
        return None
    latest = max((c.committed_at for c in h.changes or ()), default=None)
    if latest is None:
        return None
    return ClockOffset(h.orders_op.completion.time / 1e9 - latest, "the read-orders answer")


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of non-empty sorted values (q=1 is the maximum)."""
    n = len(sorted_values)
    return sorted_values[min(n - 1, max(0, math.ceil(q * n) - 1))]
