"""HttpClient against a real HTTP server on 127.0.0.1: completions from statuses, transport
errors as NotApplied / MaybeApplied, per-operation overrides, replica choice and the pool's
lifetime.

The server is a small HTTP/1.1 keep-alive server on asyncio streams, in the test's own event
loop, so it can count its open connections and misbehave on purpose (close without answering,
answer too late).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from workbench import (
    Completion,
    CompletionType,
    HttpClient,
    MaybeApplied,
    NotApplied,
    Op,
    Response,
)
from workbench.generator import seq
from workbench.history import HistoryWriter, pair_operations, read_history
from workbench.workers import WorkerPool


class MiniServer:
    """``GET|POST /status/N`` -> status N, JSON ``{"server", "method", "path", "body",
    "content_type"}``; ``/text`` -> 200 text/plain ``hello``; ``/gzip`` -> gzip-encoded JSON
    ``{"zipped": true}``; ``/reset`` -> the connection is
    reset without an answer; ``/sleep`` -> no answer for 5 s."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.open_connections = 0
        self.requests = 0
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_connections += 1
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open_connections -= 1
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        line = await reader.readline()
        if not line:
            return False
        method, path, _ = line.decode().split(" ", 2)
        headers: dict[str, str] = {}
        while (h := await reader.readline()) not in (b"\r\n", b""):
            k, v = h.decode().split(":", 1)
            headers[k.strip().lower()] = v.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests += 1
        if path == "/reset":
            sock = writer.get_extra_info("socket")
            # SO_LINGER 0: close() sends RST, as a crashed peer or a reset-peer fault does.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if path == "/sleep":
            await asyncio.sleep(5)
        encoding = ""
        if path == "/text":
            status, ctype, data = 200, "text/plain", b"hello"
        elif path == "/gzip":
            status, ctype, data = 200, "application/json", gzip.compress(b'{"zipped": true}')
            encoding = "Content-Encoding: gzip\r\n"
        else:
            status = int(path.rsplit("/", 1)[1]) if path.startswith("/status/") else 404
            answer = {
                "server": self.name,
                "method": method,
                "path": path,
                "body": json.loads(body) if body else None,
                "content_type": headers.get("content-type"),
            }
            ctype, data = "application/json", json.dumps(answer).encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\n{encoding}"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        await writer.drain()
        return True


class StubCluster:
    """Two lists of base URLs: through the proxies and direct."""

    def __init__(self, endpoints: list[str], direct: list[str] | None = None) -> None:
        self._endpoints = endpoints
        self._direct = direct if direct is not None else endpoints

    def endpoints(self, service: str) -> list[str]:
        assert service == "svc"
        return self._endpoints

    def direct_endpoints(self, service: str) -> list[str]:
        assert service == "svc"
        return self._direct


class SvcClient(HttpClient):
    service = "svc"
    timeout = 5.0

    async def invoke(self, op: Op) -> Completion:
        return self.complete(await self.post(op.value, json={"op": op.f}))


class ImpatientClient(SvcClient):
    timeout = 0.3


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there once the socket is closed


Scenario = Callable[[list[MiniServer], list[str]], Awaitable[None]]


def with_servers(n: int, scenario: Scenario) -> None:
    async def main() -> None:
        servers = [MiniServer(f"s{i}") for i in range(n)]
        urls = [await s.start() for s in servers]
        try:
            await scenario(servers, urls)
        finally:
            for s in servers:
                await s.stop()

    asyncio.run(main())


async def opened(urls: list[str], worker: int = 0, cls: type[HttpClient] = SvcClient) -> Any:
    client = cls()
    await client.open(StubCluster(urls), worker)  # type: ignore[arg-type]
    return client


def test_default_mapping_2xx_ok_4xx_fail_5xx_info() -> None:
    async def scenario(servers: list[MiniServer], urls: list[str]) -> None:
        c = await opened(urls)
        try:
            done = await c.invoke(Op("w", "/status/201"))
            assert done.type == "ok"
            assert done.value["body"] == {"op": "w"}  # the JSON body went out and came back
            assert done.value["content_type"] == "application/json"
            assert (await c.invoke(Op("w", "/status/409"))).type == "fail"
            unavailable = await c.invoke(Op("w", "/status/503"))
            assert unavailable.type == "info"
            assert unavailable.error.startswith("http 503: ")
            assert unavailable.value is None  # the harness records the invocation's value
            given = c.complete(await c.get("/status/200"), value=7)
            assert (given.type, given.value) == ("ok", 7)
        finally:
            await c.close()

    with_servers(1, scenario)


def test_response_parses_json_only_when_it_is_json() -> None:
    async def scenario(servers: list[MiniServer], urls: list[str]) -> None:
        c = await opened(urls)
        try:
            text = await c.get("/text")
            assert isinstance(text, Response)
            assert (text.status, text.body, text.ok) == (200, "hello", True)
            assert text.headers["content-type"] == "text/plain"  # case-insensitive lookup
            assert (await c.get("/gzip")).body == {"zipped": True}  # decoded as sent
            js = await c.delete("/status/404")
            assert (js.status, js.body["method"], js.ok) == (404, "DELETE", False)
        finally:
            await c.close()

    with_servers(1, scenario)


