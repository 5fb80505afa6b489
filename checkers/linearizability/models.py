"""Sequential specifications ("models") that the linearizability search checks a history against.

A model is a small class with a handful of pure methods (see :class:`Model`). States must be
hashable and compared by value: the search memoises (linearized-set, state) pairs in a set.

To add a model, subclass :class:`Model` and either pass an instance to
:class:`checkers.linearizability.Linearizable`, or register the class by name under the
``workbench.models`` entry-point group so ``workbench lin --model NAME`` finds it::

    [project.entry-points."workbench.models"]
    my-counter = "mypkg.models:Counter"

Operation encoding: :meth:`Model.operation` turns one paired history operation into the
``(input, output)`` pair the model's :meth:`Model.step` understands. Inputs must be hashable (the
search compares them to break symmetries between crashed operations). An operation whose outcome
is unknown (completed with ``info``, or never completed) gets the output :data:`UNKNOWN`, which
``step`` must accept as "any output": it takes effect if it can in that state.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Hashable, Sequence
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Final

from workbench.history import Operation

if TYPE_CHECKING:
    from checkers.linearizability.operations import LinOp

DeadEnds = Callable[[Any], tuple[tuple[int, int], ...]]
"""What :meth:`Model.dead_ends` returns: state -> ((need, rescue) masks, ...)."""

_DEAD_END_MEMO = 1 << 14  # states whose dead-end masks the kv model remembers (per part)


class ModelError(ValueError):
    """An operation the model cannot interpret (unknown ``f``, malformed value)."""


class _Unknown:
    """The output of an operation whose outcome was never observed."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "?"

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()
"""Output of crashed (``info``) or never-completed operations: any output is acceptable."""


def freeze(value: Any) -> Any:
    """Makes a JSON-ish value hashable: lists become tuples, dicts sorted item tuples, sets
    frozensets. Values read from JSON or EDN are lists and dicts, states must hash."""
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, set | frozenset):
        return frozenset(freeze(v) for v in value)
    return value


