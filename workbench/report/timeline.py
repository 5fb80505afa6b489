"""Compact data for the report's operation timeline (drawn on a canvas by ``timeline.js``).

Jepsen's HTML timeline puts one element per operation and caps at 10,000 operations; this one
embeds every operation as a few small integers so 100,000 operations cost about 1.5 MB, and the
page draws them on a canvas with zoom and hover. Encoding (all lists parallel, one entry per
operation, in invocation order):

``p``  index into ``procs`` (process names); ``procLane[p]`` is the lane it is drawn in.
``s``  start, delta from the previous operation's start, in ``unit`` seconds.
``d``  duration in ``unit`` seconds, or -1 when the operation never completed.
``t``  one character per operation: ``o`` ok, ``f`` fail, ``i`` info.
``f``  index into ``fs`` (operation names).
``i``  history index of the invocation, delta from the previous operation's.

Lanes are worker slots when every process is an int and the campaign names its ``workers``:
a process retired after an ``info`` continues as ``process + workers`` in the same slot, and
the two never overlap in time, so a lane per slot loses nothing and keeps the lane count bounded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workbench.report.model import RunView
from workbench.report.plots import PLOT_MARGINS

UNIT_S = 1e-4  # 100 µs: start deltas stay 1–2 digits at 10k ops/s, durations 2–4 digits
_TYPE_CODE = {"ok": "o", "fail": "f", "info": "i"}


def _lanes(view: RunView, procs: list[str], raw: list[Any]) -> tuple[list[int], list[str]]:
    """(lane per process, lane labels)."""
    workers = view.campaign.get("workers")
    ints = all(isinstance(p, int) and not isinstance(p, bool) for p in raw)
    if ints and isinstance(workers, int) and workers > 0 and raw:
        used = sorted({p % workers for p in raw})
        slot = {w: n for n, w in enumerate(used)}
        return [slot[p % workers] for p in raw], [f"worker {w}" for w in used]
    return list(range(len(procs))), [f"process {p}" for p in procs]


def timeline_data(view: RunView, fault_colors: Mapping[str, str]) -> dict[str, Any]:
    """The timeline's JSON payload (see the module docstring for the column encoding), plus
    ``lanes`` (labels), ``faults`` ([name, start_s, end_s, open]), ``marks`` ([name, f, at_s]),
    ``colors`` (per fault), ``margins`` (left/right fractions matching the plots), ``hl``
    (ordinals of operations named by anomalies) and ``end`` (the run's duration in seconds)."""
    proc_index: dict[str, int] = {}
    procs: list[str] = []
    raw_procs: list[Any] = []
    fnames: dict[str, int] = {}
    p_col: list[int] = []
    s_col: list[int] = []
    d_col: list[int] = []
    f_col: list[int] = []
    i_col: list[int] = []
    types: list[str] = []
    prev_tick = 0
    prev_index = 0
    ordinal: dict[int, int] = {}
    for n, (op, row) in enumerate(zip(view.ops, view.rows, strict=True)):
        key = row.process
        if key not in proc_index:
            proc_index[key] = len(procs)
            procs.append(key)
            raw_procs.append(op.process)
        p_col.append(proc_index[key])
        tick = round(row.start_s / UNIT_S)
        s_col.append(tick - prev_tick)
        prev_tick = tick
        d_col.append(-1 if row.end_s is None else max(0, round(row.end_s / UNIT_S) - tick))
        f_col.append(fnames.setdefault(row.f, len(fnames)))
        i_col.append(row.index - prev_index)
        prev_index = row.index
        types.append(_TYPE_CODE.get(row.type, "i"))
        ordinal[row.index] = n
    lanes, labels = _lanes(view, procs, raw_procs)
    highlighted: set[int] = set()
    for c in view.checkers:
        for a in c.anomalies:
            for r in a.ops:
                if r.index in ordinal:
                    highlighted.add(ordinal[r.index])
    return {
        "unit": UNIT_S,
        "end": view.duration_s,
        "procs": procs,
        "procLane": lanes,
        "lanes": labels,
        "fs": list(fnames),
        "p": p_col,
        "s": s_col,
        "d": d_col,
        "f": f_col,
        "i": i_col,
        "t": "".join(types),
        "hl": sorted(highlighted),
        "faults": [[w.fault, w.start_s, w.end_s, w.open] for w in view.faults],
        "marks": [[m.fault, m.f, m.at_s] for m in view.marks],
        "colors": dict(fault_colors),
        "margins": list(PLOT_MARGINS),
    }
