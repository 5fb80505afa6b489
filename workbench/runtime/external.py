"""Servers the user already runs (:class:`workbench.topology.External`), as the cluster sees them.

The harness does not own these processes: it never starts, kills, pauses or stops them. It only
checks at start that each accepts TCP connections and puts a Toxiproxy proxy in front, so
network faults apply. An external PostgreSQL or Redis still appears in ``cluster.postgres`` /
``cluster.redis`` (clients take their direct DSN for final reads); an external service's
replicas appear in ``cluster.replicas``. None of them is in ``cluster.nodes``, the pool process
faults draw from; calling a process method on one raises :class:`ExternalNodeError`.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis as redis_py

from workbench.runtime.errors import RuntimeStartError
from workbench.topology import External


class ExternalNodeError(RuntimeError):
    """A process operation (kill, pause, start) on a server the harness does not run."""


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None  # External.validate checked
    return parts.hostname, parts.port


def with_address(url: str, host: str, port: int) -> str:
    """``url`` with its host and port replaced (user and password, path and query kept)."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def check_reachable(ext: External, timeout: float = 3.0) -> None:
    """Raises :class:`RuntimeStartError` unless every URL of ``ext`` accepts a TCP connection."""
    for url in ext.urls:
        host, port = host_port(url)
        try:
            with socket.create_connection((host, port), timeout=timeout):
                pass
        except OSError as e:
            raise RuntimeStartError(
                f"external {ext.name!r} at {url} does not accept connections ({e.strerror or e}): "
                f"start it first, or give its address with --external {ext.name}=URL"
            ) from None


class _ExternalNode:
    """What every external node shares: a name, no pid, and refusals for process faults."""

    kind = "external"

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self._url = url

    @property
    def pid(self) -> int | None:
        return None

    def is_paused(self) -> bool:
        return False

    def _refuse(self, what: str) -> ExternalNodeError:
        return ExternalNodeError(
            f"cannot {what} {self.name}: it is an External server the harness does not run; "
            "use network faults on its links instead"
        )

    def kill(self) -> None:
        raise self._refuse("kill")

    def start(self) -> None:
        raise self._refuse("start")

    def pause(self) -> None:
        raise self._refuse("pause")

    def resume(self) -> None:
        raise self._refuse("resume")

    def is_running(self) -> bool:
        host, port = host_port(self._url)
        try:
            with socket.create_connection((host, port), timeout=2.0):
                return True
        except OSError:
            return False


class ExternalPostgres(_ExternalNode):
    """An external PostgreSQL: implements the query side of ``PostgresNode``."""

    kind = "external-postgres"

    def dsn(self, *, direct: bool = True) -> str:
        """The DSN as the user gave it (straight to the server, bypassing every proxy)."""
        if not direct:
            raise ValueError("a proxied DSN belongs to a link: use the replica's {DEP}_DSN")
        return self._url

    def accepts_connections(self) -> bool:
        try:
            with psycopg.connect(self._url, connect_timeout=2, autocommit=True) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def terminate_backends(self, application_name: str | None = None) -> int:
        """Terminates the sessions this DSN's role may terminate (its own role's, unless it has
        ``pg_signal_backend``); returns how many."""
        with psycopg.connect(self._url, connect_timeout=2, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' "
                "AND datname = current_database() "
                "AND (%(app)s::text IS NULL OR application_name = %(app)s::text)",
                {"app": application_name},
            ).fetchone()
        return int(row[0]) if row else 0


class ExternalRedis(_ExternalNode):
    """An external Redis: implements the query side of ``RedisNode``."""

    kind = "external-redis"

    def url(self) -> str:
        return self._url

    def ping(self) -> bool:
        try:
            with redis_py.Redis.from_url(
                self._url, socket_timeout=2.0, socket_connect_timeout=2.0
            ) as c:
                return bool(c.ping())
        except redis_py.RedisError:
            return False


__all__ = [
    "ExternalNodeError",
    "ExternalPostgres",
    "ExternalRedis",
    "check_reachable",
    "host_port",
    "with_address",
]
