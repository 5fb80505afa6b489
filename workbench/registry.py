"""Finding targets by name: built-ins and plug-ins registered through entry points.

A package adds a target by declaring, in its ``pyproject.toml``::

    [project.entry-points."workbench.targets"]
    my-service = "my_package.workbench_target:MyTarget"

``TARGET`` on the command line may also be ``module:attribute`` (a class or factory), so a
target in a test suite or a script can be run without installing anything.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from workbench.target import Target


class UnknownName(ValueError):
    """An unknown target, variant, fault or checker name; the message lists the valid ones."""


def _entry_point_objects(group: str) -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=group)}


def target_names() -> list[str]:
    return sorted(_entry_point_objects("workbench.targets"))


def _instantiate(obj: Any, what: str) -> Target:
    target = obj() if isinstance(obj, type) or callable(obj) else obj
    if not isinstance(target, Target):
        raise UnknownName(f"{what} is not a target: it lacks part of the Target protocol")
    return target


def load_target(spec: str) -> Target:
    """A target by registered name or ``module:attribute``.

    Raises :class:`UnknownName` listing the registered targets when ``spec`` names none."""
    eps = _entry_point_objects("workbench.targets")
    if spec in eps:
        return _instantiate(eps[spec].load(), f"entry point {spec!r}")
    if ":" in spec:
        module, _, attr = spec.partition(":")
        # Like `python -m`, look in the working directory too: users name their own modules.
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            obj: Callable[[], Any] = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise UnknownName(f"cannot load target {spec!r}: {e}") from None
        return _instantiate(obj, spec)
    valid = ", ".join(sorted(eps)) or "none registered"
    raise UnknownName(f"unknown target {spec!r}; valid targets: {valid}")


def check_variant(target: Target, variant: str | None) -> str:
    """The variant to run (the target's first when ``None``); raises :class:`UnknownName`."""
    names = list(target.variants)
    if variant is None:
        return names[0]
    if variant not in target.variants:
        raise UnknownName(
            f"target {target.name!r} has no variant {variant!r}; valid variants: "
            + ", ".join(names)
        )
    return variant
