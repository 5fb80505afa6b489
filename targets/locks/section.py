"""One locked read-modify-write per request, the way each variant does it.

The shape is always: take the lock, read the resource, compute (``WORK_MS``), write, release.
Failpoints mark the steps: ``after-acquire``, ``between-acquire-and-write`` (after the read,
before the write: a pause here is Kleppmann's GC pause), ``before-release``.

What the caller is told follows Jepsen's meaning: ``ok`` once the write committed; ``fail`` only
when the write cannot have taken effect (the lock was not taken, the resource refused the
write, an error before the write was sent); ``info`` when the write's outcome is unknown (an
error while the committing statement or COMMIT was in flight). There is deliberately no
deadline on the critical section once the lock is held: a holder that was paused finishes its
write when it resumes, as a real one would.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
from psycopg import errors

from targets.locks import resource
from targets.locks.locking import LockUnavailable, RedisLease, SessionLock, advisory_key
from targets.locks.variants import WORK_MS, Variant
from workbench import failpoint

Status = Literal["ok", "fail", "info"]
ACQUIRE_TIMEOUT_S = 2.0
RETRY_TIMEOUT_S = 3.0


@dataclass
class Outcome:
    status: Status
    error: str | None = None
    value: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "error": self.error, "value": self.value}


@dataclass(frozen=True)
class Request:
    kind: str  # "incr" | "append"
    resource: str
    op_id: str
    arg: int | None


class _Committing:
    """Tracks whether the committing statement was sent (errors after that are ``info``)."""

    def __init__(self) -> None:
        self.sent = False


class Sections:
    """The critical sections of one worker process."""

    def __init__(
        self,
        variant: Variant,
        *,
        pg_dsn: str,
        writer: str,
        lease: RedisLease | None = None,
        work_ms: int = WORK_MS,
    ) -> None:
        self.v = variant
        self.dsn = pg_dsn
        self.writer = writer
        self.lease = lease
        self.work_s = work_ms / 1000

    async def _connect(self, autocommit: bool = True) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            self.dsn, autocommit=autocommit, connect_timeout=2, application_name="locks-worker"
        )

    async def run(self, req: Request) -> Outcome:
        c = _Committing()
        try:
            if self.v.lock == "redis":
                return await self._redis(req, c)
            if self.v.lock == "pg-advisory-xact":
                return await self._xact(req, c)
            if self.v.lock == "pg-advisory-session":
                return await self._session(req, c)
            if self.v.txn == "optimistic":
                return await self._optimistic(req, c)
            return await self._transaction(req, c)
        except LockUnavailable as e:
            return Outcome("fail", str(e))
        except Exception as e:
            what = f"{type(e).__name__}: {e}"
            if c.sent:
                return Outcome("info", f"outcome unknown: {what}")
            return Outcome("fail", f"before the write: {what}")

    def _ok(
        self, req: Request, seq: int | None, state: resource.State, token: int | None
    ) -> Outcome:
        value = state.value + 1 if req.kind == "incr" else state.value
        return Outcome(
            "ok",
            value={
                "resource": req.resource,
                "seq": seq,
                "based_on": state.version,
                "token": token,
                "writer": self.writer,
                "value": value,
            },
        )

    async def _write(
        self,
        conn: psycopg.AsyncConnection[Any],
        req: Request,
        state: resource.State,
        token: int | None,
        c: _Committing,
        *,
        autocommit: bool,
        match_version: bool = False,
    ) -> int | None:
        if autocommit:
            c.sent = True
        return await resource.write(
            conn,
            req.resource,
            state,
            kind=req.kind,
            arg=req.arg,
            op_id=req.op_id,
            writer=self.writer,
            token=token,
            fenced=self.v.fenced,
            match_version=match_version,
        )

    # -- Redis lease: redis-fenced and its broken siblings --

    async def _redis(self, req: Request, c: _Committing) -> Outcome:
        assert self.lease is not None
        async with await self._connect() as conn:
            token = await self.lease.acquire(req.resource, time.monotonic() + ACQUIRE_TIMEOUT_S)
            try:
                await failpoint("after-acquire")
                state = await resource.read(conn, req.resource, token=token, fenced=self.v.fenced)
                if state is None:
                    return Outcome("fail", f"fenced out: the resource saw a token above {token}")
                await asyncio.sleep(self.work_s)
                await failpoint("between-acquire-and-write")
                seq = await self._write(conn, req, state, token, c, autocommit=True)
                if seq is None:
                    return Outcome("fail", f"fenced out at write: token {token} is stale")
                return self._ok(req, seq, state, token)
            finally:
                await failpoint("before-release")
                await self.lease.release(req.resource, token)

    # -- pg_advisory_xact_lock in the transaction that writes --

    async def _xact(self, req: Request, c: _Committing) -> Outcome:
        async with await self._connect(autocommit=False) as conn:
            timeout_ms = int(ACQUIRE_TIMEOUT_S * 1000)
            await conn.execute(f"SET LOCAL lock_timeout = {timeout_ms}")
            try:
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(%s)", (advisory_key(req.resource),)
                )
            except errors.LockNotAvailable:
                await conn.rollback()
                raise LockUnavailable(f"advisory lock {req.resource} busy") from None
            cur = await conn.execute("SELECT nextval('locks_tokens')")
            row = await cur.fetchone()
            assert row is not None
            token = int(row[0])
            await failpoint("after-acquire")
            state = await resource.read(conn, req.resource, token=token, fenced=True)
            if state is None:
                await conn.rollback()
                return Outcome("fail", f"fenced out: the resource saw a token above {token}")
            await asyncio.sleep(self.work_s)
            await failpoint("between-acquire-and-write")
            seq = await self._write(conn, req, state, token, c, autocommit=False)
            if seq is None:
                await conn.rollback()
                return Outcome("fail", f"fenced out at write: token {token} is stale")
            await failpoint("before-release")
            c.sent = True
            await conn.commit()  # releases the lock with the transaction
            return self._ok(req, seq, state, token)

    # -- session advisory lock on a connection of its own (the bug) --

    async def _session(self, req: Request, c: _Committing) -> Outcome:
        lock = SessionLock(self.dsn, self.v.lock_idle_timeout_ms)
        async with await self._connect() as conn:
            await lock.acquire(req.resource, time.monotonic() + ACQUIRE_TIMEOUT_S)
            try:
                cur = await conn.execute("SELECT nextval('locks_tokens')")
                row = await cur.fetchone()
                assert row is not None
                token = int(row[0])
                await failpoint("after-acquire")
                state = await resource.read(conn, req.resource)
                assert state is not None
                await asyncio.sleep(self.work_s)
                await failpoint("between-acquire-and-write")
                # The bug: nothing checks that the lock's session is still alive.
                seq = await self._write(conn, req, state, token, c, autocommit=True)
                return self._ok(req, seq, state, token)
            finally:
                await failpoint("before-release")
                await lock.unlock()

    # -- no lock: optimistic concurrency on the row's version --

    async def _optimistic(self, req: Request, c: _Committing) -> Outcome:
        deadline = time.monotonic() + RETRY_TIMEOUT_S
        conflicts = 0
        async with await self._connect() as conn:
            while True:
                state = await resource.read(conn, req.resource)
                assert state is not None
                await asyncio.sleep(self.work_s)
                await failpoint("between-acquire-and-write")
                seq = await self._write(
                    conn, req, state, None, c, autocommit=True, match_version=True
                )
                c.sent = False  # a refused write had no effect; the next attempt starts afresh
                if seq is not None:
                    return self._ok(req, seq, state, None)
                if self.v.ignore_rowcount:
                    # The bug: zero rows updated is reported as success.
                    return self._ok(req, None, state, None)
                conflicts += 1
                if time.monotonic() >= deadline:
                    return Outcome("fail", f"version changed under {conflicts} attempts")
                await asyncio.sleep(random.uniform(0.001, 0.01 * min(conflicts, 5)))

    # -- no lock: one transaction (SERIALIZABLE with retries, or READ COMMITTED: the bug) --

    async def _transaction(self, req: Request, c: _Committing) -> Outcome:
        serializable = self.v.txn == "serializable"
        deadline = time.monotonic() + RETRY_TIMEOUT_S
        aborts = 0
        async with await self._connect(autocommit=False) as conn:
            if serializable:
                await conn.set_isolation_level(psycopg.IsolationLevel.SERIALIZABLE)
            while True:
                try:
                    state = await resource.read(conn, req.resource)
                    assert state is not None
                    await asyncio.sleep(self.work_s)
                    await failpoint("between-acquire-and-write")
                    seq = await self._write(conn, req, state, None, c, autocommit=False)
                    c.sent = True
                    await conn.commit()
                    return self._ok(req, seq, state, None)
                except (errors.SerializationFailure, errors.DeadlockDetected) as e:
                    # SQLSTATE 40001/40P01, at any statement or at COMMIT: the transaction was
                    # rolled back, nothing of it happened.
                    c.sent = False
                    await conn.rollback()
                    aborts += 1
                    if not serializable or time.monotonic() >= deadline:
                        return Outcome("fail", f"aborted {aborts} times: {e.sqlstate}")
                    await asyncio.sleep(random.uniform(0.001, 0.01 * min(aborts, 5)))
