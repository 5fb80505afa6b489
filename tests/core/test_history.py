from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.cli import main
from workbench.client import Completion, Op, fail, info, ok
from workbench.frames import faults_frame, operations_frame
from workbench.history import (
    NEMESIS,
    RESERVED_FIELDS,
    Event,
    HistoryError,
    HistoryWriter,
    ReservedFieldError,
    pair_operations,
    read_history,
    write_history,
)
from workbench.jepsen_format import parse_edn


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


# --- reserved keys ----------------------------------------------------------------------------


def test_a_completion_cannot_overwrite_the_events_own_index_or_time() -> None:
    with pytest.raises(ReservedFieldError, match=r"ok\(\): extra fields 'index', 'time' are"):
        ok(1, time=7, index=0)


@pytest.mark.parametrize("key", sorted(RESERVED_FIELDS - {"value", "error"}))
def test_every_reserved_key_is_refused_where_it_is_made(key: str) -> None:
    # value= and error= are ok()'s / fail()'s own parameters; the rest would land in extra.
    extra = {key: 1}
    for make in (
        lambda: ok(None, **extra),
        lambda: fail("e", None, **extra),
        lambda: info("e", None, **extra),
        lambda: Completion("ok", None, None, extra),
        lambda: Op("w", 1, extra),
    ):
        with pytest.raises(ReservedFieldError, match=f"'{key}'"):
            make()


def test_value_and_error_are_refused_in_an_ops_extra() -> None:
    for key in ("value", "error"):
        with pytest.raises(ReservedFieldError, match=rf"Op\('w'\): extra field '{key}'"):
            Op("w", 1, {key: 2})


def test_the_writer_refuses_reserved_extras_and_writes_nothing(tmp_path: Path) -> None:
    p = tmp_path / "h.jsonl"
    with HistoryWriter(p) as w:
        with pytest.raises(ReservedFieldError, match="'index'"):
            w.record(0, "invoke", "add", 1, index=0)
        with pytest.raises(ReservedFieldError, match="'time'"):
            w.append(NEMESIS, "info", "start", None, time=7)
        w.append(0, "invoke", "add", 1, attempt=1)
    (e,) = read_history(p).events
    assert (e.index, e.extra) == (0, {"attempt": 1})


def test_an_event_cannot_carry_a_reserved_extra() -> None:
    with pytest.raises(ReservedFieldError, match="'process'"):
        Event(0, 0, 0, "ok", "w", extra={"process": 3})


# --- indices ----------------------------------------------------------------------------------


def _raw(tmp_path: Path, indices: list[object]) -> Path:
    """A history.jsonl written by hand (the writer cannot make a bad one), one event per index."""
    p = tmp_path / "h.jsonl"
    types = ["invoke", "ok"]
    lines = [
        json.dumps({"index": i, "time": n, "process": 0, "type": types[n % 2], "f": "w"})
        for n, i in enumerate(indices)
    ]
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.mark.parametrize(
    ("indices", "message"),
    [
        ([0, 1, 1, 2], "h.jsonl:3: index 1 repeats that of line 2"),
        ([0, 5, 3, 6], "h.jsonl:3: index 3 goes backwards (line 2 has 5)"),
        ([0, "1"], "h.jsonl:2: not a history event (index '1' is not an integer)"),
        ([0, 1.0], "h.jsonl:2: not a history event (index 1.0 is not an integer)"),
        ([True], "h.jsonl:1: not a history event (index True is not an integer)"),
    ],
)
def test_indices_that_repeat_go_backwards_or_are_not_ints_are_refused(
    tmp_path: Path, indices: list[object], message: str
) -> None:
    with pytest.raises(HistoryError) as e:
        read_history(_raw(tmp_path, indices))
    assert str(e.value).endswith(message)


def test_a_bad_index_on_an_unterminated_last_line_is_not_taken_for_a_torn_line(
    tmp_path: Path,
) -> None:
    p = _raw(tmp_path, [0, 1, 1])
    p.write_text(p.read_text().rstrip("\n"))
    with pytest.raises(HistoryError, match=r"h\.jsonl:3: index 1 repeats"):
        read_history(p)


