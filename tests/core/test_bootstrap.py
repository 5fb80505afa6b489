"""The set-up script is idempotent: once the test command has run it, a second run installs
nothing and says so."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_second_bootstrap_installs_nothing() -> None:
    p = subprocess.run(
        ["bash", "scripts/bootstrap.sh"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, p.stderr
    assert "nothing to do" in p.stdout
    assert "installing" not in p.stdout and "building" not in p.stdout


def test_toxiproxy_reports_the_pinned_version() -> None:
    p = subprocess.run(
        [
            os.environ.get("WORKBENCH_TOXIPROXY", str(REPO / ".tools/bin/toxiproxy-server")),
            "-version",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "2.12.0" in p.stdout + p.stderr
