"""Jepsen-style histories: events, a crash-safe streaming writer, readers and operation pairing.

An event is one line of ``history.jsonl``::

    {"index": 12, "time": 1532000123, "process": 3, "type": "invoke", "f": "charge",
     "value": {...}, "error": null, ...free extra fields...}

``type`` has Jepsen's meaning: ``invoke`` starts an operation; ``ok`` means it took effect;
``fail`` means it certainly did not; ``info`` means unknown: it may take effect at any later time,
so the process that issued it is retired (its worker continues as ``process + workers``).
Fault events use process ``"nemesis"``; ``time`` is nanoseconds since the campaign started, from
a monotonic clock; ``index`` is dense and increasing from 0.

The seven keys above are the event's own (:data:`RESERVED_FIELDS`): an extra field of that name
is refused where it is made (:class:`workbench.client.Op`, ``ok()`` / ``fail()`` / ``info()``,
the writer), never written over the event's own. A reader refuses a file whose indices are not
integers, repeat or go backwards: checkers name operations by index, so such a file is bad
data, not a history (the CLI's exit 65).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

EventType = Literal["invoke", "ok", "fail", "info"]
EVENT_TYPES: frozenset[str] = frozenset({"invoke", "ok", "fail", "info"})
NEMESIS = "nemesis"
Process = int | str

_CORE_FIELDS = ("index", "time", "process", "type", "f", "value", "error")
RESERVED_FIELDS: frozenset[str] = frozenset(_CORE_FIELDS)
# One encoder for every line: json.dumps(..., default=str) builds a new encoder per call, which
# was half the cost of recording an event.
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str, ensure_ascii=False)


class HistoryError(ValueError):
    """A history file that cannot be read; the message names the file, the line and the cause."""


class ReservedFieldError(ValueError):
    """An extra field named like one of the event's own keys (:data:`RESERVED_FIELDS`)."""


def refuse_reserved(extra: Mapping[str, Any], where: str) -> None:
    """Raises :class:`ReservedFieldError` naming every extra key that is one of the event's
    own; ``where`` says what carried it (``"ok()"``, ``"Op('read')"``)."""
    clash = [k for k in _CORE_FIELDS if k in extra]
    if clash:
        names = ", ".join(repr(k) for k in clash)
        what = f"extra field {names} is one" if len(clash) == 1 else f"extra fields {names} are"
        raise ReservedFieldError(
            f"{where}: {what} of the history event's own keys ({', '.join(_CORE_FIELDS)}), "
            "set by the harness; give it another name or put it inside the value"
        )


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


class IndexOrder:
    """Checks, event by event, that indices are integers and strictly increasing.

    ``see(index, where)`` returns the problem (``"index 3 repeats that of line 2"``) or None;
    ``where`` names the event for later messages (``"line 2"``)."""

    def __init__(self) -> None:
        self._last: int | None = None
        self._last_where = ""

    def see(self, index: object, where: str) -> str | None:
        if not isinstance(index, int) or isinstance(index, bool):
            return f"index {index!r} is not an integer"
        last = self._last
        if last is not None and index <= last:
            if index == last:
                return f"index {index} repeats that of {self._last_where}"
            return f"index {index} goes backwards ({self._last_where} has {last})"
        self._last, self._last_where = index, where
        return None


@dataclass(frozen=True, slots=True)
class Event:
    """One history event. ``extra`` holds any fields beyond the core seven."""

    index: int
    time: int
    process: Process
    type: str
    f: str
    value: Any = None
    error: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.extra and not RESERVED_FIELDS.isdisjoint(self.extra):
            refuse_reserved(self.extra, f"Event at index {self.index}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "time": self.time,
            "process": self.process,
            "type": self.type,
            "f": self.f,
            "value": self.value,
        }
        if self.error is not None:
            out["error"] = self.error
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Event:
        missing = [k for k in ("index", "time", "process", "type", "f") if k not in data]
        if missing:
            raise ValueError(f"missing field(s) {', '.join(missing)}")
        if data["type"] not in EVENT_TYPES:
            raise ValueError(f"type {data['type']!r} is not one of invoke/ok/fail/info")
        for k in ("index", "time"):
            if not _is_int(data[k]):
                raise ValueError(f"{k} {data[k]!r} is not an integer")
        extra = {k: v for k, v in data.items() if k not in _CORE_FIELDS}
        return cls(
            index=data["index"],
            time=data["time"],
            process=data["process"],
            type=data["type"],
            f=str(data["f"]),
            value=data.get("value"),
            error=data.get("error"),
            extra=extra,
        )

    @property
    def is_client(self) -> bool:
        return self.process != NEMESIS


