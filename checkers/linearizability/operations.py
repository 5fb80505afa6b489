"""From history events to the operations the linearizability search works on.

Jepsen's semantics decide what each event means here:

- nemesis events (process ``"nemesis"``) say nothing about the data and are ignored;
- a ``fail`` completion certainly had no effect: the operation is dropped;
- an ``info`` completion, or none at all, may have taken effect at any time after the invocation,
  or never: the operation gets return time ``None`` (+infinity) and output ``UNKNOWN``;
- a crashed operation that cannot change state (a read) constrains nothing and is dropped.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from checkers.linearizability.models import UNKNOWN, Model
from workbench.history import Event, Process, pair_operations


@dataclass(frozen=True, slots=True)
class LinOp:
    """One operation as the search sees it.

    ``id`` is its position in the checked list; ``call``/``ret`` are times (``ret`` None =
    returned at +infinity: crashed); ``invoke_index``/``complete_index`` are history indices
    (``complete_index`` None when it never completed).
    """

    id: int
    process: Process
    f: str
    input: Hashable
    output: Any
    call: int
    ret: int | None
    invoke_index: int
    complete_index: int | None

    @property
    def crashed(self) -> bool:
        return self.ret is None

    def event_indices(self) -> tuple[int, ...]:
        if self.complete_index is None:
            return (self.invoke_index,)
        return (self.invoke_index, self.complete_index)


@dataclass(frozen=True)
class Prepared:
    """What :func:`prepare` returns: the operations to check and counts of what was dropped."""

    ops: list[LinOp]
    failed: int
    crashed: int
    dropped_crashed_reads: int


def prepare(events: Sequence[Event], model: Model) -> Prepared:
    """Pairs client events into operations and encodes them for ``model``.

    Raises :class:`workbench.history.HistoryError` for a history whose processes are not
    single-threaded, and :class:`~checkers.linearizability.models.ModelError` for operations the
    model does not know.
    """
    ops: list[LinOp] = []
    failed = crashed = dropped = 0
    for op in pair_operations(events):
        kind = op.type
        if kind == "fail":
            failed += 1
            continue
        encoded = model.operation(op)
        if encoded is None:
            continue
        inp, out = encoded
        done = kind == "ok"
        if not done:
            crashed += 1
            out = UNKNOWN
            if model.is_read_only(inp):
                dropped += 1
                continue
        comp = op.completion
        ops.append(
            LinOp(
                id=len(ops),
                process=op.process,
                f=op.f,
                input=inp,
                output=out,
                call=op.invoke.time,
                ret=comp.time if done and comp is not None else None,
                invoke_index=op.invoke.index,
                complete_index=None if comp is None else comp.index,
            )
        )
    return Prepared(ops, failed, crashed, dropped)
