"""Loads a run directory into a view-model that every report format renders from.

A run directory holds ``history.jsonl``, ``campaign.json``, ``results.json`` (absent while a
run is going or after a crash) and ``logs/*.log``. :func:`load_run` reads them once and returns a
:class:`RunView`: operations paired, fault windows built from nemesis events, each checker's
anomalies laid out from the witnesses its checker gave (operations looked up by index,
excerpts), the measurements over time it handed over to draw (:class:`Series`), and the headline
that states the impact. No checker-specific key is decoded.

Nothing here formats HTML: values stay Python objects and each renderer escapes them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from workbench.checker import Anomaly, Series, Witness
from workbench.history import Event, HistoryError, Operation, pair_operations, read_history

#: Anomalies rendered in full per checker; the rest are counted and left to ``results.json``,
#: so that a checker reporting ten thousand anomalies does not make a 100 MB page.
MAX_DETAILED_ANOMALIES = 100
#: Witnesses shown per anomaly; a checker naming more has the rest counted.
MAX_WITNESSES = 200
#: Role of the operations of an anomaly that gives ``events`` but no witnesses (older results).
EVENTS_ROLE = "operations involved"

Verdict = bool | str  # True, False or "unknown"


class RunDirError(ValueError):
    """A run directory that cannot be reported on; the message names the path and the cause."""


class BadHistoryError(RunDirError):
    """The run's ``history.jsonl`` is bad data (a malformed line, indices that repeat or go
    backwards): ``workbench report`` exits 65 for it, as ``workbench check`` does."""


@dataclass(frozen=True)
class OpRow:
    """One operation as a table row. Times are seconds since the campaign started."""

    index: int
    completion_index: int | None
    process: str
    f: str
    type: str
    invoke_value: Any
    value: Any
    error: Any
    start_s: float
    end_s: float | None
    note: str = ""  # a checker's words for the operation (e.g. a model's "read 3")

    @property
    def latency_ms(self) -> float | None:
        return None if self.end_s is None else (self.end_s - self.start_s) * 1000.0


@dataclass(frozen=True)
class FaultWindow:
    """A fault that was active from ``start_s`` to ``end_s``; ``open`` when it never stopped
    (``end_s`` is then the end of the run). ``detail`` is the start event's value."""

    fault: str
    start_s: float
    end_s: float
    open: bool
    detail: Mapping[str, Any]


@dataclass(frozen=True)
class FaultMark:
    """An instantaneous nemesis event (a heal, a kill...) drawn as a vertical line."""

    fault: str
    f: str
    at_s: float
    detail: Any


@dataclass(frozen=True)
class Excerpt:
    """A slice of a value a checker cut out as evidence; ``source`` is the operation it was cut
    from (None when the checker named none, or it is not in the history)."""

    note: str
    value: Any
    source: OpRow | None


@dataclass(frozen=True)
class WitnessGroup:
    """The witnesses of one role, in the checker's order: ``rows`` are operations (each row's
    ``note`` is the witness's note), ``excerpts`` slices of values."""

    role: str
    rows: list[OpRow]
    excerpts: list[Excerpt]


@dataclass(frozen=True)
class AnomalyView:
    """An anomaly resolved against the history, laid out as its checker gave it.

    ``groups`` are its witnesses by role (first appearance order); ``witnesses_elided`` counts
    those left out beyond :data:`MAX_WITNESSES`. ``ops`` are every client operation named
    (witnesses and ``events``), for highlighting; ``nemesis`` the fault events in ``events``.
    ``at_s`` is when the anomaly was complete (seconds), or None. ``data`` is the checker's
    machine detail, shown as is."""

    kind: str
    explanation: str
    ops: list[OpRow]
    nemesis: list[FaultMark]
    groups: list[WitnessGroup]
    data: Mapping[str, Any]
    at_s: float | None = None
    witnesses_elided: int = 0


