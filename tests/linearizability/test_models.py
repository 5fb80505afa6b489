"""Known-good and known-bad small histories for each built-in model, explanations, budgets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from checkers.linearizability import (
    UNKNOWN,
    Linearizable,
    Model,
    ModelError,
    get_model,
    model_names,
    prepare,
    search,
)
from checkers.linearizability.partition import check_parts
from tests.linearizability.helpers import events
from workbench.checker import CheckContext
from workbench.history import Event
from workbench.jepsen_format import read_events

CTX = CheckContext()


def verdict(model: str, history: list[Event]) -> Any:
    return Linearizable(model).check(history, CTX).valid


CASES: list[tuple[str, str, bool, list[Event]]] = [
    # register
    (
        "register",
        "sequential",
        True,
        events(
            (0, "invoke", "write", 1),
            (0, "ok", "write", 1),
            (1, "invoke", "read"),
            (1, "ok", "read", 1),
        ),
    ),
    (
        "register",
        "stale read",
        False,
        events(
            (0, "invoke", "write", 1),
            (0, "ok", "write", 1),
            (1, "invoke", "read"),
            (1, "ok", "read", None),
        ),
    ),
    (
        "register",
        "concurrent read may see either",
        True,
        events(
            (0, "invoke", "write", 1),
            (1, "invoke", "read"),
            (1, "ok", "read", None),
            (0, "ok", "write", 1),
        ),
    ),
    (
        "register",
        "crashed write may apply late",
        True,
        events(
            (0, "invoke", "write", 2),
            (0, "info", "write", 2),
            (1, "invoke", "read"),
            (1, "ok", "read", None),
            (1, "invoke", "read"),
            (1, "ok", "read", 2),
        ),
    ),
    (
        "register",
        "failed write never applies",
        False,
        events(
            (0, "invoke", "write", 2),
            (0, "fail", "write", 2),
            (1, "invoke", "read"),
            (1, "ok", "read", 2),
        ),
    ),
    (
        "register",
        "nemesis ignored",
        True,
        events(
            ("nemesis", "info", "partition", "start"),
            (0, "invoke", "write", 3),
            (0, "ok", "write", 3),
            ("nemesis", "info", "partition", "stop"),
            (1, "invoke", "read"),
            (1, "ok", "read", 3),
        ),
    ),
    # cas-register
    (
        "cas-register",
        "cas chain",
        True,
        events(
            (0, "invoke", "write", 1),
            (0, "ok", "write", 1),
            (1, "invoke", "cas", [1, 2]),
            (1, "ok", "cas", [1, 2]),
            (0, "invoke", "read"),
            (0, "ok", "read", 2),
        ),
    ),
    (
        "cas-register",
        "cas from wrong value",
        False,
        events(
            (0, "invoke", "write", 1),
            (0, "ok", "write", 1),
            (1, "invoke", "cas", [3, 2]),
            (1, "ok", "cas", [3, 2]),
        ),
    ),
    (
        "cas-register",
        "lost cas",
        False,
        events(
            (1, "invoke", "cas", [None, 2]),
            (1, "ok", "cas", [None, 2]),
            (0, "invoke", "read"),
            (0, "ok", "read", None),
        ),
    ),
    # kv
    (
        "kv",
        "append then get",
        True,
        events(
            (0, "invoke", "append", {"key": "a", "value": "x"}),
            (0, "ok", "append", {"key": "a", "value": "x"}),
            (1, "invoke", "append", {"key": "b", "value": "y"}),
            (1, "ok", "append", {"key": "b", "value": "y"}),
            (1, "invoke", "get", {"key": "a", "value": None}),
            (1, "ok", "get", {"key": "a", "value": "x"}),
        ),
    ),
    (
        "kv",
        "get sees other key's write",
        False,
        events(
            (0, "invoke", "put", {"key": "a", "value": "x"}),
            (0, "ok", "put", {"key": "a", "value": "x"}),
            (1, "invoke", "get", {"key": "b", "value": None}),
            (1, "ok", "get", {"key": "b", "value": "x"}),
        ),
    ),
    (
        "kv",
        "appends reordered",
        False,
        events(
            (0, "invoke", "append", ["k", "1"]),
            (0, "ok", "append", ["k", "1"]),
            (0, "invoke", "append", ["k", "2"]),
            (0, "ok", "append", ["k", "2"]),
            (1, "invoke", "get", ["k", None]),
            (1, "ok", "get", ["k", "21"]),
        ),
    ),
    # mutex
    (
        "mutex",
        "acquire release acquire",
        True,
        events(
            (0, "invoke", "acquire"),
            (0, "ok", "acquire"),
            (0, "invoke", "release"),
            (0, "ok", "release"),
            (1, "invoke", "acquire"),
            (1, "ok", "acquire"),
        ),
    ),
    (
        "mutex",
        "double acquire",
        False,
        events(
            (0, "invoke", "acquire"),
            (0, "ok", "acquire"),
            (1, "invoke", "acquire"),
            (1, "ok", "acquire"),
        ),
    ),
    (
        "mutex",
        "release by non-owner",
        False,
        events(
            (0, "invoke", "acquire"),
            (0, "ok", "acquire"),
            (1, "invoke", "release"),
            (1, "ok", "release"),
        ),
    ),
    (
        "mutex",
        "crashed release may have freed",
        True,
        events(
            (0, "invoke", "acquire", "c0"),
            (0, "ok", "acquire", "c0"),
            (0, "invoke", "release", "c0"),
            (0, "info", "release", "c0"),
            (1, "invoke", "acquire", "c1"),
            (1, "ok", "acquire", "c1"),
        ),
    ),
    # set
    (
        "set",
        "adds then read",
        True,
        events(
            (0, "invoke", "add", 1),
            (1, "invoke", "add", 2),
            (0, "ok", "add", 1),
            (1, "ok", "add", 2),
            (2, "invoke", "read"),
            (2, "ok", "read", [2, 1]),
        ),
    ),
    (
        "set",
        "lost add",
        False,
        events(
            (0, "invoke", "add", 1),
            (0, "ok", "add", 1),
            (2, "invoke", "read"),
            (2, "ok", "read", []),
        ),
    ),
    # fifo-queue
    (
        "fifo-queue",
        "fifo order",
        True,
        events(
            (0, "invoke", "enqueue", 1),
            (0, "ok", "enqueue", 1),
            (0, "invoke", "enqueue", 2),
            (0, "ok", "enqueue", 2),
            (1, "invoke", "dequeue"),
            (1, "ok", "dequeue", 1),
            (1, "invoke", "dequeue"),
            (1, "ok", "dequeue", 2),
            (1, "invoke", "dequeue"),
            (1, "ok", "dequeue", None),
        ),
    ),
    (
        "fifo-queue",
        "lifo order",
        False,
        events(
            (0, "invoke", "enqueue", 1),
            (0, "ok", "enqueue", 1),
            (0, "invoke", "enqueue", 2),
            (0, "ok", "enqueue", 2),
            (1, "invoke", "dequeue"),
            (1, "ok", "dequeue", 2),
        ),
    ),
    (
        "fifo-queue",
        "concurrent enqueues either order",
        True,
        events(
            (0, "invoke", "enqueue", 1),
            (1, "invoke", "enqueue", 2),
            (0, "ok", "enqueue", 1),
            (1, "ok", "enqueue", 2),
            (2, "invoke", "dequeue"),
            (2, "ok", "dequeue", 2),
        ),
    ),
]


@pytest.mark.parametrize(
    ("model", "name", "expected", "history"), CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES]
)
def test_small_histories(model: str, name: str, expected: bool, history: list[Event]) -> None:
    assert verdict(model, history) is expected


def test_empty_history_is_linearizable() -> None:
    for name in model_names():
        assert verdict(name, []) is True


def test_explanation_names_failing_op_prefix_and_concurrent_ops() -> None:
    history = events(
        (0, "invoke", "write", 1),
        (0, "ok", "write", 1),
        (1, "invoke", "write", 2),
        (2, "invoke", "read"),
        (1, "ok", "write", 2),
        (2, "ok", "read", 3),
    )
    result = Linearizable("register").check(history, CTX)
    assert result.valid is False
    (anomaly,) = result.anomalies
    json.dumps(anomaly.to_json())  # JSON-serialisable
    data = anomaly.data
    assert data["operation"]["description"] == "read() -> 3"
    assert data["operation"]["invoke_index"] == 3
    assert [op["description"] for op in data["concurrent"]] == ["write(2)"]
    assert data["prefix_length"] >= 1
    assert set(anomaly.events) == {2, 3, 4, 5}
    assert "read() -> 3" in anomaly.explanation and "write(2)" in anomaly.explanation


def test_time_budget_gives_unknown() -> None:
    # Many concurrent crashed writes and an impossible read: exponential without a budget.
    rows: list[tuple[Any, ...]] = []
    for p in range(40):
        rows.append((p, "invoke", "write", p))
    for p in range(40):
        rows.append((p, "info", "write", p))
    for v in range(30):
        rows += [(100, "invoke", "read"), (100, "ok", "read", v % 40)]
    rows += [(100, "invoke", "read"), (100, "ok", "read", 99)]
    result = Linearizable("register", time_limit=0.05).check(events(*rows), CTX)
    assert result.valid in ("unknown", False)
    small = Linearizable("register", max_states=1024).check(events(*rows), CTX)
    assert small.valid in ("unknown", False)


def test_state_budget_gives_unknown() -> None:
    rows: list[tuple[Any, ...]] = [(p, "invoke", "enqueue", p) for p in range(14)]
    rows += [(p, "ok", "enqueue", p) for p in range(14)]
    rows += [(20, "invoke", "dequeue"), (20, "ok", "dequeue", 99)]
    result = Linearizable("fifo-queue", max_states=2048).check(events(*rows), CTX)
    assert result.valid == "unknown"
    assert "budget" in result.summary


def test_unknown_operation_gives_unknown_with_reason() -> None:
    result = Linearizable("register").check(events((0, "invoke", "frob"), (0, "ok", "frob")), CTX)
    assert result.valid == "unknown" and "frob" in result.summary
    with pytest.raises(ModelError):
        prepare(events((0, "invoke", "frob"), (0, "ok", "frob")), get_model("kv"))


def test_crashed_reads_are_dropped_and_counted() -> None:
    history = events((0, "invoke", "read"), (0, "info", "read"), (1, "invoke", "write", 1))
    prepared = prepare(history, get_model("register"))
    assert [op.f for op in prepared.ops] == ["write"]
    assert prepared.ops[0].output is UNKNOWN and prepared.ops[0].ret is None
    assert prepared.dropped_crashed_reads == 1


def test_unknown_model_name() -> None:
    with pytest.raises(KeyError, match="known models"):
        get_model("no-such-model")


class Counter(Model):
    """A user model: increments and reads of a counter."""

    name = "counter"

    def init(self) -> int:
        return 0

    def step(self, state: Any, input: Any, output: Any) -> tuple[bool, Any]:
        if input == ("inc",):
            return True, state + 1
        return (output is UNKNOWN or output == state), state

    def operation(self, op: Any) -> tuple[Any, Any]:
        if op.f == "inc":
            return ("inc",), None
        return ("read",), op.value if op.type == "ok" else UNKNOWN


def test_user_model() -> None:
    good = events(
        (0, "invoke", "inc"), (1, "invoke", "read"), (0, "ok", "inc"), (1, "ok", "read", 1)
    )
    bad = events(
        (0, "invoke", "inc"), (0, "ok", "inc"), (1, "invoke", "read"), (1, "ok", "read", 0)
    )
    assert Linearizable(Counter()).check(good, CTX).valid is True
    assert Linearizable(Counter()).check(bad, CTX).valid is False


def test_report_all_partitions() -> None:
    rows: list[tuple[Any, ...]] = []
    for key in ("a", "b", "c"):
        rows += [
            (0, "invoke", "put", {"key": key, "value": "1"}),
            (0, "ok", "put", {"key": key, "value": "1"}),
        ]
    for key in ("a", "c"):
        rows += [
            (1, "invoke", "get", {"key": key, "value": None}),
            (1, "ok", "get", {"key": key, "value": "2"}),
        ]
    result = Linearizable("kv", stop_at_first=False).check(events(*rows), CTX)
    assert result.valid is False and len(result.anomalies) == 2
    assert result.stats["parts"] == 3


def _kv(value: str | None = None) -> dict[str, Any]:
    return {"key": "k", "value": value}


def test_kv_dead_ends_masks() -> None:
    """The kv model's dead ends: a returned get whose output does not start with the state
    needs a pending put that may precede it (called before it returned, value a prefix of
    its output); without one, nothing can rescue it."""
    history = events(
        (0, "invoke", "append", _kv("a")),  # op 0
        (1, "invoke", "put", _kv("x")),  # op 1
        (0, "ok", "append", _kv("a")),
        (1, "ok", "put", _kv("x")),
        (2, "invoke", "get", _kv()),  # op 2: reads "ab"
        (2, "ok", "get", _kv("ab")),
        (3, "invoke", "get", _kv()),  # op 3: reads "xa"
        (3, "ok", "get", _kv("xa")),
        (4, "invoke", "put", _kv("a")),  # op 4: called after both gets returned
        (4, "ok", "put", _kv("a")),
        (5, "invoke", "get", _kv()),  # op 5: crashed, need not be linearized
    )
    kv = get_model("kv")
    ops = prepare(history, kv).ops
    assert [op.f for op in ops] == ["append", "put", "get", "get", "put"]  # crashed get dropped
    dead = kv.dead_ends(ops)
    assert dead is not None
    assert dead("") == ()  # every output starts with ""
    assert dead("a") == ((1 << 3, 1 << 1),)  # "xa" only after put x (op 4 came too late)
    assert dead("ab") == ((1 << 3, 1 << 1),)
    assert dead("b") == ((1 << 2, 0), (1 << 3, 1 << 1))  # nothing can make "ab" follow "b"
    assert dead("xa") == ((1 << 2, 0),)
    assert get_model("register").dead_ends(ops) is None  # default: no pruning


def test_kv_dead_ends_shrink_the_corpus_search() -> None:
    """A guard on the pruning's effect: the kv corpus' largest valid history needed ~176,000
    (set, state) pairs without it, a few thousand with it."""
    corpus = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "porcupine"
    kv = get_model("kv")
    ops = prepare(read_events(corpus / "kv" / "c50-ok.txt"), kv).ops
    outcome = check_parts(kv, ops)
    assert outcome.valid is True
    assert outcome.explored < 20_000


def test_kv_dead_end_explanations() -> None:
    """A dead end still explains: the pruned search reports the prefix it stopped at and the
    get it doomed; the checker's explanation searches again without dead ends and names the
    longer prefix the plain search finds."""
    history = events(
        (0, "invoke", "append", _kv("a")),  # op 0, long
        (1, "invoke", "append", _kv("b")),  # op 1
        (1, "ok", "append", _kv("b")),
        (2, "invoke", "get", _kv()),  # op 2: reads "ab"
        (2, "ok", "get", _kv("ab")),
        (3, "invoke", "get", _kv()),  # op 3: reads "" after "b" was appended: impossible
        (3, "ok", "get", _kv("")),
        (0, "ok", "append", _kv("a")),
    )
    kv = get_model("kv")
    ops = prepare(history, kv).ops
    pruned = search(kv, ops)
    assert pruned.valid is False and pruned.prefix == [0] and pruned.stuck == 3
    assert pruned.state == "a"
    plain = search(kv, ops, prune=False)
    assert plain.valid is False and plain.prefix == [0, 1, 2] and plain.stuck == 3
    assert plain.explored >= pruned.explored
    anomaly = Linearizable(kv).check(history, CTX).anomalies[0]
    assert anomaly.data["prefix_length"] == 3
    assert anomaly.data["operation"]["description"] == "get('k') -> ''"
    assert anomaly.data["state_after_prefix"] == "'ab'"
