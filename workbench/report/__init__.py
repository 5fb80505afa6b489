"""Anomaly reports: ``report.html``, ``junit.xml`` and ``summary.md`` per run, and a store index.

::

    from workbench.report import write_reports, write_store_index

    paths = write_reports("store/payments/20250101T120000")
    # {"html": .../report.html, "junit": .../junit.xml, "markdown": .../summary.md}
    write_store_index("store")  # -> store/index.html

Modules: ``model`` (load a run into a view-model), ``plots`` (matplotlib SVG), ``timeline``
(canvas data), ``html``, ``junit``, ``markdown``, ``index``, ``serve``, ``cli``.
"""

from __future__ import annotations

from pathlib import Path

from workbench.report.html import write_html
from workbench.report.index import write_store_index
from workbench.report.junit import write_junit
from workbench.report.markdown import write_markdown
from workbench.report.model import RunDirError, RunView, load_run

__all__ = ["RunDirError", "RunView", "load_run", "write_reports", "write_store_index"]


def write_reports(run_dir: str | Path) -> dict[str, Path]:
    """Renders every report for one run into its directory.

    Returns ``{"html": report.html, "junit": junit.xml, "markdown": summary.md}``. Raises
    :class:`RunDirError` when the directory is missing or malformed (no campaign.json or
    history.jsonl, invalid JSON). A missing results.json (crashed run) is not an error: the
    reports say there is no verdict.
    """
    view = load_run(run_dir)
    return {
        "html": write_html(view),
        "junit": write_junit(view),
        "markdown": write_markdown(view),
    }
