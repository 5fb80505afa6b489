"""Writes ``summary.md``: a short Markdown verdict for ``$GITHUB_STEP_SUMMARY``.

Shape: a verdict line (badge word + headline), a table of checkers (kind, verdict, summary,
anomaly count), a campaign line, and the command that reproduces the run. GitHub renders
inline HTML in job summaries, so every cell is HTML-escaped as well as pipe-escaped.
"""

from __future__ import annotations

import html
from pathlib import Path

from workbench.report.model import RunView

_ICON = {"VALID": "✅", "INVALID": "❌", "UNKNOWN": "❔", "NO RESULTS": "⚠️"}


def md_cell(text: object) -> str:
    """One table cell: HTML-escaped, pipes escaped, on one line."""
    s = html.escape(str(text), quote=False)
    # "$" escaped too: GitHub renders $...$ as math, and summaries hold dollar amounts.
    return s.replace("|", "\\|").replace("$", "\\$").replace("\r", " ").replace("\n", " ").strip()


def md_text(text: object) -> str:
    """Inline text outside tables: HTML-escaped and with Markdown's emphasis characters
    neutralised, so a hostile checker summary cannot inject links or formatting."""
    s = str(text).replace("\n", " ")
    for ch in "\\`*_[]#!|$":  # backslash first, so the escapes added later stay intact
        s = s.replace(ch, "\\" + ch)
    return html.escape(s, quote=False)


def md_code(text: object) -> str:
    """Text for inside a `code span`: Markdown and HTML are literal there; only a backtick
    or a newline could break out."""
    return str(text).replace("`", "'").replace("\r", " ").replace("\n", " ")


def render_markdown(view: RunView) -> str:
    """The summary as a Markdown string."""
    c = view.campaign
    word = view.verdict_word
    lines = [
        f"### {_ICON.get(word, '')} {word}: {md_text(view.headline)}",
        "",
        f"`{md_code(view.classname)}` · {len(view.rows):,} operations "
        f"(ok {view.counts.get('ok', 0):,}, fail {view.counts.get('fail', 0):,}, "
        f"info {view.counts.get('info', 0):,}) · {view.duration_s:.1f} s",
        "",
    ]
    if view.notes:
        lines += [f"> ⚠️ {md_text(n)}" for n in view.notes] + [""]
    if view.checkers:
        lines += [
            "| Checker | Kind | Verdict | Summary | Anomalies |",
            "|---|---|---|---|---:|",
        ]
        for ch in view.checkers:
            lines.append(
                f"| {md_cell(ch.name)} | {ch.kind} | {_ICON.get(ch.verdict_word, '')} "
                f"{ch.verdict_word} | {md_cell(ch.summary or '—')} | {ch.anomaly_count:,} |"
            )
        lines.append("")
    faults = ", ".join(str(f) for f in c.get("faults") or []) or "none"
    lines.append(
        f"**Campaign:** target `{md_code(c.get('target', '?'))}`, variant "
        f"`{md_code(c.get('variant', '?'))}`, faults {md_text(faults)}, seed "
        f"`{md_code(c.get('seed', '?'))}`, {md_cell(c.get('workers', '?'))} workers, "
        f"started {md_cell(c.get('started', '?'))}, status {md_cell(c.get('status', '?'))}"
    )
    lines += [
        "",
        "**Reproduce:**",
        "",
        "```sh",
        str(c.get("command") or "(no command recorded)").replace("```", "'''"),
        "```",
        "",
        "Full report: `report.html` in the uploaded store artifact.",
        "",
    ]
    return "\n".join(lines)


def write_markdown(view: RunView, path: Path | None = None) -> Path:
    """Writes ``summary.md`` (default: in the run directory) and returns its path."""
    out = path or view.run_dir / "summary.md"
    out.write_text(render_markdown(view), encoding="utf-8")
    return out
