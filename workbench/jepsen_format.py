"""Jepsen's history formats: readers for its console log and its EDN histories, and an EDN writer.

All readers return ``list[Event]`` (see :mod:`workbench.history`) and raise
:class:`~workbench.history.HistoryError` with ``file:line: cause`` for malformed input.

- Console log (``read_jepsen_log``): lines ``INFO  jepsen.util - <process> <type> <f> <value>``
  (tabs or spaces); other lines (other loggers) are skipped. There are no timestamps: file
  order is time order, so ``index`` and ``time`` are both the event's position.
- EDN (``read_edn``): one map per line, or one vector of maps, e.g.
  ``{:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}``. Keywords become
  strings (``:ok`` -> ``"ok"``, ``:nemesis`` -> ``"nemesis"``), vectors and lists become lists,
  maps dicts (keyword keys as strings). ``:index``/``:time`` are used when present, else the
  position. A separate ``:key`` field (Porcupine's kv histories) is folded into the value as
  ``{"key": k, "value": v}``, the key/value convention of the ``kv`` model.
- ``write_edn`` writes our events as Jepsen EDN, one map per line, with keywords for ``:type``
  and ``:f`` and the process as an int or ``:nemesis``, so Jepsen's tools can read them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, Literal

import edn_format

from workbench.history import EVENT_TYPES, Event, HistoryError, IndexOrder, read_history

Format = Literal["jsonl", "edn", "jepsen-log"]
FORMATS: tuple[str, ...] = ("auto", "jsonl", "edn", "jepsen-log")

# --- A small EDN reader -------------------------------------------------------------------------
# edn_format (a PLY-based parser) takes ~1.8 s for the 4,000-line c50 corpus file, longer than
# checking it. Jepsen histories use a small subset of EDN (maps, vectors, keywords, strings,
# numbers, nil, booleans), so this regex tokenizer parses that subset ~30x faster; anything
# outside it (tagged literals like #inst, characters, comments, metadata) falls back to
# edn_format for the whole text, so no input is misread -- only the error messages of that path
# lose line numbers.

_TOKEN = re.compile(
    r"""(?P<ws>[\s,]+)
      |(?P<str>"(?:[^"\\]|\\.)*")
      |(?P<open>\#\{|[\[{(])
      |(?P<close>[\]})])
      |(?P<atom>[^\s,"\[\]{}()\\;#^`~@][^\s,"\[\]{}()\\;^`~@]*)""",
    re.VERBOSE | re.DOTALL,
)
_INT = re.compile(r"[+-]?\d+N?")
_FLOAT = re.compile(r"[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?M?")
_KEYWORD_OK = re.compile(
    r"[A-Za-z*+!_?<>=.][A-Za-z0-9*+!_?<>=./-]*|-(?:[A-Za-z*+!_?<>=.][\w*+!?<>=./-]*)?"
)


class _Unsupported(Exception):
    """EDN outside the subset the fast reader handles."""


class _Malformed(Exception):
    def __init__(self, line: int, cause: str) -> None:
        super().__init__(cause)
        self.line = line
        self.cause = cause


def _atom(tok: str) -> Any:
    if tok == "nil":
        return None
    if tok == "true":
        return True
    if tok == "false":
        return False
    if tok[0] == ":":
        return tok[1:]
    c = tok[0]
    if c.isdigit() or (c in "+-" and len(tok) > 1 and tok[1].isdigit()):
        if _INT.fullmatch(tok):
            return int(tok.rstrip("N"))
        if _FLOAT.fullmatch(tok):
            return float(tok.rstrip("M"))
        raise _Unsupported(tok)  # ratios and other numeric forms
    return tok  # a symbol: kept as its name


def _fast_parse(text: str) -> list[tuple[int, Any]]:
    """Top-level forms of ``text`` with the line each starts on; the children of a single
    top-level vector are reported with their own lines by :func:`_forms`."""
    out: list[tuple[int, Any]] = []
    # Stack of (closing char, items, start line).
    stack: list[tuple[str, list[Any], int]] = []
    line = 1
    pos = 0
    n = len(text)
    match = _TOKEN.match
    closers = {"[": "]", "{": "}", "(": ")", "#{": "}"}
    while pos < n:
        m = match(text, pos)
        if m is None:
            raise _Unsupported(text[pos : pos + 10])
        pos = m.end()
        kind = m.lastgroup
        tok = m.group()
        value: Any
        if kind == "ws":
            line += tok.count("\n")
            continue
        if kind == "open":
            stack.append((tok, [], line))
            continue
        if kind == "close":
            if not stack:
                raise _Malformed(line, f"unexpected {tok!r}")
            opener, items, start = stack.pop()
            if closers[opener] != tok:
                raise _Malformed(line, f"{opener!r} closed by {tok!r}")
            if opener == "{":
                if len(items) % 2:
                    raise _Malformed(start, "map with an odd number of forms")
                value = {}
                for i in range(0, len(items), 2):
                    k = items[i]
                    value[k if isinstance(k, str | int | float | bool) or k is None else str(k)] = (
                        items[i + 1]
                    )
            else:
                value = items
            if stack and len(stack) == 1 and stack[0][0] == "[" and opener == "{":
                # A map inside the top-level vector: remember its line for error messages.
                value = _Located(start, value)
        elif kind == "str":
            value = json.loads(tok) if "\\" in tok else tok[1:-1]
            line += tok.count("\n")
        else:
            value = _atom(tok)
        if stack:
            stack[-1][1].append(value)
        else:
            out.append((line, value))
    if stack:
        raise _Malformed(stack[-1][2], f"{stack[-1][0]!r} is never closed")
    return out


class _Located:
    """A map from a top-level vector, with the line it starts on."""

    __slots__ = ("line", "value")

    def __init__(self, line: int, value: dict[str, Any]) -> None:
        self.line = line
        self.value = value


def _from_edn_format(value: Any) -> Any:
    """edn_format's values (Keyword, ImmutableDict, ...) as plain Python values."""
    if isinstance(value, edn_format.Keyword):
        return str(value.name)
    if isinstance(value, edn_format.Symbol):
        return str(value)
    if isinstance(value, dict | edn_format.ImmutableDict):
        return {_from_edn_format(k): _from_edn_format(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set | edn_format.ImmutableList):
        return [_from_edn_format(v) for v in value]
    return value


def _forms(text: str) -> list[tuple[str, Any]]:
    """The event maps of an EDN text as (where, value) pairs; ``where`` is ``line N`` or
    ``element N`` (for the rare texts only edn_format can read)."""
    try:
        top = _fast_parse(text)
        plain = False
    except _Unsupported:
        try:
            parsed = edn_format.loads_all(text)
        except Exception as e:  # edn_format raises several unrelated types
            raise _Malformed(0, f"not EDN ({e})") from None
        top = [(0, _from_edn_format(v)) for v in parsed]
        plain = True
    if len(top) == 1 and isinstance(top[0][1], list):
        items = top[0][1]
        out: list[tuple[str, Any]] = []
        for i, item in enumerate(items):
            if isinstance(item, _Located):
                out.append((f"{item.line}", item.value))
            else:
                out.append((f"element {i}" if plain else f"{top[0][0]}", item))
        return out
    return [(f"element {i}" if plain else f"{ln}", v) for i, (ln, v) in enumerate(top)]


def _event_from_map(data: Any, position: int) -> Event:
    if not isinstance(data, dict):
        raise ValueError(f"not a map: {str(data)[:60]}")
    for k in ("type", "f", "process"):
        if k not in data:
            raise ValueError(f"missing :{k}")
    typ = data["type"]
    if typ not in EVENT_TYPES:
        raise ValueError(f":type {typ!r} is not one of :invoke :ok :fail :info")
    process = data["process"]
    if not isinstance(process, int | str) or isinstance(process, bool):
        raise ValueError(f":process {process!r} is neither an integer nor :nemesis")
    index = data.get("index", position)
    t = data.get("time", position)
    if not isinstance(index, int) or not isinstance(t, int):
        raise ValueError(":index and :time must be integers")
    value = data.get("value")
    if "key" in data:
        value = {"key": data["key"], "value": value}
    skip = {"index", "time", "process", "type", "f", "value", "error", "key"}
    extra = {str(k): v for k, v in data.items() if k not in skip}
    return Event(index, t, process, typ, str(data["f"]), value, data.get("error"), extra)


def parse_edn(text: str, source: str = "<edn>") -> list[Event]:
    """Jepsen EDN text (one map per line, or one vector of maps) as events."""
    try:
        forms = _forms(text)
    except _Malformed as e:
        where = f":{e.line}" if e.line else ""
        raise HistoryError(f"{source}{where}: {e.cause}") from None
    events: list[Event] = []
    order = IndexOrder()
    for position, (where, data) in enumerate(forms):
        sep = ": " if where.startswith("element") else ":"
        try:
            event = _event_from_map(data, position)
        except ValueError as e:
            raise HistoryError(f"{source}{sep}{where}: not a Jepsen operation ({e})") from None
        # Maps without :index are numbered by position; given ones must still increase.
        problem = order.see(event.index, f"line {where}" if sep == ":" else where)
        if problem is not None:
            raise HistoryError(f"{source}{sep}{where}: {problem}")
        events.append(event)
    return events


def read_edn(path: str | os.PathLike[str]) -> list[Event]:
    """Reads a Jepsen EDN history file (see :func:`parse_edn`)."""
    return parse_edn(_read_text(path), str(path))


# --- Jepsen console log -----------------------------------------------------------------------

_LOG_LINE = re.compile(r"\S+\s+jepsen\.util\s+-\s+(\S+)\s+:(\S+)\s+:(\S+)\s*(.*?)\s*")


def parse_jepsen_log(text: str, source: str = "<log>") -> list[Event]:
    """Jepsen console-log text as events: ``index`` and ``time`` are the event's position, as
    file order is the only time order the log has. Lines of other loggers are skipped."""
    events: list[Event] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if "jepsen.util" not in line or not line.strip():
            continue
        m = _LOG_LINE.fullmatch(line)
        if m is None:
            raise HistoryError(
                f"{source}:{n}: not '<level> jepsen.util - <process> <type> <f> ...'"
            )
        proc_s, typ, f, value_s = m.groups()
        if typ not in EVENT_TYPES:
            raise HistoryError(f"{source}:{n}: type :{typ} is not one of :invoke :ok :fail :info")
        process: int | str
        if proc_s.lstrip("-").isdigit():
            process = int(proc_s)
        elif proc_s == ":nemesis":
            process = "nemesis"
        else:
            raise HistoryError(
                f"{source}:{n}: process {proc_s!r} is neither an integer nor :nemesis"
            )
        value: Any = None
        if value_s:
            try:
                forms = _fast_parse(value_s)
            except (_Unsupported, _Malformed):
                forms = []
                try:
                    forms = [(1, _from_edn_format(edn_format.loads(value_s)))]
                except Exception:
                    raise HistoryError(f"{source}:{n}: value {value_s!r} is not EDN") from None
            if len(forms) != 1:
                raise HistoryError(f"{source}:{n}: value {value_s!r} is not one EDN form")
            value = forms[0][1]
        pos = len(events)
        events.append(Event(pos, pos, process, typ, f, value))
    return events


def read_jepsen_log(path: str | os.PathLike[str]) -> list[Event]:
    """Reads a Jepsen console log (see :func:`parse_jepsen_log`)."""
    return parse_jepsen_log(_read_text(path), str(path))


# --- Writer ---------------------------------------------------------------------------------


def _edn_key(k: Any) -> str:
    if isinstance(k, str) and _KEYWORD_OK.fullmatch(k):
        return ":" + k
    return _edn_value(k)


def _edn_value(v: Any) -> str:
    if v is None:
        return "nil"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_edn_key(k)} {_edn_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list | tuple):
        return "[" + " ".join(_edn_value(x) for x in v) + "]"
    if isinstance(v, set | frozenset):
        return "#{" + " ".join(_edn_value(x) for x in v) + "}"
    return json.dumps(str(v))


def event_to_edn(e: Event, *, split_key: bool = True) -> str:
    """One event as a Jepsen EDN map on one line. With ``split_key`` a kv value
    ``{"key": k, "value": v}`` is written as separate ``:key`` and ``:value`` fields, as the
    reader folds them back."""
    process = ":nemesis" if e.process == "nemesis" else _edn_value(e.process)
    fields = [
        f":index {e.index}",
        f":time {e.time}",
        f":type :{e.type}",
        f":process {process}",
        f":f {_edn_key(e.f)}",
    ]
    value = e.value
    if split_key and isinstance(value, dict) and set(value) == {"key", "value"}:
        fields.append(f":key {_edn_value(value['key'])}")
        value = value["value"]
    fields.append(f":value {_edn_value(value)}")
    if e.error is not None:
        fields.append(f":error {_edn_value(e.error)}")
    for k, v in e.extra.items():
        fields.append(f"{_edn_key(k)} {_edn_value(v)}")
    return "{" + ", ".join(fields) + "}"


def write_edn(
    target: str | os.PathLike[str] | IO[str], events: Iterable[Event], *, split_key: bool = True
) -> None:
    """Writes events as Jepsen EDN, one map per line (see :func:`event_to_edn`)."""
    lines = "".join(event_to_edn(e, split_key=split_key) + "\n" for e in events)
    if isinstance(target, str | os.PathLike):
        Path(target).write_text(lines, encoding="utf-8")
    else:
        target.write(lines)


# --- Any format -------------------------------------------------------------------------------


def _read_text(path: str | os.PathLike[str]) -> str:
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HistoryError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise HistoryError(f"{p}: is a directory, not a history file") from None
    except UnicodeDecodeError as e:
        raise HistoryError(f"{p}: not UTF-8 text ({e.reason})") from None
    except OSError as e:
        raise HistoryError(f"{p}: cannot read ({e.strerror})") from None


def detect_format(path: str | os.PathLike[str]) -> Format:
    """The format of a history file, from its extension (.jsonl, .edn, .log) or else its first
    non-blank line. Raises :class:`HistoryError` when neither tells."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return "jsonl"
    if suffix == ".edn":
        return "edn"
    if suffix == ".log":
        return "jepsen-log"
    text = _read_text(p)
    for line in text.splitlines():
        s = line.strip()
        if not s:
            continue
        if "jepsen.util" in s:
            return "jepsen-log"
        if s.startswith("{:") or s.startswith("[") or s.startswith("{ :"):
            return "edn"
        if s.startswith('{"') or s.startswith("{ "):
            return "jsonl"
        break
    raise HistoryError(f"{p}: cannot tell the format (give --format jsonl, edn or jepsen-log)")


def read_events(path: str | os.PathLike[str], fmt: str = "auto") -> list[Event]:
    """Reads a history in any supported format (``auto`` detects it). Our ``history.jsonl`` is
    read by :func:`workbench.history.read_history` (a torn last line is dropped)."""
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "jsonl":
        return read_history(path).events
    if fmt == "edn":
        return read_edn(path)
    if fmt == "jepsen-log":
        return read_jepsen_log(path)
    raise HistoryError(f"unknown history format {fmt!r} (one of {', '.join(FORMATS)})")
