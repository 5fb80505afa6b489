"""The checker seam: a checker is a pure function of a history.

To add one, write a class with a ``name`` and a ``check`` method and register it under the
``workbench.checkers`` entry-point group (or list it in a target's ``checkers``)::

    class NoLostWrites:
        name = "no-lost-writes"
        kind = "safety"

        def check(self, history: Sequence[Event], context: CheckContext) -> CheckResult:
            ...
            lost = Anomaly(
                "lost-write",
                f"write {v} was acknowledged, but the final read lacks it",
                witnesses=(
                    Witness.of(write_op, "acknowledged write"),
                    Witness.excerpt_of(final_read, "final read", {"has": v, "present": False}),
                ),
            )
            return CheckResult(self.name, valid=False, kind=self.kind,
                               summary="1 acknowledged write lost", anomalies=(lost,))

A checker owns how its anomalies read: the explanation, and the witnesses (operations and
slices of final reads) that prove each one. Reports lay them out and interpret nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from workbench.history import Event, Operation

Validity = bool | Literal["unknown"]
Kind = Literal["safety", "liveness"]


@dataclass(frozen=True)
class Witness:
    """One piece of evidence behind an anomaly, as the checker wants it shown.

    Two shapes:

    - an *operation* of the history: ``invoke`` and/or ``completion`` are the history indices of
      its invocation and completion (``Witness.of(op, role)``); a report shows it as one row of
      an operation table, with ``note`` as the checker's reading of it;
    - an *excerpt*: ``excerpt`` is a JSON-serialisable slice of a value (the two overlapping
      writes of a final read, the one record that differs), never the whole of it;
      ``invoke``/``completion`` then name the operation it was cut from, if any
      (``Witness.excerpt_of(read, role, value)``). A report shows the excerpt, not that
      operation's whole value.

    ``role`` says what the witness proves, in the checker's words ("first holder", "second
    holder", "duplicate charge", "culprit"); witnesses sharing a role are shown together.
    """

    role: str
    invoke: int | None = None
    completion: int | None = None
    note: str = ""
    excerpt: Any = None

    @classmethod
    def of(cls, op: Operation, role: str, note: str = "") -> Witness:
        """The operation ``op`` as a witness."""
        c = op.completion
        return cls(role, op.invoke.index, None if c is None else c.index, note)

    @classmethod
    def excerpt_of(cls, op: Operation | None, role: str, excerpt: Any, note: str = "") -> Witness:
        """A slice ``excerpt`` of ``op``'s value (``op`` None: of no one operation)."""
        if op is None:
            return cls(role, None, None, note, excerpt)
        c = op.completion
        return cls(role, op.invoke.index, None if c is None else c.index, note, excerpt)

    @property
    def is_excerpt(self) -> bool:
        return self.excerpt is not None

    def indices(self) -> tuple[int, ...]:
        """The history indices this witness names (invocation, then completion)."""
        return tuple(i for i in (self.invoke, self.completion) if i is not None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "role": self.role,
            "invoke": self.invoke,
            "completion": self.completion,
            "note": self.note,
        }
        if self.excerpt is not None:
            out["excerpt"] = self.excerpt
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Witness:
        return cls(
            role=str(d.get("role", "")),
            invoke=_opt_index(d.get("invoke")),
            completion=_opt_index(d.get("completion")),
            note=str(d.get("note") or ""),
            excerpt=d.get("excerpt"),
        )


