"""Database faults: crash PostgreSQL (WAL recovery on restart), terminate its client sessions,
kill Redis (what survives depends on its persistence).

Option ``node``: which server (a name from the topology); default the only one, or one drawn
with the campaign's rng when there are several.
"""

from __future__ import annotations

import random
import time
from typing import Any, ClassVar

from workbench.fault import FaultError, FaultNotHealed
from workbench.runtime.cluster import Cluster, Node


def _pick(pool: dict[str, Any], node: str | None, what: str, rng: random.Random) -> str:
    if not pool:
        raise FaultError(f"the cluster has no {what} server")
    if node is not None:
        if node not in pool:
            raise FaultError(f"no {what} server {node!r}; there are: {', '.join(sorted(pool))}")
        return node
    return rng.choice(sorted(pool))


class _CrashFault:
    """SIGKILL a database server (its whole process group); start it again on stop."""

    name: ClassVar[str]
    description: ClassVar[str]
    what: ClassVar[str]
    #: Acts on processes, so it cannot reach an External server (refused before the run).
    process_fault: ClassVar[bool] = True

    def __init__(self, *, node: str | None = None) -> None:
        self.node = node
        self._target: str | None = None

    def _pool(self, cluster: Cluster) -> dict[str, Node]:
        raise NotImplementedError

    def start(self, cluster: Cluster, rng: random.Random) -> dict[str, Any]:
        """Returns ``{"node": name, "pid": pid, "signal": "SIGKILL"}``."""
        name = _pick(self._pool(cluster), self.node, self.what, rng)
        server = self._pool(cluster)[name]
        pid = server.pid
        server.kill()
        self._target = name
        return {"node": name, "pid": pid, "signal": "SIGKILL"}

    def stop(self, cluster: Cluster) -> dict[str, Any]:
        """Returns ``{"node": name, "pid": new pid, "recovery_s": seconds until ready}``."""
        if self._target is None:
            return {}
        server = self._pool(cluster)[self._target]
        began = time.monotonic()
        if not server.is_running():
            server.start()
        name, self._target = self._target, None
        return {"node": name, "pid": server.pid, "recovery_s": round(time.monotonic() - began, 3)}

    def heal(self, cluster: Cluster) -> None:
        errors: list[str] = []
        for name, server in sorted(self._pool(cluster).items()):
            try:
                if server.is_paused():
                    server.resume()
                if not server.is_running():
                    server.start()
            except Exception as e:
                errors.append(f"{name}: {e}")
        self._target = None
        if errors:
            raise FaultError("heal could not restart: " + "; ".join(errors))

    def verify_healed(self, cluster: Cluster) -> None:
        problems: list[str] = []
        for name, server in sorted(self._pool(cluster).items()):
            if not server.is_running():
                problems.append(f"{self.what} {name} is not running")
            elif server.is_paused():
                problems.append(f"{self.what} {name} is stopped (SIGSTOP)")
            elif not self._answers(cluster, name):
                problems.append(f"{self.what} {name} is not accepting connections")
        if problems:
            raise FaultNotHealed("; ".join(problems))

    def _answers(self, cluster: Cluster, name: str) -> bool:
        raise NotImplementedError


class PgCrash(_CrashFault):
    name = "pg-crash"
    description = "SIGKILL the PostgreSQL postmaster and backends; restart and recover on stop"
    what = "PostgreSQL"

    def _pool(self, cluster: Cluster) -> dict[str, Node]:
        # Only servers the harness runs: an External PostgreSQL is not in ``nodes``.
        return {n: s for n, s in cluster.postgres.items() if n in cluster.nodes}

    def _answers(self, cluster: Cluster, name: str) -> bool:
        return cluster.postgres[name].accepts_connections()


class RedisKill(_CrashFault):
    name = "redis-kill"
    description = "SIGKILL a Redis server; restart it on stop (loses what its persistence loses)"
    what = "Redis"

    def _pool(self, cluster: Cluster) -> dict[str, Node]:
        return {n: s for n, s in cluster.redis.items() if n in cluster.nodes}

    def _answers(self, cluster: Cluster, name: str) -> bool:
        return cluster.redis[name].ping()


class PgTerminate:
    """Instantaneous: ``pg_terminate_backend`` of the client sessions (the services')."""

    name = "pg-terminate"
    description = "pg_terminate_backend the services' PostgreSQL sessions (optionally by app name)"

    def __init__(self, *, node: str | None = None, application_name: str | None = None) -> None:
        self.node = node
        self.application_name = application_name

    def start(self, cluster: Cluster, rng: random.Random) -> dict[str, Any]:
        """Returns ``{"node": name, "terminated": count, "application_name": str | None}``."""
        name = _pick(dict(cluster.postgres), self.node, "PostgreSQL", rng)
        count = cluster.postgres[name].terminate_backends(self.application_name)
        return {"node": name, "terminated": count, "application_name": self.application_name}

    def stop(self, cluster: Cluster) -> dict[str, Any]:
        return {}

    def heal(self, cluster: Cluster) -> None:
        return None

    def verify_healed(self, cluster: Cluster) -> None:
        down = [n for n, pg in sorted(cluster.postgres.items()) if not pg.accepts_connections()]
        if down:
            raise FaultNotHealed(
                "; ".join(f"PostgreSQL {n} is not accepting connections" for n in down)
            )
