"""Checkers of an outbox's messages, after Jepsen's ``total-queue``: every committed event is
applied, nothing else is, and nothing twice.

All three read the operations described in :mod:`checkers.outbox_history`. The database's
``changes`` are the ground truth, so indeterminate writes bound the verdicts by themselves: a
write that ended ``info`` and committed must be applied (it is *recovered* when it is), one that
did not commit must not be.

- :class:`LostMessages` (``lost-messages``): every committed change has an effect, and every
  acknowledged write's event committed.
- :class:`PhantomMessages` (``phantom-messages``): every effect is of a committed change.
- :class:`DuplicateEffects` (``duplicate-effects``): no effect applied twice. Redeliveries and
  repeated publications are at-least-once at work, counted and not failed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from checkers.outbox_history import (
    Change,
    ClockOffset,
    OutboxHistory,
    StreamEntry,
    Write,
    clock_offset,
    excerpt,
    orders_named,
    plural,
    read_outbox,
    write_witnesses,
)
from workbench.checker import Anomaly, CheckContext, CheckResult, Kind, Validity, Witness
from workbench.history import Event


def _unknown(name: str, kind: Kind, h: OutboxHistory, what: str) -> CheckResult | None:
    missing = [
        f for f, op in (("read-orders", h.orders_op), ("read-effects", h.effects_op)) if op is None
    ]
    if not missing:
        return None
    return CheckResult(
        name, "unknown", kind,
        f"no successful final {' or '.join(missing)}: {what} cannot be judged",
    )  # fmt: skip


def _at(h: OutboxHistory) -> int | None:
    # An event is missing (or present) for good once the read that must show it has begun.
    return None if h.effects_op is None else h.effects_op.invoke.index


def _outbox_note(row: Mapping[str, Any] | None) -> str:
    if row is None:
        return "no outbox row"
    state = row.get("state")
    by = row.get("claimed_by")
    if state == "claimed":
        return f"outbox row: claimed by {by}, never sent" if by else "outbox row: claimed"
    if state == "pending":
        return "outbox row: pending, never claimed"
    return f"outbox row: {state}"


def _stream_witness(h: OutboxHistory, event: str, entries: Sequence[StreamEntry]) -> Witness:
    if not entries:
        return excerpt(h.stream_op, "stream read", {"event": event, "in_stream": False})
    where: dict[str, list[str]] = {}
    for s in entries:
        where.setdefault(s.stream, []).append(s.id)
    return excerpt(h.stream_op, "stream read", {"event": event, "streams": where})


class LostMessages:
    """Every committed change is applied, and every acknowledged write committed.

    Anomalies: ``lost``, one per committed event without an effect (data ``{"event", "order",
    "version", "status", "command", "published_to": [stream...] | None (None: stream not
    read), "outbox": row | None}``); ``lost-commit``, one per ok write whose event is not among
    the committed changes (data ``{"event", "order", "command", "version"}``). ``at`` is the
    ``read-effects`` (``read-orders`` for a lost commit) invocation.
    ``impact = {"lost": n, "orders": k}`` (lost events and their orders). ``stats`` (as
    total-queue): ``attempted`` (write operations invoked), ``acknowledged`` (ok writes),
    ``committed`` (changes), ``applied`` (committed events with an effect), ``lost``,
    ``lost_commits``, ``recovered`` (committed and applied events none of whose writes ended
    ok). ``"unknown"`` without an ok ``read-orders`` and an ok ``read-effects``, and when
    events are missing but the last ``progress`` before the reads shows a backlog (they may
    still be on their way; the anomalies are listed all the same).
    """

    name = "lost-messages"
    kind: Kind = "safety"

    def check(self, history: Sequence[Event], context: CheckContext) -> CheckResult:
        h = read_outbox(history)
        unknown = _unknown(self.name, self.kind, h, "lost messages")
        if unknown is not None:
            return unknown
        changes = h.changes or ()
        effects = h.effects_by_event
        streams = h.stream_by_event
        commands = h.by_command
        offset = clock_offset(h)
        anomalies: list[Anomaly] = []
        lost: list[Change] = []
        applied = recovered = 0
        for c in changes:
            writes = commands.get(c.command, [])
            if c.event in effects:
                applied += 1
                if not any(w.type == "ok" for w in writes):
                    recovered += 1
                continue
            lost.append(c)
            anomalies.append(self._lost(h, c, writes, streams, offset))
        committed = h.changes_by_event
        lost_commits = 0
        for w in h.writes:
            ev = w.event
            if w.type == "ok" and ev is not None and ev not in committed:
                lost_commits += 1
                anomalies.append(self._lost_commit(h, w, ev))
        lost_orders = {c.order for c in lost}
        parts: list[str] = []
        if lost:
            parts.append(
                f"{plural(len(lost), 'message')} lost (orders {orders_named(lost_orders)})"
            )
        if lost_commits:
            parts.append(f"{plural(lost_commits, 'acknowledged write')} never committed")
        summary = ", ".join(parts) or f"all {plural(len(changes), 'committed event')} applied"
        valid: Validity = not anomalies
        if lost and not lost_commits and h.backlog:
            # Not drained when the reads ran: these may still be on their way. Unknown, never a
            # false alarm; a relay that stopped for good shows up as a backlog that never ends.
            counts = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in sorted(h.backlog.items()))
            valid = "unknown"
            summary = (
                f"{plural(len(lost), 'committed event')} not applied, but the relay and consumer "
                f"had not drained when the final reads ran ({counts}): lengthen the final phase, "
                "or see the relay and consumer logs"
            )
        return CheckResult(
            self.name,
            valid,
            self.kind,
            summary,
            tuple(anomalies),
            impact={"lost": len(lost), "orders": len(lost_orders)},
            stats={
                "attempted": len(h.writes),
                "acknowledged": sum(1 for w in h.writes if w.type == "ok"),
                "committed": len(changes),
                "applied": applied,
                "lost": len(lost),
                "lost_commits": lost_commits,
                "recovered": recovered,
            },
        )

    @staticmethod
    def _lost(
        h: OutboxHistory,
        c: Change,
        writes: Sequence[Write],
        streams: Mapping[str, list[StreamEntry]],
        offset: ClockOffset | None,
    ) -> Anomaly:
        when = "" if offset is None else f" at {offset.to_history(c.committed_at):.1f} s"
        entries = streams.get(c.event, [])
        row = None if h.outbox is None else h.outbox.get(c.event)
        published: list[str] | None = None
        if h.stream is None:
            note = "" if h.outbox is None else f"; {_outbox_note(row)}"
            where = f" (the stream was not read{note})"
        elif entries:
            published = sorted({s.stream for s in entries})
            where = f": it was published to {', '.join(published)} and never applied"
        else:
            published = []
            note = "" if h.outbox is None else f" ({_outbox_note(row)})"
            where = f": it never reached the broker{note}"
        witnesses = [
            *write_witnesses(writes, "write that committed"),
            excerpt(h.orders_op, "committed change", dict(c.row)),
            excerpt(h.effects_op, "effects read", {"event": c.event, "applied": False}),
        ]
        if h.stream is not None:
            witnesses.append(_stream_witness(h, c.event, entries))
        if row is not None:
            witnesses.append(excerpt(h.orders_op, "outbox row", {c.event: dict(row)}))
        return Anomaly(
            "lost",
            f"{c.name} committed{when} but was never applied{where}",
            data={
                "event": c.event,
                "order": c.order,
                "version": c.version,
                "status": c.status,
                "command": c.command,
                "published_to": published,
                "outbox": None if row is None else dict(row),
            },
            witnesses=tuple(witnesses),
            at=_at(h),
        )

    @staticmethod
    def _lost_commit(h: OutboxHistory, w: Write, event: str) -> Anomaly:
        version = w.answer.get("version")
        own = [dict(c.row) for c in h.changes or () if c.order == w.order]
        return Anomaly(
            "lost-commit",
            f"order {w.order} v{version} ({w.status}) was acknowledged with event {event}, "
            "but the orders store has no such change",
            data={"event": event, "order": w.order, "command": w.command, "version": version},
            witnesses=(
                *write_witnesses([w], "acknowledged write"),
                excerpt(
                    h.orders_op,
                    "committed changes of the order",
                    {"event": event, "committed": False, "order_changes": own},
                ),
            ),
            at=None if h.orders_op is None else h.orders_op.invoke.index,
        )


def _writes_ended(writes: Sequence[Write]) -> str:
    if not writes:
        return "no write of it was ever invoked"
    ends = ", ".join(w.outcome() for w in writes[:5])
    return f"its write ended {ends}" if len(writes) == 1 else f"its writes ended {ends}"


class PhantomMessages:
    """Every effect is of a committed change.

    Anomalies: ``phantom``, one per effect whose event is not among the committed changes (data
    ``{"event", "order", "version", "status", "command", "applied"}``); ``at`` is the
    ``read-effects`` invocation. ``impact = {"phantom": n, "orders": k}``. ``stats``:
    ``effects``, ``phantom``, ``published_uncommitted`` (events in the stream that never
    committed and were never applied: a relay may publish before its transaction settles, which
    only matters if someone applies it). ``"unknown"`` without an ok ``read-orders`` and an ok
    ``read-effects``.
    """

    name = "phantom-messages"
    kind: Kind = "safety"

    def check(self, history: Sequence[Event], context: CheckContext) -> CheckResult:
        h = read_outbox(history)
        unknown = _unknown(self.name, self.kind, h, "phantom messages")
        if unknown is not None:
            return unknown
        committed = h.changes_by_event
        effects = h.effects_by_event
        commands = h.by_command
        anomalies: list[Anomaly] = []
        orders: set[str] = set()
        for e in h.effects or ():
            if e.event in committed:
                continue
            orders.add(e.order)
            writes = commands.get(e.command, [])
            own = [dict(c.row) for c in h.changes or () if c.order == e.order]
            anomalies.append(
                Anomaly(
                    "phantom",
                    f"{e.name} was applied, but no such change ever committed "
                    f"({_writes_ended(writes)})",
                    data={
                        "event": e.event,
                        "order": e.order,
                        "version": e.version,
                        "status": e.status,
                        "command": e.command,
                        "applied": e.applied,
                    },
                    witnesses=(
                        *write_witnesses(writes, "write of the command"),
                        excerpt(h.effects_op, "applied effect", dict(e.row)),
                        excerpt(
                            h.orders_op,
                            "committed changes of the order",
                            {"order": e.order, "changes": own},
                        ),
                    ),
                    at=_at(h),
                )
            )
        uncommitted = {ev for ev in h.stream_by_event if ev not in committed and ev not in effects}
        n = len(h.effects or ())
        if anomalies:
            summary = (
                f"{plural(len(anomalies), 'effect')} of changes that never committed "
                f"(orders {orders_named(orders)})"
            )
        else:
            summary = f"all {plural(n, 'effect')} are of committed changes"
        return CheckResult(
            self.name,
            not anomalies,
            self.kind,
            summary,
            tuple(anomalies),
            impact={"phantom": len(anomalies), "orders": len(orders)},
            stats={
                "effects": n,
                "phantom": len(anomalies),
                "published_uncommitted": len(uncommitted),
            },
        )


class DuplicateEffects:
    """No effect applied more than once.

    Anomalies: ``duplicate-effect``, one per effect with ``applied > 1`` (data ``{"event",
    "order", "version", "status", "applied", "deliveries"}``); ``at`` is the ``read-effects``
    invocation. ``impact = {"duplicated": n, "extra_applications": sum(applied - 1)}``.
    ``stats``: ``effects``, ``duplicated``, ``redelivered`` (effects whose message the
    consumer received more than once, ``deliveries > 1``, whether or not it deduplicated them),
    ``published_twice`` (events with more than one entry across the streams; absent without a
    ``read-stream``). Redeliveries and repeated publications are at-least-once delivery, not
    anomalies. Needs only an ok ``read-effects`` (``"unknown"`` without one).
    """

    name = "duplicate-effects"
    kind: Kind = "safety"

    def check(self, history: Sequence[Event], context: CheckContext) -> CheckResult:
        h = read_outbox(history)
        if h.effects is None:
            return CheckResult(
                self.name, "unknown", self.kind,
                "no successful final read-effects: duplicate effects cannot be judged",
            )  # fmt: skip
        commands = h.by_command
        streams = h.stream_by_event
        anomalies: list[Anomaly] = []
        extra = 0
        orders: set[str] = set()
        for e in h.effects:
            if e.applied <= 1:
                continue
            extra += e.applied - 1
            orders.add(e.order)
            witnesses = [
                *write_witnesses(commands.get(e.command, []), "write of the change"),
                excerpt(h.effects_op, "effect applied more than once", dict(e.row)),
            ]
            if h.stream is not None:
                witnesses.append(_stream_witness(h, e.event, streams.get(e.event, [])))
            anomalies.append(
                Anomaly(
                    "duplicate-effect",
                    f"{e.name} applied {e.applied} times "
                    f"({plural(e.deliveries, 'delivery', 'deliveries')})",
                    data={
                        "event": e.event,
                        "order": e.order,
                        "version": e.version,
                        "status": e.status,
                        "applied": e.applied,
                        "deliveries": e.deliveries,
                    },
                    witnesses=tuple(witnesses),
                    at=_at(h),
                )
            )
        redelivered = sum(1 for e in h.effects if e.deliveries > 1)
        stats: dict[str, Any] = {
            "effects": len(h.effects),
            "duplicated": len(anomalies),
            "redelivered": redelivered,
        }
        published_twice: int | None = None
        if h.stream is not None:
            counts = Counter(s.event for s in h.stream)
            published_twice = sum(1 for n in counts.values() if n > 1)
            stats["published_twice"] = published_twice
        at_least_once = plural(redelivered, "message") + " redelivered"
        if published_twice is not None:
            at_least_once += f", {published_twice} published twice"
        if anomalies:
            summary = (
                f"{plural(len(anomalies), 'effect')} applied more than once "
                f"(orders {orders_named(orders)}), {plural(extra, 'extra application')}; "
                f"{at_least_once}"
            )
        elif redelivered or published_twice:
            summary = f"no effect applied twice; {at_least_once}, all deduplicated"
        else:
            summary = f"no effect applied twice among {plural(len(h.effects), 'effect')}"
        return CheckResult(
            self.name,
            not anomalies,
            self.kind,
            summary,
            tuple(anomalies),
            impact={"duplicated": len(anomalies), "extra_applications": extra},
            stats=stats,
        )