def _opt_index(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


@dataclass(frozen=True)
class Anomaly:
    """One thing that went wrong, explained by the checker that found it.

    ``explanation`` is the checker's text for it (plain words; reports print it as is).
    ``witnesses`` are what proves it (see :class:`Witness`); ``events`` are the history indices
    of the events involved (invocations, completions, nemesis events), for highlighting; when not
    given, they are every index the witnesses name. ``at`` is the history index of the event by
    which the anomaly was complete (the second write of an overlap, a duplicate's charge), so a
    report can mark its time; when not given, the last index named by an operation witness (or,
    without any, by ``events``). ``data`` holds checker-specific detail for machines
    (JSON-serialisable); reports do not interpret it.
    """

    kind: str
    explanation: str
    events: tuple[int, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)
    witnesses: tuple[Witness, ...] = ()
    at: int | None = None

    def __post_init__(self) -> None:
        # Frozen: derived defaults are set once, here, so every reader sees the same values.
        if not self.events and self.witnesses:
            named = {i for w in self.witnesses for i in w.indices()}
            object.__setattr__(self, "events", tuple(sorted(named)))
        if self.at is None:
            ops = [i for w in self.witnesses if not w.is_excerpt for i in w.indices()]
            candidates = ops or list(self.events)
            if candidates:
                object.__setattr__(self, "at", max(candidates))

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "explanation": self.explanation,
            "events": list(self.events),
            "data": dict(self.data),
            "witnesses": [w.to_json() for w in self.witnesses],
            "at": self.at,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Anomaly:
        return cls(
            kind=str(d["kind"]),
            explanation=str(d.get("explanation", "")),
            events=tuple(i for i in d.get("events", ()) if _opt_index(i) is not None),
            data=d.get("data") or {},
            witnesses=tuple(
                Witness.from_json(w) for w in d.get("witnesses", ()) if isinstance(w, Mapping)
            ),
            at=_opt_index(d.get("at")),
        )


@dataclass(frozen=True)
class Series:
    """A measurement over campaign time that the checker wants drawn (delivery lag, staleness).

    ``points`` are ``(t, y)`` pairs: ``t`` in seconds since the campaign started (the history's
    clock, so fault windows line up), ``y`` in ``unit``. A report draws each series as a scatter
    on the run's time axis with the fault windows shaded, titled ``title``, with ``caption``
    under it; ``key`` is a stable id (unique within the result).
    """

    key: str
    title: str
    unit: str
    points: tuple[tuple[float, float], ...] = ()
    caption: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "unit": self.unit,
            "points": [[t, y] for t, y in self.points],
            "caption": self.caption,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Series:
        points: list[tuple[float, float]] = []
        for p in d.get("points", ()):
            if isinstance(p, (list, tuple)) and len(p) == 2:
                t, y = p
                if isinstance(t, (int, float)) and isinstance(y, (int, float)):
                    points.append((float(t), float(y)))
        return cls(
            key=str(d.get("key", "")),
            title=str(d.get("title", "")),
            unit=str(d.get("unit", "")),
            points=tuple(points),
            caption=str(d.get("caption") or ""),
        )


@dataclass(frozen=True)
class CheckResult:
    """A checker's verdict.

    ``valid``: True (no anomaly), False (at least one anomaly), or ``"unknown"`` (the checker could
    not decide, e.g. a time budget ran out). ``summary`` is one line in plain words, quantified
    ("2 accounts double-charged, 3 duplicate charges, $41.00"). ``impact`` holds the figures behind
    it (counts, amounts) for reports; ``stats`` anything else worth showing; ``series``
    measurements over time the checker wants drawn (see :class:`Series`).
    """

    checker: str
    valid: Validity
    kind: Kind = "safety"
    summary: str = ""
    anomalies: tuple[Anomaly, ...] = ()
    impact: Mapping[str, Any] = field(default_factory=dict)
    stats: Mapping[str, Any] = field(default_factory=dict)
    series: tuple[Series, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "checker": self.checker,
            "valid": self.valid,
            "kind": self.kind,
            "summary": self.summary,
            "anomalies": [a.to_json() for a in self.anomalies],
            "impact": dict(self.impact),
            "stats": dict(self.stats),
        }
        if self.series:
            out["series"] = [s.to_json() for s in self.series]
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CheckResult:
        return cls(
            checker=d["checker"],
            valid=d["valid"],
            kind=d.get("kind", "safety"),
            summary=d.get("summary", ""),
            anomalies=tuple(Anomaly.from_json(a) for a in d.get("anomalies", ())),
            impact=d.get("impact", {}),
            stats=d.get("stats", {}),
            series=tuple(
                Series.from_json(x) for x in d.get("series", ()) if isinstance(x, Mapping)
            ),
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
