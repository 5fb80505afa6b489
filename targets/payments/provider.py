"""The fake payment provider: moves the money and keeps the ground truth.

Run as ``python -m uvicorn targets.payments.provider:app --host 127.0.0.1 --port PORT`` with
``PG_DSN`` set. Charges live in the ``provider`` schema of PostgreSQL (fsync on), so neither a
provider kill nor a database crash loses one, and any replica count would see the same ledger.

- ``POST /charges`` with ``{account, amount_cents, currency, metadata}`` and optionally an
  ``Idempotency-Key`` header. With a key it honours it as Stripe does: the first request charges
  (201), every later one with the same key gets that same charge back (200) and moves no money.
  Without a key every request is a new charge. Answers ``{"charge": {...}, "replayed": bool}``;
  503 when its database is unreachable (the charge may or may not exist: the caller retries).
- ``GET /charges`` -> ``{"charges": [{id, idempotency_key, account, amount_cents, currency,
  metadata}, ...]}`` in creation order: the final read of the ground truth.
- ``GET /health``; ``/_failpoints`` (``docs/failpoints.md``; points ``provider-before-charge``,
  ``provider-after-charge``: after the charge committed, before answering).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from targets.pg_pool import PgPool, StoreUnavailable
from workbench import FailpointError, FailpointMiddleware, declare_failpoints, failpoint

_COLUMNS = "id, idempotency_key, account, amount_cents, currency, metadata"


def _charge(row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(
        zip(
            ("id", "idempotency_key", "account", "amount_cents", "currency", "metadata"),
            row,
            strict=True,
        )
    )


class Provider:
    def __init__(self, dsn: str) -> None:
        self.pool = PgPool(dsn, timeout=2.0, application_name="payments")

    async def create_charge(self, request: Request) -> JSONResponse:
        try:
            body = await request.json()
            account = str(body["account"])
            amount = int(body["amount_cents"])
            currency = str(body["currency"])
            metadata = body.get("metadata") or {}
        except (ValueError, KeyError, TypeError) as e:
            return JSONResponse({"error": f"bad charge request: {e}"}, status_code=400)
        key = request.headers.get("idempotency-key")
        charge_id = "ch_" + uuid.uuid4().hex[:24]

        async def txn(conn: psycopg.AsyncConnection[Any]) -> tuple[dict[str, Any], bool]:
            async with conn.transaction():
                cur = await conn.execute(
                    "INSERT INTO provider.charges (id, idempotency_key, account, amount_cents,"
                    " currency, metadata) VALUES (%s, %s, %s, %s, %s, %s)"
                    f" ON CONFLICT (idempotency_key) DO NOTHING RETURNING {_COLUMNS}",
                    (charge_id, key, account, amount, currency, Jsonb(metadata)),
                )
                row = await cur.fetchone()
                if row is not None:
                    return _charge(row), False
                # The key was used before (a concurrent first use waited on the unique index
                # above): answer with that charge, moving no money.
                cur = await conn.execute(
                    f"SELECT {_COLUMNS} FROM provider.charges WHERE idempotency_key = %s", (key,)
                )
                row = await cur.fetchone()
                assert row is not None
                return _charge(row), True

        try:
            await failpoint("provider-before-charge")
            charge, replayed = await self.pool.run(txn, "charge")
            await failpoint("provider-after-charge")
        except StoreUnavailable as e:
            return JSONResponse({"error": f"provider store unavailable: {e}"}, status_code=503)
        except FailpointError as e:
            return JSONResponse({"error": str(e)}, status_code=500)
        return JSONResponse(
            {"charge": charge, "replayed": replayed}, status_code=200 if replayed else 201
        )

    async def list_charges(self, request: Request) -> JSONResponse:
        async def txn(conn: psycopg.AsyncConnection[Any]) -> list[dict[str, Any]]:
            async with conn.transaction():
                cur = await conn.execute(f"SELECT {_COLUMNS} FROM provider.charges ORDER BY seq")
                return [_charge(r) for r in await cur.fetchall()]

        try:
            charges = await self.pool.run(txn, "list charges", timeout=10.0)
        except StoreUnavailable as e:
            return JSONResponse({"error": str(e)}, status_code=503)
        return JSONResponse({"charges": charges})

    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "service": "provider"})

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        await self.pool.close()


declare_failpoints("provider-before-charge", "provider-after-charge")


def make_app(dsn: str) -> FailpointMiddleware:
    p = Provider(dsn)
    app = Starlette(
        routes=[
            Route("/charges", p.create_charge, methods=["POST"]),
            Route("/charges", p.list_charges, methods=["GET"]),
            Route("/health", p.health, methods=["GET"]),
        ],
        lifespan=p.lifespan,
    )
    return FailpointMiddleware(app)


app = make_app(os.environ.get("PG_DSN", "postgresql://workbench@127.0.0.1:5432/workbench"))
