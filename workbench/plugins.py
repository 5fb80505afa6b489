"""Checking plugins when they load, as pluggy checks hook implementations against their specs.

Each seam (a target, a client, a checker, a fault) has a :class:`Spec`: the parts it must have
and the optional parts it may have. :func:`check_plugin` compares a user's class or object with
it and raises :class:`PluginError` (a usage error: exit 64) in one line naming the plugin and
the part:

- a required part that is missing ("target 'kv' (my_kv:KvTarget) has no 'plan'");
- a part of the wrong shape (a method that should be ``async def``, a name that is not a str);
- a public attribute that is not a part but is close to one, which is almost always a typo of an
  optional part the harness would otherwise silently ignore ("'clasify' is not a part of a
  client; did you mean 'classify'?").

Other public names are allowed: a plugin may have helpers of its own.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

PartKind = Literal["str", "mapping", "method", "async", "number", "any"]


class UsageError(ValueError):
    """The campaign cannot run as asked (exit 64); the message says what to change."""


class PluginError(UsageError):
    """A plugin that does not fit its seam; the message names the plugin and the part."""


@dataclass(frozen=True)
class Spec:
    """What a seam asks of a plugin: ``{part: kind}`` for required and optional parts.

    ``kind`` is ``"str"``, ``"mapping"``, ``"number"`` (attributes), ``"method"`` (any callable)
    or ``"async"`` (a coroutine function), or ``"any"``."""

    seam: str
    required: Mapping[str, PartKind]
    optional: Mapping[str, PartKind] = field(default_factory=dict)
    #: Words that are not parts but are close to one (``name`` vs ``names``).
    allowed: frozenset[str] = frozenset()

    def parts(self) -> list[str]:
        return [*self.required, *self.optional]


def _public_names(obj: Any) -> set[str]:
    """Public names defined by the plugin itself, not by ``object`` or a typing base."""
    cls = obj if isinstance(obj, type) else type(obj)
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is object or klass.__module__ in ("typing", "abc", "builtins"):
            continue
        names.update(vars(klass))
    if not isinstance(obj, type):
        names.update(getattr(obj, "__dict__", {}))
    return {n for n in names if not n.startswith("_")}


def _shape_problem(value: Any, kind: PartKind) -> str | None:
    if kind == "str" and not isinstance(value, str):
        return f"should be a str, not {type(value).__name__}"
    if kind == "mapping" and not isinstance(value, Mapping):
        return f"should be a mapping, not {type(value).__name__}"
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
        return f"should be a number, not {type(value).__name__}"
    if kind == "method" and not callable(value):
        return "should be a method"
    if kind == "async" and not inspect.iscoroutinefunction(value):
        return "should be an async method (async def)"
    return None


def describe(obj: Any) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


def check_plugin(obj: Any, spec: Spec, label: str | None = None) -> None:
    """Raises :class:`PluginError` when ``obj`` (a class or an instance) does not fit ``spec``.

    ``label`` names the plugin in messages (default: its ``module:Class``)."""
    who = f"{spec.seam} {label} ({describe(obj)})" if label else f"{spec.seam} {describe(obj)}"
    public = _public_names(obj)
    parts = spec.parts()
    for name in spec.required:
        if not hasattr(obj, name):
            close = difflib.get_close_matches(name, sorted(public - set(parts)), n=1, cutoff=0.75)
            hint = f" (is {close[0]!r} a misspelling of it?)" if close else ""
            raise PluginError(f"{who} has no {name!r}, which every {spec.seam} needs{hint}")
    for name, kind in {**spec.required, **spec.optional}.items():
        if hasattr(obj, name):
            problem = _shape_problem(getattr(obj, name), kind)
            if problem:
                raise PluginError(f"{who}: {name!r} {problem}")
    for name in sorted(public - set(parts) - spec.allowed):
        close = difflib.get_close_matches(name, parts, n=1, cutoff=0.75)
        if close:
            raise PluginError(
                f"{who}: {name!r} is not a part of a {spec.seam}; did you mean {close[0]!r}? "
                f"(parts: {', '.join(parts)})"
            )


__all__ = ["PluginError", "Spec", "UsageError", "check_plugin", "describe"]
