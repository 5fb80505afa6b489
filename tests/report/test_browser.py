"""report.html in a real headless Chromium, opened from disk: no console errors, the timeline
draws every operation, and a screenshot is saved with the run (``<run>/report.png``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from workbench.history import read_history
from workbench.report import write_reports, write_store_index

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The bootstrap installs Chromium; only a machine that opted out may skip these tests, so a
# missing browser is never a silent pass.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("WORKBENCH_NO_BROWSER") == "1",
    reason="WORKBENCH_NO_BROWSER=1",
)

DEADLINE_S = 45  # per browser run; subprocess.run kills it at the deadline
# Lines Chromium prints on its own in containers (no D-Bus, no GPU): not the page's doing.
CONSOLE = re.compile(r":CONSOLE[:(\]]|Uncaught", re.I)


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None, "chromium is missing: run scripts/bootstrap.sh"
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )


def _console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if CONSOLE.search(line)]


def _open_page(page: Path, tmp_path: Path, name: str) -> str:
    """The page's DOM after load; asserts no console output and no script error."""
    proc = _chromium(tmp_path / f"profile-{name}", "--dump-dom", page.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _console_lines(proc.stderr) == []
    html_tag = re.search(r"<html[^>]*>", proc.stdout)
    assert html_tag, proc.stdout[:500]
    # The page's error handler records any uncaught error as an attribute of <html>.
    assert "data-js-error" not in html_tag.group(0), html_tag.group(0)
    return proc.stdout


def test_report_opens_from_disk_without_console_errors_and_screenshots(
    bad_run: Path, tmp_path: Path
) -> None:
    report = write_reports(bad_run)["html"]
    dom = _open_page(report, tmp_path, "dom")
    events = read_history(bad_run / "history.jsonl").events
    ops = sum(1 for e in events if e.type == "invoke")
    html_tag = re.search(r"<html[^>]*>", dom)
    assert html_tag and f'data-timeline="drawn:{ops}"' in html_tag.group(0)
    shot = bad_run / "report.png"
    proc = _chromium(
        tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1400,2000",
        report.as_uri(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _console_lines(proc.stderr) == []
    assert shot.is_file() and shot.stat().st_size > 20_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_clean_report_and_store_index_open_without_errors(good_run: Path, tmp_path: Path) -> None:
    write_reports(good_run)
    _open_page(good_run / "report.html", tmp_path, "good")
    index = write_store_index(good_run.parent.parent)
    dom = _open_page(index, tmp_path, "index")
    assert "payments/20250102T090000/report.html" in dom
