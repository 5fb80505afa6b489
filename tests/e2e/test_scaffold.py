"""``workbench new-target``: the package it writes installs, lints clean, and runs green at once;
its planted bug is found. Run in a virtualenv of its own, so that installing the new target
leaves the workbench's own environment as it was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..venvs import private_venv

pytestmark = [pytest.mark.servers, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _workbench(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "workbench", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_new_target_installs_lints_clean_runs_green_and_its_planted_bug_is_found(
    tmp_path: Path,
) -> None:
    python = private_venv(tmp_path / "venv")
    made = _workbench(python, "new-target", "demo-kv", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    root = tmp_path / "demo-kv"
    assert (root / "demo_kv" / "target.py").is_file()

    listed = _workbench(python, "targets", cwd=tmp_path)
    assert "demo-kv" in listed.stdout, listed.stdout + listed.stderr
    checkers = _workbench(python, "checkers", cwd=tmp_path)
    assert "demo-kv-counts" in checkers.stdout, checkers.stdout + checkers.stderr

    lint = subprocess.run(
        [str(BIN / "ruff"), "check", "."], cwd=root, capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout
    fmt = subprocess.run(
        [str(BIN / "ruff"), "format", "--check", "."],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert fmt.returncode == 0, fmt.stdout
    types = subprocess.run(
        [str(BIN / "mypy"), "--strict", "demo_kv"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "MYPYPATH": str(REPO)},
    )
    assert types.returncode == 0, types.stdout

    # The package's own test runs both variants: correct exits 0 under faults, the bug exits 1.
    tests = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert "2 passed" in tests.stdout


@pytest.mark.parametrize(
    ("name", "problem"),
    [("Demo_KV", "is not a target name"), ("payments", "already registered")],
)
def test_a_bad_or_taken_name_is_one_line_and_exit_64(
    tmp_path: Path, name: str, problem: str
) -> None:
    r = _workbench(Path(sys.executable), "new-target", name, "--no-install", cwd=tmp_path)
    assert r.returncode == 64, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and problem in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_existing_directory_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "demo-kv").mkdir()
    (tmp_path / "demo-kv" / "mine.txt").write_text("keep me")
    r = _workbench(Path(sys.executable), "new-target", "demo-kv", "--no-install", cwd=tmp_path)
    assert r.returncode == 64 and "already exists" in r.stderr
    assert [p.name for p in (tmp_path / "demo-kv").iterdir()] == ["mine.txt"]
