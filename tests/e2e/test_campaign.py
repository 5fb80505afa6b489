"""End to end: a real campaign against the small set target, with real PostgreSQL, Toxiproxy and
service processes, under network, kill and pause faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from workbench.history import read_history
from workbench.runner import Campaign, run_campaign
from workbench.schedule import FaultAction
from workbench.store import read_json

from ..runtime.support import all_dead, wait_until
from .counter_target import SetTarget

pytestmark = [pytest.mark.servers, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
FAULTS = ["partition:links=client->*:select=all", "kill:service=api", "pause:service=api"]
# Fixed windows so every fault kind is exercised in a short campaign.
SCHEDULE = [
    FaultAction(1.0, "start", 0, 0),
    FaultAction(2.5, "stop", 0, 0),
    FaultAction(3.5, "start", 1, 1),
    FaultAction(5.0, "stop", 1, 1),
    FaultAction(6.0, "start", 2, 2),
    FaultAction(8.0, "stop", 2, 2),
]


def recorded_pids(run_dir: Path) -> list[int]:
    """The pids the runtime's registry lists as alive right now."""
    try:
        data = json.loads((run_dir / "pids.json").read_text())
    except (FileNotFoundError, ValueError):
        return []
    return [int(e["pid"]) for e in data.get("processes", {}).values()]


class PidWatcher(threading.Thread):
    """Collects every pid the newest run of a store registers while a campaign runs."""

    def __init__(self, store: Path) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.seen: set[int] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            latest = self.store / "latest"
            if latest.exists():
                self.seen.update(recorded_pids(latest.resolve()))


def test_campaign_records_all_event_types_and_heals_every_fault(tmp_path: Path) -> None:
    watcher = PidWatcher(tmp_path / "store")
    watcher.start()
    try:
        outcome = run_campaign(
            Campaign(
                target=SetTarget(),
                target_spec="tests.e2e.counter_target:SetTarget",
                faults=FAULTS,
                schedule=SCHEDULE,
                workers=4,
                time_limit=9.0,
                seed=3,
                store=tmp_path / "store",
                progress=False,
            )
        )
    finally:
        watcher.stop.set()
        watcher.join()
    assert outcome.error is None, outcome.error
    events = read_history(outcome.run_dir / "history.jsonl").events
    types = Counter(e.type for e in events if e.is_client)
    assert {"invoke", "ok", "fail", "info"} <= set(types), types
    nemesis = [e for e in events if not e.is_client]
    starts = [e.value["fault"] for e in nemesis if e.f == "start"]
    stops = [e.value["fault"] for e in nemesis if e.f == "stop"]
    assert starts == ["partition", "kill", "pause"]
    assert stops == starts
    heals = {e.value["fault"]: e.value for e in nemesis if e.f == "heal"}
    assert set(heals) == {"partition", "kill", "pause"}
    assert all(v["verified"] for v in heals.values())
    # The final read happens after every heal.
    last_heal = max(e.index for e in nemesis if e.f == "heal")
    final_reads = [e for e in events if e.f == "read" and e.type == "ok"]
    assert final_reads and final_reads[-1].index > last_heal
    # A correct service loses nothing: the checker must not raise a false alarm.
    assert outcome.exit_code == 0, outcome.results
    campaign = read_json(outcome.run_dir / "campaign.json")
    assert campaign["status"] == "finished"
    assert {"postgresql", "toxiproxy", "workbench"} <= set(campaign["versions"])
    # PostgreSQL, Toxiproxy, two replicas, and the replica restarted after the kill.
    assert len(watcher.seen) >= 5, watcher.seen
    assert all_dead(sorted(watcher.seen))


def _start_harness(store: Path, time_limit: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workbench",
            "run",
            "tests.e2e.counter_target:SetTarget",
            "--time-limit",
            str(time_limit),
            "--workers",
            "3",
            "--store",
            str(store),
            "--quiet",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_history(store: Path, min_events: int, timeout: float = 60) -> Path:
    def ready() -> bool:
        h = store / "latest" / "history.jsonl"
        return h.exists() and h.read_text().count("\n") >= min_events

    wait_until(ready, timeout, "the campaign to start recording")
    return (store / "latest").resolve()


def test_sigkilled_harness_leaves_a_checkable_history_and_no_orphans(tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc = _start_harness(store, 60)
    try:
        run_dir = _wait_for_history(store, 40)
        pids = recorded_pids(run_dir)
        assert pids
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # Parent-death signals take every child down with the harness.
    wait_until(lambda: all_dead(pids), 15, "every process of the killed campaign to die")
    check = subprocess.run(
        [sys.executable, "-m", "workbench", "check", str(run_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # No final read was taken, so the set checker cannot decide: unknown, not a crash.
    assert check.returncode == 2, check.stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert results["valid"] == "unknown"
    assert sum(results["ops"].values()) > 10
    assert read_json(run_dir / "campaign.json")["status"] == "running"


def test_sigterm_tears_everything_down_and_marks_the_run(tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc = _start_harness(store, 60)
    try:
        run_dir = _wait_for_history(store, 20)
        pids = recorded_pids(run_dir)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert "Traceback" not in err
    assert all_dead(pids)
    assert read_json(run_dir / "campaign.json")["status"] == "interrupted"
    assert os.path.getsize(run_dir / "history.jsonl") > 0
