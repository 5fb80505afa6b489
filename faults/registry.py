"""The built-in fault catalogue.

The harness finds faults through the ``workbench.faults`` entry points
(:func:`workbench.registry.load_faults`); this package registers the classes below there, in its
``pyproject.toml``. ``make_fault("latency", links="client->*", latency=300)`` builds one.
"""

from __future__ import annotations

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
from workbench.registry import describe_faults, load_faults, make_fault

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


__all__ = ["builtin_faults", "describe_faults", "load_faults", "make_fault"]