class HistoryWriter:
    """Appends events to ``history.jsonl`` as they happen.

    Every event is written and flushed at once; an fsync follows at least every
    ``fsync_interval`` seconds (a background timer covers quiet periods) and immediately for
    nemesis events, so a harness killed with SIGKILL leaves the history up to its last second.
    Thread-safe: the runner's event loop and the fault thread may both append.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync_interval: float = 1.0,
        start_ns: int | None = None,
    ) -> None:
        self.path = Path(path)
        self._fh: IO[str] = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self._lock = threading.Lock()
        self._start = time.monotonic_ns() if start_ns is None else start_ns
        self._next_index = 0
        self._dirty = False
        self._fsync_interval = fsync_interval
        self._last_sync = time.monotonic()
        self._closed = threading.Event()
        self._timer = threading.Thread(target=self._sync_loop, name="history-fsync", daemon=True)
        self._timer.start()

    @property
    def start_ns(self) -> int:
        """The monotonic clock reading that ``time == 0`` stands for."""
        return self._start

    def now(self) -> int:
        return time.monotonic_ns() - self._start

    def append(
        self,
        process: Process,
        type: str,
        f: str,
        value: Any = None,
        error: Any = None,
        **extra: Any,
    ) -> Event:
        """Records an event now and returns it (with its index and time)."""
        index, at = self.record(process, type, f, value, error, **extra)
        return Event(index, at, process, type, f, value, error, extra)

    def record(
        self,
        process: Process,
        type: str,
        f: str,
        value: Any = None,
        error: Any = None,
        **extra: Any,
    ) -> tuple[int, int]:
        """Records an event now; returns its ``(index, time)``. The workers' hot path: it skips
        building an :class:`Event` (a third of the cost of recording one).

        Raises :class:`ReservedFieldError` for an extra field named like one of the event's own
        (``time=``, ``index=``): the writer sets those."""
        if type not in EVENT_TYPES:
            raise ValueError(f"event type {type!r} is not one of invoke/ok/fail/info")
        if extra and not RESERVED_FIELDS.isdisjoint(extra):
            refuse_reserved(extra, f"{type} event of process {process!r}")
        with self._lock:
            if self._closed.is_set():
                raise RuntimeError(f"history {self.path} is closed")
            index = self._next_index
            at = time.monotonic_ns() - self._start
            line: dict[str, Any] = {
                "index": index,
                "time": at,
                "process": process,
                "type": type,
                "f": f,
                "value": value,
            }
            if error is not None:
                line["error"] = error
            if extra:
                line.update(extra)
            self._next_index = index + 1
            # Written and flushed at once: a killed harness loses nothing it recorded.
            self._fh.write(_ENCODER.encode(line) + "\n")
            self._fh.flush()
            self._dirty = True
            if process == NEMESIS:
                self._sync_locked()
        return index, at

    def sync(self) -> None:
        with self._lock:
            self._sync_locked()

    def _sync_locked(self) -> None:
        if self._dirty and not self._fh.closed:
            os.fsync(self._fh.fileno())
            self._dirty = False
        self._last_sync = time.monotonic()

    def _sync_loop(self) -> None:
        while not self._closed.wait(self._fsync_interval / 2):
            with self._lock:
                if time.monotonic() - self._last_sync >= self._fsync_interval / 2:
                    self._sync_locked()

    def close(self) -> None:
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
            self._sync_locked()
            self._fh.close()
        self._timer.join(timeout=2)

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class LoadedHistory:
    """What :func:`read_history` returns.

    ``torn_line`` is the 1-based number of a final line that was cut short (a harness killed
    mid-write) and was dropped; ``None`` when the file ended cleanly.
    """

    events: list[Event]
    torn_line: int | None = None


def read_history(path: str | os.PathLike[str]) -> LoadedHistory:
    """Reads a ``history.jsonl``. A torn *last* line (JSON cut short, no newline after it) is
    dropped and reported; a bad line anywhere else raises :class:`HistoryError` naming the line:
    not a JSON object, a missing field, an unknown type, or an index that is not an integer or
    does not increase (``h.jsonl:7: index 5 repeats that of line 6``)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HistoryError(f"{p}: no such history file") from None
    except UnicodeDecodeError as e:
        raise HistoryError(f"{p}: not UTF-8 text ({e.reason})") from None
    lines = text.split("\n")
    ends_clean = text.endswith("\n") or text == ""
    if lines and lines[-1] == "":
        lines.pop()
    events: list[Event] = []
    torn: int | None = None
    order = IndexOrder()
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as e:
            # Only JSON cut short is a torn line: a whole object with bad fields is bad data.
            if n == len(lines) and not ends_clean:
                torn = n
                break
            raise HistoryError(f"{p}:{n}: not a history event ({e})") from None
        try:
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            event = Event.from_json(data)
        except (ValueError, TypeError) as e:
            raise HistoryError(f"{p}:{n}: not a history event ({e})") from None
        problem = order.see(event.index, f"line {n}")
        if problem is not None:
            raise HistoryError(f"{p}:{n}: {problem}")
        events.append(event)
    return LoadedHistory(events, torn)


