"""Property tests: simulated correct systems are linearizable, and on tiny random histories the
checker agrees with an exhaustive search over all orders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkers.linearizability import Linearizable, LinOp, get_model, prepare, search
from checkers.linearizability.models import KV, DeadEnds
from tests.linearizability.helpers import brute_force
from workbench.checker import CheckContext
from workbench.history import Event

MODELS = ["register", "cas-register", "kv", "mutex", "set", "fifo-queue"]
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _random_op(model: str, draw: Any) -> tuple[str, Any]:
    """A random invocation (f, value) for ``model``."""
    small = st.integers(0, 2)
    if model in ("register", "cas-register"):
        fs = ["read", "write"] + (["cas"] if model == "cas-register" else [])
        f = draw(st.sampled_from(fs))
        if f == "write":
            return f, draw(small)
        if f == "cas":
            return f, [draw(st.none() | small), draw(small)]
        return f, None
    if model == "kv":
        f = draw(st.sampled_from(["get", "put", "append"]))
        key = draw(st.sampled_from(["a", "b"]))
        return f, {"key": key, "value": None if f == "get" else draw(st.sampled_from("xyz"))}
    if model == "mutex":
        return draw(st.sampled_from(["acquire", "release"])), None
    if model == "set":
        f = draw(st.sampled_from(["add", "read"]))
        return f, draw(small) if f == "add" else None
    f = draw(st.sampled_from(["enqueue", "dequeue"]))
    return f, draw(small) if f == "enqueue" else None


class Simulated:
    """A correct in-memory system for each model: applies an operation atomically and says
    what it returns (``ok``) or that it did not apply (``fail``)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.reg: Any = None
        self.kv: dict[str, str] = {}
        self.owner: Any = None
        self.items: set[Any] = set()
        self.queue: list[Any] = []

    def apply(self, process: Any, f: str, value: Any) -> tuple[str, Any]:
        m = self.model
        if m in ("register", "cas-register"):
            if f == "read":
                return "ok", self.reg
            if f == "write":
                self.reg = value
                return "ok", value
            if self.reg == value[0]:
                self.reg = value[1]
                return "ok", value
            return "fail", value
        if m == "kv":
            key = value["key"]
            if f == "get":
                return "ok", {"key": key, "value": self.kv.get(key, "")}
            old = self.kv.get(key, "") if f == "append" else ""
            self.kv[key] = old + value["value"]
            return "ok", value
        if m == "mutex":
            if f == "acquire" and self.owner is None:
                self.owner = process
                return "ok", None
            if f == "release" and self.owner == process:
                self.owner = None
                return "ok", None
            return "fail", None
        if m == "set":
            if f == "add":
                self.items.add(value)
                return "ok", value
            return "ok", sorted(self.items)
        if f == "enqueue":
            self.queue.append(value)
            return "ok", value
        return "ok", (self.queue.pop(0) if self.queue else None)


@st.composite
def simulated_history(draw: Any) -> tuple[str, list[Event]]:
    """A history of a correct system under random interleavings, crashes and failures.

    Each process invokes, the operation takes effect atomically at some later step (or, if the
    process crashes first, maybe never), then completes. A crashed process is replaced by a new
    one (Jepsen's renumbering); the mutex owner is the process, so a crash can leak the lock,
    which stays correct.
    """
    model = draw(st.sampled_from(MODELS))
    system = Simulated(model)
    n_procs = draw(st.integers(1, 4))
    procs = list(range(n_procs))
    pending: dict[int, dict[str, Any]] = {}  # process -> {f, value, result}
    out: list[Event] = []
    next_proc = n_procs

    def emit(process: Any, typ: str, f: str, value: Any) -> None:
        out.append(Event(len(out), len(out), process, typ, f, value))

    for _ in range(draw(st.integers(0, 30))):
        action = draw(st.sampled_from(["invoke", "apply", "complete", "crash", "nemesis"]))
        if action == "nemesis":
            emit("nemesis", "info", "partition", None)
            continue
        idle = [p for p in procs if p not in pending]
        if action == "invoke" and idle:
            p = draw(st.sampled_from(idle))
            f, value = _random_op(model, draw)
            pending[p] = {"f": f, "value": value, "result": None}
            emit(p, "invoke", f, value)
            continue
        waiting = [p for p in pending if pending[p]["result"] is None]
        if action == "apply" and waiting:
            p = draw(st.sampled_from(waiting))
            op = pending[p]
            op["result"] = system.apply(p, op["f"], op["value"])
            continue
        done = [p for p in pending if pending[p]["result"] is not None]
        if action == "complete" and done:
            p = draw(st.sampled_from(done))
            op = pending.pop(p)
            typ, value = op["result"]
            emit(p, typ, op["f"], value)
            continue
        if action == "crash" and pending:
            p = draw(st.sampled_from(sorted(pending)))
            op = pending.pop(p)
            emit(p, "info", op["f"], op["value"])
            procs.remove(p)
            procs.append(next_proc)
            next_proc += 1
    return model, out


