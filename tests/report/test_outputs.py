"""report.html, junit.xml, summary.md and store/index.html rendered from synthetic runs."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import junitparser
import markupsafe

from tests.report.conftest import HOSTILE
from workbench.report import write_reports, write_store_index
from workbench.report.synth import synthesize_run


def _timeline_data(page: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="timeline-data">(.*?)</script>', page, re.S)
    assert m, "timeline data missing"
    data: dict[str, Any] = json.loads(m.group(1))
    return data


def test_report_states_impact_and_shows_the_anomalous_operations(bad_run: Path) -> None:
    paths = write_reports(bad_run)
    assert set(paths) == {"html", "junit", "markdown"}
    page = paths["html"].read_text(encoding="utf-8")
    h1 = re.search(r"<h1>(.*?)</h1>", page, re.S)
    assert h1 and "3 accounts double-charged, 4 duplicate charges, $1,240.00" in h1.group(1)
    # Safety before liveness, in separate sections.
    safety = page.index('<section id="safety">')
    liveness = page.index('<section id="liveness">')
    assert safety < page.index("no-duplicate-charges") < liveness
    campaign = page.index('<section id="campaign">')
    assert "availability fell to 67%" in page[liveness:campaign]
    assert "availability fell to 67%" not in page[safety:liveness]
    # The anomaly's operations appear with their values (escaped as HTML text).
    results = json.loads((bad_run / "results.json").read_text())
    history = [json.loads(line) for line in (bad_run / "history.jsonl").read_text().splitlines()]
    first = results["checkers"][0]["anomalies"][0]
    for i in first["events"]:
        value = history[i]["value"]
        if history[i]["type"] == "invoke":
            shown = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
            assert str(markupsafe.escape(shown)) in page
    assert first["explanation"].split(" Memo")[0] in page
    # The checker's witnesses, under the roles it gave them.
    assert "first charge</h4>" in page and "duplicate charge</h4>" in page
    assert "culprit: cannot be linearized</h4>" in page
    assert "concurrent with the culprit</h4>" in page
    assert "end of the linearizable prefix (38 earlier operations not shown)</h4>" in page
    assert "state after the prefix</h4>" in page and "balance 1200" in page
    # Plots: latency, throughput, availability as inline SVG, fault labels drawn in them.
    assert page.count("<svg") == 3
    for key in ("latency", "throughput", "availability"):
        assert f'id="plot-{key}"' in page
    latency_svg = page[page.index('id="plot-latency"') : page.index('id="plot-throughput"')]
    assert "partition" in latency_svg and "clock-skew" in latency_svg
    # Each timed anomaly (4 duplicate charges, 1 linearizability) is marked on every plot.
    for key in ("latency", "throughput", "availability"):
        marks = re.search(rf'<g id="anomaly-marks-{key}">(.*?)</g>', page, re.S)
        assert marks and marks.group(1).count("<use") == 5, key
    assert "anomaly (5)" in latency_svg
    # Fault bands on the timeline, and every operation in its data.
    data = _timeline_data(page)
    faults = data["faults"]
    assert isinstance(faults, list)
    assert [f[0] for f in faults] == ["partition", "clock-skew", "packet-loss"]
    assert faults[-1][3] is True  # packet-loss never stopped
    assert [m[1] for m in data["marks"]] == ["kill", "heal"]
    n_ops = sum(results["ops"].values())
    assert len(data["t"]) == n_ops
    assert data["hl"], "operations named by anomalies are highlighted"
    # Campaign card and raw links.
    assert "workbench run payments --variant naive-retry" in page
    for raw in ("history.jsonl", "campaign.json", "results.json", "logs/runner.log"):
        assert f'href="{raw}"' in page


def test_hostile_history_text_is_escaped_everywhere(bad_run: Path) -> None:
    paths = write_reports(bad_run)
    page = paths["html"].read_text(encoding="utf-8")
    assert HOSTILE not in page
    assert html.escape(HOSTILE) in page or "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # Only our own two scripts, and the embedded JSON cannot close its element.
    assert page.count("<script") == 3  # error marker, timeline data, timeline code
    assert "alert(1)" not in _script_bodies(page)
    junit = paths["junit"].read_text(encoding="utf-8")
    assert HOSTILE not in junit
    summary = paths["markdown"].read_text(encoding="utf-8")
    assert "<script>" not in summary


def _script_bodies(page: str) -> str:
    bodies = re.findall(r"<script[^>]*>(.*?)</script>", page, re.S)
    return "".join(b for b in bodies if "alert" in b and "\\u003cscript" not in b)


def test_report_is_self_contained(bad_run: Path) -> None:
    page = write_reports(bad_run)["html"].read_text(encoding="utf-8")
    assert not re.search(r"<(link|img|iframe)\b", page)
    assert not re.search(r"""\bsrc\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(http" not in page
    assert "Content-Security-Policy" in page


def test_clean_run_says_no_anomalies(good_run: Path) -> None:
    page = write_reports(good_run)["html"].read_text(encoding="utf-8")
    h1 = re.search(r"<h1>(.*?)</h1>", page, re.S)
    assert h1
    assert re.match(r"No anomalies in [\d,]+ operations under 4 faults \(partition", h1.group(1))
    assert page.count("<svg") == 3
    assert "v-true" in page


def test_junit_has_a_testcase_per_checker(bad_run: Path, good_run: Path) -> None:
    results = json.loads((bad_run / "results.json").read_text())
    results["checkers"].append(
        {"checker": "lin-budget", "valid": "unknown", "kind": "safety", "summary": "timed out"}
    )
    (bad_run / "results.json").write_text(json.dumps(results))
    xml = junitparser.JUnitXml.fromfile(str(write_reports(bad_run)["junit"]))
    suites = list(xml)
    assert len(suites) == 1
    suite = suites[0]
    cases = {c.name: c for c in suite}
    assert set(cases) == {
        "no-duplicate-charges",
        "balance-linearizable",
        "availability",
        "lin-budget",
    }
    assert all(c.classname == "payments.naive-retry" for c in cases.values())
    dup = cases["no-duplicate-charges"].result
    assert len(dup) == 1 and isinstance(dup[0], junitparser.Failure)
    assert "3 accounts double-charged" in (dup[0].message or "")
    assert "applied twice" in (dup[0].text or "")
    unknown = cases["lin-budget"].result
    assert len(unknown) == 1 and isinstance(unknown[0], junitparser.Error)
    assert suite.failures == 3 and suite.errors == 1 and suite.tests == 4

    good = junitparser.JUnitXml.fromfile(str(write_reports(good_run)["junit"]))
    (good_suite,) = list(good)
    assert good_suite.failures == 0 and good_suite.errors == 0
    assert all(case.is_passed for case in good_suite)


def test_summary_markdown_has_verdict_table_and_reproduce_command(bad_run: Path) -> None:
    md = write_reports(bad_run)["markdown"].read_text(encoding="utf-8")
    first = md.splitlines()[0]
    assert first.startswith("### ❌ INVALID: 3 accounts double-charged")
    assert "| Checker | Kind | Verdict | Summary | Anomalies |" in md
    assert re.search(r"^\|---\|", md, re.M)
    assert "| no-duplicate-charges | safety | ❌ INVALID |" in md
    assert "| availability | liveness |" in md
    assert "```sh\nworkbench run payments" in md
    assert "\\$1,240.00" in md  # "$" escaped: GitHub would render $...$ as math


def test_store_index_lists_runs_newest_first_with_relative_links(
    bad_run: Path, good_run: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    write_reports(bad_run)
    # A second target, newer, without a report yet; and a hostile target name.
    other = synthesize_run(store / "evil<b>" / "20250103T000000", n_ops=50, duration_s=2)
    campaign = json.loads((other / "campaign.json").read_text())
    campaign.update(target="evil<b>", started="2025-01-03T00:00:00Z")
    (other / "campaign.json").write_text(json.dumps(campaign))
    (store / "latest").symlink_to(other.relative_to(store))
    index = write_store_index(store)
    page = index.read_text(encoding="utf-8")
    assert "<b>" not in page.replace("<b>Operations</b>", "")
    rows = re.findall(r'<tr class="v-[a-z]+">(.*?)</tr>', page, re.S)
    assert len(rows) == 3  # latest symlink not listed twice
    started = [re.search(r'<td class="mono">(.*?)</td>', r).group(1) for r in rows]  # type: ignore[union-attr]
    assert started == sorted(started, reverse=True)
    assert 'href="payments/20250101T120000/report.html"' in page
    assert 'href="payments/20250102T090000/"' in page  # no report yet: link the files
    assert "3 accounts double-charged" in page
