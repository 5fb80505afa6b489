"""The consumer: applies each event's effect to its own schema, reading one stream partition.

Run as ``python -m uvicorn targets.outbox.consumer:app`` with ``OUTBOX_VARIANT``, ``PG_DSN``
and ``REDIS_URL``; replica ``i`` (``WORKBENCH_REPLICA``) is consumer ``consumer-i`` of group
``consumers`` on stream ``orders.events.{i-1}``.

The effect of an event: its row in ``consumer.effects`` (applied count, deliveries, first
application's sequence number and time) and the order's projection in ``consumer.order_view``
(last applied status wins, as a consumer that trusts the broker's order would do). Each loop
iteration first takes this consumer's pending entries (delivered, never acknowledged: what a
crash left), then new ones, so a redelivery comes before anything newer.

HTTP: ``GET /health``; ``GET /progress`` -> ``{"applied": n, "pending": n, "lag": n}`` for this
replica's stream; ``GET /_effects`` and ``GET /_stream`` (the final reads, see
``checkers/outbox_history.py`` for their shapes); ``/_failpoints``: ``after-apply`` (committed,
not yet acknowledged) and ``after-ack`` (acknowledged; for ``ack-first``, not yet applied).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from redis.exceptions import RedisError, ResponseError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from targets.outbox import broker
from targets.outbox.variants import GROUP, Variant, from_env
from targets.pg_pool import PgPool, StoreUnavailable, deadline
from workbench import FailpointError, FailpointMiddleware, declare_failpoints, failpoint

BATCH = 50
BLOCK_MS = 200
ERROR_PAUSE_S = 0.3
APPLY_TIMEOUT = 4.0

declare_failpoints("after-apply", "after-ack")
log = logging.getLogger("consumer")

_FIRST = (
    "INSERT INTO consumer.effects (event_id, order_id, version, status, command, applied,"
    " deliveries, first_seq, applied_at) VALUES (%s, %s, %s, %s, %s, 1, 1,"
    " nextval('consumer.apply_seq'), extract(epoch from clock_timestamp()))"
)
_VIEW = (
    "INSERT INTO consumer.order_view (order_id, status, version) VALUES (%s, %s, %s)"
    " ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, version = excluded.version"
)


class Consumer:
    def __init__(self, spec: Variant, dsn: str, redis_url: str, replica: int) -> None:
        self.spec = spec
        self.name = f"consumer-{replica}"
        self.stream = broker.STREAMS[(replica - 1) % len(broker.STREAMS)]
        self.pool = PgPool(dsn, size=2, timeout=APPLY_TIMEOUT, application_name="consumer")
        # The blocking read waits BLOCK_MS on the server: the socket timeout must outlast it.
        self.redis = broker.connect(redis_url, timeout=broker.TIMEOUT + BLOCK_MS / 1000)
        self._task: asyncio.Task[None] | None = None

    async def apply(self, fields: dict[str, str]) -> None:
        """One delivery's transaction: the effect (unless the inbox has the event already)."""
        event, order = fields["event"], fields["order"]
        version, status, command = int(fields["version"]), fields["status"], fields["command"]
        dedup = self.spec.consume != "no-inbox"

        async def txn(conn: psycopg.AsyncConnection[Any]) -> None:
            async with conn.transaction():
                if dedup:
                    cur = await conn.execute(
                        "INSERT INTO consumer.inbox (event_id) VALUES (%s)"
                        " ON CONFLICT DO NOTHING RETURNING event_id",
                        (event,),
                    )
                    if await cur.fetchone() is None:
                        await conn.execute(
                            "UPDATE consumer.effects SET deliveries = deliveries + 1"
                            " WHERE event_id = %s",
                            (event,),
                        )
                        return
                    await conn.execute(_FIRST, (event, order, version, status, command))
                else:
                    await conn.execute(
                        _FIRST + " ON CONFLICT (event_id) DO UPDATE SET"
                        " applied = consumer.effects.applied + 1,"
                        " deliveries = consumer.effects.deliveries + 1",
                        (event, order, version, status, command),
                    )
                await conn.execute(_VIEW, (order, status, version))

        await self.pool.run(txn, "consumer store", APPLY_TIMEOUT)

    async def _read(self, start: str) -> list[tuple[str, dict[str, str]]]:
        try:
            got = await self.redis.xreadgroup(
                GROUP,
                self.name,
                {self.stream: start},
                count=BATCH,
                block=BLOCK_MS if start == ">" else None,
            )
        except ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            await broker.ensure_group(self.redis, self.stream)
            return []
        entries: list[tuple[str, dict[str, str]]] = []
        reply: Any = got or []
        for _stream, items in reply:
            entries.extend((str(mid), dict(f)) for mid, f in items if f)
        return entries

    async def one_pass(self) -> None:
        entries = await self._read("0") or await self._read(">")
        for mid, fields in entries:
            if self.spec.consume == "ack-first":
                await self.redis.xack(self.stream, GROUP, mid)
                await failpoint("after-ack")
                await self.apply(fields)
            else:
                await self.apply(fields)
                await failpoint("after-apply")
                await self.redis.xack(self.stream, GROUP, mid)
                await failpoint("after-ack")

    async def loop(self) -> None:
        while True:
            try:
                await self.one_pass()
            except (StoreUnavailable, RedisError, psycopg.Error, OSError, FailpointError) as e:
                log.warning("consumer pass failed: %s", e)
                await asyncio.sleep(ERROR_PAUSE_S)

    async def progress(self) -> dict[str, Any]:
        groups = await self.redis.xinfo_groups(self.stream)
        mine = next((g for g in groups if g.get("name") == GROUP), {})

        async def count(conn: psycopg.AsyncConnection[Any]) -> int:
            cur = await conn.execute("SELECT count(*) FROM consumer.effects")
            row = await cur.fetchone()
            await conn.commit()
            return int(row[0]) if row else 0

        return {
            "applied": await self.pool.run(count, "consumer store", 10.0),
            "pending": int(mine.get("pending") or 0),
            "lag": int(mine.get("lag") or 0),
        }

    async def effects(self) -> list[dict[str, Any]]:
        async def read(conn: psycopg.AsyncConnection[Any]) -> list[dict[str, Any]]:
            cur = await conn.execute(
                "SELECT event_id::text, order_id, version, status, command, applied,"
                " deliveries, first_seq, applied_at FROM consumer.effects ORDER BY first_seq"
            )
            rows = await cur.fetchall()
            await conn.commit()
            keys = "event order version status command applied deliveries first_seq applied_at"
            return [dict(zip(keys.split(), row, strict=True)) for row in rows]

        return await self.pool.run(read, "consumer store", 15.0)

    async def streams(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for stream in broker.STREAMS:
            entries: Any = await self.redis.xrange(stream)
            out[stream] = [
                {
                    "id": mid,
                    "event": f.get("event"),
                    "order": f.get("order"),
                    "version": int(f.get("version", 0)),
                }
                for mid, f in entries
            ]
        return out

    async def start(self) -> None:
        # A broker down at start is no reason to die: the loop makes the group on NOGROUP.
        with contextlib.suppress(RedisError, OSError):
            await broker.ensure_group(self.redis, self.stream)
        self._task = asyncio.create_task(self.loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        await self.pool.close()
        with contextlib.suppress(Exception):
            await self.redis.aclose()


_consumer: Consumer | None = None


def consumer() -> Consumer:
    global _consumer
    if _consumer is None:
        replica = int(os.environ.get("WORKBENCH_REPLICA", "1"))
        _consumer = Consumer(from_env(), os.environ["PG_DSN"], os.environ["REDIS_URL"], replica)
    return _consumer


def _unavailable(e: Exception) -> JSONResponse:
    return JSONResponse({"error": "unavailable", "detail": str(e)}, status_code=503)


async def health(request: Request) -> JSONResponse:
    c = consumer()
    return JSONResponse({"ok": True, "variant": c.spec.name, "stream": c.stream})


async def progress(request: Request) -> JSONResponse:
    try:
        return JSONResponse(await consumer().progress())
    except (StoreUnavailable, RedisError, psycopg.Error) as e:
        return _unavailable(e)


async def effects(request: Request) -> JSONResponse:
    try:
        return JSONResponse({"effects": await consumer().effects()})
    except (StoreUnavailable, psycopg.Error) as e:
        return _unavailable(e)


async def stream(request: Request) -> JSONResponse:
    try:
        return JSONResponse({"streams": await deadline(consumer().streams(), 15.0, "broker")})
    except (StoreUnavailable, RedisError) as e:
        return _unavailable(e)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    await deadline(consumer().start(), 15.0, "consumer start")
    yield
    await consumer().close()


app = FailpointMiddleware(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/progress", progress),
            Route("/_effects", effects),
            Route("/_stream", stream),
        ],
        lifespan=lifespan,
    )
)
