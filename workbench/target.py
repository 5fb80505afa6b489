"""The target seam: a pattern implementation under test, with its variants.

A target is one small class registered under the ``workbench.targets`` entry-point group::

    [project.entry-points."workbench.targets"]
    payments = "targets.payments:PaymentsTarget"

It tells the runtime what to start (:meth:`Target.topology`), makes a client per worker, gives the
workload and the final phase as generators, and names the checkers that judge the history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from workbench.checker import Checker
from workbench.client import Client
from workbench.generator import Generator
from workbench.topology import Topology


@dataclass(frozen=True)
class WorkloadOptions:
    """What the campaign asked for: ``rate`` is total operations per second across workers
    (``None``: as fast as they go)."""

    workers: int
    time_limit: float
    rate: float | None
    seed: int


@runtime_checkable
class Target(Protocol):
    name: str
    description: str
    variants: Mapping[str, str]  # variant name -> one line; the first is the default

    def default_faults(self, variant: str) -> Sequence[str]:
        """Fault specs used when the campaign names none, e.g. ``"kill"`` or
        ``"partition:links=*->pg"``."""

    def topology(self, variant: str) -> Topology: ...

    def client(self, variant: str) -> Client:
        """A new client; the harness makes one per worker."""

    def workload(self, variant: str, options: WorkloadOptions) -> Generator:
        """Operations for the main phase (the runner bounds it by ``time_limit``)."""

    def final(self, variant: str, options: WorkloadOptions) -> Generator | None:
        """Operations after every fault is healed (retries of unresolved work, final reads)."""

    def checkers(self, variant: str) -> Sequence[Checker]: ...


DEFAULT_OP_TIMEOUT = 5.0


def op_timeout(target: Target) -> float:
    """Seconds after which an operation ends ``info``: a target may set ``op_timeout``."""
    value = getattr(target, "op_timeout", DEFAULT_OP_TIMEOUT)
    return float(value)
