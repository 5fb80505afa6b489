"""The locks target's ``worker`` service (ASGI): one locked read-modify-write per request.

Run as ``python -m uvicorn targets.locks.service:app --port PORT``; configuration comes from the
environment the runtime sets: ``LOCKS_VARIANT`` (see :mod:`targets.locks.variants`), ``PG_DSN``
and ``REDIS_URL`` (through this replica's proxied links, so partitions and latency apply),
``WORKBENCH_SERVICE`` / ``WORKBENCH_REPLICA`` (the writer's name, ``worker-2``).

Endpoints:

- ``GET /health``;
- ``POST /op`` ``{"kind": "incr"|"append", "resource", "op_id", "element"?}`` ->
  ``{"status": "ok"|"fail"|"info", "error", "value"}`` (see :mod:`targets.locks.section`);
- ``POST /probe/acquire`` and ``/probe/release`` ``{"owner"}``: hold the probe lock between two
  requests (variants with ``probes``; the mutex model checks them);
- ``GET/POST /_failpoints``: the failpoint control protocol (``docs/failpoints.md``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse
from starlette.routing import Route

from targets.locks.locking import RedisLease, SessionLock, redis_client
from targets.locks.section import Outcome, Request, Sections
from targets.locks.variants import LEASE_MS, get_variant
from workbench import FailpointMiddleware, declare_failpoints

PROBE_LOCK = "probe"

declare_failpoints(
    "after-acquire", "between-acquire-and-write", "before-release", "between-setnx-and-expire"
)


class Worker:
    def __init__(self, env: dict[str, str] | os._Environ[str]) -> None:
        self.variant = get_variant(env.get("LOCKS_VARIANT", "redis-fenced"))
        self.writer = (
            f"{env.get('WORKBENCH_SERVICE', 'worker')}-{env.get('WORKBENCH_REPLICA', '1')}"
        )
        self.pg_dsn = env["PG_DSN"]
        self.redis = redis_client(env["REDIS_URL"]) if self.variant.uses_redis else None
        lease = RedisLease(self.redis, self.variant, LEASE_MS) if self.redis is not None else None
        self.sections = Sections(self.variant, pg_dsn=self.pg_dsn, writer=self.writer, lease=lease)
        self.probes: dict[str, SessionLock] = {}

    async def op(self, body: dict[str, Any]) -> Outcome:
        kind = str(body["kind"])
        if kind not in ("incr", "append"):
            raise ValueError(f"kind {kind!r} is not incr or append")
        element = body.get("element")
        req = Request(
            kind,
            str(body["resource"]),
            str(body["op_id"]),
            None if element is None else int(element),
        )
        return await self.sections.run(req)

    async def probe_acquire(self, owner: str) -> Outcome:
        lock = SessionLock(self.pg_dsn, self.variant.lock_idle_timeout_ms)
        try:
            taken = await lock.try_once(PROBE_LOCK)
        except Exception as e:
            # The session may have taken the lock before it broke (and then lost it with it).
            await lock.close()
            return Outcome("info", f"acquire outcome unknown: {type(e).__name__}: {e}")
        if not taken:
            return Outcome("fail", "probe lock held by another owner")
        self.probes[owner] = lock
        return Outcome("ok", value={"writer": self.writer})

    async def probe_release(self, owner: str) -> Outcome:
        lock = self.probes.pop(owner, None)
        if lock is None:
            # This process never saw the owner take it (restarted?): its session, if any, ended.
            return Outcome("info", f"{self.writer} holds no probe lock for {owner}")
        if await lock.unlock():
            return Outcome("ok", value={"writer": self.writer})
        # The session was gone: the lock was released when it ended, at an unknown time.
        return Outcome("info", "the lock's session had ended: released at an unknown time")

    async def close(self) -> None:
        for lock in self.probes.values():
            await lock.close()
        if self.redis is not None:
            await self.redis.aclose()


_worker: Worker | None = None


def worker() -> Worker:
    global _worker
    if _worker is None:
        _worker = Worker(os.environ)
    return _worker


async def health(request: HttpRequest) -> JSONResponse:
    w = worker()
    return JSONResponse({"ok": True, "variant": w.variant.name, "writer": w.writer})


async def _body(request: HttpRequest) -> dict[str, Any]:
    body = await request.json()
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


async def op(request: HttpRequest) -> JSONResponse:
    try:
        body = await _body(request)
        outcome = await worker().op(body)
    except (ValueError, KeyError, TypeError) as e:
        return JSONResponse({"error": f"bad request: {e}"}, status_code=400)
    return JSONResponse(outcome.to_json())


async def probe(request: HttpRequest) -> JSONResponse:
    what = request.path_params["what"]
    try:
        owner = str((await _body(request))["owner"])
    except (ValueError, KeyError, TypeError) as e:
        return JSONResponse({"error": f"bad request: {e}"}, status_code=400)
    w = worker()
    if what == "acquire":
        outcome = await w.probe_acquire(owner)
    elif what == "release":
        outcome = await w.probe_release(owner)
    else:
        return JSONResponse({"error": f"no probe {what!r}"}, status_code=404)
    return JSONResponse(outcome.to_json())


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    worker()
    yield
    if _worker is not None:
        await _worker.close()


app = FailpointMiddleware(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/op", op, methods=["POST"]),
            Route("/probe/{what}", probe, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
)
