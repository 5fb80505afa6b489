"""The tutorial runs as written: every ``sh`` and ``python`` block of every chapter, in order, in
one fresh directory and a private virtualenv (chapter 1 installs the scaffolded target).

Conventions (``docs/tutorial/README.md`` states them for readers):

- ``file=PATH`` after the language: the block is written to ``PATH`` before anything after it;
- ``same-as=PATH``: the block must equal ``PATH`` as it is at that point (a file the scaffold
  wrote), so the text cannot drift from the code it shows;
- in ``sh``, each line is one command, run by bash; ``# exit N`` after it says the exit code it
  must have (default 0), and ``expect="TEXT"`` a text its output must contain;
- ``python`` without ``file=`` runs as a script and must exit 0;
- port 8080 is replaced by a free port everywhere;
- a ``yaml`` workflow's ``run`` steps run too, except the two that install the workbench and the
  target (the virtualenv already has both), named here so that a new step cannot slip by.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from workbench.runtime.ports import free_port

from ..venvs import private_venv

pytestmark = [pytest.mark.servers, pytest.mark.slow]

TUTORIAL = Path(__file__).resolve().parents[2] / "docs" / "tutorial"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```\s*$", re.S | re.M)
EXPECTED_EXIT = re.compile(r'\s+#\s*exit\s+(\d+)(?:\s+expect="([^"]*)")?\s*$')
INSTALL_STEPS = {"Install the workbench", "Install the target"}
# The adapter of chapter 5, the promise: target, client and checker in at most 60 lines.
ADAPTER_MAX_LINES = 60


@dataclass
class Block:
    chapter: str
    lang: str
    attrs: dict[str, str]
    text: str


def blocks() -> list[Block]:
    out: list[Block] = []
    for chapter in sorted(TUTORIAL.glob("[0-9][0-9]-*.md")):
        for m in FENCE.finditer(chapter.read_text()):
            attrs = dict(a.split("=", 1) for a in m.group(2).split() if "=" in a)
            out.append(Block(chapter.name, m.group(1), attrs, m.group(3)))
    return out


class Shell:
    """Runs commands in the tutorial's directory, and kills what they leave running."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = env
        self.groups: list[int] = []

    def run(
        self, command: str, where: str, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        # A session of its own: what the command starts in the background stays in its group.
        proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.groups.append(proc.pid)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(f"{where}: `{command}` still running after {timeout} s") from None
        return subprocess.CompletedProcess(command, proc.returncode, out, err)

    def kill_all(self) -> None:
        for pgid in self.groups:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def run_workflow(block: Block, shell: Shell, port: str) -> None:
    workflow = yaml.safe_load(block.text)
    summary = shell.cwd / "step-summary.md"
    shell.env["GITHUB_STEP_SUMMARY"] = str(summary)
    skipped: set[str] = set()
    ran = 0
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "run" not in step:
                continue
            if step["name"] in INSTALL_STEPS:
                skipped.add(step["name"])
                continue
            command = step["run"].replace("${{ github.run_number }}", "1").replace("8080", port)
            r = shell.run(command, f"{block.chapter} step {step['name']!r}")
            assert r.returncode == 0, f"{step['name']}: {r.stdout[-2000:]}{r.stderr[-2000:]}"
            ran += 1
    assert skipped == INSTALL_STEPS and ran >= 2
    assert "verdict" in summary.read_text().lower()


def test_every_block_of_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    python = private_venv(tmp_path / "venv")
    env = {**os.environ, "PATH": f"{python.parent}:{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    port = str(free_port())
    shell = Shell(work, env)
    ran: list[str] = []
    try:
        for block in blocks():
            where = f"{block.chapter} ({block.lang} block {block.text.splitlines()[0][:50]!r})"
            text = block.text.replace("8080", port)
            if "same-as" in block.attrs:
                shown = (work / block.attrs["same-as"]).read_text()
                assert text == shown, f"{where} differs from {block.attrs['same-as']}"
            elif "file" in block.attrs:
                path = work / block.attrs["file"]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
                if block.lang == "yaml":
                    run_workflow(block, shell, port)
            elif block.lang == "sh":
                for line in text.splitlines():
                    if not line.strip() or line.lstrip().startswith("#"):
                        continue
                    m = EXPECTED_EXIT.search(line)
                    expected = int(m.group(1)) if m else 0
                    command = line[: m.start()] if m else line
                    r = shell.run(command, where)
                    assert r.returncode == expected, (
                        f"{where}: `{command}` exited {r.returncode}, not {expected}\n"
                        f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
                    )
                    if m and m.group(2):
                        said = m.group(2)
                        assert said in r.stdout + r.stderr, f"{where}: no {said!r} in\n{r.stdout}"
                    ran.append(command)
            elif block.lang == "python":
                _python(shell, python, text, where)
                ran.append(where)
    finally:
        shell.kill_all()
    adapter = (work / "kv_adapter.py").read_text().splitlines()
    assert len(adapter) <= ADAPTER_MAX_LINES, len(adapter)
    assert len(ran) >= 20, ran


def _python(shell: Shell, python: Path, code: str, where: str) -> None:
    script = shell.cwd / ".tutorial-snippet.py"
    script.write_text(code)
    r = shell.run(f"{python} {script}", where)
    assert r.returncode == 0, (
        f"{where}: exited {r.returncode}\n{r.stdout[-2000:]}{r.stderr[-3000:]}"
    )
