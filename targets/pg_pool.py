"""Deadlines that return on time, and a tiny PostgreSQL connection pool built on them (shared by
the bundled targets' services).

Why not ``asyncio.wait_for``: cancelling a psycopg query makes psycopg send a cancel request and
wait for the server (up to 5 + 5 s), and through a blackholed proxy that wait is the whole 10 s.
:func:`deadline` instead abandons the task: the caller gets :class:`StoreUnavailable` at the
deadline while the task winds down in the background (its connection is thrown away).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg

T = TypeVar("T")

#: Server-side limits so that a stalled or paused replica cannot hold row locks for long.
PG_OPTIONS = (
    "-c statement_timeout=3000 -c lock_timeout=2000 -c idle_in_transaction_session_timeout=4000"
)


class StoreUnavailable(RuntimeError):
    """The store did not answer in time or the connection failed: outcome unknown."""


_background: set[asyncio.Task[Any]] = set()


def _forget(task: asyncio.Task[Any]) -> None:
    _background.discard(task)
    if not task.cancelled():
        # Retrieve the exception so asyncio does not log "never retrieved".
        task.exception()


async def deadline(aw: Awaitable[T], seconds: float, what: str) -> T:
    """``await aw`` for at most ``seconds``; afterwards raises :class:`StoreUnavailable` and
    abandons ``aw`` (cancelled, not awaited). Errors of ``aw`` propagate unchanged."""
    task: asyncio.Task[T] = asyncio.ensure_future(aw)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if task in done:
        return task.result()
    task.cancel()
    _background.add(task)
    task.add_done_callback(_forget)
    raise StoreUnavailable(f"{what}: no answer within {seconds:.1f} s")


class PgPool:
    """Idle connections kept for reuse; a connection that saw any error is closed, never reused.

    ``run(fn)`` gives ``fn`` a connection (autocommit off, READ COMMITTED) and returns its result;
    connection and server errors become :class:`StoreUnavailable`.
    """

    def __init__(
        self, dsn: str, *, size: int = 8, timeout: float = 2.0, application_name: str = "target"
    ) -> None:
        self.dsn = dsn
        self.application_name = application_name
        self.size = size
        self.timeout = timeout
        self._idle: list[psycopg.AsyncConnection[Any]] = []

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            self.dsn, connect_timeout=2, options=PG_OPTIONS, application_name=self.application_name
        )

    async def _run(self, fn: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        conn = self._idle.pop() if self._idle else await self._connect()
        try:
            result = await fn(conn)
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.close()
            raise
        if (
            conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            and len(self._idle) < self.size
        ):
            self._idle.append(conn)
        else:
            with contextlib.suppress(Exception):
                await conn.close()
        return result

    async def run(
        self,
        fn: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]],
        what: str,
        timeout: float | None = None,
    ) -> T:
        try:
            return await deadline(self._run(fn), timeout or self.timeout, what)
        except (
            psycopg.OperationalError,
            psycopg.InterfaceError,
            psycopg.errors.QueryCanceled,
        ) as e:
            raise StoreUnavailable(f"{what}: {type(e).__name__}: {e}") from e
        except psycopg.errors.LockNotAvailable as e:
            raise StoreUnavailable(f"{what}: lock timeout") from e

    async def close(self) -> None:
        while self._idle:
            with contextlib.suppress(Exception):
                await self._idle.pop().close()
