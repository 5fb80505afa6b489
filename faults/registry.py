"""The fault catalogue: built-in faults plus plugins registered under ``workbench.faults``.

``make_fault("latency", links="client->*", latency=300)`` builds a configured fault; an unknown
name or option raises ValueError saying what is valid.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from faults.clock import Clock
from faults.database import PgCrash, PgTerminate, RedisKill
from faults.failpoint import Failpoint
from faults.network import (
    Bandwidth,
    Latency,
    Partition,
    PartitionOneway,
    ResetPeer,
    Slicer,
    SlowClose,
    Timeout,
)
from faults.process import Kill, Pause
from workbench.fault import Fault

ENTRY_POINT_GROUP = "workbench.faults"

_BUILTIN: tuple[type[Any], ...] = (
    Partition,
    PartitionOneway,
    Latency,
    Bandwidth,
    SlowClose,
    ResetPeer,
    Timeout,
    Slicer,
    Kill,
    Pause,
    PgCrash,
    PgTerminate,
    RedisKill,
    Clock,
    Failpoint,
)


def builtin_faults() -> dict[str, type[Any]]:
    """``{name: class}`` of the faults shipped with the workbench."""
    return {cls.name: cls for cls in _BUILTIN}


def load_faults() -> dict[str, type[Any]]:
    """Built-ins merged with entry points of group ``workbench.faults`` (each must load a class
    with ``name`` and ``description``). A plugin reusing a built-in's name raises ValueError."""
    faults = builtin_faults()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not isinstance(getattr(cls, "description", None), str):
            raise ValueError(
                f"entry point {ep.name!r} ({ep.value}) of {ENTRY_POINT_GROUP} must be a class "
                "with str attributes 'name' and 'description'"
            )
        if name in faults and faults[name] is not cls:
            raise ValueError(
                f"fault plugin {ep.value} uses the name {name!r}, already taken by "
                f"{faults[name].__module__}.{faults[name].__qualname__}"
            )
        faults[name] = cls
    return faults


def describe_faults() -> dict[str, str]:
    """``{name: one-line description}``, sorted by name (for ``workbench faults``)."""
    return {name: cls.description for name, cls in sorted(load_faults().items())}


def make_fault(name: str, **options: Any) -> Fault:
    """A configured fault. Raises ValueError for an unknown name (listing the valid ones) or
    options the fault does not take."""
    faults = load_faults()
    cls = faults.get(name)
    if cls is None:
        raise ValueError(f"unknown fault {name!r}; valid faults: {', '.join(sorted(faults))}")
    try:
        fault = cls(**options)
    except TypeError as e:
        raise ValueError(f"fault {name!r}: bad options {sorted(options)}: {e}") from e
    if not isinstance(fault, Fault):
        raise ValueError(f"fault {name!r} ({cls.__qualname__}) does not implement start/stop/heal")
    return fault