def write_history(path: str | os.PathLike[str], events: Iterable[Event]) -> None:
    """Writes events to a ``history.jsonl`` file in one go (for imports and tests). Raises
    :class:`HistoryError` (before writing anything) when indices are not strictly increasing,
    so it never writes a file :func:`read_history` would refuse; :func:`reindex` renumbers."""
    events = list(events)
    check_indices(events, str(path))
    with open(path, "w", encoding="utf-8") as fh:
        for e in events:
            fh.write(_ENCODER.encode(e.to_json()) + "\n")


def check_indices(events: Iterable[Event], source: str) -> None:
    """Raises :class:`HistoryError` (``source: event 4: index 2 repeats that of event 3``) when
    the events' indices are not integers or not strictly increasing."""
    order = IndexOrder()
    for n, e in enumerate(events, start=1):
        problem = order.see(e.index, f"event {n}")
        if problem is not None:
            raise HistoryError(f"{source}: event {n}: {problem}")


def reindex(events: Iterable[Event]) -> list[Event]:
    """Returns the events with dense indices 0..n-1, in the given order."""
    out = []
    for i, e in enumerate(events):
        out.append(Event(i, e.time, e.process, e.type, e.f, e.value, e.error, e.extra))
    return out


@dataclass(frozen=True, slots=True)
class Operation:
    """An invocation paired with its completion.

    ``completion`` is ``None`` when the history ended before the operation completed; such an
    operation counts as ``info`` (indeterminate), as in Jepsen.
    """

    invoke: Event
    completion: Event | None

    @property
    def process(self) -> Process:
        return self.invoke.process

    @property
    def f(self) -> str:
        return self.invoke.f

    @property
    def type(self) -> str:
        return "info" if self.completion is None else self.completion.type

    @property
    def value(self) -> Any:
        """The completion's value when there is one (reads return there), else the invocation's."""
        if self.completion is not None and self.completion.value is not None:
            return self.completion.value
        return self.invoke.value

    @property
    def start(self) -> int:
        return self.invoke.time

    @property
    def end(self) -> int | None:
        return None if self.completion is None else self.completion.time


def pair_operations(events: Sequence[Event], *, strict: bool = True) -> list[Operation]:
    """Pairs each client invocation with the next completion of the same process.

    Returns operations in invocation order. With ``strict`` (for checkers), raises
    :class:`HistoryError` when a process invokes twice without completing, or completes what it
    never invoked: such a history was not made by single-threaded processes and no checker can
    judge it. Without (for reports of damaged histories), a re-invocation leaves the earlier
    operation incomplete and a stray completion is skipped.
    """
    open_ops: dict[Process, Event] = {}
    done: dict[int, Event | None] = {}
    order: list[Event] = []
    for e in events:
        if not e.is_client:
            continue
        if e.type == "invoke":
            prev = open_ops.get(e.process)
            if prev is not None and strict:
                raise HistoryError(
                    f"process {e.process} invoked again at index {e.index} while its "
                    f"operation from index {prev.index} was still open"
                )
            open_ops[e.process] = e
            order.append(e)
            done[e.index] = None
        else:
            inv = open_ops.pop(e.process, None)
            if inv is None:
                if not strict:
                    continue
                raise HistoryError(
                    f"index {e.index}: process {e.process} completed ({e.type}) an operation "
                    "it never invoked"
                )
            done[inv.index] = e
    return [Operation(inv, done[inv.index]) for inv in order]


def nemesis_events(events: Iterable[Event]) -> Iterator[Event]:
    return (e for e in events if not e.is_client)
