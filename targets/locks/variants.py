"""The locks target's variants: one correct or buggy way each to protect a read-modify-write.

A variant is a handful of switches read by both the target (topology, faults, checkers) and the
service (which lock, which release, whether the resource checks fencing tokens). The service
gets the variant's name in ``LOCKS_VARIANT`` and looks it up here, so the two always agree.
See docs/catalogue/locks.md for each bug's interleaving, the fault that exposes it and the
checker that reports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

LockKind = Literal["redis", "pg-advisory-xact", "pg-advisory-session", "none"]
Release = Literal["compare-and-delete", "delete", "unlock", "commit", "none"]
Txn = Literal["autocommit", "serializable", "read-committed", "optimistic"]

RESOURCES = ("r0", "r1", "r2")
"""Independent resources, each with its own lock: a paused replica then very likely holds one."""

LEASE_MS = 1000
"""Lease of the Redis locks; a `pause` window (2-6 s by default) outlives it."""

WORK_MS = 100
"""Time a holder spends between reading the resource and writing it (its computation). Long
enough that a replica frozen at a random instant is likely to be inside a critical section."""

SLEEP_MS = 1500
"""Sleep of the failpoints in the catalogue mixes: longer than a lease and an idle timeout."""

BETWEEN = f"failpoint:point=between-acquire-and-write:action=sleep:ms={SLEEP_MS}:probability=0.3"


@dataclass(frozen=True)
class Variant:
    name: str
    line: str
    correct: bool
    lock: LockKind
    release: Release
    fenced: bool = False
    """The resource rejects reads and writes carrying a token below the highest it has seen."""
    txn: Txn = "autocommit"
    setnx_then_expire: bool = False
    redis_persistence: Literal["aof-always", "none"] = "aof-always"
    ignore_rowcount: bool = False
    lock_idle_timeout_ms: int | None = None
    probes: bool = False
    """Also run acquire/release operations, checked as a linearizable mutex."""
    faults: tuple[str, ...] = field(default_factory=tuple)

    @property
    def uses_redis(self) -> bool:
        return self.lock == "redis"


_REDIS_ALL = (
    "pause",
    "kill",
    "partition:links=*->redis",
    "partition:links=*->pg",
    "redis-kill",
    "pg-terminate",
    BETWEEN,
)
_PG_ALL = ("pause", "kill", "partition:links=*->pg", "pg-terminate", "pg-crash", BETWEEN)

VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "redis-fenced",
            "Redis SET NX PX lease, Lua compare-and-delete release, INCR fencing token the "
            "resource checks on read and write (correct)",
            True,
            "redis",
            "compare-and-delete",
            fenced=True,
            faults=_REDIS_ALL,
        ),
        Variant(
            "pg-advisory-fenced",
            "pg_advisory_xact_lock in the same transaction as the read-modify-write, plus a "
            "fencing token from a sequence (correct)",
            True,
            "pg-advisory-xact",
            "commit",
            fenced=True,
            faults=_PG_ALL,
        ),
        Variant(
            "optimistic-version",
            "no lock: UPDATE ... WHERE version = :read_version, zero rows means re-read and "
            "retry (correct)",
            True,
            "none",
            "none",
            txn="optimistic",
            faults=_PG_ALL,
        ),
        Variant(
            "serializable",
            "no lock: the read-modify-write in one SERIALIZABLE transaction, retried on "
            "SQLSTATE 40001 (correct)",
            True,
            "none",
            "none",
            txn="serializable",
            faults=_PG_ALL,
        ),
        Variant(
            "redis-unfenced",
            "BUG: the Redis lease lock with no fencing token check: a holder paused past its "
            "lease writes after the next holder",
            False,
            "redis",
            "compare-and-delete",
            faults=("pause", BETWEEN),
        ),
        Variant(
            "unconditional-release",
            "BUG: release by plain DEL: a holder whose lease ran out deletes the next holder's "
            "lock and a third one walks in",
            False,
            "redis",
            "delete",
            faults=(f"failpoint:point=before-release:action=sleep:ms={SLEEP_MS}",),
        ),
        Variant(
            "setnx-then-expire",
            "BUG: SETNX then EXPIRE as two commands: a crash between them leaves a lock that "
            "never expires (liveness)",
            False,
            "redis",
            "compare-and-delete",
            setnx_then_expire=True,
            faults=("failpoint:point=between-setnx-and-expire:action=crash",),
        ),
        Variant(
            "redis-volatile",
            "BUG: the lock's Redis has no persistence: a restart forgets every lock and resets "
            "the token counter",
            False,
            "redis",
            "compare-and-delete",
            redis_persistence="none",
            faults=("redis-kill",),
        ),
        Variant(
            "pg-advisory-session-lost",
            "BUG: session-level pg_advisory_lock on its own connection; when that session ends "
            "(terminate, idle timeout) the holder keeps working",
            False,
            "pg-advisory-session",
            "unlock",
            lock_idle_timeout_ms=1000,
            probes=True,
            faults=("pg-terminate:application_name=locks-lock", "pause", BETWEEN),
        ),
        Variant(
            "read-committed-rmw",
            "BUG: no lock: SELECT then UPDATE in one READ COMMITTED transaction (lost update, "
            "Hermitage P4)",
            False,
            "none",
            "none",
            txn="read-committed",
            faults=("latency:links=*->pg:latency=20:jitter=10",),
        ),
        Variant(
            "version-ignored",
            "BUG: UPDATE ... WHERE version = :v whose zero row count is treated as success",
            False,
            "none",
            "none",
            txn="optimistic",
            ignore_rowcount=True,
            faults=("latency:links=*->pg:latency=20:jitter=10",),
        ),
    )
}

CORRECT = [v.name for v in VARIANTS.values() if v.correct]
BUGGY = [v.name for v in VARIANTS.values() if not v.correct]


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise KeyError(f"no locks variant {name!r}; variants: {', '.join(VARIANTS)}") from None
