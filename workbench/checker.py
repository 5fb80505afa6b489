"""The checker seam: a checker is a pure function of a history.

To add one, write a class with a ``name`` and a ``check`` method and register it under the
``workbench.checkers`` entry-point group (or list it in a target's ``checkers``)::

    class NoLostWrites:
        name = "no-lost-writes"
        kind = "safety"

        def check(self, history: Sequence[Event], context: CheckContext) -> CheckResult:
            ...
            return CheckResult(self.name, valid=not lost, kind=self.kind,
                               summary=f"{len(lost)} acknowledged writes lost", anomalies=[...])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from workbench.history import Event, Operation

Validity = bool | Literal["unknown"]
Kind = Literal["safety", "liveness"]


@dataclass(frozen=True)
class Anomaly:
    """One thing that went wrong, with the operations behind it.

    ``events`` are the history indices of the events involved (invocations and completions), so a
    report can show them; ``data`` holds checker-specific detail (JSON-serialisable).
    """

    kind: str
    explanation: str
    events: tuple[int, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "explanation": self.explanation,
            "events": list(self.events),
            "data": dict(self.data),
        }


@dataclass(frozen=True)
class CheckResult:
    """A checker's verdict.

    ``valid``: True (no anomaly), False (at least one anomaly), or ``"unknown"`` (the checker could
    not decide, e.g. a time budget ran out). ``summary`` is one line in plain words, quantified
    ("2 accounts double-charged, 3 duplicate charges, $41.00"). ``impact`` holds the figures behind
    it (counts, amounts) for reports; ``stats`` anything else worth showing.
    """

    checker: str
    valid: Validity
    kind: Kind = "safety"
    summary: str = ""
    anomalies: tuple[Anomaly, ...] = ()
    impact: Mapping[str, Any] = field(default_factory=dict)
    stats: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "checker": self.checker,
            "valid": self.valid,
            "kind": self.kind,
            "summary": self.summary,
            "anomalies": [a.to_json() for a in self.anomalies],
            "impact": dict(self.impact),
            "stats": dict(self.stats),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CheckResult:
        return cls(
            checker=d["checker"],
            valid=d["valid"],
            kind=d.get("kind", "safety"),
            summary=d.get("summary", ""),
            anomalies=tuple(
                Anomaly(a["kind"], a["explanation"], tuple(a.get("events", ())), a.get("data", {}))
                for a in d.get("anomalies", ())
            ),
            impact=d.get("impact", {}),
            stats=d.get("stats", {}),
        )


@dataclass(frozen=True)
class CheckContext:
    """What a checker may know besides the history: the campaign's description (target, variant,
    workers, ...) as stored in ``campaign.json``, and a time budget in seconds."""

    campaign: Mapping[str, Any] = field(default_factory=dict)
    time_limit: float | None = None


@runtime_checkable
class Checker(Protocol):
    name: str

    def check(self, history: Sequence[Event], context: CheckContext) -> CheckResult: ...


def merge_validity(values: Iterable[Validity]) -> Validity:
    """Jepsen's composition: any False makes False; else any unknown makes unknown; else True."""
    vals = list(values)
    if any(v is False for v in vals):
        return False
    if any(v == "unknown" for v in vals):
        return "unknown"
    return True


def event_indices(*ops: Operation) -> tuple[int, ...]:
    """The history indices of the given operations' invocations and completions, sorted."""
    out: list[int] = []
    for op in ops:
        out.append(op.invoke.index)
        if op.completion is not None:
            out.append(op.completion.index)
    return tuple(sorted(out))
