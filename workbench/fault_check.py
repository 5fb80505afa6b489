"""Fault specs checked against the campaign before anything starts.

A fault aimed at nothing does nothing: ``partition:links=zzz`` would run a whole campaign without
a fault and report it VALID. So the selectors every bundled fault uses, and any fault may use
with the same meaning, are checked against the topology first:

- ``links``: link names or fnmatch patterns (``client->*``); each must match a link;
- ``service``: a service the topology has (or an External's name);
- ``node``: node names (databases and service replicas).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any

from workbench.plugins import UsageError
from workbench.schedule import FaultSpec
from workbench.topology import Topology


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence):
        return [str(v) for v in value]
    return [str(value)]


def _listed(names: Sequence[str]) -> str:
    return ", ".join(names) or "none"


def check_selectors(spec: FaultSpec, topology: Topology) -> None:
    """Raises :class:`UsageError` naming a ``links`` pattern, ``service`` or ``node`` of
    ``spec`` that matches nothing in ``topology``, with what there is."""
    links = sorted(name for name, _, _ in topology.links())
    for pattern in _as_list(spec.options.get("links")):
        if not any(n == pattern or fnmatch.fnmatchcase(n, pattern) for n in links):
            raise UsageError(
                f"fault {spec.text!r}: no link matches {pattern!r}; links: {_listed(links)}"
            )
    services = [s.name for s in topology.services] + [e.name for e in topology.external]
    for service in _as_list(spec.options.get("service")):
        if service not in services:
            raise UsageError(
                f"fault {spec.text!r}: no service {service!r}; services: {_listed(services)}"
            )
    nodes = topology.node_names()
    externals = {e.name for e in topology.external}
    for node in _as_list(spec.options.get("node")):
        if node not in nodes and node.rpartition("-")[0] not in externals:
            raise UsageError(f"fault {spec.text!r}: no node {node!r}; nodes: {_listed(nodes)}")
