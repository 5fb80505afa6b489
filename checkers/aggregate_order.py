"""Per-aggregate order: the consumer applies one order's changes in the order they committed.

Reads the ``read-effects`` final read described in :mod:`checkers.outbox_history`. Versions
are the order's own sequence (each committed change bumps it), so the effects of one order,
sorted by ``first_seq`` (the consumer's global order of first application), must have strictly
increasing versions. A relay publishing out of order, two consumers racing on one order, or a
redelivery applied after a later change all break it: the order's read model then ends in a
state it already left (``paid`` after ``shipped``).

Only effects of committed changes are judged when the history has a ``read-orders``: an effect
of a change that never committed is a phantom (``phantom-messages`` reports it), and its version
number may well be taken again by the change that did commit, which is no ordering fault.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from checkers.outbox_history import (
    Effect,
    OutboxHistory,
    excerpt,
    order_key,
    orders_named,
    plural,
    read_outbox,
    write_witnesses,
)
from workbench.checker import Anomaly, CheckContext, CheckResult, Kind
from workbench.history import Event


def first_inversion(effects: Sequence[Effect]) -> tuple[Effect, Effect] | None:
    """``(earlier, later)`` for the first effect in apply order whose version is not above
    every version applied before it: ``earlier`` is the highest-versioned one applied before
    it. None when versions increase throughout."""
    highest: Effect | None = None
    for e in sorted(effects, key=lambda e: e.first_seq):
        if highest is not None and e.version <= highest.version:
            return highest, e
        if highest is None or e.version > highest.version:
            highest = e
    return None


class AggregateOrder:
    """Each order's effects apply in version order.

    Anomalies: ``out-of-order``, one per order at its first inversion ("order o7: shipped (v3)
    applied before paid (v2)"), data ``{"order", "versions": [v...] (in apply order),
    "first": {"event", "version", "status", "first_seq"}, "second": {...}}``; witnesses: the
    writes of both changes (by command) and both effect rows; ``at`` is the ``read-effects``
    invocation. ``impact = {"orders": k}``; ``stats``: ``orders`` (orders with effects),
    ``effects`` (judged), ``phantoms_left_out`` (effects of uncommitted changes),
    ``out_of_order``. ``"unknown"`` without an ok ``read-effects``.
    """

    name = "aggregate-order"
    kind: Kind = "safety"

    def check(self, history: Sequence[Event], context: CheckContext) -> CheckResult:
        h = read_outbox(history)
        if h.effects is None:
            return CheckResult(
                self.name, "unknown", self.kind,
                "no successful final read-effects: apply order cannot be judged",
            )  # fmt: skip
        per_order: dict[str, list[Effect]] = defaultdict(list)
        committed = h.changes_by_event if h.changes is not None else None
        judged = [e for e in h.effects if committed is None or e.event in committed]
        for e in judged:
            per_order[e.order].append(e)
        anomalies: list[Anomaly] = []
        for order in sorted(per_order, key=order_key):
            found = first_inversion(per_order[order])
            if found is not None:
                anomalies.append(self._anomaly(h, order, per_order[order], *found))
        bad = [a.data["order"] for a in anomalies]
        if anomalies:
            summary = (
                f"{plural(len(bad), 'order')} applied out of version order ({orders_named(bad)})"
            )
        else:
            summary = (
                f"all {plural(len(per_order), 'order')} applied in version order "
                f"({plural(len(judged), 'effect')})"
            )
        return CheckResult(
            self.name,
            not anomalies,
            self.kind,
            summary,
            tuple(anomalies),
            impact={"orders": len(bad)},
            stats={
                "orders": len(per_order),
                "effects": len(judged),
                "phantoms_left_out": len(h.effects) - len(judged),
                "out_of_order": len(bad),
            },
        )

    @staticmethod
    def _anomaly(
        h: OutboxHistory, order: str, effects: Sequence[Effect], first: Effect, second: Effect
    ) -> Anomaly:
        commands = h.by_command
        versions = [e.version for e in sorted(effects, key=lambda e: e.first_seq)]

        def brief(e: Effect) -> dict[str, object]:
            return {
                "event": e.event,
                "version": e.version,
                "status": e.status,
                "first_seq": e.first_seq,
            }

        return Anomaly(
            "out-of-order",
            f"order {order}: {first.status} (v{first.version}) applied before "
            f"{second.status} (v{second.version})",
            data={
                "order": order,
                "versions": versions,
                "first": brief(first),
                "second": brief(second),
            },
            witnesses=(
                *write_witnesses(commands.get(first.command, []), "write applied first"),
                *write_witnesses(commands.get(second.command, []), "write applied second"),
                excerpt(h.effects_op, "effect applied first", dict(first.row)),
                excerpt(h.effects_op, "effect applied second", dict(second.row)),
            ),
            at=None if h.effects_op is None else h.effects_op.invoke.index,
        )
