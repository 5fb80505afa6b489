"""The lost-update checker: what clients were told against what the resource ended with.

Operations (the locks target's workload): ``incr`` with value ``{"op_id": ..}`` adds one to the
resource's counter; ``append`` with value ``{"op_id": .., "element": x}`` appends a unique
element to its list. A final ``read-resource`` returns the resource's state and its record of
accepted writes (see :mod:`checkers.locks`).

Jepsen's meaning of completions decides every bound:

- an ``ok`` that completed before the final read was invoked must be in the final state;
- an ``info`` (or never-completed) operation, or an ``ok`` that completed while the final read
  was running, may or may not be;
- a ``fail`` must have had no effect.

An operation whose write is in the resource's record certainly took effect, whatever its
client was told (a holder paused past its lease writes long after its client gave up), so it
counts as applied too. So with ``a`` applied (acknowledged or recorded) and ``m``
indeterminate increments, the final counter must lie in ``[initial + a, initial + a + m]``.
Below it, applied increments were lost (overwritten by a stale read-modify-write, or never
written though acknowledged); above it, something the clients were told had failed took
effect. Each acknowledged element must be present; present elements
must come from appends that were invoked and did not fail. The record adds per-operation
evidence: an acknowledged operation the resource never accepted, a failed one it did accept, and
one it accepted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from checkers.locks import MAX_ANOMALIES, Record, RecordError, final_record
from workbench.checker import Anomaly, CheckContext, CheckResult, Kind, Witness
from workbench.history import Event, HistoryError, Operation, pair_operations


def _op_value(op: Operation) -> Mapping[str, Any]:
    v = op.invoke.value
    return v if isinstance(v, Mapping) else {}


def _op_id(op: Operation) -> str | None:
    v = _op_value(op).get("op_id")
    return None if v is None else str(v)


def _read(record: Record, excerpt: Any, note: str = "") -> Witness:
    """A slice of the final read: never the whole record."""
    return Witness.excerpt_of(record.op, "final read", excerpt, note)


def _ops(ops: Sequence[Operation], role: str) -> list[Witness]:
    return [Witness.of(op, role) for op in ops[:MAX_OPS_SHOWN]]


def _state(record: Record, r: str) -> dict[str, Any]:
    """A resource's final state without its (possibly long) element list."""
    return {k: v for k, v in (record.resources.get(r) or {}).items() if k != "elements"}


MAX_OPS_SHOWN = 20


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


