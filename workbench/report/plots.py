"""Performance plots (latency, throughput, availability) and the checkers' measurements over
time (each :class:`~workbench.checker.Series` a checker hands over) as small inline SVG strings.

Jepsen's convention: every plot shares the run's time range, fault windows are shaded and
labelled, instantaneous faults are vertical lines. Matplotlib is used through
:class:`matplotlib.figure.Figure` directly (no pyplot), so no global backend or state is touched
and rendering is safe from any thread. Dense layers (the latency and series scatters) are
rasterized so the SVG stays small with 100,000 points.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter
from matplotlib.transforms import blended_transform_factory

from workbench.checker import Series
from workbench.report.model import RunView

TYPE_COLORS = {"ok": "#2f6fbf", "fail": "#d6336c", "info": "#e8890c"}
# Fault colours that stay distinct from the op-type colours above.
FAULT_PALETTE = ("#8e6cc9", "#2a9d8f", "#b08900", "#6c757d", "#c2185b", "#4e8a3e", "#795548")
BUCKET_S = 1.0
# Fixed plot geometry (inches), shared with the timeline so its time axis lines up too.
FIG_W, LEFT_IN, RIGHT_IN = 11.0, 0.75, 1.55
#: Left and right margins as fractions of the page width: (axes start, space after axes end).
PLOT_MARGINS = (LEFT_IN / FIG_W, RIGHT_IN / FIG_W)

# Fault names come from the history: their Text artists get parse_math=False, since a "$"
# would otherwise start mathtext (tick labels keep it: log axes use it for powers of ten).
_RC: dict[Any, Any] = {
    "svg.fonttype": "none",  # text stays <text>: smaller, selectable, no glyph paths
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


@dataclass(frozen=True)
class Plot:
    """One rendered plot: ``key`` (stable id), ``title``, ``svg`` markup (no XML prolog), and a
    ``caption`` explaining what is drawn."""

    key: str
    title: str
    svg: str
    caption: str


def fault_colors(view: RunView) -> dict[str, str]:
    """A colour per fault name, shared by the plots and the timeline."""
    names: list[str] = []
    for w in view.faults:
        if w.fault not in names:
            names.append(w.fault)
    for m in view.marks:
        if m.fault not in names:
            names.append(m.fault)
    return {n: FAULT_PALETTE[i % len(FAULT_PALETTE)] for i, n in enumerate(names)}


def _xmax(view: RunView) -> float:
    return max(view.duration_s, 1e-3)


def _shade_faults(ax: Axes, view: RunView, colors: dict[str, str]) -> list[Artist]:
    """Shades windows, draws marks, labels wide windows; returns legend handles per fault."""
    xmax = _xmax(view)
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    for w in view.faults:
        c = colors[w.fault]
        ax.axvspan(w.start_s, w.end_s, color=c, alpha=0.16, lw=0, zorder=0)
        # Label only bands wide enough to hold the text; the legend names the rest.
        if (w.end_s - w.start_s) / xmax > 0.06:
            ax.text(
                w.start_s + xmax * 0.004,
                0.99,
                w.fault,
                transform=trans,
                ha="left",
                va="top",
                fontsize=7,
                color=c,
                clip_on=True,
                parse_math=False,
            )
    for m in view.marks:
        ax.axvline(m.at_s, color=colors[m.fault], lw=1, ls="--", alpha=0.9, zorder=1)
    windowed = {w.fault for w in view.faults}
    handles: list[Artist] = []
    for name, c in colors.items():
        label = name if len(name) <= 22 else name[:21] + "…"
        label = " " + label if label[:1] == "_" else label  # "_x" would be hidden from legends
        if name in windowed:
            handles.append(Patch(facecolor=c, alpha=0.35, label=label))
        else:  # only ever instantaneous: show it as the dashed line it is drawn with
            handles.append(Line2D([], [], color=c, lw=1, ls="--", label=label))
    return handles


ANOMALY_COLOR = "#c92a2a"


def _mark_anomalies(ax: Axes, view: RunView, key: str) -> list[Artist]:
    """A red triangle along the top edge at each anomaly's time (when it was complete);
    returns the legend handle, or nothing when no anomaly has a time. The markers sit in the
    SVG group ``anomaly-marks-<key>``."""
    times = [t for t, _, _ in view.anomaly_marks]
    if not times:
        return []
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    ax.plot(
        times,
        [1.0] * len(times),
        transform=trans,
        ls="none",
        marker="v",
        ms=6,
        color=ANOMALY_COLOR,
        clip_on=False,
        zorder=4,
        gid=f"anomaly-marks-{key}",  # one id per plot: the page holds all three
    )
    n = len(times)
    return [Line2D([], [], ls="none", marker="v", color=ANOMALY_COLOR, label=f"anomaly ({n:,})")]


def _svg(fig: Figure, salt: str) -> str:
    """Serialises a figure as inline SVG. A distinct hash salt per plot keeps matplotlib's
    generated ids (clip paths, markers) unique when several SVGs share one HTML page."""
    buf = io.StringIO()
    with mpl.rc_context({"svg.hashsalt": salt}):
        # No bbox_inches="tight": fixed margins give every plot the same x pixels, so the
        # plots line up vertically and one time reads at the same place in each.
        fig.savefig(buf, format="svg", dpi=100, metadata={"Date": None})
    text = buf.getvalue()
    start = text.find("<svg")
    text = text[start:] if start >= 0 else text
    # Drop fixed pt sizes so CSS can scale the plot to the page; the viewBox keeps proportions.
    text = re.sub(r'^<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", text, count=1)
    return text.strip()


def _axes(fig: Figure, view: RunView) -> Axes:
    width, height = fig.get_size_inches()
    fig.subplots_adjust(
        left=LEFT_IN / width, right=1 - RIGHT_IN / width, bottom=0.5 / height, top=1 - 0.12 / height
    )
    ax = fig.add_subplot(1, 1, 1)
    ax.set_xlim(0, _xmax(view))
    ax.set_xlabel("time since campaign start (s)")
    ax.grid(True, which="major", axis="y", color="#e5e5e5", lw=0.6)
    return ax


def _legend(ax: Axes, handles: Sequence[Artist]) -> None:
    legend = ax.legend(
        handles=list(handles),
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
        fontsize=7,
    )
    for text in legend.get_texts():
        text.set_parse_math(False)


def _ms_label(value: float, _pos: int | None = None) -> str:
    """Tick label for a latency in milliseconds: "0.1 ms", "10 ms", "1 s", "10 s"."""
    if value >= 1000:
        return f"{value / 1000:g} s"
    return f"{value:g} ms"


def latency_plot(view: RunView, colors: dict[str, str]) -> Plot:
    """Latency of every completed operation at its invocation time, coloured by outcome."""
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(FIG_W, 3.0))
        ax = _axes(fig, view)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(_ms_label))
        ax.set_ylabel("latency (log scale)")
        handles: list[Artist] = []
        missing = 0
        for t in ("ok", "fail", "info"):
            rows = [r for r in view.rows if r.type == t and r.end_s is not None]
            if t == "info":
                missing = sum(1 for r in view.rows if r.end_s is None)
            if not rows:
                continue
            x = np.fromiter((r.start_s for r in rows), float, len(rows))
            y = np.fromiter(((r.end_s or 0) - r.start_s for r in rows), float, len(rows)) * 1000
            y = np.maximum(y, 1e-3)  # log scale cannot show 0
            ax.scatter(x, y, s=4, lw=0, color=TYPE_COLORS[t], alpha=0.6, rasterized=True, zorder=2)
            handles.append(Patch(color=TYPE_COLORS[t], label=f"{t} ({len(rows):,})"))
        handles += _shade_faults(ax, view, colors)
        handles += _mark_anomalies(ax, view, "latency")
        _legend(ax, handles)
        svg = _svg(fig, "latency")
    caption = "Each dot is one operation: x = invocation time, y = time to complete."
    if missing:
        caption += f" {missing:,} operation(s) never completed and are not drawn."
    return Plot("latency", "Latency", svg, caption)


def _buckets(view: RunView) -> int:
    return max(1, math.ceil(_xmax(view) / BUCKET_S))


def _completion_counts(view: RunView) -> dict[str, np.ndarray]:
    """Completions per 1 s bucket by outcome: {"ok": array[n], "fail": ..., "info": ...}."""
    n = _buckets(view)
    out = {}
    for t in ("ok", "fail", "info"):
        ends = np.fromiter(
            (r.end_s for r in view.rows if r.type == t and r.end_s is not None), float
        )
        idx = np.clip((ends / BUCKET_S).astype(int), 0, n - 1)
        out[t] = np.bincount(idx, minlength=n).astype(float)
    return out


def throughput_plot(view: RunView, colors: dict[str, str]) -> Plot:
    """Operations completed per second, one line per outcome."""
    counts = _completion_counts(view)
    n = _buckets(view)
    x = np.arange(n + 1) * BUCKET_S
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(FIG_W, 2.6))
        ax = _axes(fig, view)
        ax.set_ylabel("ops/s (1 s buckets)")
        handles: list[Artist] = []
        for t in ("ok", "fail", "info"):
            y = counts[t] / BUCKET_S
            # stairs draws one segment per bucket: a few hundred path points, whatever the rate.
            ax.stairs(y, x, color=TYPE_COLORS[t], lw=1.2, zorder=2)
            handles.append(Patch(color=TYPE_COLORS[t], label=t))
        ax.set_ylim(bottom=0)
        handles += _shade_faults(ax, view, colors)
        handles += _mark_anomalies(ax, view, "throughput")
        _legend(ax, handles)
        svg = _svg(fig, "throughput")
    return Plot("throughput", "Throughput", svg, "Operations completed per second, by outcome.")


def availability_series(view: RunView) -> np.ndarray:
    """Share of completions that were ``ok`` per 1 s bucket, in [0, 1].

    A bucket where nothing completed while operations were in flight counts as 0 (clients were
    waiting: unavailable); a bucket with nothing in flight at all is NaN (a gap, not an outage).
    """
    n = _buckets(view)
    counts = _completion_counts(view)
    done = counts["ok"] + counts["fail"] + counts["info"]
    # In-flight buckets via a difference array: +1 at the start bucket, -1 after the end one.
    diff = np.zeros(n + 1)
    for r in view.rows:
        b0 = min(n - 1, int(r.start_s / BUCKET_S))
        b1 = n - 1 if r.end_s is None else min(n - 1, int(r.end_s / BUCKET_S))
        diff[b0] += 1
        diff[b1 + 1] -= 1
    busy = np.cumsum(diff)[:n] > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(done > 0, counts["ok"] / np.maximum(done, 1), np.where(busy, 0.0, np.nan))
    return share


def availability_plot(view: RunView, colors: dict[str, str]) -> Plot:
    share = availability_series(view)
    n = _buckets(view)
    x = np.arange(n + 1) * BUCKET_S
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(FIG_W, 2.4))
        ax = _axes(fig, view)
        ax.set_ylabel("ok share (%)")
        ax.stairs(share * 100, x, color=TYPE_COLORS["ok"], lw=1.2, fill=False, zorder=2)
        ax.set_ylim(-3, 103)
        handles: list[Artist] = [Patch(color=TYPE_COLORS["ok"], label="ok / completed")]
        handles += _shade_faults(ax, view, colors)
        handles += _mark_anomalies(ax, view, "availability")
        _legend(ax, handles)
        svg = _svg(fig, "availability")
    finite = share[np.isfinite(share)]
    overall = view.counts.get("ok", 0) / max(1, len(view.rows))
    caption = (
        f"Share of operations completing ok per second; {overall:.1%} of all operations were ok."
    )
    if finite.size:
        caption += f" Worst second: {float(finite.min()):.0%}."
    return Plot("availability", "Availability", svg, caption)


#: Colour of a checker's series points (apart from the op-type and fault colours).
SERIES_COLOR = "#364fc7"
#: A series whose largest positive value is this many times its smallest is drawn on a log
#: scale, so a few multi-second outliers do not flatten millisecond lags to the axis.
LOG_SPREAD = 100.0


def _s_label(value: float, _pos: int | None = None) -> str:
    """Tick label for a duration in seconds, read as the latency plot reads: "5 ms", "2 s"."""
    return "0" if value == 0 else _ms_label(value * 1000)


def _unit_formatter(unit: str) -> FuncFormatter:
    if unit == "s":
        return FuncFormatter(_s_label)
    if unit == "ms":
        return FuncFormatter(_ms_label)
    return FuncFormatter(lambda v, _pos: f"{v:g} {unit}" if unit else f"{v:g}")


def series_plot(
    view: RunView, colors: dict[str, str], checker: str, series: Series, key: str
) -> Plot:
    """One checker's measurement over campaign time: a dot per point (x = ``t``, y in
    ``series.unit``) on the run's time axis, fault windows shaded and anomalies marked like the
    perf plots. A log y scale when every value is positive and they span :data:`LOG_SPREAD`
    times or more. A series with no points is drawn empty with a "no points" note; points that
    are not finite or lie outside the run's time range are counted in the caption."""
    pts = np.asarray(series.points, dtype=float).reshape(-1, 2)
    finite = pts[np.isfinite(pts).all(axis=1)]
    x, y = finite[:, 0], finite[:, 1]
    inside = (x >= 0) & (x <= _xmax(view))
    x, y = x[inside], y[inside]
    unit = series.unit
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(FIG_W, 3.0))
        ax = _axes(fig, view)
        log = y.size > 0 and bool((y > 0).all()) and float(y.max()) >= LOG_SPREAD * float(y.min())
        if log:
            ax.set_yscale("log")
        ax.yaxis.set_major_formatter(_unit_formatter(unit))
        label = ax.set_ylabel(f"{unit or 'value'}{' (log scale)' if log else ''}")
        label.set_parse_math(False)
        handles: list[Artist] = []
        if y.size:
            ax.scatter(x, y, s=4, lw=0, color=SERIES_COLOR, alpha=0.6, rasterized=True, zorder=2)
            handles.append(Patch(color=SERIES_COLOR, label=f"{y.size:,} points"))
        else:
            ax.text(
                0.5,
                0.5,
                "no points",
                transform=ax.transAxes,
                ha="center",
                va="center",
                color="#868e96",
                fontsize=9,
            )
        handles += _shade_faults(ax, view, colors)
        handles += _mark_anomalies(ax, view, key)
        _legend(ax, handles)
        svg = _svg(fig, key)
    words = [series.caption.strip()] if series.caption.strip() else []
    words.append(f"Measured by the {checker} checker.")
    if not len(pts):
        words.append("It recorded no points.")
    left_out = len(pts) - int(y.size)
    if left_out:
        words.append(
            f"{left_out:,} point(s) are not finite or lie outside the run's time range "
            "and are not drawn."
        )
    return Plot(key, series.title or series.key, svg, " ".join(words))


def _plot_key(checker: str, series_key: str, taken: set[str]) -> str:
    """``checker-key`` made safe for an HTML id and SVG group id, unique among ``taken``."""
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{checker}-{series_key}").strip("-") or "series"
    key, n = base, 2
    while key in taken:
        key, n = f"{base}-{n}", n + 1
    taken.add(key)
    return key


def series_plots(view: RunView, colors: dict[str, str]) -> list[Plot]:
    """A plot per series of every checker, in checker order then the checker's own order."""
    taken = {"latency", "throughput", "availability"}
    return [
        series_plot(view, colors, c.name, s, _plot_key(c.name, s.key, taken))
        for c in view.checkers
        for s in c.series
    ]


def all_plots(view: RunView, colors: dict[str, str] | None = None) -> list[Plot]:
    """Every plot in page order: latency, throughput, availability, then the checkers' series."""
    colors = colors if colors is not None else fault_colors(view)
    return [
        latency_plot(view, colors),
        throughput_plot(view, colors),
        availability_plot(view, colors),
        *series_plots(view, colors),
    ]
