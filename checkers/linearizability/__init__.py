"""Linearizability checking (Wing & Gong search, Lowe's memoisation, P-compositionality).

Small API::

    from checkers.linearizability import Linearizable, get_model
    result = Linearizable("cas-register", time_limit=10).check(events, CheckContext())
    result.valid          # True, False or "unknown" (time or state budget exhausted)
    result.anomalies[0]   # for False: longest linearizable prefix, failing op, concurrent ops

Models: ``register``, ``cas-register``, ``kv``, ``mutex``, ``set``, ``fifo-queue`` (see
:mod:`checkers.linearizability.models`), plus any registered under ``workbench.models``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Final

from checkers.linearizability.explain import explain
from checkers.linearizability.models import (
    UNKNOWN,
    Model,
    ModelError,
    get_model,
    model_names,
)
from checkers.linearizability.operations import LinOp, Prepared, prepare
from checkers.linearizability.partition import Outcome, PartResult, check_parts
from checkers.linearizability.search import DEFAULT_MAX_STATES, SearchResult, search
from workbench.checker import CheckContext, CheckResult, Kind
from workbench.history import Event, HistoryError

__all__ = [
    "DEFAULT_MAX_STATES",
    "UNKNOWN",
    "LinOp",
    "Linearizable",
    "Model",
    "ModelError",
    "Outcome",
    "SearchResult",
    "check_parts",
    "get_model",
    "model_names",
    "prepare",
    "search",
]


class Linearizable:
    """The harness's linearizability checker for one model.

    ``model`` is a :class:`Model` or a model name; ``time_limit`` (seconds) overrides the
    context's budget; ``max_states`` bounds the memo cache of each part; with ``stop_at_first``
    (default) the first non-linearizable part ends the check, otherwise every bad part is
    reported.
    """

    name = "linearizable"
    kind: Final[Kind] = "safety"

    def __init__(
        self,
        model: Model | str,
        time_limit: float | None = None,
        *,
        max_states: int = DEFAULT_MAX_STATES,
        stop_at_first: bool = True,
    ) -> None:
        self.model = get_model(model) if isinstance(model, str) else model
        self.time_limit = time_limit
        self.max_states = max_states
        self.stop_at_first = stop_at_first

    def check(self, history: Sequence[Event], context: CheckContext) -> CheckResult:
        """Checks the client operations of ``history`` (nemesis events ignored).

        ``stats`` holds ``operations`` (checked), ``failed`` (dropped: no effect), ``crashed``
        (info or never completed), ``parts``/``parts_checked``, ``explored`` (visited
        (set, state) pairs) and ``seconds``. A history the model cannot read gives
        ``valid="unknown"`` with the reason in ``summary``.
        """
        started = time.monotonic()
        limit = self.time_limit if self.time_limit is not None else context.time_limit
        try:
            prepared = prepare(history, self.model)
        except (HistoryError, ModelError) as e:
            return CheckResult(self.name, "unknown", self.kind, summary=f"cannot check: {e}")
        outcome = check_parts(
            self.model,
            prepared.ops,
            time_limit=limit,
            max_states=self.max_states,
            stop_at_first=self.stop_at_first,
        )
        deadline = None if limit is None else started + limit
        anomalies = tuple(
            explain(
                self.model, _deeper(self.model, part, deadline), parts_total=outcome.parts_total
            )
            for part in outcome.violations
        )
        stats = _stats(prepared, outcome, time.monotonic() - started)
        return CheckResult(
            self.name,
            outcome.valid,
            self.kind,
            summary=_summary(self.model, prepared, outcome, limit),
            anomalies=anomalies,
            impact={"non_linearizable_parts": len(anomalies)},
            stats=stats,
        )


EXPLAIN_MAX_STATES = 100_000
"""Budget of the unpruned search that looks for a longer prefix to explain a violation."""


def _deeper(model: Model, part: PartResult, deadline: float | None) -> PartResult:
    """The violating ``part`` with the longest linearizable prefix we can afford to find.

    The model's dead ends (:meth:`Model.dead_ends`) abandon a branch as soon as it is doomed,
    so the pruned search's longest prefix can stop short of where the history visibly goes
    wrong. Searching again without them, within :data:`EXPLAIN_MAX_STATES` pairs and the time
    budget, finds the prefix the plain search would report; when that search gives up, the
    pruned search's own prefix (and the operation it doomed) is kept. The verdict is not
    touched: both searches are exact.
    """
    if model.dead_ends(part.ops) is None:
        return part
    res = search(model, part.ops, deadline=deadline, max_states=EXPLAIN_MAX_STATES, prune=False)
    if res.valid is False and len(res.prefix) >= len(part.result.prefix):
        res.explored = part.result.explored
        return PartResult(part.ops, res)
    return part


def _stats(prepared: Prepared, outcome: Outcome, seconds: float) -> dict[str, object]:
    return {
        "operations": len(prepared.ops),
        "failed": prepared.failed,
        "crashed": prepared.crashed,
        "parts": outcome.parts_total,
        "parts_checked": len(outcome.parts),
        "explored": outcome.explored,
        "seconds": round(seconds, 6),
    }


def _summary(model: Model, prepared: Prepared, outcome: Outcome, limit: float | None) -> str:
    n = len(prepared.ops)
    what = f"{n} operations ({prepared.crashed} crashed) in {outcome.parts_total} part(s)"
    if outcome.valid is True:
        return f"linearizable as a {model.name}: {what}"
    if outcome.valid is False:
        bad = len(outcome.violations)
        return f"not linearizable as a {model.name}: {bad} part(s) have no valid order ({what})"
    reasons = {p.result.reason for p in outcome.parts if p.result.valid == "unknown"}
    if "states" in reasons:
        why = "the search's state budget ran out"
    elif limit is not None:
        why = f"the {limit:g} s time budget ran out"
    else:
        why = "the search gave up"
    return f"unknown: {why} checking {what}"
