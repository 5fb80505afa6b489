"""The local runtime: a topology as processes on this machine, every edge through Toxiproxy.

:func:`start_local_cluster` starts, in order: the databases, toxiproxy-server, one proxy per
link (all at once with ``/populate``), then the services in topology order (a service may depend
on an earlier one), each replica with environment variables pointing at its proxies. Any failure
tears down whatever was started and raises :class:`RuntimeStartError`.

Link and proxy names: the link ``client->api-1`` is Toxiproxy proxy ``client__to__api-1`` (``->``
is awkward in URLs); ``Link.name`` keeps the human name, ``Link.proxy`` the proxy's.
A dependency on a *service* with several replicas gives replica ``i`` a link to replica
``((i - 1) mod n) + 1`` of it.

Externals (servers the user runs, :mod:`workbench.runtime.external`) are checked to accept
connections before anything else starts, and get proxies like any other part; they are never
started, stopped or put in ``nodes``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from workbench.failpoints import TOKEN_ENV
from workbench.runtime.cluster import ClockNode, Link, Node, PostgresNode, RedisNode
from workbench.runtime.errors import RuntimeStartError
from workbench.runtime.external import (
    ExternalPostgres,
    ExternalRedis,
    check_reachable,
    host_port,
    with_address,
)
from workbench.runtime.ports import HOST
from workbench.runtime.postgres import PostgresServer
from workbench.runtime.process import PidRegistry
from workbench.runtime.redis import RedisServer
from workbench.runtime.services import ServiceReplica
from workbench.runtime.toxiproxy import Proxy, ToxiproxyClient, ToxiproxyError, ToxiproxyServer
from workbench.topology import External, Service, Topology


def proxy_name(link_name: str) -> str:
    """Toxiproxy-safe proxy name of a link: ``client->api-1`` -> ``client__to__api-1``."""
    return link_name.replace("->", "__to__")


def env_name(dep: str) -> str:
    """Environment prefix of a dependency: ``order-db`` -> ``ORDER_DB``."""
    return dep.upper().replace("-", "_")


class LocalCluster:
    """Implements :class:`workbench.runtime.cluster.Cluster` with local processes.

    Use as a context manager (``with start_local_cluster(...) as cluster:``) or call
    :meth:`teardown` yourself; teardown is idempotent and never raises.
    """

    def __init__(self, topology: Topology, run_dir: Path, seed: int) -> None:
        self.topology = topology
        self.run_dir = run_dir
        self.seed = seed
        self.registry = PidRegistry(run_dir / "pids.json")
        # A fresh token per campaign, unless the user set one to share with their External
        # services (which read the same variable).
        self.failpoint_token = os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(18)
        self.links: dict[str, Link] = {}
        self.nodes: dict[str, Node] = {}
        self.postgres: dict[str, PostgresNode] = {}
        self.redis: dict[str, RedisNode] = {}
        self.clocks: dict[str, ClockNode] = {}
        self.externals: dict[str, External] = topology.externals()
        # External http services: replica name -> "host:port" of the server the user runs.
        self._external_replicas: dict[str, dict[str, str]] = {}
        self.toxiproxy_server: ToxiproxyServer | None = None
        # Set once toxiproxy-server is up (before any link or service exists).
        self.toxiproxy: ToxiproxyClient
        self._pg: list[PostgresServer] = []
        self._redis: list[RedisServer] = []
        self._replicas: dict[str, list[ServiceReplica]] = {}
        self._versions: dict[str, str] = {}
        self._torn_down = False
        self._teardown_lock = threading.Lock()

    # -- Cluster --

    def endpoints(self, service: str) -> list[str]:
        """``http://127.0.0.1:PORT`` per replica, through its ``client->{service}-{i}`` proxy."""
        out: list[str] = []
        for name in self.replicas(service):
            link = self.links.get(f"client->{name}")
            if link is None:
                raise KeyError(f"service {service!r} is not client-facing (no client-> links)")
            out.append(f"http://{link.listen}")
        return out

    def direct_endpoints(self, service: str) -> list[str]:
        """``http://127.0.0.1:PORT`` of each replica itself, bypassing every proxy."""
        self.replicas(service)  # KeyError naming the services when unknown
        if service in self._external_replicas:
            return [f"http://{a}" for a in self._external_replicas[service].values()]
        return [r.url for r in self._replicas[service]]

    def replicas(self, service: str) -> list[str]:
        if service in self._external_replicas:
            return list(self._external_replicas[service])
        if service not in self._replicas:
            known = [*self._replicas, *self._external_replicas]
            raise KeyError(f"no service {service!r}; services: {', '.join(known) or 'none'}")
        return [r.name for r in self._replicas[service]]

    def replica(self, name: str) -> ServiceReplica:
        """The replica object of node ``name`` (``"api-1"``)."""
        for replicas in self._replicas.values():
            for r in replicas:
                if r.name == name:
                    return r
        raise KeyError(f"no service replica {name!r}")

    def versions(self) -> dict[str, str]:
        """``{"postgresql": "15.14", "redis": "7.0.15", "toxiproxy": "2.12.0"}`` (only the
        servers the topology uses, plus toxiproxy)."""
        return dict(self._versions)

    # -- start --

    def _start(self) -> None:
        topo = self.topology
        topo.validate()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "logs").mkdir(exist_ok=True)
        for ext in topo.external:
            check_reachable(ext)
            url = ext.urls[0]
            if ext.kind == "postgres":
                self.postgres[ext.name] = ExternalPostgres(ext.name, url)
            elif ext.kind == "redis":
                self.redis[ext.name] = ExternalRedis(ext.name, url)
            else:
                self._external_replicas[ext.name] = {
                    f"{ext.name}-{i}": "{}:{}".format(*host_port(u))
                    for i, u in enumerate(ext.urls, start=1)
                }

        for spec in topo.postgres:
            pg = PostgresServer(
                spec.name,
                self.run_dir,
                init_sql=spec.init_sql,
                settings=spec.settings,
                registry=self.registry,
            )
            self._pg.append(pg)
            self.nodes[pg.name] = pg
            self.postgres[pg.name] = pg
        for rspec in topo.redis:
            rs = RedisServer(
                rspec.name, self.run_dir, persistence=rspec.persistence, registry=self.registry
            )
            self._redis.append(rs)
            self.nodes[rs.name] = rs
            self.redis[rs.name] = rs
        # Databases start in parallel: initdb + first start dominate a cluster's start-up time.
        self._parallel([pg.start for pg in self._pg] + [r.start for r in self._redis])
        if self._pg:
            self._versions["postgresql"] = self._pg[0].version()
        if self._redis:
            self._versions["redis"] = self._redis[0].version()

        self.toxiproxy_server = ToxiproxyServer(
            self.run_dir, seed=self.seed, registry=self.registry
        )
        self.toxiproxy_server.start()
        self.toxiproxy = self.toxiproxy_server.client
        self._versions["toxiproxy"] = self.toxiproxy_server.version()

        # Replicas are created (ports fixed) before the proxies, which need their upstreams.
        for svc in topo.services:
            self._replicas[svc.name] = [
                ServiceReplica(svc, i, self.run_dir, env={}, registry=self.registry)
                for i in range(1, svc.replicas + 1)
            ]
        self._create_links()
        for svc in topo.services:
            replicas = [self._with_env(svc, r) for r in self._replicas[svc.name]]
            self._replicas[svc.name] = replicas
            for r in replicas:
                self.nodes[r.name] = r
                if svc.faketime:
                    self.clocks[r.name] = r
            for r in replicas:
                r.spawn()
            for r in replicas:
                r.wait_ready()

    @staticmethod
    def _parallel(calls: list[Callable[[], None]]) -> None:
        errors: list[BaseException] = []

        def run(call: Callable[[], None]) -> None:
            try:
                call()
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in calls]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    def _upstream_of(self, dep: str, index: int) -> str:
        ext = self.externals.get(dep)
        if ext is not None:
            urls = ext.urls
            return "{}:{}".format(*host_port(urls[(index - 1) % len(urls)]))
        for pg in self._pg:
            if pg.name == dep:
                return f"{HOST}:{pg.port}"
        for rs in self._redis:
            if rs.name == dep:
                return f"{HOST}:{rs.port}"
        targets = self._replicas[dep]
        return f"{HOST}:{targets[(index - 1) % len(targets)].port}"

    def _create_links(self) -> None:
        # The names come from the topology, so the fault selectors checked against it before
        # the campaign started name exactly these links.
        wanted: list[tuple[str, str, str, str]] = []  # (link name, source, target, upstream)
        external_addresses = {n: a for r in self._external_replicas.values() for n, a in r.items()}
        replicas = {r.name: r for rs in self._replicas.values() for r in rs}
        for name, source, target in self.topology.links():
            if source == "client":
                upstream = external_addresses.get(target) or f"{HOST}:{replicas[target].port}"
            else:
                upstream = self._upstream_of(target, replicas[source].index)
            wanted.append((name, source, target, upstream))
        if not wanted:
            return
        # Listen port 0: Toxiproxy binds a free port atomically (no pick-then-bind race) and
        # keeps it across disable/enable.
        proxies = [Proxy(proxy_name(n), f"{HOST}:0", up) for n, _, _, up in wanted]
        created = {p.name: p for p in self.toxiproxy.populate(proxies)}
        for name, source, target, upstream in wanted:
            p = created[proxy_name(name)]
            self.links[name] = Link(name, p.name, source, target, p.listen, upstream)

    def _with_env(self, svc: Service, replica: ServiceReplica) -> ServiceReplica:
        """A replica with the environment of workbench/topology.py's docstring."""
        env = dict(os.environ)
        env.update({k: v.replace("{port}", str(replica.port)) for k, v in svc.env.items()})
        env.update(
            WORKBENCH_FAILPOINT_TOKEN=self.failpoint_token,
            WORKBENCH_SERVICE=svc.name,
            WORKBENCH_REPLICA=str(replica.index),
            WORKBENCH_RUN_DIR=str(self.run_dir),
        )
        pg_names = {p.name for p in self._pg}
        redis_names = {r.name for r in self._redis}
        for dep in svc.depends_on:
            link = self.links[f"{replica.name}->{dep}"]
            host, port = link.listen.rsplit(":", 1)
            prefix = env_name(dep)
            env[f"{prefix}_HOST"] = host
            env[f"{prefix}_PORT"] = port
            ext = self.externals.get(dep)
            if ext is not None and ext.kind != "http":
                # The user's own DSN (role, password, database), pointed at the proxy.
                url = with_address(ext.urls[0], host, int(port))
                env[f"{prefix}_URL"] = url
                if ext.kind == "postgres":
                    env[f"{prefix}_DSN"] = url
            elif dep in pg_names:
                dsn = f"postgresql://workbench@{host}:{port}/workbench"
                env[f"{prefix}_DSN"] = env[f"{prefix}_URL"] = dsn
            elif dep in redis_names:
                env[f"{prefix}_URL"] = f"redis://{host}:{port}/0"
            else:
                env[f"{prefix}_URL"] = f"http://{host}:{port}"
        for var, dep in svc.urls.items():
            env[var] = env[f"{env_name(dep)}_URL"]
        return ServiceReplica(
            svc, replica.index, self.run_dir, env=env, port=replica.port, registry=self.registry
        )

    # -- teardown --

    def teardown(self) -> None:
        """Services first (SIGTERM, SIGKILL after 3 s), then databases (PostgreSQL: fast
        shutdown so it releases its shared memory; Redis: SIGKILL) and toxiproxy (SIGKILL);
        waits until every process group is empty. Idempotent; never raises."""
        with self._teardown_lock:
            if self._torn_down:
                return
            self._torn_down = True
        for replicas in self._replicas.values():
            for r in replicas:
                with contextlib.suppress(Exception):
                    r.stop(timeout=3.0)
        for pg in self._pg:
            with contextlib.suppress(Exception):
                pg.stop(timeout=5.0)
        for rs in self._redis:
            with contextlib.suppress(Exception):
                rs.kill()
        if self.toxiproxy_server is not None:
            with contextlib.suppress(Exception):
                self.toxiproxy_server.kill()
            with contextlib.suppress(Exception):
                self.toxiproxy_server.client.close()

    def pids(self) -> dict[str, int]:
        """``{process name: pid}`` of every process alive now (for checks and reports)."""
        return {name: int(e["pid"]) for name, e in self.registry.entries().items()}

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.teardown()


def start_local_cluster(topology: Topology, run_dir: Path, seed: int = 0) -> LocalCluster:
    """Starts ``topology`` under ``run_dir`` and returns the running cluster.

    ``seed`` seeds toxiproxy's random draws. On any failure everything already started is torn
    down and :class:`RuntimeStartError` is raised (the original error chained as its cause).
    """
    cluster = LocalCluster(topology, Path(run_dir), seed)
    try:
        cluster._start()
    except BaseException as e:
        cluster.teardown()
        if isinstance(e, RuntimeStartError):
            raise
        if isinstance(e, ToxiproxyError | ValueError | OSError):
            raise RuntimeStartError(f"starting the local cluster failed: {e}") from e
        if isinstance(e, Exception):
            raise RuntimeStartError(
                f"starting the local cluster failed: {type(e).__name__}: {e}"
            ) from e
        raise
    return cluster


__all__ = ["LocalCluster", "proxy_name", "start_local_cluster"]
