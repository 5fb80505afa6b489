"""Renders ``report.html``: one self-contained page (inline CSS, SVG and script; no network).

Everything that comes from the history or the results is untrusted text: the Jinja environment
autoescapes, the timeline's JSON is embedded with ``<``, ``>`` and ``&`` escaped so it cannot
close its ``<script>`` element, and the page's script only ever writes with ``textContent``.
A Content-Security-Policy meta tag forbids every fetch, so a stray external reference fails
loudly in a browser instead of silently phoning home.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from workbench.report.model import AnomalyView, RunView, Verdict, json_text, verdict_word
from workbench.report.plots import all_plots, fault_colors
from workbench.report.timeline import timeline_data

TEMPLATES = Path(__file__).parent / "templates"


def script_json(data: Any) -> Markup:
    """JSON safe to place inside a ``<script>`` element: no ``</script>``, no ``<!--``."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str, allow_nan=False)
    text = (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
    return Markup(text)


def verdict_class(valid: Verdict | None) -> str:
    if valid is None:
        return "none"
    return "true" if valid is True else "false" if valid is False else "unknown"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=True)


def _is_nested(value: Any) -> bool:
    """True for values that read better pretty-printed than inline."""
    if isinstance(value, dict):
        return True
    if isinstance(value, list | tuple):
        return any(isinstance(v, dict | list | tuple) for v in value) or len(json_text(value)) > 100
    return isinstance(value, str) and len(value) > 100


def _time_span(a: AnomalyView) -> tuple[float, float] | None:
    """(first start, last end) of the anomaly's operations, for "show on timeline"."""
    if not a.ops:
        return None
    ends = [r.end_s if r.end_s is not None else r.start_s for r in a.ops]
    return min(r.start_s for r in a.ops), max(ends)


#: Values longer than this (as compact JSON) collapse behind an expander.
LARGE_VALUE_CHARS = 300


def _is_large(value: Any) -> bool:
    return len(json_text(value)) > LARGE_VALUE_CHARS


def _preview(value: Any) -> str:
    """The first characters of a large value, for its expander's label."""
    return json_text(value)[:120] + "…"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("fault-workbench")
    except Exception:  # not installed (running from a checkout): the version is cosmetic
        return "(dev)"


@cache
def environment() -> jinja2.Environment:
    """The report's Jinja environment (templates from ``workbench/report/templates``)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template here is HTML, including *.j2
        undefined=jinja2.ChainableUndefined,  # a campaign.json missing a key shows blank
        trim_blocks=False,
        keep_trailing_newline=True,
    )
    env.filters["j"] = json_text
    env.filters["jpretty"] = _pretty
    env.tests["is_nested"] = _is_nested
    env.tests["large"] = _is_large
    env.filters["preview"] = _preview
    env.globals.update(vclass=verdict_class, vword=verdict_word, time_span=_time_span)
    return env


def render_html(view: RunView) -> str:
    """The complete report page for a loaded run, as a string."""
    colors = fault_colors(view)
    return (
        environment()
        .get_template("report.html.j2")
        .render(
            view=view,
            plots=all_plots(view, colors),
            fault_legend=colors,
            timeline_json=script_json(timeline_data(view, colors)),
            generator_version=_version(),
            generated_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    )


def write_html(view: RunView, path: Path | None = None) -> Path:
    """Writes ``report.html`` (default: in the run directory) and returns its path."""
    out = path or view.run_dir / "report.html"
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(render_html(view), encoding="utf-8")
    tmp.replace(out)  # atomic: `workbench serve` never shows half a page
    return out
