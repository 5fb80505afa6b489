"""What a target asks the runtime to start: databases, services and the links between them.

A target describes its topology declaratively; a runtime (local processes today, Docker later)
turns it into running servers and returns a :class:`workbench.runtime.cluster.Cluster`.

Every edge goes through its own Toxiproxy proxy so it can be faulted by name:

- ``client->{service}-{i}``: how the workload's clients reach replica ``i`` (1-based);
- ``{service}-{i}->{dependency}``: how replica ``i`` reaches a database or another service.

**The environment contract.** A service replica learns where everything is from environment
variables the runtime sets (DEP is the dependency's name upper-cased, ``-`` as ``_``):

=========================  ===========================================================
``{DEP}_HOST``, ``_PORT``  the address of the replica's proxy to DEP (127.0.0.1)
``{DEP}_DSN``              PostgreSQL: ``postgresql://workbench@127.0.0.1:PORT/workbench``
``{DEP}_URL``              Redis (``redis://127.0.0.1:PORT/0``) and HTTP services
                           (``http://127.0.0.1:PORT``); PostgreSQL gets it too (= DSN)
``WORKBENCH_PORT``         the port the replica must listen on, on 127.0.0.1
``WORKBENCH_SERVICE``      the service's name; ``WORKBENCH_REPLICA`` its 1-based index
``WORKBENCH_RUN_DIR``      the campaign's run directory
=========================  ===========================================================

An app that reads its own names needs no wrapper: ``urls={"DATABASE_URL": "pg"}`` also puts the
URL of dependency ``pg`` in ``DATABASE_URL``, and ``{port}`` in ``env`` values or the command is
replaced by the listen port (``env={"PORT": "{port}"}``).

**Services you already run.** :class:`External` names a server the harness does not start: an
HTTP service (``http://``), a PostgreSQL (``postgresql://``) or a Redis (``redis://``). The
harness still puts a Toxiproxy proxy in front of it, so every network fault applies; a process
fault (kill, pause, clock, database crash) aimed at it is refused before the campaign starts.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import urlsplit

RedisPersistence = Literal["aof-always", "aof-everysec", "none"]
ExternalKind = Literal["http", "postgres", "redis"]
#: PostgreSQL settings the harness fixes: a crash test means nothing without them.
PROTECTED_PG_SETTINGS = frozenset({"fsync", "synchronous_commit", "full_page_writes"})


@dataclass(frozen=True)
class Postgres:
    """A throwaway PostgreSQL server (fsync on), with database and user ``workbench``.

    ``init_sql`` runs once after start, before any service starts (schemas, seed rows), as
    user ``workbench`` (which may create logical replication slots). ``settings`` are server
    parameters (``{"wal_level": "logical"}``) passed at every start; the harness's own
    (``fsync``, ``synchronous_commit``, ``full_page_writes``) cannot be overridden: crash tests
    depend on them.
    """

    name: str = "pg"
    init_sql: str = ""
    settings: Mapping[str, str] = field(default_factory=dict)


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

    ``command`` is an argv; ``{port}`` in it (and in ``env`` values) is replaced by the replica's
    listen port. For an ASGI app use :meth:`Service.asgi`, which writes the server's argv.
    ``depends_on`` names databases, externals or earlier services (each gets a proxied link per
    replica); ``urls`` maps extra environment variable names to dependencies (``{"DATABASE_URL":
    "pg"}``). ``faketime`` starts the service under libfaketime so a clock fault can shift its
    clock at run time. ``client_facing=False``: no ``client->`` links (an internal service).
    """

    name: str
    command: Sequence[str]
    replicas: int = 1
    env: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[str] = ()
    urls: Mapping[str, str] = field(default_factory=dict)
    ready: HttpReady = field(default_factory=HttpReady)
    ready_timeout: float = 20.0
    faketime: bool = False
    client_facing: bool = True

    @classmethod
    def asgi(
        cls,
        name: str,
        app: str,
        *,
        replicas: int = 1,
        env: Mapping[str, str] | None = None,
        depends_on: Sequence[str] = (),
        urls: Mapping[str, str] | None = None,
        ready: HttpReady | None = None,
        ready_timeout: float = 20.0,
        faketime: bool = False,
        client_facing: bool = True,
        app_dir: str | None = None,
    ) -> Service:
        """An ASGI app (``"pkg.module:app"``) served by uvicorn on the replica's port.

        ``app_dir`` is where the module is imported from (default: the harness's working
        directory, as ``python -m`` does). Graceful shutdown is capped at 1 s so a stop after a
        fault does not wait on hung requests.
        """
        argv = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", "{port}"]
        argv += ["--no-access-log", "--log-level", "warning", "--timeout-graceful-shutdown", "1"]
        if app_dir is not None:
            argv += ["--app-dir", app_dir]
        return cls(
            name,
            argv,
            replicas=replicas,
            env=dict(env or {}),
            depends_on=tuple(depends_on),
            urls=dict(urls or {}),
            ready=ready or HttpReady(),
            ready_timeout=ready_timeout,
            faketime=faketime,
            client_facing=client_facing,
        )


_SCHEMES: dict[str, ExternalKind] = {
    "http": "http",
    "https": "http",
    "postgres": "postgres",
    "postgresql": "postgres",
    "redis": "redis",
}


