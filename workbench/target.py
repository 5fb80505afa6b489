"""The target seam: a pattern implementation under test, with its variants, as one plan.

A target is one small class registered under the ``workbench.targets`` entry-point group::

    [project.entry-points."workbench.targets"]
    kv = "my_kv.workbench:KvTarget"

It has a ``name``, a one-line ``description``, its ``variants`` (name -> one line; the first is
the default) and one method, :meth:`Target.plan`, which the harness calls once per campaign and
which returns a frozen :class:`Plan`: what to start, how clients talk to it, the operations of
the main and final phases, the checkers, and the default faults. Everything a campaign needs is
in the plan, so a target keeps no state between calls (two campaigns of one target never share a
ledger or a counter).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from workbench.checker import Checker
from workbench.client import Client
from workbench.generator import Generator
from workbench.plugins import PluginError, Spec, check_plugin
from workbench.topology import Topology

DEFAULT_OP_TIMEOUT = 5.0


@dataclass(frozen=True)
class Options:
    """What the campaign asked for: ``workers`` concurrent clients, a main phase of
    ``time_limit`` seconds, ``rate`` total operations per second across workers (``None``: as
    fast as they go; the harness applies it, a workload never staggers itself), and ``seed``."""

    workers: int = 8
    time_limit: float = 20.0
    rate: float | None = None
    seed: int = 0


#: The name the first API used; kept so older adapters' imports still work.
WorkloadOptions = Options


@dataclass(frozen=True)
class Plan:
    """One campaign of one variant, as data.

    - ``topology``: what the runtime starts (:mod:`workbench.topology`);
    - ``client``: makes one client per worker (a :class:`workbench.client.Client` class, or any
      zero-argument callable returning one);
    - ``workload``: the main phase's generator (the harness bounds it by ``time_limit`` and
      applies ``rate``);
    - ``checkers``: :class:`workbench.checker.Checker` objects, or names registered under
      ``workbench.checkers``;
    - ``final``: the generator run after every fault is healed (retries, final reads), or None;
    - ``faults``: fault specs used when the campaign names none (``"kill"``,
      ``"partition:links=client->*"``);
    - ``op_timeout``: seconds after which an operation ends ``info``;
    - ``notes``: free text about the variant, shown in ``campaign.json``.
    """

    topology: Topology
    client: Callable[[], Client]
    workload: Generator
    checkers: Sequence[Checker | str]
    final: Generator | None = None
    faults: Sequence[str] = ()
    op_timeout: float = DEFAULT_OP_TIMEOUT
    notes: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Target(Protocol):
    # Read-only members, so a plain class attribute (``name = "kv"``) fits the protocol.
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def variants(self) -> Mapping[str, str]:
        """Variant name -> one line; the first is the default."""
        ...

    def plan(self, variant: str, options: Options) -> Plan:
        """The campaign of ``variant`` (already checked to be one of ``variants``)."""


TARGET_SPEC = Spec(
    "target",
    required={"name": "str", "description": "str", "variants": "mapping", "plan": "method"},
)

CLIENT_SPEC = Spec(
    "client",
    required={"invoke": "async"},
    optional={"open": "async", "close": "async", "classify": "method"},
)


def check_target(target: Any, label: str | None = None) -> None:
    """Raises :class:`PluginError` when ``target`` does not fit the target seam."""
    check_plugin(target, TARGET_SPEC, label)
    if not target.variants:
        raise PluginError(f"target {target.name!r} has no variants: name at least one")


def check_plan(plan: Any, target: str, variant: str) -> Plan:
    """Returns ``plan`` when it is a well-formed :class:`Plan`; raises :class:`PluginError`."""
    where = f"target {target!r} variant {variant!r}"
    if not isinstance(plan, Plan):
        raise PluginError(f"{where}: plan() returned {type(plan).__name__}, not a Plan")
    if not isinstance(plan.topology, Topology):
        raise PluginError(f"{where}: Plan.topology is not a Topology")
    try:
        plan.topology.validate()
    except ValueError as e:
        raise PluginError(f"{where}: {e}") from None
    if not callable(plan.client):
        raise PluginError(f"{where}: Plan.client must be a client class or a factory")
    if isinstance(plan.client, type):
        check_plugin(plan.client, CLIENT_SPEC)
        if getattr(plan.client, "invoke", None) is getattr(Client, "invoke", None):
            raise PluginError(f"client {plan.client.__qualname__} must define invoke(op)")
    for part in ("workload", "final"):
        gen = getattr(plan, part)
        if gen is None and part == "final":
            continue
        if not isinstance(gen, Generator):
            raise PluginError(
                f"{where}: Plan.{part} is {type(gen).__name__}, not a generator "
                "(an object with next(ctx) and update(ctx, op, completion))"
            )
    if isinstance(plan.faults, str):
        raise PluginError(f"{where}: Plan.faults must be a list of fault specs, not one string")
    if not plan.checkers:
        raise PluginError(f"{where}: Plan.checkers is empty: a campaign nobody judges is no test")
    if isinstance(plan.op_timeout, bool) or not isinstance(plan.op_timeout, int | float):
        raise PluginError(f"{where}: Plan.op_timeout must be a number of seconds")
    if plan.op_timeout <= 0:
        raise PluginError(f"{where}: Plan.op_timeout must be positive")
    return plan


def make_plan(target: Target, variant: str, options: Options) -> Plan:
    """``target.plan(variant, options)``, checked; a misspelled Plan field is a PluginError."""
    try:
        plan = target.plan(variant, options)
    except TypeError as e:
        if "Plan.__init__()" not in str(e):
            raise
        # A misspelled or missing field: Python names it, we name the target and the fix.
        text = str(e).replace("Plan.__init__()", "Plan()")
        bad = re.search(r"unexpected keyword argument '(\w+)'", text)
        fields = [f.name for f in dataclasses.fields(Plan)]
        close = difflib.get_close_matches(bad.group(1), fields, n=1) if bad else []
        hint = f"; did you mean {close[0]!r}?" if close else f" (fields: {', '.join(fields)})"
        raise PluginError(f"target {target.name!r} variant {variant!r}: {text}{hint}") from None
    return check_plan(plan, target.name, variant)


__all__ = [
    "CLIENT_SPEC",
    "DEFAULT_OP_TIMEOUT",
    "TARGET_SPEC",
    "Options",
    "Plan",
    "Target",
    "WorkloadOptions",
    "check_plan",
    "check_target",
    "make_plan",
]