@SETTINGS
@given(simulated_history())
def test_simulated_correct_systems_are_linearizable(case: tuple[str, list[Event]]) -> None:
    model, history = case
    result = Linearizable(model).check(history, CheckContext())
    assert result.valid is True, (result.summary, [a.explanation for a in result.anomalies])


@st.composite
def random_history(draw: Any) -> tuple[str, list[Event]]:
    """Up to 8 operations with random intervals and random (mostly wrong) results; each
    operation has its own process so any interleaving is well formed."""
    model = draw(st.sampled_from(MODELS))
    n = draw(st.integers(0, 8))
    timed: list[tuple[int, int, Event]] = []
    for p in range(n):
        f, value = _random_op(model, draw)
        start = draw(st.integers(0, 20))
        end = start + draw(st.integers(0, 10))
        typ = draw(st.sampled_from(["ok", "ok", "ok", "info", "fail"]))
        result = _random_result(model, f, value, draw) if typ == "ok" else value
        timed.append((start, 0, Event(0, start, p, "invoke", f, value)))
        if not (typ == "info" and draw(st.booleans())):  # sometimes never completes
            timed.append((end, 1, Event(0, end, p, typ, f, result)))
    timed.sort(key=lambda t: (t[0], t[1]))
    history = [Event(i, t, e.process, e.type, e.f, e.value) for i, (t, _, e) in enumerate(timed)]
    return model, history


def _random_result(model: str, f: str, value: Any, draw: Any) -> Any:
    small = st.none() | st.integers(0, 2)
    if model in ("register", "cas-register") and f == "read":
        return draw(small)
    if model == "kv" and f == "get":
        return {"key": value["key"], "value": draw(st.sampled_from(["", "x", "y", "xy", "z"]))}
    if model == "set" and f == "read":
        return draw(st.lists(st.integers(0, 2), max_size=3, unique=True))
    if model == "fifo-queue" and f == "dequeue":
        return draw(small)
    return value


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_history())
def test_agrees_with_brute_force(case: tuple[str, list[Event]]) -> None:
    model_name, history = case
    model = get_model(model_name)
    expected = brute_force(model, prepare(history, model).ops)
    got = Linearizable(model_name).check(history, CheckContext()).valid
    assert got is expected


class _UnprunedKV(KV):
    """The kv model without its dead-end pruning: the reference the pruned search must match."""

    def dead_ends(self, ops: Sequence[LinOp]) -> DeadEnds | None:
        return None


