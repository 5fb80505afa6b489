"""The locks themselves: a Redis lease and a PostgreSQL session advisory lock.

Each ``acquire`` polls until a deadline and raises :class:`LockUnavailable` when it passes: the
operation then did nothing to the resource (a definite ``fail``). Releases never raise: a holder
that cannot release leaves a lease to expire, or a session to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import zlib
from typing import Any

import psycopg
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from targets.locks.variants import Variant
from workbench import failpoint

POLL_S = (0.005, 0.015)
"""Pause between two attempts to take a busy lock (uniform in this range)."""

ACQUIRE_SCRIPT = """
if redis.call('exists', KEYS[1]) == 1 then return false end
local token = redis.call('incr', KEYS[2])
redis.call('set', KEYS[1], token, 'NX', 'PX', ARGV[1])
return token
"""
"""``SET lock token NX PX ttl`` with the token drawn by ``INCR``, atomically."""

RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
"""Compare-and-delete: only the holder whose token is in the lock may delete it."""


class LockUnavailable(Exception):
    """The lock could not be taken before the deadline (nothing was done)."""


def advisory_key(name: str) -> int:
    """A stable 32-bit advisory lock key for a lock name."""
    return zlib.crc32(f"locks:{name}".encode())


async def _poll() -> None:
    await asyncio.sleep(random.uniform(*POLL_S))


def redis_client(url: str) -> aioredis.Redis:
    """No retries: a command is sent once, so its outcome is what we were told."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
        decode_responses=True,
    )


class RedisLease:
    """A lease in Redis: ``lock:{name}`` holds the holder's token and expires after ``ttl_ms``.

    ``setnx_then_expire`` takes it the broken way: ``INCR``, ``SETNX``, then ``PEXPIRE`` as a
    separate command (failpoint ``between-setnx-and-expire`` sits between the last two).
    """

    def __init__(self, client: aioredis.Redis, variant: Variant, ttl_ms: int):
        self.redis = client
        self.variant = variant
        self.ttl_ms = ttl_ms
        self._acquire = client.register_script(ACQUIRE_SCRIPT)
        self._release = client.register_script(RELEASE_SCRIPT)

    @staticmethod
    def keys(name: str) -> tuple[str, str]:
        return f"lock:{name}", f"lock-token:{name}"

    async def _try(self, name: str) -> int | None:
        lock, counter = self.keys(name)
        if not self.variant.setnx_then_expire:
            got = await self._acquire(keys=[lock, counter], args=[self.ttl_ms])
            return None if got is None else int(got)
        if await self.redis.exists(lock):
            return None
        token = int(await self.redis.incr(counter))
        if not await self.redis.setnx(lock, token):
            return None
        await failpoint("between-setnx-and-expire")
        await self.redis.pexpire(lock, self.ttl_ms)
        return token

    async def acquire(self, name: str, deadline: float) -> int:
        """The fencing token of a new lease; raises :class:`LockUnavailable` at ``deadline``
        (``time.monotonic()`` seconds)."""
        last: str = "lock busy"
        while True:
            try:
                token = await self._try(name)
                if token is not None:
                    return token
                last = "lock busy"
            except (aioredis.RedisError, OSError) as e:
                last = f"redis: {type(e).__name__}: {e}"
            if time.monotonic() >= deadline:
                raise LockUnavailable(f"could not take lock {name} ({last})")
            await _poll()

    async def release(self, name: str, token: int) -> bool:
        lock, _ = self.keys(name)
        try:
            if self.variant.release == "delete":
                return bool(await self.redis.delete(lock))
            return bool(await self._release(keys=[lock], args=[str(token)]))
        except (aioredis.RedisError, OSError):
            return False


class SessionLock:
    """``pg_advisory_lock`` on a connection of its own (application_name ``locks-lock``).

    The lock lives as long as that session: if the session ends (terminated, idle timeout,
    network cut) PostgreSQL releases it, and nothing tells the holder.
    """

    APPLICATION = "locks-lock"

    def __init__(self, dsn: str, idle_timeout_ms: int | None) -> None:
        self.dsn = dsn
        self.idle_timeout_ms = idle_timeout_ms
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self.key = 0

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        options = ""
        if self.idle_timeout_ms is not None:
            options = f"-c idle_session_timeout={self.idle_timeout_ms}"
        return await psycopg.AsyncConnection.connect(
            self.dsn,
            autocommit=True,
            connect_timeout=2,
            application_name=self.APPLICATION,
            options=options,
        )

    async def try_once(self, name: str) -> bool:
        """One attempt (for the acquire/release probes); the session stays open when taken."""
        self.key = advisory_key(name)
        self.conn = await self._connect()
        cur = await self.conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
        row = await cur.fetchone()
        if row is not None and row[0]:
            return True
        await self.close()
        return False

    async def acquire(self, name: str, deadline: float) -> None:
        """Waits in PostgreSQL's lock queue (``pg_advisory_lock`` under ``lock_timeout``), so
        the lock passes to a waiter the moment its holder's session ends."""
        self.key = advisory_key(name)
        last = "lock busy"
        while True:
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                raise LockUnavailable(f"could not take advisory lock {name} ({last})")
            try:
                self.conn = await self._connect()
                await self.conn.execute(f"SET lock_timeout = {max(left_ms, 1)}")
                await self.conn.execute("SELECT pg_advisory_lock(%s)", (self.key,))
                await self.conn.execute("SET lock_timeout = 0")
                return
            except psycopg.errors.LockNotAvailable:
                last = "lock busy"
            except psycopg.Error as e:
                last = f"postgres: {type(e).__name__}: {e}"
            await self.close()
            await _poll()

    async def unlock(self) -> bool:
        """True when the session was alive and released the lock."""
        if self.conn is None:
            return False
        try:
            cur = await self.conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            row = await cur.fetchone()
            return bool(row is not None and row[0])
        except psycopg.Error:
            return False
        finally:
            await self.close()

    async def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