def _show(value: Any) -> str:
    if value is None:
        return "nil"
    if value is UNKNOWN:
        return "?"
    if isinstance(value, frozenset):
        return "{" + ", ".join(sorted(_show(v) for v in value)) + "}"
    if isinstance(value, tuple):
        return "[" + " ".join(_show(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


class Model:
    """Base class of models. Subclasses override ``init``, ``step`` and ``operation``; the rest
    has sensible defaults.

    - ``init() -> state``: the initial state (hashable).
    - ``step(state, input, output) -> (ok, new_state)``: whether ``input`` may run in ``state``
      and answer ``output`` (``UNKNOWN`` = any answer), and the state after it. Pure.
    - ``operation(op) -> (input, output) | None``: encodes a paired history operation
      (:class:`workbench.history.Operation`, never a ``fail``) for ``step``; ``None`` drops it.
      Raise :class:`ModelError` for operations the model does not know.
    - ``partition(ops) -> list of lists``: independent sub-histories (P-compositionality): the
      history is linearizable iff each part is. Default: one part.
    - ``is_read_only(input) -> bool``: True when the operation never changes any state. The search
      then linearizes it greedily, without branching, as soon as it fits: moving a read earlier
      to a point where it is already invoked and returns the same value never breaks a
      linearization. Default False (always safe).
    - ``read_expects(input, output) -> state | UNKNOWN``: for a read-only operation that fits
      exactly when the state equals some value, that value (the search then compares instead
      of calling ``step``: most of its steps are reads that do not fit). Default UNKNOWN (ask
      ``step``).
    - ``dead_ends(ops) -> (state -> ((need, rescue), ...)) | None``: an optional, exact pruning
      of the search (see :meth:`Model.dead_ends`). Default None (no pruning).
    - ``describe_operation(input, output) -> str`` and ``describe_state(state) -> str``: text for
      explanations.
    """

    name: str = "model"

    def init(self) -> Hashable:
        raise NotImplementedError

    def step(self, state: Any, input: Any, output: Any) -> tuple[bool, Any]:
        raise NotImplementedError

    def operation(self, op: Operation) -> tuple[Hashable, Any] | None:
        raise NotImplementedError

    def partition(self, ops: Sequence[LinOp]) -> list[list[LinOp]]:
        return [list(ops)]

    def is_read_only(self, input: Any) -> bool:
        return False

    def read_expects(self, input: Any, output: Any) -> Any:
        return UNKNOWN

    def dead_ends(self, ops: Sequence[LinOp]) -> DeadEnds | None:
        """Optionally, a function telling the search which states cannot lead to a linearization.

        ``ops`` is the part being searched; bit ``i`` of a mask stands for ``ops[i]``. The
        function maps a state ``s`` to pairs of masks ``(need, rescue)``, and the search
        abandons a (linearized set ``L``, state ``s``) pair when, for one of the pairs, an
        operation of ``need`` is not in ``L`` and every operation of ``rescue`` is (``rescue``
        0: whatever else is pending). It must be *sound*: whenever that holds, no order of the
        operations outside ``L``, run from ``s``, linearizes every one of them that returned.
        Typically ``need`` holds returned operations that fit in no state reachable from ``s``
        unless an operation of ``rescue`` runs first. The search may skip the check (it only
        ever prunes), so answers never depend on it; it must be pure.
        """
        return None

    def describe_operation(self, input: Any, output: Any) -> str:
        return f"{_show(input)} -> {_show(output)}"

    def describe_state(self, state: Any) -> str:
        return _show(state)


def _completed_value(op: Operation) -> Any:
    """The value an ``ok`` completion reported (``None`` when there was no ``ok``)."""
    if op.completion is not None and op.completion.type == "ok":
        return op.completion.value
    return None


def _is_ok(op: Operation) -> bool:
    return op.completion is not None and op.completion.type == "ok"


class Register(Model):
    """A read/write register. Jepsen encoding: ``f`` is ``read`` (the ``ok`` value is what was
    read; ``nil``/None is the initial, absent value) or ``write`` (value = the value written).

    Inputs: ``("read",)``, ``("write", v)``. State: the value (initially None).
    """

    name = "register"

    def init(self) -> Hashable:
        return None

    def step(self, state: Any, input: Any, output: Any) -> tuple[bool, Any]:
        if input[0] == "read":
            return (output is UNKNOWN or output == state), state
        return True, input[1]

    def operation(self, op: Operation) -> tuple[Hashable, Any] | None:
        f = op.f
        if f == "read":
            return ("read",), freeze(_completed_value(op)) if _is_ok(op) else UNKNOWN
        if f == "write":
            return ("write", freeze(op.invoke.value)), None if _is_ok(op) else UNKNOWN
        raise ModelError(f"{self.name} model: unknown operation f={f!r} (expected read/write)")

    def is_read_only(self, input: Any) -> bool:
        return bool(input[0] == "read")

    def read_expects(self, input: Any, output: Any) -> Any:
        return output if input[0] == "read" else UNKNOWN

    def describe_operation(self, input: Any, output: Any) -> str:
        if input[0] == "read":
            return f"read() -> {_show(output)}"
        return f"write({_show(input[1])})" + (" -> ?" if output is UNKNOWN else "")


class CasRegister(Register):
    """A register with compare-and-set. Adds ``f`` = ``cas`` with value ``[from, to]``: an ``ok``
    cas found ``from`` and wrote ``to``. (A ``fail`` cas never took effect and is dropped before
    the model sees it, as for every ``fail``.)

    Inputs: ``("read",)``, ``("write", v)``, ``("cas", from, to)``. State: the value (None = nil).
    """

    name = "cas-register"

    def step(self, state: Any, input: Any, output: Any) -> tuple[bool, Any]:
        kind = input[0]
        if kind == "read":
            return (output is UNKNOWN or output == state), state
        if kind == "write":
            return True, input[1]
        if state == input[1]:
            return True, input[2]
        # A known-ok cas cannot run here; an unknown one may run without effect here (it is
        # then a failed cas, i.e. no effect) -- the search treats "no effect" by leaving it
        # unlinearized, so refusing is exact and prunes.
        return False, state

    def operation(self, op: Operation) -> tuple[Hashable, Any] | None:
        if op.f == "cas":
            v = op.invoke.value
            if not isinstance(v, list | tuple) or len(v) != 2:
                raise ModelError(f"cas-register model: cas value {v!r} is not [from, to]")
            return ("cas", freeze(v[0]), freeze(v[1])), True if _is_ok(op) else UNKNOWN
        if op.f not in ("read", "write"):
            raise ModelError(
                f"cas-register model: unknown operation f={op.f!r} (expected read/write/cas)"
            )
        return super().operation(op)

    def describe_operation(self, input: Any, output: Any) -> str:
        if input[0] == "cas":
            return f"cas({_show(input[1])}, {_show(input[2])})" + (
                " -> ?" if output is UNKNOWN else " -> ok"
            )
        return super().describe_operation(input, output)


class KV(Model):
    """A key/value store of strings with ``get``, ``put`` and ``append``, partitioned by key.

    Convention for our histories: an event's value is ``{"key": k, "value": v}`` (``v`` is None
    on a get's invocation; the get's ``ok`` carries what was read). A two-element list
    ``[k, v]`` (Jepsen's ``independent`` tuples) is accepted too. The Jepsen EDN reader folds
    the corpus' separate ``:key`` field into this convention. An absent key reads as ``""``
    (a None read is taken as ``""``), and ``append`` concatenates strings.

    Inputs: ``("get", k)``, ``("put", k, v)``, ``("append", k, v)``. State per partition: the
    key's string value.
    """

    name = "kv"

    def init(self) -> Hashable:
        return ""

    def step(self, state: Any, input: Any, output: Any) -> tuple[bool, Any]:
        kind = input[0]
        if kind == "get":
            return (output is UNKNOWN or output == state), state
        if kind == "put":
            return True, input[2]
        return True, state + input[2]

    @staticmethod
    def _key_value(value: Any) -> tuple[Any, Any]:
        if isinstance(value, dict) and "key" in value:
            return value["key"], value.get("value")
        if isinstance(value, list | tuple) and len(value) == 2:
            return value[0], value[1]
        raise ModelError(f'kv model: value {value!r} is not {{"key": k, "value": v}}')

    def operation(self, op: Operation) -> tuple[Hashable, Any] | None:
        key, v = self._key_value(op.invoke.value)
        key = freeze(key)
        if op.f == "get":
            if not _is_ok(op):
                return ("get", key), UNKNOWN
            _, got = self._key_value(_completed_value(op))
            return ("get", key), "" if got is None else str(got)
        if op.f in ("put", "append"):
            return (op.f, key, "" if v is None else str(v)), None if _is_ok(op) else UNKNOWN
        raise ModelError(f"kv model: unknown operation f={op.f!r} (expected get/put/append)")

    def partition(self, ops: Sequence[LinOp]) -> list[list[LinOp]]:
        parts: dict[Any, list[LinOp]] = {}
        for op in ops:
            parts.setdefault(op.input[1], []).append(op)  # type: ignore[index]
        return list(parts.values())

    def is_read_only(self, input: Any) -> bool:
        return bool(input[0] == "get")

    def read_expects(self, input: Any, output: Any) -> Any:
        return output if input[0] == "get" else UNKNOWN

    def dead_ends(self, ops: Sequence[LinOp]) -> DeadEnds | None:
        """Prunes states from which some returned get can no longer read its value (one part).

        Soundness: from a state ``s``, ``append`` only extends the string and ``get`` leaves it
        alone, so every state reachable from ``s`` starts with ``s``, or with the value ``v`` of
        a ``put`` run on the way (appends after it extend ``v`` in turn). A get that returned
        ``g`` must still be linearized, before its return and at a state equal to ``g``. So if
        ``g`` does not start with ``s``, some pending put ``p`` must run before that get: one
        whose value is a prefix of ``g`` (or the states that follow it would not be) and that
        was called no later than the get returned (real-time order). The gets are grouped by
        that set of possible rescuers; for each group, ``need`` holds its returned gets whose
        output does not start with ``s`` and ``rescue`` its rescuers: while a get of ``need``
        is pending and no put of ``rescue`` is, the pair is a dead end.
        """
        groups: dict[int, int] = {}  # rescuers mask -> mask of the gets they may rescue
        gets: list[tuple[str, int]] = []  # (output, bit) of the returned gets
        puts: list[tuple[int, int, str]] = []  # (bit, call, value)
        for i, op in enumerate(ops):
            inp: Any = op.input
            if inp[0] == "put":
                puts.append((1 << i, op.call, inp[2]))
        for i, op in enumerate(ops):
            inp = op.input
            # Crashed gets (output UNKNOWN, never returned) need not be linearized: skipped.
            if inp[0] == "get" and isinstance(op.output, str) and op.ret is not None:
                g, ret = op.output, op.ret
                rescue = 0
                for bit, call, value in puts:
                    if call <= ret and g.startswith(value):
                        rescue |= bit
                groups[rescue] = groups.get(rescue, 0) | 1 << i
                gets.append((g, 1 << i))
        if not gets:
            return None
        # The outputs that start with a given string form one run of the sorted outputs: the
        # run's bits are the difference of two running ORs (bits are distinct).
        gets.sort()
        outputs = [g for g, _ in gets]
        running = [0]
        for _, bit in gets:
            running.append(running[-1] | bit)
        every = running[-1]
        pairs = sorted(groups.items(), key=lambda item: item[0])  # unconditional group first
        single = len(pairs) == 1  # its members are then every get
        top = "" if any("\U0010ffff" in g for g in outputs) else "\U0010ffff"
        memo: dict[Any, tuple[tuple[int, int], ...]] = {}

        def dead(state: Any) -> tuple[tuple[int, int], ...]:
            found = memo.get(state)
            if found is not None:
                return found
            if not isinstance(state, str):
                return ()
            lo = bisect_left(outputs, state)
            if top:  # no output holds chr(0x10FFFF): x starts with state iff it sorts below
                hi = bisect_left(outputs, state + top, lo)
            else:  # truncation keeps the sorted order: x[:k] == state exactly on [lo, hi)
                k = len(state)
                hi = bisect_right(outputs, state, lo, key=lambda x: x[:k])
            unfit = every ^ running[hi] ^ running[lo]  # gets not starting with state
            if not unfit:
                result: tuple[tuple[int, int], ...] = ()
            elif single:
                result = ((unfit, pairs[0][0]),)
            else:
                result = tuple([(unfit & m, rescue) for rescue, m in pairs if unfit & m])
            if len(memo) < _DEAD_END_MEMO:
                memo[state] = result
            return result

        return dead

    def describe_operation(self, input: Any, output: Any) -> str:
        if input[0] == "get":
            return f"get({input[1]!r}) -> {_show(output)}"
        return f"{input[0]}({input[1]!r}, {input[2]!r})" + (" -> ?" if output is UNKNOWN else "")


class Mutex(Model):
    """A lock with an owner. ``f`` is ``acquire`` or ``release``; the owner is the event's value
    when given (a client or session id, which survives Jepsen's process renumbering after a
    crash), else the process. ``acquire`` needs the lock free; ``release`` needs the caller to
    hold it.

    Inputs: ``("acquire", owner)``, ``("release", owner)``. State: the owner, or None when free.
    """

    name = "mutex"

    def init(self) -> Hashable:
        return None

    def step(self, state: Any, input: Any, output: Any) -> tuple[bool, Any]:
        if input[0] == "acquire":
            return (True, input[1]) if state is None else (False, state)
        return (True, None) if state == input[1] else (False, state)

    def operation(self, op: Operation) -> tuple[Hashable, Any] | None:
        if op.f not in ("acquire", "release"):
            raise ModelError(
                f"mutex model: unknown operation f={op.f!r} (expected acquire/release)"
            )
        owner = op.invoke.value if op.invoke.value is not None else op.process
        return (op.f, freeze(owner)), None if _is_ok(op) else UNKNOWN

    def describe_operation(self, input: Any, output: Any) -> str:
        return f"{input[0]}({_show(input[1])})" + (" -> ?" if output is UNKNOWN else "")

    def describe_state(self, state: Any) -> str:
        return "free" if state is None else f"held by {_show(state)}"


class SetModel(Model):
    """A grow-only set. ``f`` is ``add`` (value = the element) or ``read`` (the ``ok`` value is
    the whole set, as a list).

    Inputs: ``("add", x)``, ``("read",)``. State: a frozenset.
    """

    name = "set"

    def init(self) -> Hashable:
        return frozenset()

    def step(self, state: Any, input: Any, output: Any) -> tuple[bool, Any]:
        if input[0] == "read":
            return (output is UNKNOWN or output == state), state
        return True, state | {input[1]}

    def operation(self, op: Operation) -> tuple[Hashable, Any] | None:
        if op.f == "add":
            return ("add", freeze(op.invoke.value)), None if _is_ok(op) else UNKNOWN
        if op.f == "read":
            if not _is_ok(op):
                return ("read",), UNKNOWN
            got = _completed_value(op)
            return ("read",), frozenset(freeze(v) for v in (got or ()))
        raise ModelError(f"set model: unknown operation f={op.f!r} (expected add/read)")

    def is_read_only(self, input: Any) -> bool:
        return bool(input[0] == "read")

    def read_expects(self, input: Any, output: Any) -> Any:
        return output if input[0] == "read" else UNKNOWN

    def describe_operation(self, input: Any, output: Any) -> str:
        if input[0] == "read":
            return f"read() -> {_show(output)}"
        return f"add({_show(input[1])})" + (" -> ?" if output is UNKNOWN else "")


class FifoQueue(Model):
    """A FIFO queue. ``f`` is ``enqueue`` (value = the element) or ``dequeue`` (the ``ok`` value
    is the element taken, or None when the queue was empty).

    Inputs: ``("enqueue", x)``, ``("dequeue",)``. State: a tuple, head first.
    """

    name = "fifo-queue"

    def init(self) -> Hashable:
        return ()

    def step(self, state: Any, input: Any, output: Any) -> tuple[bool, Any]:
        if input[0] == "enqueue":
            return True, (*state, input[1])
        if not state:
            return (output is UNKNOWN or output is None), state
        if output is UNKNOWN or output == state[0]:
            return True, state[1:]
        return False, state

    def operation(self, op: Operation) -> tuple[Hashable, Any] | None:
        if op.f == "enqueue":
            return ("enqueue", freeze(op.invoke.value)), None if _is_ok(op) else UNKNOWN
        if op.f == "dequeue":
            return ("dequeue",), freeze(_completed_value(op)) if _is_ok(op) else UNKNOWN
        raise ModelError(
            f"fifo-queue model: unknown operation f={op.f!r} (expected enqueue/dequeue)"
        )

    def describe_operation(self, input: Any, output: Any) -> str:
        if input[0] == "dequeue":
            return f"dequeue() -> {_show(output)}"
        return f"enqueue({_show(input[1])})" + (" -> ?" if output is UNKNOWN else "")


BUILTIN_MODELS: dict[str, Callable[[], Model]] = {
    "register": Register,
    "cas-register": CasRegister,
    "kv": KV,
    "mutex": Mutex,
    "set": SetModel,
    "fifo-queue": FifoQueue,
}
ENTRY_POINT_GROUP: Final = "workbench.models"


def model_names() -> list[str]:
    """Names of the built-in models and of those registered under ``workbench.models``."""
    names = set(BUILTIN_MODELS)
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def get_model(name: str) -> Model:
    """A fresh model by name: a built-in, else one registered under ``workbench.models`` (the
    entry point may name a :class:`Model` subclass, a factory, or an instance). Raises
    :class:`KeyError` naming the known models when there is none."""
    factory = BUILTIN_MODELS.get(name)
    if factory is not None:
        return factory()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            obj = ep.load()
            model = obj() if callable(obj) else obj
            if not isinstance(model, Model):
                raise KeyError(f"entry point {name!r} ({ep.value}) is not a Model")
            return model
    raise KeyError(f"no model {name!r}; known models: {', '.join(model_names())}")
