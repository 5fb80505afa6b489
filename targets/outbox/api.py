"""The order service: places orders and changes their status, one transaction per command.

Run as ``python -m uvicorn targets.outbox.api:app`` with ``OUTBOX_VARIANT``, ``PG_DSN`` and
(for the variants that publish directly) ``REDIS_URL`` set.

Contract (JSON):

- ``POST /orders`` ``{"order": "o17", "command": "o17:created"}`` -> 201 ``{"order",
  "version": 1, "status": "created", "event", "replayed": false}``; 409 ``duplicate_order`` when
  the order exists under another command;
- ``POST /orders/{order}/status`` ``{"status": "paid"|"shipped"|"cancelled", "command"}`` ->
  200 the same shape; 409 ``invalid_transition`` (created -> paid -> shipped; cancel from
  created or paid), 404 ``unknown_order``;
- a command seen before answers its first answer again (``"replayed": true``), with no new
  change: the client may retry any command;
- 503 ``{"error": "store_unavailable"}`` / 500: the outcome is unknown;
- ``GET /_orders`` -> ``{"orders": {id: {"status", "version"}}, "changes": [...], "outbox":
  {event: {"state", "claimed_by"}}}`` (the final read; ``outbox`` only where the relay marks
  rows: not for cursor or CDC relays, nor without an outbox);
- ``GET /health``; ``/_failpoints``: ``before-commit`` (inside the transaction, every row
  written), ``after-commit`` (committed, nothing published yet).

How the event gets out depends on the variant's ``write`` (see ``variants.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from targets.outbox import broker
from targets.outbox.variants import Variant, from_env
from targets.pg_pool import PgPool, StoreUnavailable, deadline
from workbench import FailpointMiddleware, declare_failpoints, failpoint

STATUSES = ("created", "paid", "shipped", "cancelled")
NEXT: dict[str, frozenset[str]] = {
    "created": frozenset({"paid", "cancelled"}),
    "paid": frozenset({"shipped", "cancelled"}),
}
BROKER_TIMEOUT = 1.5

declare_failpoints("before-commit", "after-commit")


class Refused(Exception):
    """The command was judged and refused: nothing changed."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


@dataclass(frozen=True)
class Effects:
    """What one command does, as data (the side-effect machine's handler result): the order's
    new row and the event message. Every variant computes it; they differ in how it is made
    durable and sent."""

    order: str
    status: str
    version: int
    event: str
    command: str

    def message(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "order": self.order,
            "version": self.version,
            "status": self.status,
            "command": self.command,
        }

    def answer(self, *, replayed: bool = False) -> dict[str, Any]:
        return {
            "order": self.order,
            "version": self.version,
            "status": self.status,
            "event": self.event,
            "replayed": replayed,
        }


def decide(order: str, command: str, current: tuple[str, int] | None, status: str) -> Effects:
    """The handler: the effects of moving ``order`` (``current`` = (status, version) or None
    when absent) to ``status``; raises :class:`Refused` when the move is not allowed."""
    if status == "created":
        if current is not None:
            raise Refused(409, "duplicate_order")
        return Effects(order, "created", 1, str(uuid.uuid4()), command)
    if current is None:
        raise Refused(404, "unknown_order")
    if status not in NEXT.get(current[0], frozenset()):
        raise Refused(409, "invalid_transition")
    return Effects(order, status, current[1] + 1, str(uuid.uuid4()), command)


