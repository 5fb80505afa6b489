"""Shared helpers for the linearizability tests: building histories and a brute-force oracle."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from checkers.linearizability import LinOp, Model
from workbench.history import Event


def events(*rows: tuple[Any, ...]) -> list[Event]:
    """Events from ``(process, type, f, value)`` rows in time order (index = time = position)."""
    out = []
    for i, row in enumerate(rows):
        process, typ, f = row[:3]
        value = row[3] if len(row) > 3 else None
        out.append(Event(i, i, process, typ, f, value))
    return out


def brute_force(model: Model, ops: Sequence[LinOp]) -> bool:
    """Whether some order of ``ops`` respecting real time is accepted by ``model``; crashed
    operations (``ret`` None) may be left out. Exhaustive, no memo: only for tiny histories.
    Each of the model's parts (e.g. keys) is searched alone, as the model's state is per part."""
    return all(_brute_force_part(model, part) for part in model.partition(list(ops)))


def _brute_force_part(model: Model, ops: Sequence[LinOp]) -> bool:

    def go(remaining: list[LinOp], state: Any) -> bool:
        if all(op.ret is None for op in remaining):
            return True
        for op in remaining:
            # op may come next unless some other remaining op returned before op was called.
            if any(p is not op and p.ret is not None and p.ret < op.call for p in remaining):
                continue
            ok, new_state = model.step(state, op.input, op.output)
            if ok and go([p for p in remaining if p is not op], new_state):
                return True
        return False

    return go(list(ops), model.init())
