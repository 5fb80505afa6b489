"""The nemesis: applies the fault schedule beside the clients, then heals everything.

Every fault action is recorded as a nemesis event once it is done::

    {"process": "nemesis", "type": "info", "f": "start", "value": {"fault": "partition",
     "spec": "partition:links=client->*", "window": 3, "links": ["client->api-1"], ...}}

``f`` is ``start`` / ``stop`` for a window's edges and ``heal`` for the final phase. A fault
that fails to apply ends the campaign with an error: a silently missing fault would turn a green
run into a lie.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

from workbench.fault import Fault, FaultError
from workbench.history import NEMESIS, HistoryWriter
from workbench.runtime.cluster import Cluster
from workbench.schedule import FaultAction, FaultSpec


class Nemesis:
    def __init__(
        self,
        *,
        cluster: Cluster,
        history: HistoryWriter,
        faults: Sequence[Fault],
        specs: Sequence[FaultSpec],
        seed: int,
    ) -> None:
        if len(faults) != len(specs):
            raise ValueError("one fault per spec")
        self.cluster = cluster
        self.history = history
        self.faults = list(faults)
        self.specs = list(specs)
        self.rng = random.Random(f"nemesis:{seed}")
        self.active: dict[int, str] = {}  # window -> spec text, for progress display

    def _record(self, f: str, index: int, window: int | None, what: dict[str, Any]) -> None:
        value: dict[str, Any] = {"fault": self.faults[index].name, "spec": self.specs[index].text}
        if window is not None:
            value["window"] = window
        value.update(what)
        self.history.append(NEMESIS, "info", f, value)

    async def run(self, schedule: Sequence[FaultAction], until: float) -> None:
        """Applies the actions due before ``until`` seconds, in order, then returns.

        A stop is always applied for a started window, even past ``until``, so that the final
        phase starts from a known state."""
        started: set[int] = set()
        for action in schedule:
            if action.action == "start" and action.at >= until:
                break
            if action.action == "stop" and action.window not in started:
                continue
            delay = action.at - self.history.now() / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
            fault = self.faults[action.fault]
            try:
                if action.action == "start":
                    what = await asyncio.to_thread(fault.start, self.cluster, self.rng)
                    started.add(action.window)
                    self.active[action.window] = self.specs[action.fault].text
                else:
                    what = await asyncio.to_thread(fault.stop, self.cluster)
                    started.discard(action.window)
                    self.active.pop(action.window, None)
            except FaultError:
                raise
            except Exception as e:
                raise FaultError(
                    f"fault {self.specs[action.fault].text!r} could not {action.action}: "
                    f"{type(e).__name__}: {e}"
                ) from e
            self._record(action.action, action.fault, action.window, what or {})

    async def heal_all(self) -> None:
        """Heals every fault of the campaign and verifies it healed; raises
        :class:`workbench.fault.FaultNotHealed` (or FaultError) when one cannot be."""
        self.active.clear()
        for i, fault in enumerate(self.faults):
            await asyncio.to_thread(fault.heal, self.cluster)
            await asyncio.to_thread(fault.verify_healed, self.cluster)
            self._record("heal", i, None, {"verified": True})
