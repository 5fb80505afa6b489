"""Delivery lag: how long a committed change takes to be applied by the consumer.

Reads the final reads described in :mod:`checkers.outbox_history`. The lag of an event is
``applied_at - committed_at``: both are read off the PostgreSQL server's clock, so no clock skew
enters it. For drawing, commit times are mapped onto the history's clock (seconds since the
campaign started) by :func:`checkers.outbox_history.clock_offset`, so lag spikes line up with
the fault windows. Lost events have no lag: ``lost-messages`` reports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from checkers.outbox_history import (
    Change,
    Effect,
    OutboxHistory,
    clock_offset,
    excerpt,
    orders_named,
    plural,
    quantile,
    read_outbox,
    seconds,
    write_witnesses,
)
from workbench.checker import Anomaly, CheckContext, CheckResult, Kind, Series
from workbench.history import Event


class DeliveryLag:
    """Commit-to-application lag of every committed, applied event.

    ``stats``: ``count``, ``p50``, ``p95``, ``p99``, ``max`` (seconds, nearest-rank quantiles),
    ``clock_offset`` (seconds added to an epoch time to place it on the history's clock) and
    ``offset_from`` (what it was measured on). ``series``: one :class:`Series` ``delivery-lag``
    of ``(commit time on the history's clock, lag)`` points, in seconds.

    With ``max_seconds`` set, each event slower than it is a ``slow-delivery`` anomaly (data
    ``{"event", "order", "version", "status", "lag"}``; ``at`` the ``read-effects``
    invocation) and ``impact = {"slow": n, "orders": k}``. Without it the checker only
    measures: valid when any committed event was applied. ``"unknown"`` without an ok
    ``read-orders`` and an ok ``read-effects``, or when no committed event was applied.
    """

    name = "delivery-lag"
    kind: Kind = "liveness"

    def __init__(self, max_seconds: float | None = None) -> None:
        self.max_seconds = max_seconds

    def check(self, history: Sequence[Event], context: CheckContext) -> CheckResult:
        h = read_outbox(history)
        if h.changes is None or h.effects is None:
            return CheckResult(
                self.name, "unknown", self.kind,
                "no successful final read-orders and read-effects: delivery lag not measured",
            )  # fmt: skip
        effects = h.effects_by_event
        pairs = [(c, effects[c.event]) for c in h.changes if c.event in effects]
        if not pairs:
            return CheckResult(
                self.name, "unknown", self.kind,
                f"no committed event was applied (of {plural(len(h.changes), 'change')}): "
                "no lag to measure",
                stats={"count": 0},
            )  # fmt: skip
        pairs.sort(key=lambda p: p[0].committed_at)
        lags = sorted(e.applied_at - c.committed_at for c, e in pairs)
        stats: dict[str, Any] = {
            "count": len(lags),
            "p50": quantile(lags, 0.5),
            "p95": quantile(lags, 0.95),
            "p99": quantile(lags, 0.99),
            "max": lags[-1],
        }
        measured = (
            f"delivery lag p50 {seconds(stats['p50'])} s, p95 {seconds(stats['p95'])} s, "
            f"p99 {seconds(stats['p99'])} s, max {seconds(stats['max'])} s over "
            f"{plural(len(lags), 'event')}"
        )
        offset = clock_offset(h)
        series: tuple[Series, ...] = ()
        if offset is not None:
            stats["clock_offset"] = offset.offset
            stats["offset_from"] = offset.source
            series = (
                Series(
                    "delivery-lag",
                    "delivery lag",
                    "s",
                    tuple(
                        (offset.to_history(c.committed_at), e.applied_at - c.committed_at)
                        for c, e in pairs
                    ),
                    "per committed event: commit to first application (PostgreSQL clock); "
                    f"commit times placed on the run's clock by the median of {offset.source}",
                ),
            )
        if self.max_seconds is None:
            return CheckResult(self.name, True, self.kind, measured, stats=stats, series=series)
        limit = self.max_seconds
        slow = [(c, e) for c, e in pairs if e.applied_at - c.committed_at > limit]
        anomalies = tuple(self._slow(h, c, e, limit) for c, e in slow)
        orders = {c.order for c, _ in slow}
        stats["max_seconds"] = limit
        stats["slow"] = len(slow)
        if slow:
            summary = (
                f"{len(slow)} of {plural(len(lags), 'event')} slower than {seconds(limit)} s "
                f"(orders {orders_named(orders)}); {measured}"
            )
        else:
            summary = f"no event slower than {seconds(limit)} s; {measured}"
        return CheckResult(
            self.name,
            not slow,
            self.kind,
            summary,
            anomalies,
            impact={"slow": len(slow), "orders": len(orders)},
            stats=stats,
            series=series,
        )

    @staticmethod
    def _slow(h: OutboxHistory, c: Change, e: Effect, limit: float) -> Anomaly:
        lag = e.applied_at - c.committed_at
        return Anomaly(
            "slow-delivery",
            f"{c.name} took {seconds(lag)} s from commit to application (limit {seconds(limit)} s)",
            data={
                "event": c.event,
                "order": c.order,
                "version": c.version,
                "status": c.status,
                "lag": lag,
            },
            witnesses=(
                *write_witnesses(h.by_command.get(c.command, []), "write that committed"),
                excerpt(h.orders_op, "committed change", dict(c.row)),
                excerpt(h.effects_op, "applied effect", dict(e.row)),
            ),
            at=None if h.effects_op is None else h.effects_op.invoke.index,
        )
