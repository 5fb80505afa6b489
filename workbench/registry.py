"""Finding plugins by name: targets, faults and checkers registered through entry points.

Everything, the workbench's own included, is found the same way, so a user's plugin is a peer of
the built-ins. A package adds one by declaring, in its ``pyproject.toml``::

    [project.entry-points."workbench.targets"]
    my-service = "my_package.workbench_target:MyTarget"

    [project.entry-points."workbench.faults"]
    drop-caches = "my_package.faults:DropCaches"      # a class; options are its keywords

    [project.entry-points."workbench.checkers"]
    no-lost-writes = "my_package.checkers:NoLostWrites"  # a class taking no arguments

``TARGET`` on the command line may also be ``module:attribute`` (a class or factory), so a
target in a test suite or a script can be run without installing anything.

Every plugin is checked when it loads (:mod:`workbench.plugins`): a missing part or a
misspelled optional one raises :class:`PluginError`, a usage error naming it.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from workbench.checker import Checker
from workbench.fault import Fault
from workbench.plugins import PluginError, Spec, UsageError, check_plugin
from workbench.target import Target, check_target

TARGETS = "workbench.targets"
FAULTS = "workbench.faults"
CHECKERS = "workbench.checkers"


class UnknownName(UsageError):
    """An unknown target, variant, fault or checker name; the message lists the valid ones."""


FAULT_SPEC = Spec(
    "fault",
    required={
        "name": "str",
        "description": "str",
        "start": "method",
        "stop": "method",
        "heal": "method",
        "verify_healed": "method",
    },
    optional={"process_fault": "any"},
)

CHECKER_SPEC = Spec(
    "checker", required={"name": "str", "check": "method"}, optional={"kind": "str"}
)


def _entry_points(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def _load(ep: EntryPoint, group: str) -> Any:
    try:
        return ep.load()
    except Exception as e:  # a broken plugin must say which one, not crash the CLI
        raise PluginError(
            f"entry point {ep.name!r} = {ep.value!r} of {group} does not load: "
            f"{type(e).__name__}: {e}"
        ) from None


# -- targets --


def target_names() -> list[str]:
    return sorted(_entry_points(TARGETS))


def _instantiate(obj: Any, what: str) -> Target:
    target = obj() if isinstance(obj, type) or callable(obj) else obj
    check_target(target, what)
    return target  # type: ignore[no-any-return]


def load_target(spec: str) -> Target:
    """A target by registered name or ``module:attribute``, checked against the seam.

    Raises :class:`UnknownName` listing the registered targets when ``spec`` names none, and
    :class:`PluginError` when the target does not fit."""
    eps = _entry_points(TARGETS)
    if spec in eps:
        return _instantiate(_load(eps[spec], TARGETS), repr(spec))
    if ":" in spec:
        module, _, attr = spec.partition(":")
        # Like `python -m`, look in the working directory too: users name their own modules.
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            obj: Callable[[], Any] = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise UnknownName(f"cannot load target {spec!r}: {e}") from None
        return _instantiate(obj, repr(spec))
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


# -- faults --


@cache
def load_faults() -> dict[str, type[Any]]:
    """``{name: class}`` of every fault registered under ``workbench.faults`` (the built-ins
    are registered by this package's own ``pyproject.toml``). Each is checked against the
    fault seam; two plugins claiming one name raise :class:`PluginError`."""
    faults: dict[str, type[Any]] = {}
    origin: dict[str, str] = {}
    for ep in entry_points(group=FAULTS):
        cls = _load(ep, FAULTS)
        check_plugin(cls, FAULT_SPEC, repr(ep.name))
        name = cls.name
        if name != ep.name:
            raise PluginError(
                f"entry point {ep.name!r} of {FAULTS} loads a fault named {name!r}: "
                "use one name for both"
            )
        if name in faults and faults[name] is not cls:
            raise PluginError(
                f"fault {name!r} is registered twice: by {origin[name]} and by {ep.value}"
            )
        faults[name], origin[name] = cls, ep.value
    return faults


def describe_faults() -> dict[str, str]:
    """``{name: one-line description}``, sorted by name (for ``workbench faults``)."""
    return {name: cls.description for name, cls in sorted(load_faults().items())}


def make_fault(name: str, **options: Any) -> Fault:
    """A configured fault. Raises :class:`UnknownName` for an unknown name (listing the valid
    ones) and ValueError for options the fault does not take."""
    faults = load_faults()
    cls = faults.get(name)
    if cls is None:
        raise UnknownName(f"unknown fault {name!r}; valid faults: {', '.join(sorted(faults))}")
    try:
        fault = cls(**options)
    except TypeError as e:
        raise ValueError(_option_problem(name, cls, options, e)) from e
    if not isinstance(fault, Fault):
        raise PluginError(f"fault {name!r} ({cls.__qualname__}) does not implement the Fault seam")
    return fault


def _option_problem(name: str, cls: type, options: dict[str, Any], error: TypeError) -> str:
    """What is wrong with ``options`` for fault ``cls``: an option it does not take, named with
    the options it does take (its constructor's keyword parameters); else the error's text."""
    try:
        params = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        return f"bad options {sorted(options)}: {error}"
    takes = [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    unknown = [k for k in options if k not in takes]
    if unknown and not any(p.kind == p.VAR_KEYWORD for p in params):
        what = "option" if len(unknown) == 1 else "options"
        return f"{name} has no {what} {', '.join(map(repr, unknown))}; its options: " + (
            ", ".join(takes) or "none"
        )
    return f"bad options {sorted(options)}: {error}"


# -- checkers --


@cache
def load_checkers() -> dict[str, type[Any]]:
    """``{name: class}`` of every checker registered under ``workbench.checkers``; each class
    must build with no arguments and fit the checker seam."""
    out: dict[str, type[Any]] = {}
    for ep in entry_points(group=CHECKERS):
        cls = _load(ep, CHECKERS)
        check_plugin(cls, CHECKER_SPEC, repr(ep.name))
        out[ep.name] = cls
    return out


def resolve_checkers(items: Sequence[Checker | str]) -> list[Checker]:
    """Checker objects for a plan's ``checkers``: objects are checked against the seam, names
    are looked up in ``workbench.checkers``."""
    out: list[Checker] = []
    registered: dict[str, type[Any]] | None = None
    for item in items:
        if isinstance(item, str):
            registered = registered if registered is not None else load_checkers()
            cls = registered.get(item)
            if cls is None:
                valid = ", ".join(sorted(registered)) or "none registered"
                raise UnknownName(f"unknown checker {item!r}; valid checkers: {valid}")
            item = cls()
        check_plugin(item, CHECKER_SPEC)
        out.append(item)
    return out


__all__ = [
    "CHECKERS",
    "FAULTS",
    "TARGETS",
    "PluginError",
    "UnknownName",
    "UsageError",
    "check_variant",
    "describe_faults",
    "load_checkers",
    "load_faults",
    "load_target",
    "make_fault",
    "resolve_checkers",
    "target_names",
]