class LostUpdate:
    """Final counter = initial + every acknowledged increment (indeterminate ones bound it from
    above); every acknowledged element present; the record agrees with the clients."""

    name = "lost-update"
    kind: Kind = "safety"

    def check(self, history: Sequence[Event], context: CheckContext) -> CheckResult:
        try:
            ops = pair_operations(history)
            record = final_record(ops)
        except (RecordError, HistoryError) as e:
            return CheckResult(self.name, "unknown", self.kind, summary=f"cannot judge: {e}")
        read_start = record.op.invoke.time
        anomalies: list[Anomaly] = []
        impact: dict[str, Any] = {}

        def acked(op: Operation) -> bool:
            return op.type == "ok" and op.end is not None and op.end < read_start

        def add(anomaly: Anomaly) -> None:
            if len(anomalies) < MAX_ANOMALIES:
                anomalies.append(anomaly)

        parts: list[str] = []
        parts += self._counter(ops, record, acked, add, impact)
        parts += self._elements(ops, record, acked, add, impact)
        parts += self._record(ops, record, acked, add, impact)
        bad = [p for p in parts if p]
        incr_acked = impact.get("acknowledged_increments", 0)
        app_acked = impact.get("acknowledged_appends", 0)
        if bad:
            summary = "; ".join(bad)
        else:
            summary = (
                f"no lost updates: {_plural(incr_acked, 'acknowledged increment')} and "
                f"{_plural(app_acked, 'acknowledged append')} all in the final state"
            )
        valid = not any(
            impact.get(k, 0)
            for k in (
                "lost_increments",
                "phantom_increments",
                "lost_elements",
                "unexpected_elements",
                "duplicated_elements",
                "acknowledged_not_applied",
                "failed_but_applied",
                "applied_twice",
            )
        )
        return CheckResult(
            self.name, valid, self.kind, summary=summary, anomalies=tuple(anomalies), impact=impact
        )

    # -- the counter --

    @staticmethod
    def _counter(
        ops: Sequence[Operation],
        record: Record,
        acked: Callable[[Operation], bool],
        add: Callable[[Anomaly], None],
        impact: dict[str, Any],
    ) -> list[str]:
        out: list[str] = []
        total_acked = 0
        incrs_by_resource: dict[str, list[Operation]] = {}
        for op in ops:
            if op.f == "incr":
                r = str(_op_value(op).get("resource", "r0"))
                incrs_by_resource.setdefault(r, []).append(op)
        lost_total = phantom_total = 0
        for r, incrs in sorted(incrs_by_resource.items()):
            state = record.resources.get(r)
            if state is None or state.get("value") is None:
                continue
            initial = int(state.get("initial", 0))
            final = int(state["value"])
            recorded = {w.op_id for w in record.writes if w.resource == r and w.kind == "incr"}
            yes = [op for op in incrs if acked(op) or _op_id(op) in recorded]
            maybe = [op for op in incrs if op.type != "fail" and op not in yes]
            total_acked += len(yes)
            low, high = initial + len(yes), initial + len(yes) + len(maybe)
            if final < low:
                lost = low - final
                lost_total += lost
                add(
                    Anomaly(
                        "lost-increments",
                        f"{r}: {_plural(lost, 'increment')} lost: final value {final}, but "
                        f"{initial} + {len(yes)} certainly applied = {low} at least",
                        data={"resource": r, "final": final, "min": low, "max": high, "lost": lost},
                        witnesses=(_read(record, {r: _state(record, r)}),),
                    )
                )
                out.append(
                    f"{lost} of {len(yes)} applied increments of {r} lost "
                    f"(final value {final}, expected {low}..{high})"
                )
            elif final > high:
                phantom = final - high
                phantom_total += phantom
                add(
                    Anomaly(
                        "phantom-increments",
                        f"{r}: final value {final} exceeds {initial} + every increment that may "
                        f"have happened ({len(yes)} acknowledged + {len(maybe)} indeterminate "
                        f"= {high}): {phantom} failed or never-invoked increments took effect",
                        data={"resource": r, "final": final, "min": low, "max": high},
                        witnesses=(_read(record, {r: _state(record, r)}),),
                    )
                )
                out.append(f"{r}'s counter is {phantom} above every possible increment")
        impact["acknowledged_increments"] = total_acked
        impact["lost_increments"] = lost_total
        impact["phantom_increments"] = phantom_total
        return out

    # -- the appended elements --

    @staticmethod
    def _elements(
        ops: Sequence[Operation],
        record: Record,
        acked: Callable[[Operation], bool],
        add: Callable[[Anomaly], None],
        impact: dict[str, Any],
    ) -> list[str]:
        out: list[str] = []
        appends: dict[tuple[str, Any], list[Operation]] = {}
        for op in ops:
            if op.f == "append":
                v = _op_value(op)
                key = (str(v.get("resource", "r0")), v.get("element"))
                appends.setdefault(key, []).append(op)
        lost: list[tuple[str, Any]] = []
        unexpected: list[tuple[str, Any]] = []
        duplicated: list[tuple[str, Any]] = []
        total_acked = 0
        for r, state in sorted(record.resources.items()):
            elements = state.get("elements")
            if not isinstance(elements, list):
                continue
            recorded = {w.op_id for w in record.writes if w.resource == r and w.kind == "append"}
            present: dict[Any, int] = {}
            for x in elements:
                present[x] = present.get(x, 0) + 1
            for (res, x), attempts in appends.items():
                if res != r:
                    continue
                ok_ops = [a for a in attempts if acked(a) or _op_id(a) in recorded]
                if ok_ops:
                    total_acked += 1
                    if x not in present:
                        lost.append((r, x))
                        add(
                            Anomaly(
                                "lost-element",
                                f"{r}: element {x!r} was acknowledged but is not in the final list",
                                data={"resource": r, "element": x},
                                witnesses=(
                                    *_ops(ok_ops, "acknowledged append"),
                                    _read(
                                        record,
                                        {
                                            "element": x,
                                            "in_final_list": False,
                                            "list_length": len(elements),
                                        },
                                    ),
                                ),
                            )
                        )
            for x, n in present.items():
                attempts = appends.get((r, x), [])
                if not attempts or all(a.type == "fail" for a in attempts):
                    unexpected.append((r, x))
                    why = "never appended" if not attempts else "every append of it failed"
                    add(
                        Anomaly(
                            "unexpected-element",
                            f"{r}: element {x!r} is in the final list but was {why}",
                            data={"resource": r, "element": x},
                            witnesses=(
                                *_ops(attempts, "failed append"),
                                _read(record, {"element": x, "in_final_list": True}),
                            ),
                        )
                    )
                if n > 1:
                    duplicated.append((r, x))
                    add(
                        Anomaly(
                            "duplicated-element",
                            f"{r}: element {x!r} is in the final list {n} times",
                            data={"resource": r, "element": x, "times": n},
                            witnesses=(
                                *_ops(attempts, "append"),
                                _read(record, {"element": x, "times_in_final_list": n}),
                            ),
                        )
                    )
        impact["acknowledged_appends"] = total_acked
        impact["lost_elements"] = len(lost)
        impact["unexpected_elements"] = len(unexpected)
        impact["duplicated_elements"] = len(duplicated)
        if lost:
            shown = ", ".join(repr(x) for _, x in lost[:5])
            out.append(
                f"{len(lost)} of {total_acked} acknowledged appended elements missing ({shown}"
                + (", ..." if len(lost) > 5 else "")
                + ")"
            )
        if unexpected:
            out.append(f"{_plural(len(unexpected), 'element')} present that no append can explain")
        if duplicated:
            out.append(f"{_plural(len(duplicated), 'element')} present more than once")
        return out

    # -- the record against the clients --

    @staticmethod
    def _record(
        ops: Sequence[Operation],
        record: Record,
        acked: Callable[[Operation], bool],
        add: Callable[[Anomaly], None],
        impact: dict[str, Any],
    ) -> list[str]:
        applied: dict[str, int] = {}
        for w in record.writes:
            applied[w.op_id] = applied.get(w.op_id, 0) + 1

        def writes_of(op_id: str) -> list[dict[str, Any]]:
            return [w.as_recorded() for w in record.writes if w.op_id == op_id][:MAX_OPS_SHOWN]

        by_id: dict[str, list[Operation]] = {}
        for op in ops:
            if op.f in ("incr", "append") and "op_id" in _op_value(op):
                by_id.setdefault(str(_op_value(op)["op_id"]), []).append(op)
        not_applied: list[str] = []
        failed_applied: list[str] = []
        twice: list[str] = []
        for op_id, attempts in sorted(by_id.items()):
            n = applied.get(op_id, 0)
            ok_ops = [a for a in attempts if acked(a)]
            if ok_ops and n == 0:
                not_applied.append(op_id)
                add(
                    Anomaly(
                        "acknowledged-not-applied",
                        f"op {op_id} ({ok_ops[0].f}) was acknowledged but the resource never "
                        "accepted its write",
                        data={"op_id": op_id},
                        witnesses=(
                            *_ops(ok_ops, "acknowledged operation"),
                            _read(record, {"op_id": op_id, "writes_in_record": 0}),
                        ),
                    )
                )
            if n > 0 and all(a.type == "fail" for a in attempts):
                failed_applied.append(op_id)
                add(
                    Anomaly(
                        "failed-but-applied",
                        f"op {op_id} ({attempts[0].f}) failed, yet the resource accepted its write",
                        data={"op_id": op_id},
                        witnesses=(
                            *_ops(attempts, "failed operation"),
                            _read(record, writes_of(op_id), "the write the resource accepted"),
                        ),
                    )
                )
            if n > 1:
                twice.append(op_id)
                add(
                    Anomaly(
                        "applied-twice",
                        f"the resource accepted op {op_id}'s write {n} times",
                        data={"op_id": op_id, "times": n},
                        witnesses=(
                            *_ops(attempts, "operation"),
                            _read(record, writes_of(op_id), f"the {n} writes of op {op_id}"),
                        ),
                    )
                )
        impact["acknowledged_not_applied"] = len(not_applied)
        impact["failed_but_applied"] = len(failed_applied)
        impact["applied_twice"] = len(twice)
        out: list[str] = []
        if not_applied:
            out.append(
                f"{_plural(len(not_applied), 'acknowledged operation')} never accepted by the "
                f"resource ({', '.join(not_applied[:5])}{', ...' if len(not_applied) > 5 else ''})"
            )
        if failed_applied:
            out.append(f"{_plural(len(failed_applied), 'failed operation')} accepted anyway")
        if twice:
            out.append(f"{_plural(len(twice), 'operation')} accepted more than once")
        return out


__all__ = ["LostUpdate"]