def test_per_operation_and_per_client_overrides() -> None:
    class Strict(SvcClient):
        def status_type(self, status: int) -> CompletionType:
            return "ok" if status == 200 else "fail" if status == 400 else "info"

    async def scenario(servers: list[MiniServer], urls: list[str]) -> None:
        c = await opened(urls)
        s = await opened(urls, cls=Strict)
        try:
            resp = await c.get("/status/503")
            assert c.complete(resp, statuses={503: "fail"}).type == "fail"
            assert c.complete(resp, statuses={500: "fail"}).type == "info"  # others: default
            assert s.complete(await s.get("/status/404")).type == "info"
            assert s.complete(await s.get("/status/400")).type == "fail"
        finally:
            await c.close()
            await s.close()

    with_servers(1, scenario)


def test_connection_refused_is_not_applied() -> None:
    async def main() -> None:
        c = await opened([closed_port_url()])
        try:
            with pytest.raises(NotApplied, match="ClientConnectorError"):
                await c.post("/status/200", json={})
        finally:
            await c.close()

    asyncio.run(main())


def test_reset_and_timeout_after_sending_are_maybe_applied() -> None:
    async def scenario(servers: list[MiniServer], urls: list[str]) -> None:
        c = await opened(urls, cls=ImpatientClient)
        try:
            with pytest.raises(MaybeApplied):
                await c.post("/reset", json={})
            with pytest.raises(MaybeApplied):
                await c.post("/sleep", json={})  # the client's 0.3 s < the server's 5 s
            with pytest.raises(MaybeApplied):
                await c.post("/sleep", json={}, timeout=0.1)  # a per-call timeout
            assert servers[0].requests == 3  # each request did reach the server
        finally:
            await c.close()

    with_servers(1, scenario)


def test_an_idempotent_method_is_never_sent_twice_for_one_operation() -> None:
    # aiohttp by default resends a GET/PUT/DELETE once after a reset; a PUT that was applied
    # and then answered for its second attempt would be recorded wrongly.
    async def scenario(servers: list[MiniServer], urls: list[str]) -> None:
        c = await opened(urls)
        try:
            for n, call in enumerate((c.put, c.get, c.delete), start=1):
                with pytest.raises(MaybeApplied):
                    await call("/reset")
                assert servers[0].requests == n, call
        finally:
            await c.close()

    with_servers(1, scenario)


def test_harness_records_fail_for_refused_and_info_for_reset(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"

    async def scenario(servers: list[MiniServer], urls: list[str]) -> None:
        refused = closed_port_url()
        ops = [
            Op("w", "/status/200"),
            Op("w", f"{refused}/status/200"),  # a full URL is used as it is
            Op("w", "/reset"),
        ]
        with HistoryWriter(path) as history:
            pool = WorkerPool(
                cluster=StubCluster(urls),  # type: ignore[arg-type]
                history=history,
                make_client=SvcClient,
                workers=1,
                op_timeout=2.0,
                seed=0,
            )
            await pool.open()
            await pool.run(seq(ops))
            await pool.close()

    with_servers(1, scenario)
    done = pair_operations(read_history(path).events)
    assert [o.type for o in done] == ["ok", "fail", "info"]
    assert done[1].completion is not None
    assert done[1].completion.error.startswith("NotApplied")
    assert done[2].completion is not None
    assert done[2].completion.error.startswith("MaybeApplied")


def test_worker_sticks_to_one_replica_unless_told() -> None:
    async def scenario(servers: list[MiniServer], urls: list[str]) -> None:
        direct = [urls[1], urls[0]]  # reversed, to tell direct from proxied
        clients = []
        for worker in range(3):
            c = SvcClient()
            await c.open(StubCluster(urls, direct), worker)  # type: ignore[arg-type]
            clients.append(c)
        try:
            seen = [(await c.get("/status/200")).body["server"] for c in clients]
            assert seen == ["s0", "s1", "s0"]  # worker % replicas
            assert (await clients[0].get("/status/200", replica=1)).body["server"] == "s1"
            assert (await clients[0].get("/status/200", replica=3)).body["server"] == "s1"
            assert (await clients[0].get("/status/200", direct=True)).body["server"] == "s1"
        finally:
            for c in clients:
                await c.close()

    with_servers(2, scenario)


def test_one_pool_per_client_closed_by_close() -> None:
    async def scenario(servers: list[MiniServer], urls: list[str]) -> None:
        server = servers[0]
        c = await opened(urls)
        for _ in range(3):
            await c.get("/status/200")
        assert server.open_connections == 1  # kept alive and reused
        other = await opened(urls)
        await other.get("/status/200")
        assert server.open_connections == 2  # another client, its own pool
        await c.close()
        await other.close()
        for _ in range(200):  # the server notices EOF within a few loop turns
            if server.open_connections == 0:
                break
            await asyncio.sleep(0.01)
        assert server.open_connections == 0
        with pytest.raises(RuntimeError, match="before open"):
            await c.get("/status/200")

    with_servers(1, scenario)


def test_a_client_without_service_is_refused_at_open() -> None:
    class Nameless(HttpClient):
        async def invoke(self, op: Op) -> Completion:
            raise AssertionError("never called")

    async def main() -> None:
        with pytest.raises(TypeError, match="must set service"):
            await Nameless().open(StubCluster([]), 0)  # type: ignore[arg-type]

    asyncio.run(main())
