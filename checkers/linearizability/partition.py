"""P-compositionality (Herlihy & Wing; Horn & Kroening): a history is linearizable iff each of
its independent parts is, so each part (e.g. each key of a key/value store) is searched alone.

The search is exponential in the concurrency of what it is given, so splitting first is the big
win: ten keys of 200 operations each are ten small searches, not one over 2,000 operations.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from checkers.linearizability.models import Model
from checkers.linearizability.operations import LinOp
from checkers.linearizability.search import DEFAULT_MAX_STATES, SearchResult, search
from workbench.checker import merge_validity


@dataclass
class PartResult:
    """One part's operations and the search's result on them (positions index ``ops``)."""

    ops: list[LinOp]
    result: SearchResult


@dataclass
class Outcome:
    """What :func:`check_parts` returns.

    ``valid`` merges the parts Jepsen's way (any False, else any unknown, else True).
    ``parts`` lists the results of the parts searched (all of them unless ``stop_at_first``
    ended early on a violation); ``parts_total`` how many there were; ``explored`` the visited
    (set, state) pairs over all parts.
    """

    valid: bool | Literal["unknown"]
    parts: list[PartResult] = field(default_factory=list)
    parts_total: int = 0
    explored: int = 0

    @property
    def violations(self) -> list[PartResult]:
        return [p for p in self.parts if p.result.valid is False]


def split(model: Model, ops: Sequence[LinOp]) -> list[list[LinOp]]:
    """The model's parts, empty ones dropped, each in the original order."""
    return [part for part in model.partition(ops) if part]


def check_parts(
    model: Model,
    ops: Sequence[LinOp],
    *,
    time_limit: float | None = None,
    max_states: int = DEFAULT_MAX_STATES,
    stop_at_first: bool = True,
) -> Outcome:
    """Searches each part of ``ops`` alone, smallest first (cheap violations surface early).

    ``time_limit`` (seconds) is shared by all parts; ``max_states`` bounds each part's cache.
    With ``stop_at_first`` the first violation ends the check (like Porcupine); otherwise every
    part is searched so that every bad key is reported.
    """
    deadline = None if time_limit is None else time.monotonic() + time_limit
    parts = sorted(split(model, ops), key=len)
    outcome = Outcome(True, parts_total=len(parts))
    verdicts: list[bool | Literal["unknown"]] = []
    for part in parts:
        if deadline is not None and time.monotonic() > deadline:
            verdicts.append("unknown")
            break
        res = search(model, part, deadline=deadline, max_states=max_states)
        outcome.parts.append(PartResult(part, res))
        outcome.explored += res.explored
        verdicts.append(res.valid)
        if res.valid is False and stop_at_first:
            break
    outcome.valid = merge_validity(verdicts)
    return outcome
