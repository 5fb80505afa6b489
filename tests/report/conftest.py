"""Synthetic run directories for the report tests (no servers needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.report.synth import synthesize_run

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def bad_run(tmp_path: Path) -> Path:
    """A run with a safety anomaly (duplicate charges), a linearizability explanation, a
    liveness anomaly, faults of every shape, and a hostile string in the history."""
    return synthesize_run(
        tmp_path / "store" / "payments" / "20250101T120000",
        n_ops=1500,
        workers=6,
        duration_s=20.0,
        hostile=HOSTILE,
    )


@pytest.fixture
def good_run(tmp_path: Path) -> Path:
    """A run where every checker passed."""
    return synthesize_run(
        tmp_path / "store" / "payments" / "20250102T090000",
        n_ops=800,
        workers=4,
        duration_s=10.0,
        anomalies=False,
        seed=7,
    )
