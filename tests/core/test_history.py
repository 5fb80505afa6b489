from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.frames import faults_frame, operations_frame
from workbench.history import (
    NEMESIS,
    Event,
    HistoryError,
    HistoryWriter,
    pair_operations,
    read_history,
)


def test_writer_assigns_dense_indices_and_monotonic_times(tmp_path: Path) -> None:
    with HistoryWriter(tmp_path / "h.jsonl") as w:
        a = w.append(0, "invoke", "add", 1)
        b = w.append(0, "ok", "add", 1)
        c = w.append(NEMESIS, "info", "start", {"fault": "kill"})
    loaded = read_history(tmp_path / "h.jsonl")
    assert [e.index for e in loaded.events] == [0, 1, 2]
    assert loaded.events == [a, b, c]
    assert a.time <= b.time <= c.time
    assert loaded.torn_line is None


def test_extra_fields_round_trip(tmp_path: Path) -> None:
    with HistoryWriter(tmp_path / "h.jsonl") as w:
        w.append(3, "invoke", "charge", {"amount": 5}, key="k1", attempt=2)
    (e,) = read_history(tmp_path / "h.jsonl").events
    assert e.extra == {"key": "k1", "attempt": 2}
    assert e.value == {"amount": 5}


def test_unknown_event_type_is_refused(tmp_path: Path) -> None:
    with HistoryWriter(tmp_path / "h.jsonl") as w, pytest.raises(ValueError, match="invoke"):
        w.append(0, "done", "add")


def test_torn_last_line_is_dropped_and_reported(tmp_path: Path) -> None:
    p = tmp_path / "h.jsonl"
    with HistoryWriter(p) as w:
        w.append(0, "invoke", "add", 1)
        w.append(0, "ok", "add", 1)
    with open(p, "a") as fh:
        fh.write('{"index": 2, "time": 5, "proc')
    loaded = read_history(p)
    assert len(loaded.events) == 2
    assert loaded.torn_line == 3


def test_a_bad_line_in_the_middle_is_an_error_naming_the_line(tmp_path: Path) -> None:
    p = tmp_path / "h.jsonl"
    p.write_text(
        '{"index":0,"time":0,"process":0,"type":"invoke","f":"a"}\n'
        "garbage\n"
        '{"index":1,"time":1,"process":0,"type":"ok","f":"a"}\n'
    )
    with pytest.raises(HistoryError, match=r"h.jsonl:2"):
        read_history(p)


def test_missing_file_is_a_history_error(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="no such history"):
        read_history(tmp_path / "nope.jsonl")


def test_sigkilled_writer_leaves_a_readable_history(tmp_path: Path) -> None:
    """A process that is SIGKILLed while writing leaves every event written before its last
    flush readable; at most a torn last line is dropped."""
    p = tmp_path / "h.jsonl"
    script = textwrap.dedent(
        f"""
        import sys, os, signal
        from workbench.history import HistoryWriter
        w = HistoryWriter({str(p)!r})
        for i in range(500):
            w.append(i % 4, "invoke", "add", i)
            w.append(i % 4, "ok", "add", i)
        sys.stdout.write("written\\n"); sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert proc.returncode == -9
    assert "written" in proc.stdout
    loaded = read_history(p)
    assert len(loaded.events) == 1000
    assert loaded.events[-1].value == 499


def test_pairing_matches_invocations_with_completions() -> None:
    h = [
        Event(0, 0, 0, "invoke", "w", 1),
        Event(1, 1, 1, "invoke", "r"),
        Event(2, 2, NEMESIS, "info", "start", {"fault": "kill"}),
        Event(3, 3, 1, "ok", "r", 1),
        Event(4, 4, 0, "info", "w", 1, "timeout"),
        Event(5, 5, 2, "invoke", "w", 2),
    ]
    ops = pair_operations(h)
    assert [(o.process, o.f, o.type) for o in ops] == [
        (0, "w", "info"),
        (1, "r", "ok"),
        (2, "w", "info"),
    ]
    assert ops[2].completion is None
    assert ops[1].value == 1


def test_pairing_rejects_a_process_with_two_open_operations() -> None:
    h = [Event(0, 0, 0, "invoke", "w", 1), Event(1, 1, 0, "invoke", "w", 2)]
    with pytest.raises(HistoryError, match="still open"):
        pair_operations(h)


def test_pairing_rejects_a_completion_without_invocation() -> None:
    with pytest.raises(HistoryError, match="never invoked"):
        pair_operations([Event(0, 0, 0, "ok", "w", 1)])


def test_operations_frame_has_one_row_per_operation() -> None:
    h = [
        Event(0, 0, 0, "invoke", "w", 1),
        Event(1, 2_000_000_000, 0, "ok", "w", 1),
        Event(2, 2_500_000_000, NEMESIS, "info", "start", {"fault": "pause"}),
        Event(3, 3_000_000_000, 1, "invoke", "r"),
    ]
    df = operations_frame(h)
    assert list(df["type"]) == ["ok", "info"]
    assert df.loc[0, "latency"] == pytest.approx(2.0)
    assert df.loc[1, "complete_index"] == -1
    faults = faults_frame(h)
    assert list(faults["fault"]) == ["pause"]


@given(
    st.lists(
        st.tuples(
            st.integers(0, 5),
            st.sampled_from(["ok", "fail", "info"]),
            st.one_of(st.none(), st.integers(), st.text(max_size=5)),
        ),
        max_size=40,
    )
)
def test_json_round_trip_keeps_every_event(ops: list[tuple[int, str, object]]) -> None:
    events = []
    i = 0
    for p, t, v in ops:
        events.append(Event(i, i, p, "invoke", "f", v))
        events.append(Event(i + 1, i + 1, p, t, "f", v))
        i += 2
    assert [Event.from_json(json.loads(json.dumps(e.to_json()))) for e in events] == events
