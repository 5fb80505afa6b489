"""End to end with servers the user already runs (``External``): the harness starts none of them,
puts a Toxiproxy link in front of each, aims network faults at those links, leaves the servers
running when it ends, and refuses process faults aimed at them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from workbench.history import Event, pair_operations, read_history
from workbench.runner import Campaign, Outcome, run_campaign
from workbench.runtime.ports import free_port
from workbench.runtime.postgres import PostgresServer
from workbench.runtime.process import proc_alive
from workbench.schedule import FaultAction

from ..runtime.support import run_dir, wait_until
from .counter_target import SetTarget

pytestmark = [pytest.mark.servers, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
# One partition window, 1.5 s to 3.5 s after the start; the campaign runs 5 s.
SCHEDULE = [FaultAction(1.5, "start", 0, 0), FaultAction(3.5, "stop", 0, 0)]


@pytest.fixture(scope="module")
def user_pg() -> Iterator[PostgresServer]:
    """A PostgreSQL server the user runs, with the table the set service needs."""
    with run_dir("wb-external-") as d:
        pg = PostgresServer(
            "users-pg", d, init_sql="CREATE TABLE elements (element bigint PRIMARY KEY)"
        )
        pg.setup()
        pg.start()
        try:
            yield pg
        finally:
            pg.stop()


@pytest.fixture()
def empty_table(user_pg: PostgresServer) -> PostgresServer:
    with psycopg.connect(user_pg.dsn(), autocommit=True) as conn:
        conn.execute("TRUNCATE elements")
    return user_pg


@pytest.fixture()
def user_api(empty_table: PostgresServer) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The set service started by the user (not the harness), on a port of their choosing."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tests.e2e.counter_service:app", "--port", str(port)],
        cwd=REPO,
        env={**os.environ, "PG_DSN": empty_table.dsn()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(healthy, 30, "the user's service to answer /health")
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(10)


def _campaign(store: Path, faults: list[str], external: dict[str, str]) -> Outcome:
    return run_campaign(
        Campaign(
            target=SetTarget(faults=faults),
            target_spec="tests.e2e.counter_target:SetTarget",
            faults=faults,
            schedule=SCHEDULE,
            external=external,
            workers=3,
            time_limit=5.0,
            seed=11,
            store=store,
            progress=False,
        )
    )


def _adds(events: list[Event]) -> tuple[list[int], list[float]]:
    """The elements of every ok add, and the invoke times (s) of adds that did not complete ok."""
    adds = [op for op in pair_operations(events) if op.f == "add"]
    acked = [int(op.invoke.value) for op in adds if op.type == "ok"]
    return acked, [op.invoke.time / 1e9 for op in adds if op.type != "ok"]


def _in_fault_window(events: list[Event], times: list[float]) -> list[float]:
    """The ``times`` that fall while the fault was on, as the nemesis recorded it (its start's
    invocation to its stop's completion), with slack for an operation in flight as it began or
    a connection broken by it and found dead just after."""
    nemesis = [e for e in events if not e.is_client]
    began = min(e.time for e in nemesis if e.f == "start") / 1e9
    ended = max(e.time for e in nemesis if e.f == "stop") / 1e9
    return [t for t in times if began - 1.5 <= t <= ended + 1.0]


def test_a_service_and_database_the_user_runs_get_network_faults_and_outlive_the_campaign(
    tmp_path: Path, user_api: tuple[str, subprocess.Popen[bytes]], empty_table: PostgresServer
) -> None:
    url, proc = user_api
    outcome = _campaign(
        tmp_path / "store",
        ["partition:links=client->*:select=all"],
        {"api": url, "pg": empty_table.dsn()},
    )
    assert outcome.error is None, outcome.error
    assert outcome.exit_code == 0, outcome.results
    events = read_history(outcome.run_dir / "history.jsonl").events
    acked, failed_at = _adds(events)
    # The partition cut the clients off the user's service through the proxy in front of it,
    # and only while it lasted.
    assert failed_at, "no add failed: the partition did not reach the external service"
    assert _in_fault_window(events, failed_at) == failed_at, failed_at
    assert len(acked) > 20
    # The harness started neither server and stopped neither.
    assert proc.poll() is None
    assert empty_table.pid is not None and proc_alive(empty_table.pid)
    with psycopg.connect(empty_table.dsn()) as conn:
        stored = {r[0] for r in conn.execute("SELECT element FROM elements").fetchall()}
    assert set(acked) <= stored


def test_services_the_harness_starts_reach_the_users_database_through_a_link(
    tmp_path: Path, empty_table: PostgresServer
) -> None:
    outcome = _campaign(
        tmp_path / "store", ["partition:links=api-*->pg:select=all"], {"pg": empty_table.dsn()}
    )
    assert outcome.error is None, outcome.error
    assert outcome.exit_code == 0, outcome.results
    events = read_history(outcome.run_dir / "history.jsonl").events
    acked, failed_at = _adds(events)
    # Adds failed only while the replicas' links to the user's database were cut: the replicas
    # were given the proxy's address, not the database's own.
    assert failed_at, "no add failed: the replicas did not reach the database through its link"
    assert _in_fault_window(events, failed_at) == failed_at, failed_at
    with psycopg.connect(empty_table.dsn()) as conn:
        stored = {r[0] for r in conn.execute("SELECT element FROM elements").fetchall()}
    assert acked and set(acked) <= stored
    assert empty_table.pid is not None and proc_alive(empty_table.pid)


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ("kill:service=api", "External 'api'"),
        ("pause", "every service in this topology is External"),
    ],
)
def test_a_process_fault_aimed_at_an_external_service_is_one_line_and_exit_64(
    tmp_path: Path, fault: str, says: str
) -> None:
    # Nothing listens there: the refusal comes before the harness tries to reach anything.
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench",
            "run",
            "tests.e2e.counter_target:SetTarget",
            "--external",
            f"api=http://127.0.0.1:{free_port()}",
            "--faults",
            fault,
            "--store",
            str(tmp_path / "store"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 64, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert says in lines[0] and fault in lines[0]
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").iterdir())
