"""The fault seam: a fault is a start/stop pair the nemesis applies to a running cluster.

To add one, write a small class and register it under the ``workbench.faults`` entry-point group::

    class DropCaches:
        name = "drop-caches"
        description = "echo 3 > /proc/sys/vm/drop_caches on the host"

        def start(self, cluster, rng):  # returns what was done, recorded in the history
            ...; return {"dropped": True}

        def stop(self, cluster):
            return {}

        def heal(self, cluster):        # undo anything this fault may have left, idempotent
            ...

        def verify_healed(self, cluster):  # raise FaultNotHealed if anything is still broken
            ...

``start`` and ``stop`` return a JSON-serialisable dict saying exactly what was done to what
(``{"links": ["client->api-1"], "toxic": "timeout", ...}``); the nemesis records it as the value
of its ``info`` event. Calls are synchronous and may block (HTTP to Toxiproxy, signals, SQL); the
runner calls them from a worker thread.
"""

from __future__ import annotations

import random
from typing import Any, Protocol, runtime_checkable

from workbench.runtime.cluster import Cluster


class FaultError(RuntimeError):
    """A fault could not be applied; the message says what and why."""


class FaultNotHealed(FaultError):
    """After healing, something is still broken (a toxic left, a process down or stopped)."""


@runtime_checkable
class Fault(Protocol):
    name: str
    description: str

    def start(self, cluster: Cluster, rng: random.Random) -> dict[str, Any]: ...

    def stop(self, cluster: Cluster) -> dict[str, Any]: ...

    def heal(self, cluster: Cluster) -> None: ...

    def verify_healed(self, cluster: Cluster) -> None: ...