def test_gaps_in_indices_are_accepted(tmp_path: Path) -> None:
    # A history filtered of some events is still ordered: checkers need order, not density.
    assert [e.index for e in read_history(_raw(tmp_path, [0, 2, 7])).events] == [0, 2, 7]


def test_edn_indices_are_checked_too() -> None:
    text = (
        "{:index 0, :process 0, :type :invoke, :f :w}\n{:index 0, :process 0, :type :ok, :f :w}\n"
    )
    with pytest.raises(HistoryError, match=r"x\.edn:2: index 0 repeats that of line 1"):
        parse_edn(text, "x.edn")


def test_write_history_refuses_what_read_history_would(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="event 2: index 0 repeats that of event 1"):
        write_history(
            tmp_path / "h.jsonl", [Event(0, 0, 0, "invoke", "w"), Event(0, 1, 0, "ok", "w")]
        )
    assert not (tmp_path / "h.jsonl").exists()


@given(st.lists(st.integers(-3, 6), max_size=8))
def test_read_history_accepts_exactly_strictly_increasing_indices(indices: list[int]) -> None:
    increasing = all(a < b for a, b in itertools.pairwise(indices))
    events = [Event(i, n, 0, "invoke" if n % 2 == 0 else "ok", "w") for n, i in enumerate(indices)]
    text = "".join(json.dumps(e.to_json()) + "\n" for e in events)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "h.jsonl"
        p.write_text(text)
        try:
            loaded = read_history(p)
        except HistoryError:
            assert not increasing
        else:
            assert increasing and loaded.events == events


extras = st.dictionaries(
    st.text(min_size=1, max_size=6).filter(lambda k: k not in RESERVED_FIELDS),
    st.one_of(st.none(), st.integers(), st.text(max_size=4)),
    max_size=3,
)


@given(
    st.lists(
        st.tuples(
            st.one_of(st.integers(0, 4), st.just(NEMESIS)),
            st.sampled_from(["invoke", "ok", "fail", "info"]),
            st.one_of(st.none(), st.integers(), st.text(max_size=5)),
            extras,
        ),
        max_size=30,
    )
)
def test_what_the_writer_records_reads_back_with_strictly_increasing_indices(
    records: list[tuple[object, str, object, dict[str, object]]],
) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "h.jsonl"
        with HistoryWriter(p, fsync_interval=60) as w:
            written = [w.append(proc, t, "f", v, **x) for proc, t, v, x in records]  # type: ignore[arg-type]
        loaded = read_history(p).events
    assert loaded == written
    assert all(a.index < b.index for a, b in itertools.pairwise(loaded))
    assert all(e.extra == x for e, (_, _, _, x) in zip(loaded, records, strict=True))


# --- the CLI: bad histories are bad data (65), in one line --------------------------------------


def _bad_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "campaign.json").write_text(
        json.dumps({"target": "tests.e2e.counter_target:SetTarget", "variant": "default"})
    )
    _raw(run, [0, 1, 1, 2]).rename(run / "history.jsonl")
    return run


@pytest.mark.parametrize("command", ["check", "report", "lin"])
def test_cli_refuses_repeated_indices_with_one_line_and_65(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _bad_run(tmp_path)
    argv = {
        "check": ["check", str(run)],
        "report": ["report", str(run)],
        "lin": ["lin", str(run / "history.jsonl"), "--model", "register"],
    }[command]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 65, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "history.jsonl:3: index 1 repeats that of line 2" in err


def test_a_history_in_which_nothing_succeeded_is_never_valid() -> None:
    from workbench.check import compose_results
    from workbench.checker import CheckResult

    events = [
        Event(0, 0, 0, "invoke", "add", 1),
        Event(1, 10, 0, "fail", "add", 1, "refused"),
        Event(2, 20, 1, "invoke", "add", 2),
        Event(3, 30, 1, "info", "add", 2, "timeout"),
    ]
    out = compose_results([CheckResult("set", True)], events)
    assert out["valid"] == "unknown" and out["exit_code"] == 2
    assert out["reason"].startswith("no operation succeeded (2 completed, none ok)")
    ok_events = [*events, Event(4, 40, 2, "invoke", "add", 3), Event(5, 50, 2, "ok", "add", 3)]
    fine = compose_results([CheckResult("set", True)], ok_events)
    assert fine["valid"] is True and fine["reason"] is None
