"""Runner throughput: 32 workers against a no-op HTTP service on 127.0.0.1, with and without
recording the history, in the same run.

    .venv/bin/python bench/runner_throughput.py [--workers 32] [--seconds 10] [--rounds 3]

Prints ops/s for each mode and round, the medians, and the recording cost (1 - recorded /
unrecorded). Goals: >= 2,000 recorded ops/s; recording costs <= 10%.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.client import Completion, Op, ok
from workbench.generator import repeat, time_limit
from workbench.history import HistoryWriter
from workbench.workers import WorkerPool


class NullHistory:
    """Same interface as HistoryWriter, records nothing: the baseline."""

    def __init__(self) -> None:
        self._start = time.monotonic_ns()

    def now(self) -> int:
        return time.monotonic_ns() - self._start

    def record(self, *args: Any, **kwargs: Any) -> None:
        return None


class StubCluster:
    def __init__(self, url: str) -> None:
        self.url = url

    def endpoints(self, service: str) -> list[str]:
        return [self.url]


class HttpxClient:
    """What a target's client usually is: one httpx.AsyncClient per worker (a shared pool
    serialises 32 workers on its lock and is several times slower)."""

    def __init__(self) -> None:
        self.http: httpx.AsyncClient | None = None

    async def open(self, cluster: Any, worker: int) -> None:
        self.http = httpx.AsyncClient(base_url=cluster.endpoints("noop")[0], timeout=5)

    async def invoke(self, op: Op) -> Completion:
        assert self.http is not None
        r = await self.http.post("/noop", content=b"{}")
        return ok(r.status_code)

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()


class StreamClient:
    """A minimal keep-alive HTTP/1.1 client on asyncio streams, to measure the harness itself
    rather than httpx's per-request cost (bench only: products use httpx)."""

    def __init__(self) -> None:
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self, cluster: Any, worker: int) -> None:
        host, port = cluster.endpoints("noop")[0].removeprefix("http://").split(":")
        self.reader, self.writer = await asyncio.open_connection(host, int(port))

    async def invoke(self, op: Op) -> Completion:
        assert self.reader is not None and self.writer is not None
        self.writer.write(b"POST /noop HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        status = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await self.reader.readexactly(length)
        return ok(int(status.split()[1]))

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


CLIENTS = {"httpx": HttpxClient, "stream": StreamClient}


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
    url: str, client: str, workers: int, seconds: float, record: bool, out: Path
) -> float:
    history: Any = HistoryWriter(out) if record else NullHistory()
    pool = WorkerPool(
        cluster=StubCluster(url),
        history=history,  # type: ignore[arg-type]
        make_client=CLIENTS[client],
        workers=workers,
        op_timeout=5,
        seed=0,
    )
    await pool.open()
    t0 = time.monotonic()
    await pool.run(time_limit(seconds, repeat(Op("noop"))))
    elapsed = time.monotonic() - t0
    await pool.close()
    if record:
        history.close()
    return pool.tally.total() / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--client",
        choices=sorted(CLIENTS),
        action="append",
        help="client(s) to measure (default: both)",
    )
    args = ap.parse_args()
    port = free_port()
    server = subprocess.Popen(
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
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url)
        for client in args.client or sorted(CLIENTS):
            figures: dict[bool, list[float]] = {True: [], False: []}
            with tempfile.TemporaryDirectory() as tmp:
                for r in range(args.rounds):
                    for record in (False, True):  # interleaved so drift hits both alike
                        rate = asyncio.run(
                            one_round(
                                url,
                                client,
                                args.workers,
                                args.seconds,
                                record,
                                Path(tmp) / f"h{r}.jsonl",
                            )
                        )
                        figures[record].append(rate)
                        mode = "recorded  " if record else "unrecorded"
                        print(f"{client:6} round {r + 1} {mode}: {rate:8.0f} ops/s", flush=True)
            rec, unrec = statistics.median(figures[True]), statistics.median(figures[False])
            cost = 1 - rec / unrec
            print(f"\n{client}: workers={args.workers} seconds={args.seconds} rounds={args.rounds}")
            print(f"  median unrecorded: {unrec:8.0f} ops/s")
            print(
                f"  median recorded:   {rec:8.0f} ops/s   (goal >= 2000: "
                f"{'met' if rec >= 2000 else 'NOT met'})"
            )
            print(
                f"  recording cost:    {cost * 100:6.1f} %       (goal <= 10%: "
                f"{'met' if cost <= 0.10 else 'NOT met'})\n",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