@st.composite
def kv_append_history(draw: Any, max_ops: int = 8) -> tuple[list[Event], bool]:
    """One key, mostly appends and gets, a few puts; returns the history and whether it was
    left correct.

    A correct execution first: each operation takes effect at a random point of its interval
    (a crashed one maybe never, a failed one never) and each get reads the string there. Then,
    half the time, one get's output is corrupted into a near miss (a prefix, a longer string, a
    reordering), so both verdicts are common and the kv model's dead ends (a get whose output
    no longer starts with the state, puts that may rescue it) are exercised both ways.
    Appended values repeat on purpose (equal strings from different orders).
    """
    n = draw(st.integers(1, max_ops))
    ops: list[dict[str, Any]] = []
    for p in range(n):
        f = draw(st.sampled_from(["append", "append", "append", "get", "get", "put"]))
        start = draw(st.integers(0, 3 * max_ops))
        end = start + draw(st.integers(0, 8))
        ops.append(
            {
                "p": p,
                "f": f,
                "v": None if f == "get" else draw(st.sampled_from(["a", "b", "c", "ab"])),
                "start": start,
                "end": end,
                "point": draw(st.integers(start, end)),
                "typ": draw(st.sampled_from(["ok", "ok", "ok", "ok", "info", "fail"])),
                "applies": draw(st.booleans()),
                "completes": draw(st.booleans()),
            }
        )
    state = ""
    for op in sorted(ops, key=lambda o: (o["point"], o["p"])):
        if op["typ"] == "fail" or (op["typ"] == "info" and not op["applies"]):
            continue
        if op["f"] == "get":
            op["out"] = state
        elif op["f"] == "put":
            state = op["v"]
        else:
            state += op["v"]
    correct = True
    gets = [op for op in ops if op["f"] == "get" and op["typ"] == "ok"]
    if gets and draw(st.booleans()):
        victim = draw(st.sampled_from(gets))
        out = victim["out"]
        wrong = draw(st.sampled_from([out[:-1], out + "a", out[::-1], "b" + out, out[1:]]))
        correct = wrong == out
        victim["out"] = wrong
    timed: list[tuple[int, int, Event]] = []
    for op in ops:
        p, f, key_value = op["p"], op["f"], {"key": "k", "value": op["v"]}
        timed.append((op["start"], 0, Event(0, 0, p, "invoke", f, key_value)))
        if op["typ"] == "info" and not op["completes"]:
            continue  # never completes
        done = {"key": "k", "value": op["out"]} if f == "get" and op["typ"] == "ok" else key_value
        timed.append((op["end"], 1, Event(0, 0, p, op["typ"], f, done)))
    timed.sort(key=lambda t: (t[0], t[1]))
    history = [Event(i, t, e.process, e.type, e.f, e.value) for i, (t, _, e) in enumerate(timed)]
    return history, correct


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kv_append_history())
def test_kv_dead_ends_agree_with_brute_force(case: tuple[list[Event], bool]) -> None:
    history, correct = case
    model = get_model("kv")
    ops = prepare(history, model).ops
    expected = brute_force(model, ops)
    assert expected or not correct  # the generator's correct executions are linearizable
    assert Linearizable(model).check(history, CheckContext()).valid is expected
    assert search(model, ops).valid is expected


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kv_append_history(max_ops=22))
def test_kv_dead_ends_agree_with_unpruned_search(case: tuple[list[Event], bool]) -> None:
    history, correct = case
    ops = prepare(history, KV()).ops
    pruned = search(KV(), ops)
    unpruned = search(_UnprunedKV(), ops)
    assert pruned.valid is unpruned.valid
    assert pruned.valid is True or not correct
    assert pruned.explored <= unpruned.explored
    # The order found (valid) or the longest prefix found (violation) is a real one.
    state = ""
    for i in pruned.order if pruned.valid is True else pruned.prefix:
        ok, state = KV().step(state, ops[i].input, ops[i].output)
        assert ok
    if pruned.valid is False:
        assert pruned.stuck is not None and pruned.stuck not in pruned.prefix
        assert ops[pruned.stuck].ret is not None  # a returned operation, one that had to fit
        # The explanation searches again without the dead ends: the plain search's prefix.
        assert unpruned.stuck is not None
        anomaly = Linearizable("kv").check(history, CheckContext()).anomalies[0]
        assert anomaly.data["prefix_length"] == len(unpruned.prefix)
        assert anomaly.data["operation"]["invoke_index"] == ops[unpruned.stuck].invoke_index


_TEXT = st.text(alphabet="ab\U0010ffff", max_size=4)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["get", "put", "append"]), _TEXT, st.integers(0, 9)),
        max_size=8,
    ),
    st.lists(_TEXT, min_size=1, max_size=4),
)
def test_kv_dead_end_masks_match_their_definition(
    rows: list[tuple[str, str, int]], states: list[str]
) -> None:
    """The kv model's fast dead-end masks (sorted runs, a sentinel character unless an output
    holds it) against their definition, one get at a time."""
    ops = [
        LinOp(i, i, f, (f, "k") if f == "get" else (f, "k", text), text, t, t + 2, 2 * i, None)
        for i, (f, text, t) in enumerate(rows)
    ]
    dead = KV().dead_ends(ops)
    gets = [op for op in ops if op.f == "get"]
    if not gets:
        assert dead is None
        return
    assert dead is not None
    for state in states:
        expected: dict[int, int] = {}
        for g in gets:
            if g.output.startswith(state):
                continue
            rescue = 0
            for p in ops:
                value: Any = p.input
                if p.f == "put" and p.call <= (g.ret or 0) and g.output.startswith(value[2]):
                    rescue |= 1 << p.id
            expected[rescue] = expected.get(rescue, 0) | 1 << g.id
        assert sorted(dead(state), key=lambda pair: pair[1]) == sorted(
            ((need, rescue) for rescue, need in expected.items()), key=lambda pair: pair[1]
        )
        assert dead(state) == dead(state)  # memoised, same answer
