"""Runner throughput: 32 workers against a no-op HTTP service on 127.0.0.1, recording the
history, with the framework's :class:`workbench.HttpClient` and with a plain httpx client side by
side in the same run (rounds interleaved so machine drift hits both alike).

    .venv/bin/python bench/runner_throughput.py [--workers 32] [--seconds 10] [--rounds 3]
        [--client http] [--client httpx] [--client httpcore]

Prints recorded ops/s for each client and round, the medians, and the ratio HttpClient / httpx,
with the runner's CPU time per operation (user + system of this process): on a shared machine
ops/s fall with other load, CPU per operation much less.

Goals: >= 5,000 recorded ops/s with HttpClient, and >= 4x httpx. ``httpcore`` (a bare
connection pool per worker) is there to compare libraries and is off by default.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpcore
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.client import Completion, Op, ok
from workbench.generator import repeat, time_limit
from workbench.history import HistoryWriter
from workbench.http import HttpClient
from workbench.workers import WorkerPool

GOAL_RATE = 5000
GOAL_RATIO = 4.0


class StubCluster:
    def __init__(self, url: str) -> None:
        self.url = url

    def endpoints(self, service: str) -> list[str]:
        return [self.url]

    def direct_endpoints(self, service: str) -> list[str]:
        return [self.url]


class NoopHttpClient(HttpClient):
    """The framework's client, as a target would write it."""

    service = "noop"

    async def invoke(self, op: Op) -> Completion:
        return self.complete(await self.post("/noop", json={}))


class HttpxClient:
    """What a target's client used to be: one httpx.AsyncClient per worker (a shared pool
    serialises 32 workers on its lock and is several times slower)."""

    def __init__(self) -> None:
        self.http: httpx.AsyncClient | None = None

    async def open(self, cluster: Any, worker: int) -> None:
        self.http = httpx.AsyncClient(base_url=cluster.endpoints("noop")[0], timeout=5)

    async def invoke(self, op: Op) -> Completion:
        assert self.http is not None
        r = await self.http.post("/noop", json={})
        return ok(r.json())

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()


class HttpcoreClient:
    """httpx's transport alone: one httpcore connection pool per worker."""

    def __init__(self) -> None:
        self.pool: httpcore.AsyncConnectionPool | None = None
        self.url = ""

    async def open(self, cluster: Any, worker: int) -> None:
        self.pool = httpcore.AsyncConnectionPool()
        self.url = cluster.endpoints("noop")[0] + "/noop"

    async def invoke(self, op: Op) -> Completion:
        assert self.pool is not None
        r = await self.pool.request(
            "POST", self.url, content=b"{}", headers={"Content-Type": "application/json"}
        )
        return ok(json.loads(r.content))

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()


CLIENTS: dict[str, Any] = {"http": NoopHttpClient, "httpx": HttpxClient, "httpcore": HttpcoreClient}
DEFAULT_CLIENTS = ["http", "httpx"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise SystemExit(f"no-op service at {url} did not start within {timeout}s")


async def one_round(
    url: str, client: str, workers: int, seconds: float, out: Path
) -> tuple[float, float]:
    """``(recorded operations per second, runner CPU microseconds per operation)`` over one
    timed run."""
    with HistoryWriter(out) as history:
        pool = WorkerPool(
            cluster=StubCluster(url),  # type: ignore[arg-type]
            history=history,
            make_client=CLIENTS[client],
            workers=workers,
            op_timeout=5,
            seed=0,
        )
        await pool.open()
        t0, cpu0 = time.monotonic(), time.process_time()
        await pool.run(time_limit(seconds, repeat(Op("noop"))))
        elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
        await pool.close()
    if pool.tally.by_type["ok"] != pool.tally.total():
        raise SystemExit(f"{client}: not every operation was ok: {dict(pool.tally.by_type)}")
    n = pool.tally.total()
    return n / elapsed, cpu / n * 1e6


def start_service(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.noop_service:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=Path(__file__).resolve().parents[1],
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--client",
        choices=sorted(CLIENTS),
        action="append",
        help=f"client(s) to measure (default: {' and '.join(DEFAULT_CLIENTS)})",
    )
    args = ap.parse_args()
    clients = args.client or DEFAULT_CLIENTS
    port = free_port()
    server = start_service(port)
    url = f"http://127.0.0.1:{port}"
    figures: dict[str, list[float]] = {c: [] for c in clients}
    cpu_per_op: dict[str, list[float]] = {c: [] for c in clients}
    try:
        wait_ready(url)
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.rounds):
                for client in clients:
                    out = Path(tmp) / f"{client}-{r}.jsonl"
                    rate, cpu = asyncio.run(one_round(url, client, args.workers, args.seconds, out))
                    figures[client].append(rate)
                    cpu_per_op[client].append(cpu)
                    print(
                        f"round {r + 1} {client:8}: {rate:8.0f} recorded ops/s "
                        f"{cpu:6.0f} us runner CPU/op",
                        flush=True,
                    )
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"\nworkers={args.workers} seconds={args.seconds} rounds={args.rounds}")
    medians = {c: statistics.median(v) for c, v in figures.items()}
    for client, rate in medians.items():
        cpu = statistics.median(cpu_per_op[client])
        print(f"  median {client:8}: {rate:8.0f} recorded ops/s {cpu:6.0f} us runner CPU/op")
    if "http" in medians:
        rate = medians["http"]
        print(f"  HttpClient >= {GOAL_RATE}: {'met' if rate >= GOAL_RATE else 'NOT met'}")
        if "httpx" in medians:
            ratio = rate / medians["httpx"]
            verdict = "met" if ratio >= GOAL_RATIO else "NOT met"
            print(f"  ratio HttpClient / httpx: {ratio:.2f}x (goal >= {GOAL_RATIO:g}x: {verdict})")


if __name__ == "__main__":
    main()
