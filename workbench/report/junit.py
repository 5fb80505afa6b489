"""Writes ``junit.xml``: one testsuite per run, one testcase per checker.

CI systems (GitHub, GitLab, Jenkins) show JUnit results natively, so a fault campaign's verdict
lands next to the unit tests. Mapping:

* ``valid: true``  → a passing testcase.
* ``valid: false`` → ``<failure>`` whose message is the checker's summary and whose text lists
  each anomaly's explanation.
* ``valid: "unknown"`` → ``<error type="unknown">``. Not ``<skipped>``: a skipped test reads as
  "nothing to see" on every dashboard, but an undecided checker means the run's safety was not
  established — the same reason the runner exits non-zero for it. An error is counted apart from
  failures, so "the system misbehaved" and "we could not tell" stay distinguishable.
* no ``results.json`` (a crashed run) → a single testcase ``campaign`` with an ``<error>``.

The classname is ``target.variant``; the suite carries the campaign as properties and the
reproduce command in ``system-out``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from workbench.report.model import MAX_DETAILED_ANOMALIES, CheckerView, RunView

# XML 1.0 cannot carry most control characters, even escaped; a hostile history may hold them.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: Any) -> str:
    return _INVALID_XML.sub("\ufffd", str(text))


def _failure_text(c: CheckerView) -> str:
    lines = [c.summary] if c.summary else []
    lines += [f"{label}: {fig}" for label, fig in c.impact_items]
    for n, a in enumerate(c.anomalies, start=1):
        ops = ", ".join(f"#{r.index} p{r.process} {r.f} {r.type}" for r in a.ops)
        lines.append(f"[{n}] {a.kind}: {a.explanation}" + (f" (ops: {ops})" if ops else ""))
    if c.anomaly_count > len(c.anomalies):
        lines.append(
            f"... {c.anomaly_count - len(c.anomalies)} more anomalies in results.json "
            f"(first {MAX_DETAILED_ANOMALIES} shown)"
        )
    return "\n".join(lines)


def junit_tree(view: RunView) -> ET.ElementTree[ET.Element]:
    """The JUnit document: ``<testsuites><testsuite>`` with one ``<testcase>`` per checker."""
    classname = _clean(view.classname)
    root = ET.Element("testsuites")
    suite = ET.SubElement(root, "testsuite", name=f"workbench.{classname}")
    props = ET.SubElement(suite, "properties")
    for key in ("target", "variant", "seed", "workers", "rate", "time_limit", "status"):
        if view.campaign.get(key) is not None:
            ET.SubElement(props, "property", name=key, value=_clean(view.campaign[key]))
    ET.SubElement(
        props, "property", name="faults", value=_clean(",".join(view.campaign.get("faults") or []))
    )
    failures = errors = 0
    cases: list[ET.Element] = []
    for c in view.checkers:
        case = ET.Element("testcase", classname=classname, name=_clean(c.name), time="0")
        case.set("kind", c.kind)  # extra attribute: readers ignore it, humans may grep it
        if c.valid is False:
            failures += 1
            el = ET.SubElement(case, "failure", message=_clean(c.summary or "anomalies found"))
            el.set("type", c.kind)
            el.text = _clean(_failure_text(c))
        elif c.valid is not True:  # "unknown"
            errors += 1
            el = ET.SubElement(
                case, "error", message=_clean(c.summary or "checker could not decide")
            )
            el.set("type", "unknown")
            el.text = _clean(_failure_text(c))
        cases.append(case)
    if view.results is None:
        errors += 1
        case = ET.Element("testcase", classname=classname, name="campaign", time="0")
        status = view.campaign.get("status", "unknown")
        el = ET.SubElement(case, "error", message=f"no results.json (campaign status: {status})")
        el.set("type", "no-results")
        el.text = _clean("\n".join(view.notes))
        cases.append(case)
    suite.extend(cases)
    duration = view.duration_s
    if view.results is not None and isinstance(view.results.get("duration_s"), int | float):
        duration = float(view.results["duration_s"])
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", "0")
    suite.set("time", f"{duration:.3f}")
    if view.campaign.get("started"):
        suite.set("timestamp", _clean(view.campaign["started"]))
    out = ET.SubElement(suite, "system-out")
    out.text = _clean(f"reproduce: {view.campaign.get('command') or '(no command recorded)'}")
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(view: RunView, path: Path | None = None) -> Path:
    """Writes ``junit.xml`` (default: in the run directory) and returns its path."""
    out = path or view.run_dir / "junit.xml"
    junit_tree(view).write(out, encoding="utf-8", xml_declaration=True)
    return out
