"""The relay: moves events from the outbox (or the WAL) to the broker, in a loop of its own.

Run as ``python -m uvicorn targets.outbox.relay:app`` with ``OUTBOX_VARIANT``, ``PG_DSN`` and
``REDIS_URL``. The HTTP side only reports: ``GET /health``, ``GET /progress`` -> ``{"backlog":
n}`` (events this relay still means to publish, by its own bookkeeping), and ``/_failpoints``:
``after-claim`` (events taken, none published) and ``after-publish`` (all published, none marked).

One pass per loop iteration, by the variant's ``relay`` (see ``variants.py``); a pass that
fails (database or broker unreachable) is abandoned and the next one starts after a pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from targets.outbox import broker
from targets.outbox.variants import SLOT, Variant, from_env
from targets.pg_pool import PgPool, StoreUnavailable, deadline
from workbench import FailpointError, FailpointMiddleware, declare_failpoints, failpoint

BATCH = 50
IDLE_S = 0.05
ERROR_PAUSE_S = 0.3
PASS_TIMEOUT = 6.0

declare_failpoints("after-claim", "after-publish")
log = logging.getLogger("relay")

_UNSENT = "SELECT id, event_id::text, payload FROM outbox o WHERE sent_at IS NULL"
# Only an order's oldest unsent event: its later ones wait until it is marked sent.
_OLDEST = (
    " AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.aggregate_id = o.aggregate_id"
    " AND e.sent_at IS NULL AND e.version < o.version)"
)
# test_decoding's line for an outbox insert; the payload column holds the whole event.
_INSERT = re.compile(r"^table public\.outbox: INSERT: .*? payload\[jsonb\]:'((?:[^']|'')*)'")


def parse_insert(line: str) -> dict[str, Any] | None:
    """The event of a test_decoding ``INSERT`` line of the outbox, or None for any other."""
    m = _INSERT.match(line)
    if m is None:
        return None
    value = json.loads(m.group(1).replace("''", "'"))
    return value if isinstance(value, dict) else None


class Relay:
    def __init__(self, spec: Variant, dsn: str, redis_url: str, name: str) -> None:
        self.spec = spec
        self.name = name
        self.pool = PgPool(dsn, size=2, timeout=PASS_TIMEOUT, application_name="relay")
        self.redis = broker.connect(redis_url)
        self._task: asyncio.Task[None] | None = None

    async def publish(self, events: list[dict[str, Any]]) -> None:
        await broker.publish_all(self.redis, events)

    # -- passes: each returns how many events it published --

    async def skip_locked(self, conn: psycopg.AsyncConnection[Any]) -> int:
        lock = "" if self.spec.relay == "no-lock" else " FOR UPDATE SKIP LOCKED"
        oldest = _OLDEST if self.spec.per_aggregate_order else ""
        async with conn.transaction():
            cur = await conn.execute(f"{_UNSENT}{oldest} ORDER BY id LIMIT {BATCH}{lock}")
            rows = await cur.fetchall()
            if not rows:
                return 0
            await failpoint("after-claim")
            await self.publish([r[2] for r in rows])
            await failpoint("after-publish")
            await conn.execute(
                "UPDATE outbox SET sent_at = now(), claimed_by = %s WHERE id = ANY(%s)",
                (self.name, [r[0] for r in rows]),
            )
        return len(rows)

    async def mark_first(self, conn: psycopg.AsyncConnection[Any]) -> int:
        async with conn.transaction():
            cur = await conn.execute(
                "UPDATE outbox SET sent_at = now(), claimed_by = %s WHERE id IN"
                f" (SELECT id FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT {BATCH}"
                " FOR UPDATE SKIP LOCKED) RETURNING id, payload",
                (self.name,),
            )
            rows = sorted(await cur.fetchall())
        if not rows:
            return 0
        await failpoint("after-claim")
        await self.publish([r[1] for r in rows])
        await failpoint("after-publish")
        return len(rows)

    async def claim_column(self, conn: psycopg.AsyncConnection[Any]) -> int:
        # The claim names this process; nothing ever looks at claims of processes that died.
        async with conn.transaction():
            cur = await conn.execute(
                "UPDATE outbox SET claimed_by = %s, claimed_at = now() WHERE id IN"
                " (SELECT id FROM outbox WHERE sent_at IS NULL AND claimed_by IS NULL"
                f" ORDER BY id LIMIT {BATCH} FOR UPDATE SKIP LOCKED) RETURNING id, payload",
                (f"{self.name}/{os.getpid()}",),
            )
            rows = sorted(await cur.fetchall())
        if not rows:
            return 0
        await failpoint("after-claim")
        await self.publish([r[1] for r in rows])
        await failpoint("after-publish")
        async with conn.transaction():
            await conn.execute(
                "UPDATE outbox SET sent_at = now() WHERE id = ANY(%s)", ([r[0] for r in rows],)
            )
        return len(rows)

    async def _cursor(self, conn: psycopg.AsyncConnection[Any]) -> tuple[str, int]:
        cur = await conn.execute(
            "SELECT last_tx::text, last_id FROM relay_cursor WHERE relay = %s", (self.name,)
        )
        row = await cur.fetchone()
        await conn.commit()
        return ("0", 0) if row is None else (str(row[0]), int(row[1]))

    async def _save_cursor(
        self, conn: psycopg.AsyncConnection[Any], last_tx: str, last_id: int
    ) -> None:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO relay_cursor (relay, last_tx, last_id) VALUES (%s, %s::xid8, %s)"
                " ON CONFLICT (relay) DO UPDATE SET last_tx = excluded.last_tx,"
                " last_id = excluded.last_id",
                (self.name, last_tx, last_id),
            )

    async def cursor(self, conn: psycopg.AsyncConnection[Any]) -> int:
        last_tx, last_id = await self._cursor(conn)
        if self.spec.relay == "serial-cursor":
            cur = await conn.execute(
                "SELECT o.txid::text, o.id, o.payload FROM outbox o WHERE o.id > %s"
                f" ORDER BY o.id LIMIT {BATCH}",
                (last_id,),
            )
        else:
            # A transaction below the snapshot's xmin has finished: nothing can commit later
            # with an earlier (txid, id), so the cursor never passes a row still to come.
            # ORDER BY names the table's column: a bare "txid" would sort by the output
            # column txid::text, as text ("10000" < "9999"), publishing out of order.
            cur = await conn.execute(
                "SELECT o.txid::text, o.id, o.payload FROM outbox o"
                " WHERE (o.txid, o.id) > (%s::xid8, %s)"
                " AND o.txid < pg_snapshot_xmin(pg_current_snapshot())"
                f" ORDER BY o.txid, o.id LIMIT {BATCH}",
                (last_tx, last_id),
            )
        rows = await cur.fetchall()
        await conn.commit()
        if not rows:
            return 0
        await failpoint("after-claim")
        await self.publish([r[2] for r in rows])
        await failpoint("after-publish")
        await self._save_cursor(conn, str(rows[-1][0]), int(rows[-1][1]))
        return len(rows)

    async def cdc(self, conn: psycopg.AsyncConnection[Any]) -> int:
        fn = "get" if self.spec.relay == "cdc-advance-first" else "peek"
        # Whole transactions only (the limit is checked at transaction ends): the last row is
        # a COMMIT, and advancing to its position confirms every event before it.
        cur = await conn.execute(
            f"SELECT lsn::text, data FROM pg_logical_slot_{fn}_changes(%s, NULL, %s,"
            " 'skip-empty-xacts', '1')",
            (SLOT, BATCH * 8),
        )
        rows = await cur.fetchall()
        await conn.commit()
        if not rows:
            return 0
        events = [e for _, line in rows if (e := parse_insert(line)) is not None]
        await failpoint("after-claim")
        await self.publish(events)
        await failpoint("after-publish")
        if fn == "peek":
            await conn.execute(
                "SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (SLOT, rows[-1][0])
            )
            await conn.commit()
        return len(events)

    async def one_pass(self) -> int:
        relay = self.spec.relay
        if relay in ("skip-locked", "no-lock"):
            return await self.pool.run(self.skip_locked, "relay pass", PASS_TIMEOUT)
        if relay == "mark-first":
            return await self.pool.run(self.mark_first, "relay pass", PASS_TIMEOUT)
        if relay == "claim-column":
            return await self.pool.run(self.claim_column, "relay pass", PASS_TIMEOUT)
        if relay in ("serial-cursor", "xid-cursor"):
            return await self.pool.run(self.cursor, "relay pass", PASS_TIMEOUT)
        return await self.pool.run(self.cdc, "relay pass", PASS_TIMEOUT)

    async def backlog(self) -> int:
        relay = self.spec.relay

        async def count(conn: psycopg.AsyncConnection[Any]) -> int:
            if relay in ("serial-cursor", "xid-cursor"):
                last_tx, last_id = await self._cursor(conn)
                where = "id > %s" if relay == "serial-cursor" else "(txid, id) > (%s::xid8, %s)"
                args: tuple[Any, ...] = (
                    (last_id,) if relay == "serial-cursor" else (last_tx, last_id)
                )
                cur = await conn.execute(f"SELECT count(*) FROM outbox WHERE {where}", args)
            elif self.spec.uses_slot:
                cur = await conn.execute(
                    "SELECT count(*) FROM pg_logical_slot_peek_changes(%s, NULL, NULL)"
                    " WHERE data LIKE 'table public.outbox: INSERT:%%'",
                    (SLOT,),
                )
            elif relay == "claim-column":
                cur = await conn.execute(
                    "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND claimed_by IS NULL"
                )
            else:
                cur = await conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            row = await cur.fetchone()
            await conn.commit()
            return int(row[0]) if row else 0

        return await self.pool.run(count, "relay backlog", 10.0)

    async def ensure_slot(self) -> None:
        async def create(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.set_autocommit(True)
            try:
                cur = await conn.execute(
                    "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (SLOT,)
                )
                if await cur.fetchone() is None:
                    await conn.execute(
                        "SELECT pg_create_logical_replication_slot(%s, 'test_decoding')", (SLOT,)
                    )
            finally:
                await conn.set_autocommit(False)

        await self.pool.run(create, "create slot", 20.0)

    async def loop(self) -> None:
        while True:
            try:
                published = await self.one_pass()
            except (StoreUnavailable, RedisError, psycopg.Error, OSError, FailpointError) as e:
                log.warning("relay pass failed: %s", e)
                await asyncio.sleep(ERROR_PAUSE_S)
                continue
            if not published:
                await asyncio.sleep(IDLE_S)

    async def start(self) -> None:
        if self.spec.uses_slot:
            # Before /health answers, so no order is written before the slot exists.
            await self.ensure_slot()
        self._task = asyncio.create_task(self.loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        await self.pool.close()
        with contextlib.suppress(Exception):
            await self.redis.aclose()


_relay: Relay | None = None


def relay() -> Relay:
    global _relay
    if _relay is None:
        name = f"relay-{os.environ.get('WORKBENCH_REPLICA', '1')}"
        _relay = Relay(from_env(), os.environ["PG_DSN"], os.environ["REDIS_URL"], name)
    return _relay


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "variant": relay().spec.name, "relay": relay().name})


async def progress(request: Request) -> JSONResponse:
    try:
        return JSONResponse({"backlog": await relay().backlog()})
    except (StoreUnavailable, psycopg.Error) as e:
        return JSONResponse({"error": "store_unavailable", "detail": str(e)}, status_code=503)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    await deadline(relay().start(), 25.0, "relay start")
    yield
    await relay().close()


app = FailpointMiddleware(
    Starlette(
        routes=[Route("/health", health), Route("/progress", progress)],
        lifespan=lifespan,
    )
)