@dataclass(frozen=True)
class CheckerView:
    """A checker's verdict ready to show: ``impact_items`` are (label, formatted figure) pairs;
    ``series`` the measurements over time it wants drawn, in its order (one plot each)."""

    name: str
    kind: str
    valid: Verdict
    summary: str
    impact: Mapping[str, Any]
    impact_items: list[tuple[str, str]]
    anomalies: list[AnomalyView]
    anomaly_count: int
    stats: Mapping[str, Any]
    series: tuple[Series, ...] = ()

    @property
    def verdict_word(self) -> str:
        return verdict_word(self.valid)


@dataclass
class RunView:
    """Everything a report shows about one run.

    ``ops`` are in invocation order; ``rows`` parallels ``ops``. ``verdict`` is True/False/
    "unknown", or None when there is no ``results.json``. ``headline`` is the title (customer
    impact first) and ``subheadline`` a second line or "" (see :func:`headline_parts`).
    ``notes`` are warnings worth putting at the top (torn history, crashed run, missing results).
    """

    run_dir: Path
    campaign: dict[str, Any]
    results: dict[str, Any] | None
    events: list[Event]
    ops: list[Operation]
    rows: list[OpRow]
    duration_s: float
    verdict: Verdict | None
    headline: str
    subheadline: str
    faults: list[FaultWindow]
    marks: list[FaultMark]
    checkers: list[CheckerView]
    counts: dict[str, int]
    notes: list[str] = field(default_factory=list)
    raw_files: list[str] = field(default_factory=list)

    @property
    def safety(self) -> list[CheckerView]:
        return [c for c in self.checkers if c.kind != "liveness"]

    @property
    def liveness(self) -> list[CheckerView]:
        return [c for c in self.checkers if c.kind == "liveness"]

    @property
    def verdict_word(self) -> str:
        return "NO RESULTS" if self.verdict is None else verdict_word(self.verdict)

    @property
    def anomaly_marks(self) -> list[tuple[float, str, str]]:
        """(seconds, checker, anomaly kind) of every detailed anomaly with a known time, in time
        order: the plots mark them."""
        marks = [
            (a.at_s, c.name, a.kind)
            for c in self.checkers
            for a in c.anomalies
            if a.at_s is not None
        ]
        return sorted(marks)

    @property
    def classname(self) -> str:
        """``target.variant``, the JUnit classname and the run's short name."""
        return f"{self.campaign.get('target', 'unknown')}.{self.campaign.get('variant', 'default')}"


def verdict_word(valid: Verdict | None) -> str:
    """VALID / INVALID / UNKNOWN for a checker or run verdict."""
    if valid is True:
        return "VALID"
    if valid is False:
        return "INVALID"
    return "UNKNOWN"


def secs(ns: int) -> float:
    return ns / 1e9


