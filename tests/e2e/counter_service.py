"""A tiny service for end-to-end tests: adds unique elements to a PostgreSQL table.

POST /add {"element": n} -> 200 {"element": n}; GET /read -> {"elements": [...]}; GET /health.
The database is reached through the proxied link the runtime gives in ``PG_DSN``.
"""

from __future__ import annotations

import os

import psycopg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

DSN = os.environ.get("PG_DSN", "")


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def add(request: Request) -> JSONResponse:
    body = await request.json()
    async with await psycopg.AsyncConnection.connect(DSN, connect_timeout=2, autocommit=True) as c:
        await c.execute("INSERT INTO elements (element) VALUES (%s)", (int(body["element"]),))
    return JSONResponse({"element": body["element"]})


async def read(request: Request) -> JSONResponse:
    async with await psycopg.AsyncConnection.connect(DSN, connect_timeout=2, autocommit=True) as c:
        cur = await c.execute("SELECT element FROM elements ORDER BY element")
        rows = await cur.fetchall()
    return JSONResponse({"elements": [r[0] for r in rows]})


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/add", add, methods=["POST"]),
        Route("/read", read),
    ]
)
