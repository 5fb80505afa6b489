"""Fault workbench: Jepsen's method for the patterns teams write on PostgreSQL and Redis.

The public API is small; everything else is an implementation detail::

    from workbench import Target, Client, Op, ok, fail, info, Topology, Service, Postgres, Redis
    from workbench import generator as gen          # from_fn, mix, stagger, phases, ...
    from workbench import Checker, CheckResult, Anomaly, CheckContext, Fault
    from workbench import Event, HistoryWriter, read_history, pair_operations
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Event": "workbench.history",
    "HistoryWriter": "workbench.history",
    "read_history": "workbench.history",
    "pair_operations": "workbench.history",
    "Op": "workbench.client",
    "Completion": "workbench.client",
    "Client": "workbench.client",
    "ok": "workbench.client",
    "fail": "workbench.client",
    "info": "workbench.client",
    "Target": "workbench.target",
    "WorkloadOptions": "workbench.target",
    "Topology": "workbench.topology",
    "Service": "workbench.topology",
    "Postgres": "workbench.topology",
    "Redis": "workbench.topology",
    "Checker": "workbench.checker",
    "CheckResult": "workbench.checker",
    "Anomaly": "workbench.checker",
    "CheckContext": "workbench.checker",
    "Fault": "workbench.fault",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    # Lazy, so that `import workbench.history` stays light and checkers/faults (which import
    # workbench modules) never meet a half-initialised package.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
