"""Explanations of linearizability violations, as data and as plain words.

For a part the search found non-linearizable, the explanation names the longest linearizable
prefix it found, the operation that no order could place after that prefix (the one whose
return the search kept reaching), and the operations concurrent with it: those are the ones
whose order was in question.
"""

from __future__ import annotations

from typing import Any

from checkers.linearizability.models import Model
from checkers.linearizability.operations import LinOp
from checkers.linearizability.partition import PartResult
from workbench.checker import Anomaly, Witness

MAX_LISTED = 200
"""Operations listed in ``data`` (prefix and concurrent); the rest are counted, not listed."""
MAX_WORDED = 8
"""Operations named in the text."""
MAX_WITNESSED = 30
"""Operations given as witnesses per role (the prefix's last ones, nearest the culprit)."""


def describe_op(model: Model, op: LinOp) -> dict[str, Any]:
    """One operation as JSON-serialisable data: ``process``, ``f``, ``description`` (the model's
    words), ``invoke_index``/``complete_index`` (history indices; None = never completed),
    ``call``/``return`` times (``return`` None = crashed: may take effect any time later)."""
    return {
        "process": op.process,
        "f": op.f,
        "description": model.describe_operation(op.input, op.output),
        "invoke_index": op.invoke_index,
        "complete_index": op.complete_index,
        "call": op.call,
        "return": op.ret,
        "crashed": op.crashed,
    }


def _words(model: Model, op: LinOp) -> str:
    where = f"event {op.invoke_index}"
    if op.complete_index is not None:
        where = f"events {op.invoke_index}-{op.complete_index}"
    crashed = ", crashed" if op.crashed else ""
    return (
        f"process {op.process} {model.describe_operation(op.input, op.output)} ({where}{crashed})"
    )


def concurrent_with(target: LinOp, ops: list[LinOp]) -> list[LinOp]:
    """Operations of ``ops`` whose intervals overlap ``target``'s (closed intervals; a crashed
    operation's interval never ends)."""
    end = target.ret
    out = []
    for op in ops:
        if op is target:
            continue
        if end is not None and op.call > end:
            continue
        if op.ret is not None and op.ret < target.call:
            continue
        out.append(op)
    return out


def explain(model: Model, part: PartResult, *, parts_total: int = 1) -> Anomaly:
    """The anomaly for a part whose search answered False.

    ``data`` keys: ``operation`` (the one that cannot be linearized, see :func:`describe_op`),
    ``prefix`` (the longest linearizable prefix found, in linearization order, at most
    ``MAX_LISTED`` of its last operations) with ``prefix_length``, ``state_after_prefix`` (the
    model's words), ``concurrent`` (operations overlapping the failing one) with
    ``concurrent_count``, and ``part_size`` (operations in its part). ``events`` holds the history
    indices of the failing operation and of the operations concurrent with it; ``witnesses`` the
    culprit, the concurrent operations and the end of the prefix, each with the model's words
    for it, and the state after the prefix; ``at`` the culprit's last event.
    """
    res = part.result
    ops = part.ops
    prefix = [ops[i] for i in res.prefix]
    stuck = ops[res.stuck] if res.stuck is not None else None
    concurrent = concurrent_with(stuck, ops) if stuck is not None else []
    state_words = model.describe_state(res.state if prefix else model.init())
    data: dict[str, Any] = {
        "operation": describe_op(model, stuck) if stuck is not None else None,
        "prefix_length": len(prefix),
        "prefix": [describe_op(model, op) for op in prefix[-MAX_LISTED:]],
        "state_after_prefix": state_words,
        "concurrent_count": len(concurrent),
        "concurrent": [describe_op(model, op) for op in concurrent[:MAX_LISTED]],
        "part_size": len(ops),
        "parts_total": parts_total,
    }
    indices: set[int] = set()
    for op in [stuck, *concurrent] if stuck is not None else []:
        indices.update(op.event_indices())

    if stuck is None:  # cannot happen for a False result; kept for robustness
        text = "No order of the operations is linearizable."
    else:
        text = (
            f"Not linearizable: no order of the operations places {_words(model, stuck)}. "
            f"The longest linearizable prefix found has {len(prefix)} of the {len(ops)} "
            f"operations in this part"
        )
        if prefix:
            text += f", ending with {_words(model, prefix[-1])}"
        text += f"; after it the state is {state_words}."
        if concurrent:
            named = "; ".join(_words(model, op) for op in concurrent[:MAX_WORDED])
            more = len(concurrent) - MAX_WORDED
            text += f" {len(concurrent)} operation(s) ran concurrently with it: {named}"
            text += f" and {more} more." if more > 0 else "."
            text += " No order of these"
            text += (
                ", nor leaving out the crashed ones," if any(o.crashed for o in concurrent) else ""
            )
            text += " lets it return what it did."
        else:
            text += " Nothing ran concurrently with it, so its result contradicts the state."
    return Anomaly(
        kind="not-linearizable",
        explanation=text,
        events=tuple(sorted(indices)),
        data=data,
        witnesses=_witnesses(model, stuck, concurrent, prefix, state_words),
        at=None if stuck is None else max(stuck.event_indices()),
    )


def _witness(model: Model, op: LinOp, role: str) -> Witness:
    note = model.describe_operation(op.input, op.output) + (", crashed" if op.crashed else "")
    return Witness(role, op.invoke_index, op.complete_index, note)


def _witnesses(
    model: Model,
    stuck: LinOp | None,
    concurrent: list[LinOp],
    prefix: list[LinOp],
    state_words: str,
) -> tuple[Witness, ...]:
    """The culprit, what ran concurrently with it, the end of the prefix (in linearization
    order) and the model's state after it; roles say how many were left out."""
    out: list[Witness] = []
    if stuck is not None:
        out.append(_witness(model, stuck, "culprit: cannot be linearized"))
    role = "concurrent with the culprit"
    if len(concurrent) > MAX_WITNESSED:
        role += f" ({len(concurrent) - MAX_WITNESSED:,} more not shown)"
    out += [_witness(model, op, role) for op in concurrent[:MAX_WITNESSED]]
    role = "end of the linearizable prefix"
    if len(prefix) > MAX_WITNESSED:
        role += f" ({len(prefix) - MAX_WITNESSED:,} earlier operations not shown)"
    out += [_witness(model, op, role) for op in prefix[-MAX_WITNESSED:]]
    out.append(Witness("state after the prefix", excerpt=state_words))
    return tuple(out)