def load_json_object(path: Path, *, required: bool) -> dict[str, Any] | None:
    """Reads a JSON object file; None when absent and not required. Raises RunDirError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise RunDirError(f"{path}: missing") from None
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise RunDirError(f"{path}: unreadable ({e})") from None
    try:
        data = json.loads(text)
    except ValueError as e:
        raise RunDirError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: not a JSON object")
    return data


def load_run(run_dir: str | Path) -> RunView:
    """Reads a run directory. Raises :class:`RunDirError` when it is missing or malformed
    (no directory, no ``campaign.json`` or ``history.jsonl``, or unreadable JSON)."""
    run = Path(run_dir)
    if not run.is_dir():
        raise RunDirError(f"{run}: not a run directory (no such directory)")
    campaign = load_json_object(run / "campaign.json", required=True)
    assert campaign is not None
    results = load_json_object(run / "results.json", required=False)
    if not (run / "history.jsonl").is_file():
        raise RunDirError(f"{run / 'history.jsonl'}: missing")
    notes: list[str] = []
    try:
        loaded = read_history(run / "history.jsonl")
    except HistoryError as e:
        raise BadHistoryError(str(e)) from None
    events = loaded.events
    if loaded.torn_line is not None:
        notes.append(
            f"history.jsonl line {loaded.torn_line} was cut short (the harness was killed "
            "mid-write) and was left out."
        )
    try:
        ops = pair_operations(events)
    except HistoryError as e:
        # A report is most wanted when something went badly wrong, so render what we can.
        notes.append(f"history is not well-formed ({e}); operations were paired leniently.")
        ops = pair_operations(events, strict=False)

    status = campaign.get("status")
    # The statuses the runner writes (workbench/runner.py).
    if status == "failed":
        notes.append(
            "The harness failed mid-campaign (logs/harness-error.log): the history may be partial."
        )
    elif status == "interrupted":
        notes.append("The campaign was interrupted (Ctrl-C or SIGTERM): the history is partial.")
    elif status == "running":
        notes.append(
            "The campaign never finished (still running, or its harness was killed): "
            "the history is partial."
        )
    if results is None:
        notes.append("results.json is missing: no checker verdicts to show.")

    last_ns = max((e.time for e in events), default=0)
    duration_s = secs(last_ns)
    if results is not None and isinstance(results.get("duration_s"), int | float):
        duration_s = max(duration_s, float(results["duration_s"]))

    rows = [op_row(op) for op in ops]
    by_index: dict[int, int] = {}
    for n, op in enumerate(ops):
        by_index[op.invoke.index] = n
        if op.completion is not None:
            by_index[op.completion.index] = n
    faults, marks = fault_windows(events, duration_s)
    event_at = {e.index: e for e in events}

    checkers = [
        checker_view(c, rows, by_index, event_at)
        for c in (results or {}).get("checkers", [])
        if isinstance(c, Mapping)
    ]
    counts = {"ok": 0, "fail": 0, "info": 0}
    for op in ops:
        counts[op.type] = counts.get(op.type, 0) + 1

    verdict: Verdict | None = None
    if results is not None:
        v = results.get("valid", "unknown")
        verdict = v if v in (True, False) else "unknown"
    view = RunView(
        run_dir=run,
        campaign=campaign,
        results=results,
        events=events,
        ops=ops,
        rows=rows,
        duration_s=duration_s,
        verdict=verdict,
        headline="",
        subheadline="",
        faults=faults,
        marks=marks,
        checkers=checkers,
        counts=counts,
        notes=notes,
        raw_files=raw_files(run),
    )
    view.headline, view.subheadline = headline_parts(
        verdict, checkers, len(ops), campaign.get("faults") or []
    )
    reason = (results or {}).get("reason")
    if verdict == "unknown" and isinstance(reason, str) and reason:
        view.headline = f"Undecided: {reason}"
    return view


def op_row(op: Operation) -> OpRow:
    c = op.completion
    return OpRow(
        index=op.invoke.index,
        completion_index=None if c is None else c.index,
        process=str(op.process),
        f=op.f,
        type=op.type,
        invoke_value=op.invoke.value,
        value=None if c is None else c.value,
        error=op.invoke.error if c is None else c.error,
        start_s=secs(op.start),
        end_s=None if op.end is None else secs(op.end),
    )


def fault_windows(
    events: Sequence[Event], duration_s: float
) -> tuple[list[FaultWindow], list[FaultMark]]:
    """Builds fault windows and instantaneous marks from nemesis events.

    A window is a ``start`` closed by the next ``stop`` with the same ``value["fault"]`` (and
    ``value["id"]`` when given); a start never stopped lasts to the end. ``heal`` and any other
    nemesis ``f`` are instantaneous. Returns (windows sorted by start, marks sorted by time).
    """
    opened: dict[tuple[str, str], list[tuple[float, Mapping[str, Any]]]] = {}
    windows: list[FaultWindow] = []
    marks: list[FaultMark] = []
    for e in events:
        if e.is_client:
            continue
        value = e.value if isinstance(e.value, Mapping) else {}
        name = str(value.get("fault", e.f))
        key = (name, str(value.get("id", "")))
        t = secs(e.time)
        if e.f == "start":
            opened.setdefault(key, []).append((t, value))
        elif e.f == "stop":
            stack = opened.get(key)
            if stack:
                start, detail = stack.pop(0)
                windows.append(FaultWindow(name, start, t, False, detail))
            else:
                # A stop without a start (the start was in a torn part): show it as a line.
                marks.append(FaultMark(name, e.f, t, e.value))
        else:
            marks.append(FaultMark(name, e.f, t, e.value))
    for (name, _), stack in opened.items():
        for start, detail in stack:
            windows.append(FaultWindow(name, start, max(duration_s, start), True, detail))
    windows.sort(key=lambda w: (w.start_s, w.fault))
    marks.sort(key=lambda m: m.at_s)
    return windows, marks


def checker_view(
    data: Mapping[str, Any],
    rows: Sequence[OpRow],
    by_index: Mapping[int, int],
    event_at: Mapping[int, Event],
) -> CheckerView:
    """Resolves one ``CheckResult.to_json()`` dict against the history."""
    anomalies_raw = [a for a in data.get("anomalies", ()) if isinstance(a, Mapping)]
    anomalies = [
        anomaly_view(a, rows, by_index, event_at) for a in anomalies_raw[:MAX_DETAILED_ANOMALIES]
    ]
    impact = data.get("impact") or {}
    impact = impact if isinstance(impact, Mapping) else {}
    valid = data.get("valid", "unknown")
    stats = data.get("stats") or {}
    series_raw = data.get("series") or ()
    # Read as CheckResult.from_json reads it; a malformed entry (not an object) is left out.
    series = tuple(
        Series.from_json(x)
        for x in (series_raw if isinstance(series_raw, list) else ())
        if isinstance(x, Mapping)
    )
    return CheckerView(
        name=str(data.get("checker", "?")),
        kind="liveness" if data.get("kind") == "liveness" else "safety",
        valid=valid if valid in (True, False) else "unknown",
        summary=str(data.get("summary") or ""),
        impact=impact,
        impact_items=impact_items(impact),
        anomalies=anomalies,
        anomaly_count=len(anomalies_raw),
        stats=stats if isinstance(stats, Mapping) else {},
        series=series,
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _row_of(
    invoke: int | None,
    completion: int | None,
    rows: Sequence[OpRow],
    by_index: Mapping[int, int],
) -> OpRow | None:
    for i in (invoke, completion):
        if i is not None and i in by_index:
            return rows[by_index[i]]
    return None


def witness_groups(
    witnesses: Sequence[Witness], rows: Sequence[OpRow], by_index: Mapping[int, int]
) -> list[WitnessGroup]:
    """Groups witnesses by role; an operation witness naming no known operation is dropped
    (a history cut short), and one already in its group is not repeated; an excerpt is kept
    whatever its source."""
    groups: dict[str, WitnessGroup] = {}
    shown: set[tuple[str, int]] = set()
    for w in witnesses:
        g = groups.setdefault(w.role, WitnessGroup(w.role, [], []))
        row = _row_of(w.invoke, w.completion, rows, by_index)
        if w.is_excerpt:
            g.excerpts.append(Excerpt(w.note, w.excerpt, row))
        elif row is not None and (w.role, row.index) not in shown:
            shown.add((w.role, row.index))
            g.rows.append(replace(row, note=w.note) if w.note else row)
    return [g for g in groups.values() if g.rows or g.excerpts]


def anomaly_view(
    a: Mapping[str, Any],
    rows: Sequence[OpRow],
    by_index: Mapping[int, int],
    event_at: Mapping[int, Event],
) -> AnomalyView:
    """Resolves one ``Anomaly.to_json()`` dict. Only the generic fields are read: an anomaly
    without witnesses (results written before them) shows its ``events`` as one group."""
    try:
        anomaly = Anomaly.from_json({"kind": "anomaly", **a})
    except (TypeError, ValueError, KeyError, AttributeError):
        anomaly = Anomaly(str(a.get("kind", "anomaly")), str(a.get("explanation", "")))
    witnesses = list(anomaly.witnesses)
    elided = max(0, len(witnesses) - MAX_WITNESSES)
    witnesses = witnesses[:MAX_WITNESSES]
    if not witnesses:
        witnesses = [Witness(EVENTS_ROLE, i) for i in anomaly.events]
    groups = witness_groups(witnesses, rows, by_index)
    named = sorted({*anomaly.events, *(i for w in witnesses for i in w.indices())})
    ops: list[OpRow] = []
    seen: set[int] = set()
    nemesis = []
    for i in named:
        n = by_index.get(i)
        if n is not None and n not in seen:
            seen.add(n)
            ops.append(rows[n])
        e = event_at.get(i)
        if i in anomaly.events and e is not None and not e.is_client:
            v = e.value if isinstance(e.value, Mapping) else {}
            nemesis.append(FaultMark(str(v.get("fault", e.f)), e.f, secs(e.time), e.value))
    at = event_at.get(anomaly.at) if anomaly.at is not None else None
    return AnomalyView(
        kind=anomaly.kind,
        explanation=anomaly.explanation,
        ops=ops,
        nemesis=nemesis,
        groups=groups,
        data=anomaly.data if isinstance(anomaly.data, Mapping) else {},
        at_s=None if at is None else secs(at.time),
        witnesses_elided=elided,
    )


def format_figure(key: str, value: Any) -> str:
    """Formats an impact figure: ``*_cents`` as dollars, numbers with thousands separators."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float) and key.endswith("_cents"):
        return f"${value / 100:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3g}" if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def impact_items(impact: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, figure) pairs in plain words: "duplicate_charges" → "duplicate charges"."""
    out = []
    for key, value in impact.items():
        label = str(key).removesuffix("_cents").replace("_", " ")
        out.append((label, format_figure(str(key), value)))
    return out


def _impact_phrase(c: CheckerView) -> str:
    if c.summary:
        return c.summary
    if c.impact_items:
        return ", ".join(f"{fig} {label}" for label, fig in c.impact_items)
    return f"{c.name}: {c.anomaly_count} anomalies"


def headline_parts(
    verdict: Verdict | None,
    checkers: Sequence[CheckerView],
    n_ops: int,
    faults: Sequence[Any],
) -> tuple[str, str]:
    """The report's title in plain words, customer impact first, as (title, second line).

    Invalid: the title joins the summaries of failed safety checkers; failed liveness checkers
    go to the second line ("Liveness: ...") or, when safety held, become the title. Valid:
    "No anomalies in N operations under F faults (names)". Unknown: which checkers could not
    decide. No results: says so. The second line is "" when there is nothing to add.
    """
    names = [str(f) for f in faults]
    under = (
        f"under {len(names)} fault{'s' if len(names) != 1 else ''} ({', '.join(names)})"
        if names
        else "with no faults injected"
    )
    if verdict is None:
        return f"No verdict: {n_ops:,} operations recorded {under}, no results.json", ""
    failed_safety = [c for c in checkers if c.valid is False and c.kind != "liveness"]
    failed_live = [c for c in checkers if c.valid is False and c.kind == "liveness"]
    unknown = [c for c in checkers if c.valid == "unknown"]
    live = "; ".join(_impact_phrase(c) for c in failed_live)
    if failed_safety:
        title = "; ".join(_impact_phrase(c) for c in failed_safety)
        return title, (f"Liveness: {live}" if live else "")
    if live:
        return live, f"No safety anomalies in {n_ops:,} operations {under}"
    if verdict is False:
        return f"Invalid run: {n_ops:,} operations {under}", ""
    if unknown or verdict == "unknown":
        who = ", ".join(c.name for c in unknown) or "the checkers"
        return f"Undecided: {who} could not decide on {n_ops:,} operations {under}", ""
    return f"No anomalies in {n_ops:,} operations {under}", ""


def headline(
    verdict: Verdict | None,
    checkers: Sequence[CheckerView],
    n_ops: int,
    faults: Sequence[Any],
) -> str:
    """:func:`headline_parts` as one line ("title; second line")."""
    title, sub = headline_parts(verdict, checkers, n_ops, faults)
    return f"{title}; {sub}" if sub else title


def raw_files(run: Path) -> list[str]:
    """Relative paths of the raw files worth linking: history, campaign, results, logs."""
    out = [n for n in ("history.jsonl", "campaign.json", "results.json") if (run / n).is_file()]
    logs = run / "logs"
    if logs.is_dir():
        out.extend(f"logs/{p.name}" for p in sorted(logs.iterdir()) if p.is_file())
    return out


def json_text(value: Any) -> str:
    """Compact JSON for showing a value in a table (unescaped: the renderer escapes)."""
    if value is None:
        return ""
    try:
        return json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
    except (TypeError, ValueError):
        return repr(value)
