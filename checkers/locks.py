"""Checkers for locks that protect a read-modify-write: they judge the resource's own record.

A lock is only as good as what it protects. The locks target's resource (a PostgreSQL row) keeps
a record of every write it accepted, written in the same transaction as the write itself, so the
record is ground truth. A final ``read-resource`` operation brings it into the history; its
``ok`` value is::

    {"resources": {"r0": {"value": 17, "elements": [...], "version": 31, "initial": 0}},
     "writes": [{"resource": "r0", "seq": 31, "based_on": 30, "writer": "worker-2",
                 "op_id": "w1.40", "kind": "incr", "arg": null, "token": 55,
                 "prev_value": 16, "value": 17, "read_at": 1.7e15, "written_at": 1.7e15}, ...]}

``seq`` is the version the write created (writes to one resource are totally ordered by the
row lock: version = previous version + 1); ``based_on`` is the version its read saw. A critical
section is the span from its read to its write, in the resource's own order. Under a lock that
works, nothing else is written in between: ``based_on == seq - 1``. A write with
``based_on < seq - 1`` read, and then some other holder wrote before it did: two critical
sections overlapped. This is decided from versions, not from clocks, so it cannot be fooled by
clock faults; the PostgreSQL timestamps are shown to people, never used to decide.

Checkers here: :class:`MutualExclusion`, :class:`Fencing`, :class:`LockLiveness`,
:class:`MutexLinearizable`; :mod:`checkers.lost_update` judges the counter and the appended
elements against what clients were told.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.checker import Anomaly, CheckContext, CheckResult, Kind, Witness, event_indices
from workbench.history import Event, HistoryError, Operation, pair_operations

READ_RESOURCE = "read-resource"
LOCKED_FS = ("incr", "append")
MAX_ANOMALIES = 50  # anomalies listed in a result; counts always cover all of them
MAX_OVERLAPPING_SHOWN = 5  # overlapping writers named per anomaly; the rest are counted


@dataclass(frozen=True)
class Write:
    """One write the resource accepted (a row of its record)."""

    resource: str
    seq: int
    based_on: int
    writer: str
    op_id: str
    kind: str
    arg: Any
    token: int | None
    prev_value: int | None
    value: int | None
    read_at: float | None
    written_at: float | None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Write:
        token = d.get("token")
        return cls(
            resource=str(d.get("resource", "r0")),
            seq=int(d["seq"]),
            based_on=int(d["based_on"]),
            writer=str(d.get("writer", "?")),
            op_id=str(d.get("op_id", "?")),
            kind=str(d.get("kind", "?")),
            arg=d.get("arg"),
            token=None if token is None else int(token),
            prev_value=_opt_int(d.get("prev_value")),
            value=_opt_int(d.get("value")),
            read_at=_opt_float(d.get("read_at")),
            written_at=_opt_float(d.get("written_at")),
        )

    def holder(self) -> str:
        """How a report names the holder: ``worker-2 (op w1.40, token 55)``."""
        token = "no token" if self.token is None else f"token {self.token}"
        return f"{self.writer} (op {self.op_id}, {token})"

    def as_recorded(self) -> dict[str, Any]:
        """Every field, as the resource's record holds it (a witness's excerpt)."""
        return {
            "resource": self.resource,
            "seq": self.seq,
            "based_on": self.based_on,
            "writer": self.writer,
            "op_id": self.op_id,
            "kind": self.kind,
            "arg": self.arg,
            "token": self.token,
            "prev_value": self.prev_value,
            "value": self.value,
            "read_at": self.read_at,
            "written_at": self.written_at,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "resource": self.resource,
            "seq": self.seq,
            "based_on": self.based_on,
            "writer": self.writer,
            "op_id": self.op_id,
            "kind": self.kind,
            "token": self.token,
        }


def _opt_int(v: Any) -> int | None:
    return None if v is None else int(v)


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


@dataclass(frozen=True)
class Record:
    """The final read of the resource: its state and its record of accepted writes."""

    op: Operation
    resources: Mapping[str, Mapping[str, Any]]
    writes: tuple[Write, ...]

    def by_resource(self) -> dict[str, list[Write]]:
        out: dict[str, list[Write]] = {}
        for w in self.writes:
            out.setdefault(w.resource, []).append(w)
        for ws in out.values():
            ws.sort(key=lambda w: w.seq)
        return out


class RecordError(ValueError):
    """No usable final read of the resource (the checker's answer is then ``unknown``)."""


def final_record(ops: Sequence[Operation]) -> Record:
    """The last ``ok`` ``read-resource`` operation, parsed; raises :class:`RecordError`."""
    reads = [op for op in ops if op.f == READ_RESOURCE and op.type == "ok"]
    if not reads:
        raise RecordError("no successful final read of the resource's record")
    op = reads[-1]
    value = op.completion.value if op.completion is not None else None
    if not isinstance(value, Mapping) or not isinstance(value.get("writes"), list):
        raise RecordError(f"the final read's value is not a record: {str(value)[:80]}")
    try:
        writes = tuple(Write.from_json(w) for w in value["writes"])
    except (KeyError, TypeError, ValueError) as e:
        raise RecordError(f"the final read's record has a malformed write: {e}") from None
    resources = value.get("resources") or {}
    if not isinstance(resources, Mapping):
        raise RecordError("the final read's 'resources' is not an object")
    return Record(op, resources, writes)


def _load(history: Sequence[Event]) -> tuple[list[Operation], Record]:
    ops = pair_operations(history)
    return ops, final_record(ops)


def _unknown(name: str, kind: Kind, why: str) -> CheckResult:
    return CheckResult(name, "unknown", kind, summary=f"cannot judge: {why}")


def _ops_by_id(ops: Sequence[Operation]) -> dict[str, list[Operation]]:
    """Locked operations by the ``op_id`` they carried (to point at history events)."""
    out: dict[str, list[Operation]] = {}
    for op in ops:
        v = op.invoke.value
        if op.f in LOCKED_FS and isinstance(v, Mapping) and "op_id" in v:
            out.setdefault(str(v["op_id"]), []).append(op)
    return out


def _client_outcome(ops_by_id: Mapping[str, list[Operation]], op_id: str) -> str:
    ops = ops_by_id.get(op_id)
    if not ops:
        return "not in the history"
    return "/".join(sorted({o.type for o in ops}))


def _op_witnesses(
    ops_by_id: Mapping[str, list[Operation]], op_id: str, role: str, note: str
) -> list[Witness]:
    return [Witness.of(op, role, note) for op in ops_by_id.get(op_id, ())]


def _landed_at(ops_by_id: Mapping[str, list[Operation]], op_id: str, record: Record) -> int:
    """When a write was certainly done: the last event of the operations that carried
    ``op_id`` or, when none is in the history, the final read that shows it."""
    indices = [i for o in ops_by_id.get(op_id, ()) for i in Witness.of(o, "").indices()]
    if indices:
        return max(indices)
    return max(Witness.of(record.op, "").indices())


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


class MutualExclusion:
    """No two critical sections of the same lock overlap in the resource's record.

    A write whose read saw version ``v`` and that created version ``s > v + 1`` overlapped with
    every write that created a version in ``(v, s)``: those holders wrote while it held what it
    believed was the lock. Each such write is one anomaly naming every holder involved.
    """

    name = "mutual-exclusion"
    kind: Kind = "safety"

    def check(self, history: Sequence[Event], context: CheckContext) -> CheckResult:
        try:
            ops, record = _load(history)
        except (RecordError, HistoryError) as e:
            return _unknown(self.name, self.kind, str(e))
        by_id = _ops_by_id(ops)
        anomalies: list[Anomaly] = []
        holders: set[str] = set()
        overlapped_writes = 0
        total = 0
        for resource, writes in sorted(record.by_resource().items()):
            total += len(writes)
            by_seq = {w.seq: w for w in writes}
            for w in writes:
                if w.based_on >= w.seq - 1:
                    continue
                between = [by_seq[s] for s in range(w.based_on + 1, w.seq) if s in by_seq]
                overlapped_writes += 1
                names = sorted({w.writer, *(b.writer for b in between)})
                holders.update(names)
                if len(anomalies) < MAX_ANOMALIES:
                    anomalies.append(_overlap(resource, w, between, by_id, record))
        if overlapped_writes:
            summary = (
                f"{_plural(overlapped_writes, 'critical section')} of {total} accepted writes "
                f"overlapped another holder's: {', '.join(sorted(holders))} held the lock at once"
            )
        else:
            summary = f"no overlapping critical sections in {total} accepted writes"
        return CheckResult(
            self.name,
            overlapped_writes == 0,
            self.kind,
            summary=summary,
            anomalies=tuple(anomalies),
            impact={"overlapping_sections": overlapped_writes, "holders": sorted(holders)},
            stats={"accepted_writes": total},
        )


def _overlap(
    resource: str,
    late: Write,
    between: Sequence[Write],
    by_id: Mapping[str, list[Operation]],
    record: Record,
) -> Anomaly:
    """One overlap: ``late`` read version ``based_on``, then each of ``between`` wrote before
    it did. Witnesses: the two holders' operations and, from the final read, only the writes
    that overlapped (never the whole record)."""
    shown = list(between[:MAX_OVERLAPPING_SHOWN])
    others = ", ".join(b.holder() for b in shown)
    if len(between) > len(shown):
        others += f" and {len(between) - len(shown)} more"
    explanation = (
        f"{resource}: {late.holder()} read version {late.based_on} and wrote version "
        f"{late.seq}, but {others} wrote in between: their critical sections overlapped "
        f"(the client saw op {late.op_id} end {_client_outcome(by_id, late.op_id)})"
    )
    witnesses = _op_witnesses(
        by_id,
        late.op_id,
        "first holder",
        f"{late.writer} read version {late.based_on}, then wrote version {late.seq}",
    )
    for b in shown:
        witnesses += _op_witnesses(
            by_id,
            b.op_id,
            "second holder",
            f"{b.writer} wrote version {b.seq} while {late.writer} held the lock",
        )
    witnesses.append(
        Witness.excerpt_of(
            record.op,
            "overlapping writes in the final read",
            [b.as_recorded() for b in shown] + [late.as_recorded()],
            f"{resource}'s record: version {late.seq} was based on version {late.based_on}",
        )
    )
    names = sorted({late.writer, *(b.writer for b in between)})
    return Anomaly(
        "overlapping-critical-sections",
        explanation,
        data={
            "resource": resource,
            "holders": names,
            "late_write": late.to_json(),
            "overlapped_by": [b.to_json() for b in shown],
            "overlapped_count": len(between),
            "read_at": late.read_at,
            "written_at": late.written_at,
        },
        witnesses=tuple(witnesses),
        at=_landed_at(by_id, late.op_id, record),  # the overlap was complete once it landed
    )


class Fencing:
    """Accepted writes carry strictly increasing fencing tokens, in the resource's order.

    A write accepted with a token no greater than one already accepted came from a holder whose
    lock had been superseded (or from a token counter that went backwards). Writes without a
    token (variants that use none) are not judged; a record with no token at all passes with a
    summary saying so.
    """

    name = "fencing"
    kind: Kind = "safety"

    def check(self, history: Sequence[Event], context: CheckContext) -> CheckResult:
        try:
            ops, record = _load(history)
        except (RecordError, HistoryError) as e:
            return _unknown(self.name, self.kind, str(e))
        by_id = _ops_by_id(ops)
        anomalies: list[Anomaly] = []
        stale = 0
        tokened = 0
        writers: set[str] = set()
        for resource, writes in sorted(record.by_resource().items()):
            best: Write | None = None
            for w in writes:
                if w.token is None:
                    continue
                tokened += 1
                if best is not None and best.token is not None and w.token <= best.token:
                    stale += 1
                    writers.update((w.writer, best.writer))
                    if len(anomalies) < MAX_ANOMALIES:
                        witnesses = [
                            *_op_witnesses(
                                by_id, best.op_id, "holder with the higher token",
                                f"token {best.token}, accepted as version {best.seq}",
                            ),
                            *_op_witnesses(
                                by_id, w.op_id, "stale holder",
                                f"token {w.token}, accepted later as version {w.seq}",
                            ),
                            Witness.excerpt_of(
                                record.op, "the two writes in the final read",
                                [best.as_recorded(), w.as_recorded()],
                            ),
                        ]  # fmt: skip
                        anomalies.append(
                            Anomaly(
                                "stale-token-accepted",
                                f"{resource} accepted {w.holder()} as version {w.seq} after "
                                f"already accepting {best.holder()} as version {best.seq}: "
                                f"token {w.token} is not above {best.token}",
                                data={
                                    "resource": resource,
                                    "write": w.to_json(),
                                    "highest_before": best.to_json(),
                                },
                                witnesses=tuple(witnesses),
                                at=_landed_at(by_id, w.op_id, record),
                            )
                        )
                if best is None or best.token is None or w.token > best.token:
                    best = w
        if tokened == 0:
            summary = f"no fencing tokens in {len(record.writes)} accepted writes: nothing to judge"
        elif stale:
            summary = (
                f"{_plural(stale, 'write')} of {tokened} accepted with a stale fencing token "
                f"(involving {', '.join(sorted(writers))})"
            )
        else:
            summary = f"fencing tokens strictly increase over {tokened} accepted writes"
        return CheckResult(
            self.name,
            stale == 0,
            self.kind,
            summary=summary,
            anomalies=tuple(anomalies),
            impact={"stale_writes": stale},
            stats={"tokened_writes": tokened, "accepted_writes": len(record.writes)},
        )


def is_final(op: Operation) -> bool:
    v = op.invoke.value
    return isinstance(v, Mapping) and bool(v.get("final"))


class LockLiveness:
    """After every fault is healed, every lock can be taken again: for each resource, at least
    one of the final phase's locked operations on it (``incr``/``append`` whose value has
    ``"final": true``) succeeds.

    A lock that never expires (``SETNX`` whose ``EXPIRE`` never ran) fails this: every later
    acquisition of that resource's lock times out, while the other resources work.
    """

    name = "lock-liveness"
    kind: Kind = "liveness"

    def check(self, history: Sequence[Event], context: CheckContext) -> CheckResult:
        try:
            ops = pair_operations(history)
        except HistoryError as e:
            return _unknown(self.name, self.kind, str(e))
        finals: dict[str, list[Operation]] = {}
        for op in ops:
            if op.f in LOCKED_FS and is_final(op):
                finals.setdefault(_resource(op), []).append(op)
        if not finals:
            return _unknown(self.name, self.kind, "no locked operation ran after healing")
        stuck = {r: fs for r, fs in sorted(finals.items()) if not any(o.type == "ok" for o in fs)}
        total = sum(len(fs) for fs in finals.values())
        ok = sum(1 for fs in finals.values() for o in fs if o.type == "ok")
        stats = {"final_ok": ok, "final": total, "resources": len(finals)}
        if not stuck:
            return CheckResult(
                self.name,
                True,
                self.kind,
                summary=(
                    f"every lock could be taken after healing: {ok} of {total} locked "
                    f"operations on {_plural(len(finals), 'resource')} succeeded"
                ),
                stats=stats,
            )
        anomalies = []
        for r, fs in stuck.items():
            errors = sorted({str(o.completion.error) for o in fs if o.completion is not None})
            anomalies.append(
                Anomaly(
                    "lock-never-free",
                    f"after every fault was healed, all {len(fs)} attempts to take the lock of "
                    f"{r} failed ({'; '.join(errors[:2]) or 'no completion'}): it is held by "
                    "nobody alive and never expires",
                    event_indices(*fs),
                    {"resource": r, "errors": errors[:10]},
                    witnesses=tuple(
                        Witness.of(o, "failed attempt after healing", _error_of(o))
                        for o in fs[:MAX_ATTEMPTS_SHOWN]
                    ),
                )
            )
        return CheckResult(
            self.name,
            False,
            self.kind,
            summary=(
                f"the lock{'s' if len(stuck) > 1 else ''} of {', '.join(stuck)} "
                f"{'were' if len(stuck) > 1 else 'was'} never free again after healing: "
                f"{_plural(sum(len(fs) for fs in stuck.values()), 'attempt')} to take "
                f"{'them' if len(stuck) > 1 else 'it'} failed"
            ),
            anomalies=tuple(anomalies),
            impact={"stuck_locks": len(stuck), "stuck": list(stuck)},
            stats=stats,
        )


MAX_ATTEMPTS_SHOWN = 20


def _error_of(op: Operation) -> str:
    return "no completion" if op.completion is None else str(op.completion.error)


def _resource(op: Operation) -> str:
    v = op.invoke.value
    return str(v.get("resource", "r0")) if isinstance(v, Mapping) else "r0"


class MutexLinearizable:
    """The ``acquire``/``release`` operations, checked as a linearizable mutex (the
    linearizability checker's ``mutex`` model); every other operation is left out.

    Only meaningful for locks that claim to be a mutex with no lease: a leased lock hands the
    lock to another holder when the lease runs out, by design, so it is not one.
    """

    name = "linearizable"
    kind: Kind = "safety"

    def __init__(self, time_limit: float | None = 30.0) -> None:
        self.time_limit = time_limit

    def check(self, history: Sequence[Event], context: CheckContext) -> CheckResult:
        try:
            from checkers.linearizability import Linearizable
        except ImportError as e:  # pragma: no cover - the checker ships with the workbench
            return _unknown(self.name, self.kind, f"linearizability checker unavailable: {e}")
        events = [e for e in history if e.is_client and e.f in ("acquire", "release")]
        if not events:
            return CheckResult(
                self.name, True, self.kind, summary="no acquire/release operations to check"
            )
        result = Linearizable("mutex", time_limit=self.time_limit).check(events, context)
        # The inner checker saw a filtered history whose indices are the original ones.
        return CheckResult(
            self.name,
            result.valid,
            self.kind,
            summary=result.summary,
            anomalies=result.anomalies,
            impact=result.impact,
            stats=result.stats,
        )


__all__ = [
    "READ_RESOURCE",
    "Fencing",
    "LockLiveness",
    "MutexLinearizable",
    "MutualExclusion",
    "Record",
    "RecordError",
    "Write",
    "final_record",
]
