"""Process faults on service replicas (or any named node): SIGKILL with a restart, SIGSTOP/SIGCONT.

Options: ``node`` (a node name or a list: exactly those), else ``service`` (its replicas), else
every service replica; ``select`` picks ``one`` (default) / ``minority`` / ``majority`` / ``all``
of that pool with the campaign's rng (default ``all`` when nodes are named).

``heal`` resumes every paused node and starts every node that is down, whichever fault left it.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from faults._select import check_select, choose_nodes
from workbench.fault import FaultError, FaultNotHealed
from workbench.runtime.cluster import Cluster, Node


def heal_nodes(cluster: Cluster, kinds: Sequence[str] | None = None) -> None:
    """Resume paused and start dead nodes (of ``kinds``, default all); raises FaultError if a
    restart fails."""
    errors: list[str] = []
    for name, node in sorted(cluster.nodes.items()):
        if kinds is not None and node.kind not in kinds:
            continue
        try:
            if node.is_paused():
                node.resume()
            if not node.is_running():
                node.start()
        except Exception as e:  # keep healing the others, report all
            errors.append(f"{name}: {e}")
    if errors:
        raise FaultError("heal could not restore: " + "; ".join(errors))


def verify_nodes(cluster: Cluster, kinds: Sequence[str] | None = None) -> None:
    """Raises FaultNotHealed naming every node that is not running or is stopped."""
    problems: list[str] = []
    for name, node in sorted(cluster.nodes.items()):
        if kinds is not None and node.kind not in kinds:
            continue
        if not node.is_running():
            problems.append(f"{node.kind} {name} is not running")
        elif node.is_paused():
            problems.append(f"{node.kind} {name} is stopped (SIGSTOP)")
    if problems:
        raise FaultNotHealed("; ".join(problems))


class _NodeFault:
    name: ClassVar[str]
    description: ClassVar[str]
    #: Acts on processes, so it cannot reach an External server (refused before the run).
    process_fault: ClassVar[bool] = True

    def __init__(
        self,
        *,
        node: str | Sequence[str] | None = None,
        service: str | None = None,
        select: str | None = None,
    ) -> None:
        check_select(select)
        self.node = node
        self.service = service
        self.select = select
        self._targets: list[str] = []

    def _choose(self, cluster: Cluster, rng: random.Random) -> list[str]:
        return choose_nodes(
            cluster, node=self.node, service=self.service, select=self.select, rng=rng
        )

    def _hit(
        self, cluster: Cluster, rng: random.Random, act: Callable[[Node], None], sig: str
    ) -> dict[str, Any]:
        """Chooses the nodes, applies ``act`` to each, and says what was done:
        ``{"nodes": [...], "pids": {node: pid}, "signal": sig}``."""
        chosen = self._choose(cluster, rng)
        pids: dict[str, int | None] = {}
        for name in chosen:
            node = cluster.nodes[name]
            pids[name] = node.pid
            act(node)
        self._targets = chosen
        return {"nodes": chosen, "pids": pids, "signal": sig}

    def heal(self, cluster: Cluster) -> None:
        heal_nodes(cluster)
        self._targets = []

    def verify_healed(self, cluster: Cluster) -> None:
        verify_nodes(cluster)


class Kill(_NodeFault):
    name = "kill"
    description = "SIGKILL service replicas (their whole process group); restart them on stop"

    def start(self, cluster: Cluster, rng: random.Random) -> dict[str, Any]:
        """Returns ``{"nodes": [...], "pids": {node: pid}, "signal": "SIGKILL"}``."""
        return self._hit(cluster, rng, lambda node: node.kill(), signal.SIGKILL.name)

    def stop(self, cluster: Cluster) -> dict[str, Any]:
        """Returns ``{"nodes": [...], "pids": {node: new pid}, "restart_s": {node: seconds}}``."""
        pids: dict[str, int | None] = {}
        took: dict[str, float] = {}
        for name in self._targets:
            node = cluster.nodes[name]
            if not node.is_running():
                began = time.monotonic()
                node.start()
                took[name] = round(time.monotonic() - began, 3)
            pids[name] = node.pid
        done, self._targets = self._targets, []
        return {"nodes": done, "pids": pids, "restart_s": took}


class Pause(_NodeFault):
    name = "pause"
    description = "SIGSTOP service replicas (their whole process group); SIGCONT on stop"

    def start(self, cluster: Cluster, rng: random.Random) -> dict[str, Any]:
        """Returns ``{"nodes": [...], "pids": {node: pid}, "signal": "SIGSTOP"}``."""
        return self._hit(cluster, rng, lambda node: node.pause(), signal.SIGSTOP.name)

    def stop(self, cluster: Cluster) -> dict[str, Any]:
        """Returns ``{"nodes": [...], "pids": {node: pid}, "signal": "SIGCONT"}``."""
        pids: dict[str, int | None] = {}
        for name in self._targets:
            node = cluster.nodes[name]
            node.resume()
            pids[name] = node.pid
        done, self._targets = self._targets, []
        return {"nodes": done, "pids": pids, "signal": signal.SIGCONT.name}