@dataclass(frozen=True)
class External:
    """A server you already run, at ``url`` (or several URLs: one replica each).

    The scheme says what it is: ``http://`` a service (its replicas are ``{name}-1`` ...,
    reached through ``client->{name}-{i}`` proxies), ``postgresql://`` a PostgreSQL (the DSN is
    kept, host and port swapped for the proxy's in ``{NAME}_DSN``), ``redis://`` a Redis. Only
    plain TCP is proxied: ``https`` is refused by the runtime.
    """

    name: str
    url: str | Sequence[str]

    @property
    def urls(self) -> list[str]:
        return [self.url] if isinstance(self.url, str) else list(self.url)

    @property
    def kind(self) -> ExternalKind:
        return _SCHEMES[urlsplit(self.urls[0]).scheme]

    def validate(self) -> None:
        """Raises ValueError naming the problem: no URL, an unknown scheme, no port, mixed."""
        if not self.urls:
            raise ValueError(f"external {self.name!r} has no URL")
        kinds: set[str] = set()
        for url in self.urls:
            parts = urlsplit(url)
            if parts.scheme not in _SCHEMES:
                raise ValueError(
                    f"external {self.name!r}: {url!r} is not an http://, postgresql:// or "
                    "redis:// URL"
                )
            if parts.scheme == "https":
                raise ValueError(
                    f"external {self.name!r}: {url!r} uses TLS, which a Toxiproxy link carries "
                    "but the harness cannot check readiness of; give its plain http:// address"
                )
            try:
                port = parts.port
            except ValueError:
                port = None
            if not parts.hostname or port is None:
                raise ValueError(f"external {self.name!r}: {url!r} needs a host and a port")
            kinds.add(_SCHEMES[parts.scheme])
        if len(kinds) > 1:
            raise ValueError(f"external {self.name!r} mixes kinds of server: {sorted(kinds)}")
        if self.kind != "http" and len(self.urls) > 1:
            raise ValueError(f"external {self.name!r}: a database takes one URL")


@dataclass(frozen=True)
class Topology:
    """Databases and externals first, then services in order (a service may depend on an
    earlier one)."""

    postgres: Sequence[Postgres] = ()
    redis: Sequence[Redis] = ()
    services: Sequence[Service] = ()
    external: Sequence[External] = ()

    def database_names(self) -> list[str]:
        return [p.name for p in self.postgres] + [r.name for r in self.redis]

    def part_names(self) -> list[str]:
        return (
            self.database_names()
            + [e.name for e in self.external]
            + [s.name for s in self.services]
        )

    def links(self) -> list[tuple[str, str, str]]:
        """Every proxied edge the runtime creates, as ``(name, source, target)``:
        ``client->{replica}`` for client-facing services and http externals, and
        ``{replica}->{dependency}`` for each dependency of each service replica."""
        out: list[tuple[str, str, str]] = []
        for e in self.external:
            if e.kind == "http":
                for i in range(1, len(e.urls) + 1):
                    out.append((f"client->{e.name}-{i}", "client", f"{e.name}-{i}"))
        for s in self.services:
            for i in range(1, s.replicas + 1):
                replica = f"{s.name}-{i}"
                if s.client_facing:
                    out.append((f"client->{replica}", "client", replica))
                out.extend((f"{replica}->{dep}", replica, dep) for dep in s.depends_on)
        return out

    def node_names(self) -> list[str]:
        """The processes the harness runs: each database and each service replica."""
        replicas = [f"{s.name}-{i}" for s in self.services for i in range(1, s.replicas + 1)]
        return self.database_names() + replicas

    def externals(self) -> dict[str, External]:
        return {e.name: e for e in self.external}

    def with_external(self, name: str, url: str | Sequence[str]) -> Topology:
        """This topology with the part ``name`` (a service or database it would start) replaced
        by an :class:`External` at ``url``; raises ValueError when there is no such part or the
        kinds disagree (a PostgreSQL replaced by an http:// URL)."""
        ext = External(name, url)
        ext.validate()
        kind_of: dict[str, ExternalKind] = {}
        kind_of.update({p.name: "postgres" for p in self.postgres})
        kind_of.update({r.name: "redis" for r in self.redis})
        kind_of.update({s.name: "http" for s in self.services})
        kind_of.update({e.name: e.kind for e in self.external})
        if name not in kind_of:
            raise ValueError(
                f"--external {name}=...: the topology has no part {name!r}; parts: "
                + (", ".join(self.part_names()) or "none")
            )
        if kind_of[name] != ext.kind:
            raise ValueError(
                f"--external {name}=...: {name!r} is a {kind_of[name]} part, the URL is {ext.kind}"
            )
        return replace(
            self,
            postgres=[p for p in self.postgres if p.name != name],
            redis=[r for r in self.redis if r.name != name],
            services=[s for s in self.services if s.name != name],
            external=[e for e in self.external if e.name != name] + [ext],
        )

    def validate(self) -> None:
        """Raises ValueError naming the problem when names clash or a dependency is unknown."""
        names = self.part_names()
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"topology names used twice: {', '.join(dupes)}")
        for e in self.external:
            e.validate()
        for p in self.postgres:
            fixed = sorted(k for k in p.settings if k in PROTECTED_PG_SETTINGS)
            if fixed:
                raise ValueError(
                    f"postgres {p.name!r}: setting {', '.join(fixed)} is the harness's own "
                    "(crash tests depend on it); remove it from settings"
                )
        known: set[str] = set(self.database_names()) | {e.name for e in self.external}
        for s in self.services:
            for dep in [*s.depends_on, *s.urls.values()]:
                if dep not in known:
                    listed = ", ".join(sorted(known)) or "none"
                    raise ValueError(
                        f"service {s.name!r} depends on {dep!r}, which is not a database, an "
                        f"external or an earlier service (known: {listed})"
                    )
            for dep in s.urls.values():
                if dep not in s.depends_on:
                    raise ValueError(
                        f"service {s.name!r}: urls names {dep!r}, which is not in its depends_on"
                    )
            if s.replicas < 1:
                raise ValueError(f"service {s.name!r} needs at least one replica")
            known.add(s.name)
