"""Choosing what a fault hits: links by exact name or fnmatch pattern, nodes by service or name,
and a random subset (one / minority / majority / all) drawn from the campaign's rng."""

from __future__ import annotations

import fnmatch
import random
from collections.abc import Iterable, Sequence
from typing import Literal, get_args

from workbench.fault import FaultError
from workbench.runtime.cluster import Cluster

Select = Literal["one", "minority", "majority", "all"]
SELECTS: tuple[str, ...] = get_args(Select)


def check_select(select: str | None) -> None:
    if select is not None and select not in SELECTS:
        raise ValueError(f"select={select!r} is not one of {', '.join(SELECTS)}")


def as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def subset(items: Iterable[str], select: str, rng: random.Random) -> list[str]:
    """A sorted random subset: ``one`` item, a ``minority`` (at least one, fewer than half when
    there are three or more), a ``majority`` (more than half) or ``all``."""
    pool = sorted(set(items))
    n = len(pool)
    if n == 0:
        return []
    count = {"one": 1, "minority": max(1, (n - 1) // 2), "majority": n // 2 + 1, "all": n}[select]
    return sorted(rng.sample(pool, count))


def match_links(cluster: Cluster, patterns: Sequence[str]) -> list[str]:
    """Link names matching any pattern (exact or fnmatch: ``client->*``, ``*->pg``); a pattern
    matching nothing raises :class:`FaultError` listing the links there are."""
    names = sorted(cluster.links)
    if not patterns:
        return names
    out: set[str] = set()
    for pattern in patterns:
        hits = [n for n in names if n == pattern or fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            raise FaultError(f"no link matches {pattern!r}; links: {', '.join(names) or 'none'}")
        out.update(hits)
    return sorted(out)


def choose_links(
    cluster: Cluster, patterns: Sequence[str], select: str | None, rng: random.Random
) -> list[str]:
    """Matching links; all of them unless ``select`` asks for a random subset."""
    matched = match_links(cluster, patterns)
    chosen = subset(matched, select or "all", rng)
    if not chosen:
        raise FaultError("the cluster has no links to fault")
    return chosen


def choose_nodes(
    cluster: Cluster,
    *,
    node: str | Sequence[str] | None,
    service: str | None,
    select: str | None,
    rng: random.Random,
    kinds: Sequence[str] = ("service",),
) -> list[str]:
    """Named node(s) as given; else replicas of ``service``; else every node of ``kinds``;
    then a random ``select`` subset (default ``one``) of that pool."""
    named = as_list(node)
    externals = getattr(cluster, "externals", {})
    for name in [*named, *([service] if service else [])]:
        part = name if name in externals else name.rpartition("-")[0]
        if part in externals:
            raise FaultError(
                f"{name} is part of External {part!r}, a server the harness does not run: "
                "process faults cannot reach it; fault its links instead "
                f"(e.g. partition:links=client->{part}-*)"
            )
    if named:
        unknown = [n for n in named if n not in cluster.nodes]
        if unknown:
            raise FaultError(
                f"no node {', '.join(unknown)}; nodes: {', '.join(sorted(cluster.nodes))}"
            )
        pool = named
        default = "all"
    elif service is not None:
        try:
            pool = cluster.replicas(service)
        except KeyError as e:
            raise FaultError(str(e)) from e
        default = "one"
    else:
        pool = [n for n, obj in cluster.nodes.items() if obj.kind in kinds]
        default = "one"
    chosen = subset(pool, select or default, rng)
    if not chosen:
        raise FaultError(f"no {'/'.join(kinds)} node to fault")
    return chosen
