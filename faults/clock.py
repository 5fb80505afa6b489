"""Clock faults: shift the wall (and monotonic) clock of replicas run under libfaketime.

Options: ``offset`` (seconds, same for every chosen replica) or else a random offset in
``[-max_offset, +max_offset]`` per replica; ``node`` / ``service`` / ``select`` as for process
faults (default one replica among the faketime'd ones). Only replicas of services with
``faketime=True`` can be shifted.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from faults._select import as_list, check_select, subset
from workbench.fault import FaultError, FaultNotHealed
from workbench.runtime.cluster import Cluster


class Clock:
    name = "clock"
    description = "shift the clock of faketime'd replicas by a given or random offset (seconds)"
    process_fault = True  # libfaketime in processes we start: an External's clock is its own

    def __init__(
        self,
        *,
        offset: float | None = None,
        max_offset: float = 60.0,
        node: str | Sequence[str] | None = None,
        service: str | None = None,
        select: str | None = None,
    ) -> None:
        check_select(select)
        if max_offset < 0:
            raise ValueError(f"max_offset={max_offset} must be >= 0")
        self.offset = offset
        self.max_offset = max_offset
        self.node = node
        self.service = service
        self.select = select
        self._targets: list[str] = []

    def _choose(self, cluster: Cluster, rng: random.Random) -> list[str]:
        clocks = sorted(cluster.clocks)
        if not clocks:
            raise FaultError(
                "no replica runs under faketime: set faketime=True on a Service to use clock faults"
            )
        named = as_list(self.node)
        if named:
            missing = [n for n in named if n not in cluster.clocks]
            if missing:
                raise FaultError(
                    f"{', '.join(missing)} not under faketime; faketime'd: {', '.join(clocks)}"
                )
            return subset(named, self.select or "all", rng)
        pool = clocks
        if self.service is not None:
            pool = [n for n in cluster.replicas(self.service) if n in cluster.clocks]
            if not pool:
                raise FaultError(f"service {self.service!r} does not run under faketime")
        return subset(pool, self.select or "one", rng)

    def start(self, cluster: Cluster, rng: random.Random) -> dict[str, Any]:
        """Returns ``{"nodes": [...], "offsets": {node: seconds}}``."""
        chosen = self._choose(cluster, rng)
        offsets: dict[str, float] = {}
        for name in chosen:
            seconds = (
                self.offset
                if self.offset is not None
                else round(rng.uniform(-self.max_offset, self.max_offset), 3)
            )
            cluster.clocks[name].set_clock_offset(seconds)
            offsets[name] = seconds
        self._targets = chosen
        return {"nodes": chosen, "offsets": offsets}

    def stop(self, cluster: Cluster) -> dict[str, Any]:
        """Returns ``{"nodes": [...], "offsets": {node: 0.0}}``."""
        for name in self._targets:
            cluster.clocks[name].set_clock_offset(0.0)
        done, self._targets = self._targets, []
        return {"nodes": done, "offsets": dict.fromkeys(done, 0.0)}

    def heal(self, cluster: Cluster) -> None:
        for clock in cluster.clocks.values():
            clock.set_clock_offset(0.0)
        self._targets = []

    def verify_healed(self, cluster: Cluster) -> None:
        shifted = {n: c.clock_offset() for n, c in sorted(cluster.clocks.items())}
        problems = [f"{n} clock is {off:+g} s off" for n, off in shifted.items() if off != 0.0]
        if problems:
            raise FaultNotHealed("; ".join(problems))
