"""The running system as the runner, clients and faults see it, whatever runtime started it.

A runtime turns a :class:`workbench.topology.Topology` into a :class:`Cluster`. Clients use
``endpoints``; faults use ``links`` (Toxiproxy proxies), ``nodes`` (processes to kill or pause),
``postgres`` / ``redis`` (servers to crash) and ``toxiproxy`` (the proxy server's client).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from workbench.runtime.toxiproxy import ToxiproxyClient
    from workbench.topology import External


@dataclass(frozen=True)
class Link:
    """One proxied edge: ``name`` is ``"client->api-1"`` or ``"api-1->pg"``; ``proxy`` is the
    Toxiproxy proxy's name; traffic enters at ``listen`` and leaves to ``upstream``
    (both ``"127.0.0.1:PORT"``)."""

    name: str
    proxy: str
    source: str
    target: str
    listen: str
    upstream: str


class Node(Protocol):
    """A process a fault can kill or pause: a service replica or a database server."""

    name: str  # "api-1", "pg", "redis"
    kind: str  # "service" | "postgres" | "redis"

    @property
    def pid(self) -> int | None: ...

    def is_running(self) -> bool: ...

    def is_paused(self) -> bool: ...

    def kill(self) -> None:
        """SIGKILL, no restart; wait until it is gone."""

    def start(self) -> None:
        """Start again (after a kill) and wait until it is ready; raises on timeout."""

    def pause(self) -> None:
        """SIGSTOP (the whole process group)."""

    def resume(self) -> None:
        """SIGCONT."""


class PostgresNode(Node, Protocol):
    def dsn(self, *, direct: bool = True) -> str:
        """A libpq URI to the server itself (``direct``), bypassing every proxy: for setup,
        final reads and faults, never for the system under test."""

    def terminate_backends(self, application_name: str | None = None) -> int:
        """``pg_terminate_backend`` every client session (or those of one application_name)
        other than our own; returns how many were terminated."""

    def accepts_connections(self) -> bool: ...


class RedisNode(Node, Protocol):
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` to the server itself, bypassing proxies."""

    def ping(self) -> bool: ...


class ClockNode(Protocol):
    """A service replica run under libfaketime."""

    name: str

    def set_clock_offset(self, seconds: float) -> None:
        """Shift the replica's clock by ``seconds`` (0 heals). Takes effect at once."""

    def clock_offset(self) -> float: ...


class Cluster(Protocol):
    run_dir: Path
    toxiproxy: ToxiproxyClient
    links: dict[str, Link]
    nodes: dict[str, Node]
    postgres: dict[str, PostgresNode]
    redis: dict[str, RedisNode]
    clocks: dict[str, ClockNode]
    #: Servers the user runs (:class:`workbench.topology.External`), by name: never in ``nodes``.
    externals: dict[str, External]
    #: What turns failpoint control on in the replicas and what control requests must carry
    #: (``X-Workbench-Failpoint-Token``); see :mod:`workbench.failpoints`.
    failpoint_token: str

    def endpoints(self, service: str) -> list[str]:
        """Base URLs (``http://127.0.0.1:PORT``) through which clients reach each replica of a
        service, one per replica, via the ``client->{service}-{i}`` proxies."""

    def direct_endpoints(self, service: str) -> list[str]:
        """Base URLs of each replica itself, bypassing the proxies: for control endpoints
        (failpoints) and final reads that must not be faulted."""

    def replicas(self, service: str) -> list[str]:
        """Node names of a service's replicas: ``["api-1", "api-2"]``."""

    def versions(self) -> dict[str, str]:
        """Versions of the servers in use: ``{"postgresql": "15.18", "redis": "7.0.15",
        "toxiproxy": "2.12.0"}``."""

    def teardown(self) -> None:
        """Stops every process this cluster started; idempotent; never raises."""
