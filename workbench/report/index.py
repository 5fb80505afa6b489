"""Writes ``store/index.html``: every run in a store, newest first, linking to its report.

The store layout is ``store/<target>/<YYYYMMDDTHHMMSS>/`` (plus a ``latest`` symlink, skipped
here so the newest run is not listed twice). Only ``campaign.json`` and ``results.json`` are
read per run, so indexing stays fast with many large histories. Links are relative, so the
page works from an unpacked CI artifact as well as from ``workbench serve``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from workbench.report.html import environment, verdict_class
from workbench.report.model import (
    RunDirError,
    Verdict,
    checker_view,
    headline,
    load_json_object,
    verdict_word,
)


@dataclass(frozen=True)
class IndexRow:
    """One run in the index. ``link`` is relative to the store (report.html when it exists,
    else the run directory); ``vclass`` is the CSS verdict class (true/false/unknown/none)."""

    run: str
    started: str
    verdict: str
    vclass: str
    target: str
    variant: str
    faults: str
    seed: str
    ops: int | None
    duration_s: float | None
    status: str
    headline: str
    link: str
    has_report: bool


def _row(store: Path, run: Path) -> IndexRow:
    rel = run.relative_to(store).as_posix()
    has_report = (run / "report.html").is_file()
    link = f"{rel}/report.html" if has_report else f"{rel}/"
    try:
        campaign = load_json_object(run / "campaign.json", required=True) or {}
        results = load_json_object(run / "results.json", required=False)
    except RunDirError as e:
        return IndexRow(
            rel, run.name, "UNREADABLE", "none", run.parent.name, "", "", "", None, None,
            "?", str(e), link, has_report,
        )  # fmt: skip
    verdict: Verdict | None = None
    ops: int | None = None
    duration: float | None = None
    checkers = []
    if results is not None:
        v = results.get("valid", "unknown")
        verdict = v if v in (True, False) else "unknown"
        counts = results.get("ops")
        if isinstance(counts, dict):
            ops = sum(int(n) for n in counts.values() if isinstance(n, int))
        if isinstance(results.get("duration_s"), int | float):
            duration = float(results["duration_s"])
        checkers = [
            checker_view(c, [], {}, {}) for c in results.get("checkers", []) if isinstance(c, dict)
        ]
    faults = campaign.get("faults") or []
    return IndexRow(
        run=rel,
        started=str(campaign.get("started") or run.name),
        verdict="NO RESULTS" if verdict is None else verdict_word(verdict),
        vclass=verdict_class(verdict),
        target=str(campaign.get("target", run.parent.name)),
        variant=str(campaign.get("variant", "")),
        faults=", ".join(str(f) for f in faults) or "none",
        seed=str(campaign.get("seed", "")),
        ops=ops,
        duration_s=duration,
        status=str(campaign.get("status", "")),
        headline=headline(verdict, checkers, ops or 0, faults),
        link=link,
        has_report=has_report,
    )


def store_runs(store_dir: str | Path) -> list[IndexRow]:
    """All runs under ``store/<target>/<ts>/`` holding a campaign.json, newest first."""
    store = Path(store_dir)
    rows: list[IndexRow] = []
    if not store.is_dir():
        return rows
    for target in sorted(store.iterdir()):
        if target.is_symlink() or not target.is_dir():
            continue
        for run in target.iterdir():
            if run.is_symlink() or not run.is_dir() or not (run / "campaign.json").is_file():
                continue
            rows.append(_row(store, run))
    # Timestamps are ISO-8601 UTC (or the YYYYMMDDTHHMMSS directory name): both sort as text.
    rows.sort(key=lambda r: (r.started, r.run), reverse=True)
    return rows


def render_index(store_dir: str | Path) -> str:
    """The index page as a string."""
    rows = store_runs(store_dir)
    return (
        environment()
        .get_template("index.html.j2")
        .render(
            rows=rows,
            generated_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    )


def write_store_index(store_dir: str | Path) -> Path:
    """Writes ``<store>/index.html`` and returns its path (creating the store if needed)."""
    store = Path(store_dir)
    store.mkdir(parents=True, exist_ok=True)
    out = store / "index.html"
    tmp = out.with_name("index.html.tmp")
    tmp.write_text(render_index(store), encoding="utf-8")
    tmp.replace(out)
    return out
