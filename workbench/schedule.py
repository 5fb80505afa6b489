"""Fault schedules: when each fault starts and stops, decided before the campaign runs.

A schedule is a list of :class:`FaultAction` made from the seed alone, so the same seed gives the
same schedule, and stored in ``campaign.json`` so a campaign can be replayed exactly
(``workbench run ... --schedule campaign.json``).

Fault specs name a fault and its options: ``"kill"``, ``"partition:links=client->*"``,
``"latency:ms=200:jitter=50"``. Option values are parsed as JSON where they can be
(``ms=200`` is an int), else kept as strings.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

Action = Literal["start", "stop"]
Mode = Literal["random", "cycle"]


@dataclass(frozen=True)
class FaultSpec:
    name: str
    options: dict[str, Any]
    text: str

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """Parses ``name[:key=value]...``; raises ValueError with the offending part."""
        parts = text.strip().split(":")
        name = parts[0].strip()
        if not name:
            raise ValueError(f"fault spec {text!r} has no fault name")
        options: dict[str, Any] = {}
        for part in parts[1:]:
            key, sep, raw = part.partition("=")
            if not sep or not key:
                raise ValueError(f"fault spec {text!r}: {part!r} is not key=value")
            try:
                options[key.strip()] = json.loads(raw)
            except json.JSONDecodeError:
                options[key.strip()] = raw
        return cls(name, options, text.strip())


def parse_fault_specs(text: str | Sequence[str]) -> list[FaultSpec]:
    """``"kill,partition"`` or a list of specs; empty strings are ignored."""
    items = text.split(",") if isinstance(text, str) else list(text)
    return [FaultSpec.parse(t) for t in items if t.strip()]


@dataclass(frozen=True)
class FaultAction:
    """At ``at`` seconds after the start, start or stop fault ``fault`` (an index into the
    campaign's fault specs). ``window`` pairs a start with its stop."""

    at: float
    action: Action
    fault: int
    window: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FaultAction:
        if d.get("action") not in ("start", "stop"):
            raise ValueError(f"fault action {d!r}: action must be start or stop")
        return cls(float(d["at"]), d["action"], int(d["fault"]), int(d["window"]))


def make_schedule(
    n_faults: int,
    duration: float,
    seed: int,
    *,
    interval: float = 4.0,
    mode: Mode = "random",
) -> list[FaultAction]:
    """Alternates quiet periods and fault windows over ``duration`` seconds, one fault at a time.

    Each quiet period and each window lasts ``interval`` seconds times a factor in [0.5, 1.5]
    drawn from the seed. ``mode="random"`` picks the fault of each window at random;
    ``"cycle"`` takes them in order. Every window ends (a stop) no later than ``duration``.
    Returns actions sorted by time; empty when there are no faults.
    """
    if n_faults <= 0 or duration <= 0:
        return []
    rng = random.Random(f"fault-schedule:{seed}")
    actions: list[FaultAction] = []
    t = interval * rng.uniform(0.5, 1.5)
    window = 0
    while t < duration - 0.5:
        fault = rng.randrange(n_faults) if mode == "random" else window % n_faults
        length = interval * rng.uniform(0.5, 1.5)
        end = min(t + length, duration)
        actions.append(FaultAction(t, "start", fault, window))
        actions.append(FaultAction(end, "stop", fault, window))
        window += 1
        t = end + interval * rng.uniform(0.5, 1.5)
    return actions