class OrderService:
    def __init__(self, spec: Variant, dsn: str, redis_url: str | None) -> None:
        self.spec = spec
        self.pool = PgPool(dsn, application_name="orders-api")
        self.redis = broker.connect(redis_url, timeout=BROKER_TIMEOUT) if redis_url else None

    async def publish(self, message: dict[str, Any]) -> None:
        if self.redis is None:
            raise RuntimeError("this variant has no broker link")
        try:
            await deadline(broker.publish(self.redis, message), BROKER_TIMEOUT + 0.5, "broker")
        except RedisError as e:
            raise StoreUnavailable(f"broker: {type(e).__name__}: {e}") from e

    async def command(self, order: str, command: str, status: str) -> tuple[dict[str, Any], bool]:
        """Runs one command; returns (answer, created). Raises Refused or StoreUnavailable."""
        spec = self.spec

        async def txn(conn: psycopg.AsyncConnection[Any]) -> tuple[Effects | None, Any]:
            async with conn.transaction():
                cur = await conn.execute(
                    "INSERT INTO commands (command, result, messages) VALUES (%s, '{}', '[]')"
                    " ON CONFLICT DO NOTHING RETURNING command",
                    (command,),
                )
                if await cur.fetchone() is None:
                    cur = await conn.execute(
                        "SELECT result, messages FROM commands WHERE command = %s", (command,)
                    )
                    row = await cur.fetchone()
                    assert row is not None
                    return None, row
                cur = await conn.execute(
                    "SELECT status, version FROM orders WHERE order_id = %s FOR UPDATE", (order,)
                )
                found = await cur.fetchone()
                effects = decide(order, command, None if found is None else found, status)
                if found is None:
                    await conn.execute(
                        "INSERT INTO orders (order_id, status, version) VALUES (%s, %s, 1)",
                        (order, effects.status),
                    )
                else:
                    await conn.execute(
                        "UPDATE orders SET status = %s, version = %s WHERE order_id = %s",
                        (effects.status, effects.version, order),
                    )
                await conn.execute(
                    "INSERT INTO order_changes (event_id, order_id, version, status, command,"
                    " committed_at) VALUES (%s, %s, %s, %s, %s,"
                    " extract(epoch from clock_timestamp()))",
                    (effects.event, order, effects.version, effects.status, command),
                )
                if spec.write == "outbox":
                    await conn.execute(
                        "INSERT INTO outbox (event_id, aggregate_id, version, payload)"
                        " VALUES (%s, %s, %s, %s)",
                        (effects.event, order, effects.version, Jsonb(effects.message())),
                    )
                await conn.execute(
                    "UPDATE commands SET result = %s, messages = %s WHERE command = %s",
                    (Jsonb(effects.answer()), Jsonb([effects.message()]), command),
                )
                if spec.write == "publish-before-commit":
                    await self.publish(effects.message())
                await failpoint("before-commit")
            return effects, None

        try:
            effects, stored = await self.pool.run(txn, "orders store", timeout=4.0)
        except Refused:
            raise
        except psycopg.Error as e:
            raise StoreUnavailable(f"orders store: {type(e).__name__}: {e}") from e
        if effects is None:
            answer, messages = stored
            if spec.write == "side-effect-machine":
                # The idempotency error still sends: the crash this replay may follow could
                # have come between the commit and the send.
                for message in messages:
                    await self.publish(message)
            return {**answer, "replayed": True}, False
        await failpoint("after-commit")
        if spec.write in ("dual-write", "side-effect-machine"):
            await self.publish(effects.message())
        return effects.answer(), True

    async def final_read(self) -> dict[str, Any]:
        async def read(conn: psycopg.AsyncConnection[Any]) -> dict[str, Any]:
            cur = await conn.execute("SELECT order_id, status, version FROM orders")
            orders = {o: {"status": s, "version": v} for o, s, v in await cur.fetchall()}
            cur = await conn.execute(
                "SELECT event_id::text, order_id, version, status, command, committed_at"
                " FROM order_changes ORDER BY committed_at"
            )
            changes = [
                {
                    "event": e,
                    "order": o,
                    "version": v,
                    "status": s,
                    "command": c,
                    "committed_at": t,
                }
                for e, o, v, s, c, t in await cur.fetchall()
            ]
            out: dict[str, Any] = {"orders": orders, "changes": changes}
            # Only relays that mark rows keep state in them; cursor and CDC relays never
            # touch a row, so its columns would say "pending" of every row they published.
            if self.spec.relay in ("skip-locked", "mark-first", "claim-column", "no-lock"):
                cur = await conn.execute(
                    "SELECT event_id::text, sent_at IS NOT NULL, claimed_by FROM outbox"
                )
                out["outbox"] = {
                    e: {
                        "state": "sent" if sent else ("claimed" if by else "pending"),
                        "claimed_by": by,
                    }
                    for e, sent, by in await cur.fetchall()
                }
            await conn.rollback()
            return out

        return await self.pool.run(read, "orders store", timeout=15.0)

    async def close(self) -> None:
        await self.pool.close()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()


_service: OrderService | None = None


def service() -> OrderService:
    global _service
    if _service is None:
        spec = from_env()
        redis_url = os.environ.get("REDIS_URL") if spec.write != "outbox" else None
        _service = OrderService(spec, os.environ["PG_DSN"], redis_url)
    return _service


def _error(status: int, error: str, detail: str = "") -> JSONResponse:
    body = {"error": error}
    if detail:
        body["detail"] = detail
    return JSONResponse(body, status_code=status)


async def _run(order: str, command: Any, status: str) -> JSONResponse:
    if not isinstance(command, str) or not command:
        return _error(400, "bad_request", "command must be a non-empty string")
    if status not in STATUSES:
        return _error(400, "bad_request", f"unknown status {status!r}")
    try:
        answer, created = await service().command(order, command, status)
    except Refused as e:
        return _error(e.status, e.error)
    except StoreUnavailable as e:
        return _error(503, "store_unavailable", str(e))
    return JSONResponse(answer, status_code=201 if created and status == "created" else 200)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, json.JSONDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


async def place(request: Request) -> JSONResponse:
    body = await _body(request)
    order = body.get("order")
    if not isinstance(order, str) or not order:
        return _error(400, "bad_request", "order must be a non-empty string")
    return await _run(order, body.get("command"), "created")


async def set_status(request: Request) -> JSONResponse:
    body = await _body(request)
    status = body.get("status")
    if status == "created" or not isinstance(status, str):
        return _error(400, "bad_request", "status must be paid, shipped or cancelled")
    return await _run(request.path_params["order"], body.get("command"), status)


async def orders(request: Request) -> JSONResponse:
    try:
        return JSONResponse(await service().final_read())
    except StoreUnavailable as e:
        return _error(503, "store_unavailable", str(e))


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "variant": service().spec.name})


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    service()
    yield
    if _service is not None:
        await _service.close()


app = FailpointMiddleware(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/orders", place, methods=["POST"]),
            Route("/orders/{order}/status", set_status, methods=["POST"]),
            Route("/_orders", orders),
        ],
        lifespan=lifespan,
    )
)
