"""Helpers shared by the runtime and fault tests: run dirs, the echo service, waiting."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from workbench.runtime.process import proc_alive
from workbench.topology import Postgres, Redis, Service, Topology

T = TypeVar("T")

ECHO_SERVICE = Path(__file__).with_name("echo_service.py")


def echo_service(
    name: str = "api",
    *,
    replicas: int = 1,
    depends_on: tuple[str, ...] = (),
    faketime: bool = False,
) -> Service:
    return Service(
        name,
        [sys.executable, str(ECHO_SERVICE), "{port}"],
        replicas=replicas,
        depends_on=depends_on,
        faketime=faketime,
        ready_timeout=15.0,
    )


def full_topology() -> Topology:
    """pg + redis (aof-always) + cache (no persistence) + api x2 under faketime."""
    return Topology(
        postgres=[Postgres("pg", init_sql="CREATE TABLE kv (k text PRIMARY KEY, v text);")],
        redis=[Redis("redis", "aof-always"), Redis("cache", "none")],
        services=[
            echo_service("api", replicas=2, depends_on=("pg", "redis", "cache"), faketime=True)
        ],
    )


@contextmanager
def run_dir(prefix: str = "wb-test-") -> Iterator[Path]:
    """A fresh run directory the postgres user can reach (pytest's tmp dirs are 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Polls until ``predicate`` holds; fails the test naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for: {what}")
        time.sleep(0.05)


def wait_for(what: str, fn: Callable[[], T], timeout: float = 20.0) -> T:
    """Polls ``fn`` until it returns something truthy and returns it; fails the test naming
    ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def all_dead(pids: list[int]) -> bool:
    return not any(proc_alive(p) for p in pids)
