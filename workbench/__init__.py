"""Fault workbench: Jepsen's method for the patterns teams write on PostgreSQL and Redis.

The public API is :mod:`workbench.api`; every name there is importable from here too::

    from workbench import Plan, Topology, Service, Postgres, HttpClient, ok, fail, info, gen
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the real types for type checkers; at run time names load lazily below
    from workbench.api import Anomaly as Anomaly
    from workbench.api import CheckContext as CheckContext
    from workbench.api import Checker as Checker
    from workbench.api import CheckResult as CheckResult
    from workbench.api import Client as Client
    from workbench.api import Cluster as Cluster
    from workbench.api import Completion as Completion
    from workbench.api import CompletionType as CompletionType
    from workbench.api import Context as Context
    from workbench.api import Event as Event
    from workbench.api import External as External
    from workbench.api import FailpointError as FailpointError
    from workbench.api import FailpointMiddleware as FailpointMiddleware
    from workbench.api import Fault as Fault
    from workbench.api import FaultError as FaultError
    from workbench.api import FaultNotHealed as FaultNotHealed
    from workbench.api import Generator as Generator
    from workbench.api import HistoryError as HistoryError
    from workbench.api import HttpClient as HttpClient
    from workbench.api import HttpReady as HttpReady
    from workbench.api import MaybeApplied as MaybeApplied
    from workbench.api import NotApplied as NotApplied
    from workbench.api import Op as Op
    from workbench.api import Operation as Operation
    from workbench.api import Options as Options
    from workbench.api import Plan as Plan
    from workbench.api import PluginError as PluginError
    from workbench.api import Postgres as Postgres
    from workbench.api import Redis as Redis
    from workbench.api import Response as Response
    from workbench.api import Series as Series
    from workbench.api import Service as Service
    from workbench.api import Step as Step
    from workbench.api import Target as Target
    from workbench.api import Topology as Topology
    from workbench.api import UndeclaredFailpoint as UndeclaredFailpoint
    from workbench.api import Wait as Wait
    from workbench.api import Witness as Witness
    from workbench.api import declare_failpoints as declare_failpoints
    from workbench.api import event_indices as event_indices
    from workbench.api import fail as fail
    from workbench.api import failpoint as failpoint
    from workbench.api import failpoint_sync as failpoint_sync
    from workbench.api import gen as gen
    from workbench.api import info as info
    from workbench.api import ok as ok
    from workbench.api import pair_operations as pair_operations
    from workbench.api import read_history as read_history

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Lazy, so that `import workbench.history` stays light and checkers/faults (which import
    # workbench modules) never meet a half-initialised package.
    api = importlib.import_module("workbench.api")
    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *importlib.import_module("workbench.api").__all__])
