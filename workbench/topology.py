"""What a target asks the runtime to start: databases, services and the links between them.

A target describes its topology declaratively; a runtime (local processes today, Docker later)
turns it into running servers and returns a :class:`workbench.runtime.cluster.Cluster`.

Every edge goes through its own Toxiproxy proxy so it can be faulted by name:

- ``client->{service}-{i}``: how the workload's clients reach replica ``i`` (1-based);
- ``{service}-{i}->{dependency}``: how replica ``i`` reaches a database or another service.

A service reaches its dependencies through environment variables the runtime sets for it:
``{DEP}_HOST`` / ``{DEP}_PORT`` (the proxy's address; DEP is the dependency's name upper-cased
with ``-`` as ``_``), plus ``{DEP}_DSN`` for PostgreSQL (``postgresql://workbench@127.0.0.1:PORT/workbench``)
and ``{DEP}_URL`` for Redis (``redis://127.0.0.1:PORT/0``) and HTTP services
(``http://127.0.0.1:PORT``). Each replica also gets ``WORKBENCH_SERVICE``, ``WORKBENCH_REPLICA``,
``WORKBENCH_PORT`` (the port it must listen on, 127.0.0.1) and ``WORKBENCH_RUN_DIR``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

RedisPersistence = Literal["aof-always", "aof-everysec", "none"]


@dataclass(frozen=True)
class Postgres:
    """A throwaway PostgreSQL server (fsync on), with database and user ``workbench``.

    ``init_sql`` runs once after start, before any service starts (schemas, seed rows).
    """

    name: str = "pg"
    init_sql: str = ""


@dataclass(frozen=True)
class Redis:
    """A throwaway Redis server. ``persistence`` decides what a kill loses."""

    name: str = "redis"
    persistence: RedisPersistence = "aof-always"


@dataclass(frozen=True)
class HttpReady:
    """Ready when ``GET path`` answers 2xx."""

    path: str = "/health"


@dataclass(frozen=True)
class Service:
    """A target service run as ``replicas`` subprocesses.

    ``command`` is an argv; ``{port}`` in it is replaced by the replica's listen port.
    ``depends_on`` names databases or other services (each gets a proxied link per replica).
    ``faketime`` starts the service under libfaketime so a clock fault can shift its clock at
    run time.
    """

    name: str
    command: Sequence[str]
    replicas: int = 1
    env: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[str] = ()
    ready: HttpReady = field(default_factory=HttpReady)
    ready_timeout: float = 20.0
    faketime: bool = False
    client_facing: bool = True


@dataclass(frozen=True)
class Topology:
    """Databases first, then services in order (a service may depend on an earlier one)."""

    postgres: Sequence[Postgres] = ()
    redis: Sequence[Redis] = ()
    services: Sequence[Service] = ()

    def database_names(self) -> list[str]:
        return [p.name for p in self.postgres] + [r.name for r in self.redis]

    def validate(self) -> None:
        """Raises ValueError naming the problem when names clash or a dependency is unknown."""
        names: list[str] = self.database_names() + [s.name for s in self.services]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"topology names used twice: {', '.join(dupes)}")
        known: set[str] = set(self.database_names())
        for s in self.services:
            for dep in s.depends_on:
                if dep not in known:
                    raise ValueError(
                        f"service {s.name!r} depends on {dep!r}, which is not a database or an "
                        f"earlier service (known: {', '.join(sorted(known)) or 'none'})"
                    )
            if s.replicas < 1:
                raise ValueError(f"service {s.name!r} needs at least one replica")
            known.add(s.name)
