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
from workbench.checker import Anomaly

MAX_LISTED = 200
"""Operations listed in ``data`` (prefix and concurrent); the rest are counted, not listed."""
MAX_WORDED = 8
"""Operations named in the text."""


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
    indices of the failing operation and of the operations concurrent with it.
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
    )
