"""Measurements over time that checkers hand the report (``CheckResult.series``) are drawn."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from workbench.checker import CheckResult, Series
from workbench.report import write_reports
from workbench.report.model import load_run

#: A scatter of 100,000 points drawn as SVG vectors measured 10.8 MB; rasterized, 142 KB.
SERIES_SVG_BOUND = 1_000_000


def _add_checker(run: Path, checker: str, *series: Series) -> None:
    """Appends a checker's result, serialised by CheckResult itself, to the run's results.json."""
    results = json.loads((run / "results.json").read_text())
    result = CheckResult(
        checker=checker, valid=True, kind="liveness", summary="lag measured", series=series
    )
    results["checkers"].append(result.to_json())
    (run / "results.json").write_text(json.dumps(results))


def _lag(n: int, duration_s: float, seed: int = 3) -> tuple[tuple[float, float], ...]:
    rng = random.Random(seed)
    return tuple((duration_s * i / n, rng.lognormvariate(-4, 1.5)) for i in range(n))


def _figure(page: str, key: str) -> str:
    start = page.index(f'<figure id="plot-{key}">')
    return page[start : page.index("</figure>", start)]


def test_a_checkers_series_is_drawn_with_the_fault_windows(bad_run: Path) -> None:
    lag = Series("lag", "Delivery lag", "s", _lag(500, 20.0), "Commit to applied, per message.")
    _add_checker(bad_run, "delivery-lag", lag)
    (view_checker,) = [c for c in load_run(bad_run).checkers if c.name == "delivery-lag"]
    assert view_checker.series == (lag,)

    page = write_reports(bad_run)["html"].read_text(encoding="utf-8")
    assert page.count("<svg") == 4
    fig = _figure(page, "delivery-lag-lag")
    assert "<h3>Delivery lag</h3>" in fig and "<svg" in fig
    assert "Commit to applied, per message. Measured by the delivery-lag checker." in fig
    # The fault windows are shaded and labelled, the kill drawn, as on the perf plots.
    assert "partition" in fig and "clock-skew" in fig and "kill-primary" in fig
    assert "Shaded bands are fault windows" in fig
    assert "500 points" in fig
    # Lags from 0.1 ms to seconds: a log axis with ticks read as durations.
    assert "s (log scale)" in fig and "100 ms" in fig
    marks = re.search(r'<g id="anomaly-marks-delivery-lag-lag">(.*?)</g>', fig, re.S)
    assert marks and marks.group(1).count("<use") == 5
    # The series comes after the perf plots.
    assert page.index('id="plot-availability"') < page.index('id="plot-delivery-lag-lag"')


def test_a_run_without_series_has_no_series_plot(good_run: Path) -> None:
    page = write_reports(good_run)["html"].read_text(encoding="utf-8")
    assert page.count("<svg") == 3
    assert "Measured by the" not in page
    assert all(c.series == () for c in load_run(good_run).checkers)


def test_a_series_with_no_points_is_drawn_empty_with_a_note(good_run: Path) -> None:
    _add_checker(good_run, "delivery-lag", Series("lag", "Delivery lag", "s"))
    page = write_reports(good_run)["html"].read_text(encoding="utf-8")
    fig = _figure(page, "delivery-lag-lag")
    assert "<svg" in fig and "no points" in fig
    assert "It recorded no points." in fig
    assert not re.search(r"[\d,]+ points</text>", fig)  # no legend entry for dots


def test_series_keys_stay_unique_across_checkers_and_stray_points_are_counted(
    good_run: Path,
) -> None:
    # Narrow spread: a linear axis. Two points outside the run's 10 s are counted, not drawn.
    pts = ((1.0, 2.0), (2.0, 3.0), (-1.0, 2.5), (50.0, 2.5))
    _add_checker(good_run, "a", Series("lag", "A lag", "ms", pts))
    _add_checker(good_run, "b", Series("lag", "B lag", "messages"))
    _add_checker(good_run, "a lag", Series("x", "C", "s", ((1.0, 1.0),)))
    _add_checker(good_run, "a-lag", Series("x", "D", "s", ((1.0, 1.0),)))
    page = write_reports(good_run)["html"].read_text(encoding="utf-8")
    assert page.count("<svg") == 7
    fig = _figure(page, "a-lag")
    assert "<h3>A lag</h3>" in fig and "log scale" not in fig
    assert "2 point(s) are not finite or lie outside the run" in fig
    assert "2 points" in fig
    assert "<h3>B lag</h3>" in _figure(page, "b-lag")
    # "a lag" + "x" and "a-lag" + "x" both read "a-lag-x": the second is numbered.
    assert "<h3>C</h3>" in _figure(page, "a-lag-x")
    assert "<h3>D</h3>" in _figure(page, "a-lag-x-2")
    ids = re.findall(r'<figure id="([^"]+)"', page)
    assert len(ids) == len(set(ids))


def test_series_of_100000_points_keeps_the_report_small(good_run: Path) -> None:
    before = write_reports(good_run)["html"].stat().st_size
    _add_checker(good_run, "delivery-lag", Series("lag", "Delivery lag", "s", _lag(100_000, 10.0)))
    page = write_reports(good_run)["html"].read_text(encoding="utf-8")
    fig = _figure(page, "delivery-lag-lag")
    assert "100,000 points" in fig
    assert "<image" in fig  # the dots are one raster image, not 100,000 paths
    assert len(fig.encode()) < SERIES_SVG_BOUND
    assert len(page.encode()) - before < SERIES_SVG_BOUND


def test_summary_and_junit_are_unchanged_by_series(bad_run: Path) -> None:
    _add_checker(bad_run, "delivery-lag")
    paths = write_reports(bad_run)
    md, junit = (paths[k].read_text(encoding="utf-8") for k in ("markdown", "junit"))
    results = json.loads((bad_run / "results.json").read_text())
    results["checkers"][-1] = CheckResult(
        checker="delivery-lag",
        valid=True,
        kind="liveness",
        summary="lag measured",
        series=(Series("lag", "Delivery lag", "s", _lag(1000, 20.0)),),
    ).to_json()
    (bad_run / "results.json").write_text(json.dumps(results))
    paths = write_reports(bad_run)
    assert paths["markdown"].read_text(encoding="utf-8") == md
    assert paths["junit"].read_text(encoding="utf-8") == junit
    assert "delivery-lag" in md and "delivery-lag" in junit
