"""The public API: everything a target adapter, a checker or a fault imports, in one module.

``from workbench import X`` works for every name here. Anything not listed is an implementation
detail that may change between releases.

Writing a target (see ``docs/tutorial/``)::

    from workbench import Plan, Service, Topology, HttpClient, ok, gen

    class KvClient(HttpClient):
        service = "kv"

        async def invoke(self, op):
            resp = await self.put(f"/kv/{op.value['key']}", json={"value": op.value["value"]})
            return self.complete(resp)

    class KvTarget:
        name = "kv"
        description = "a key/value service"
        variants = {"default": "the service as it is"}

        def plan(self, variant, options):
            return Plan(topology=..., client=KvClient, workload=..., checkers=[...])

The seams, one small class each: :class:`Target` (one method, ``plan``), :class:`Client`
(``invoke``; :class:`HttpClient` does the HTTP), :class:`Checker` (``check``) and
:class:`Fault` (``start``/``stop``/``heal``/``verify_healed``). Register yours under the
``workbench.targets`` / ``workbench.checkers`` / ``workbench.faults`` entry points.
"""

from __future__ import annotations

from workbench import generator as gen
from workbench.checker import (
    Anomaly,
    CheckContext,
    Checker,
    CheckResult,
    Series,
    Witness,
    event_indices,
)
from workbench.client import (
    Client,
    Completion,
    CompletionType,
    MaybeApplied,
    NotApplied,
    Op,
    fail,
    info,
    ok,
)
from workbench.failpoints import (
    FailpointError,
    FailpointMiddleware,
    UndeclaredFailpoint,
    declare_failpoints,
    failpoint,
    failpoint_sync,
)
from workbench.fault import Fault, FaultError, FaultNotHealed
from workbench.generator import Context, Generator, Step, Wait
from workbench.history import Event, HistoryError, Operation, pair_operations, read_history
from workbench.http import HttpClient, Response
from workbench.plugins import PluginError
from workbench.runtime.cluster import Cluster
from workbench.target import Options, Plan, Target
from workbench.topology import External, HttpReady, Postgres, Redis, Service, Topology

__all__ = [
    "Anomaly",
    "CheckContext",
    "CheckResult",
    "Checker",
    "Client",
    "Cluster",
    "Completion",
    "CompletionType",
    "Context",
    "Event",
    "External",
    "FailpointError",
    "FailpointMiddleware",
    "Fault",
    "FaultError",
    "FaultNotHealed",
    "Generator",
    "HistoryError",
    "HttpClient",
    "HttpReady",
    "MaybeApplied",
    "NotApplied",
    "Op",
    "Operation",
    "Options",
    "Plan",
    "PluginError",
    "Postgres",
    "Redis",
    "Response",
    "Series",
    "Service",
    "Step",
    "Target",
    "Topology",
    "UndeclaredFailpoint",
    "Wait",
    "Witness",
    "declare_failpoints",
    "event_indices",
    "fail",
    "failpoint",
    "failpoint_sync",
    "gen",
    "info",
    "ok",
    "pair_operations",
    "read_history",
]
