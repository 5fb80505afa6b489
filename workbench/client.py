"""The client seam: how the workload's workers talk to a target.

A client is one small class; the harness makes one per worker process. ``invoke`` returns a
:class:`Completion` (``ok``, ``fail`` or ``info``) or raises. The harness turns what it raises into
a completion with Jepsen's meaning:

- a per-operation timeout -> ``info`` (the request may still take effect);
- a connection refused before anything was sent -> ``fail`` (nothing can have happened);
- anything the client's :meth:`Client.classify` calls ``"fail"`` or ``"info"`` -> that;
- anything else -> ``info``: when unsure, the harness never claims an operation did not happen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from workbench.history import RESERVED_FIELDS, refuse_reserved
from workbench.runtime.cluster import Cluster

CompletionType = Literal["ok", "fail", "info"]


class NotApplied(Exception):
    """Raise from ``invoke`` when the operation certainly had no effect (nothing was sent, or
    the server refused it before acting): the harness records ``fail``."""


class MaybeApplied(Exception):
    """Raise from ``invoke`` when the operation may have taken effect (the request was sent and
    no answer came back): the harness records ``info``."""


@dataclass(frozen=True)
class Op:
    """An operation to invoke: ``f`` names it, ``value`` is its argument (JSON-serialisable).
    ``extra`` fields are recorded on the invocation event beside ``value``; one named like the
    event's own keys (``index``, ``time``, ``process``, ``type``, ``f``, ``value``, ``error``)
    raises :class:`workbench.history.ReservedFieldError` here."""

    f: str
    value: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.extra and not RESERVED_FIELDS.isdisjoint(self.extra):
            refuse_reserved(self.extra, f"Op({self.f!r})")


@dataclass(frozen=True)
class Completion:
    """How an operation ended. ``extra`` fields are recorded on the completion event; one named
    like the event's own keys raises :class:`workbench.history.ReservedFieldError` here, so
    ``ok(v, time=7)`` fails in the client that wrote it rather than rewriting the history."""

    type: CompletionType
    value: Any = None
    error: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.extra and not RESERVED_FIELDS.isdisjoint(self.extra):
            refuse_reserved(self.extra, f"{self.type}()")


def ok(value: Any = None, **extra: Any) -> Completion:
    """The operation took effect; ``value`` is its result (a read's answer)."""
    return Completion("ok", value, None, extra)


def fail(error: Any, value: Any = None, **extra: Any) -> Completion:
    """The operation certainly had no effect; ``error`` says why."""
    return Completion("fail", value, error, extra)


def info(error: Any, value: Any = None, **extra: Any) -> Completion:
    """The outcome is unknown (the operation may take effect at any later time)."""
    return Completion("info", value, error, extra)


@runtime_checkable
class Client(Protocol):
    """How a worker talks to the target. Subclass it (or :class:`workbench.http.HttpClient`) and
    write ``invoke``; ``open`` and ``close`` default to doing nothing. The harness makes one
    client per worker, and a fresh one after an ``info`` (the old connection may be broken)."""

    async def open(self, cluster: Cluster, worker: int) -> None:
        """Connects; ``worker`` is 0..workers-1 (stable across process retirements)."""

    async def invoke(self, op: Op) -> Completion:
        """Performs ``op`` and says how it ended; raise :class:`NotApplied` or
        :class:`MaybeApplied` (or anything: unknown errors count as ``info``)."""
        raise NotImplementedError(f"{type(self).__qualname__} must define invoke(op)")

    async def close(self) -> None:
        """Releases connections; called once per opened client."""


class ClassifiesErrors(Protocol):
    """Optional: a client that knows which of its errors are definite."""

    def classify(self, error: BaseException) -> CompletionType | None:
        """``"fail"`` when the error proves the operation had no effect, ``"info"`` when it may
        have, ``None`` to let the harness decide."""
