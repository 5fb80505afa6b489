"""The view-model: fault windows, anomaly resolution, headlines, figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.checker import Anomaly, Witness
from workbench.history import NEMESIS, Event, pair_operations, write_history
from workbench.report.model import (
    EVENTS_ROLE,
    MAX_WITNESSES,
    AnomalyView,
    CheckerView,
    RunDirError,
    checker_view,
    fault_windows,
    format_figure,
    headline,
    load_run,
    op_row,
)


def _nem(i: int, t_s: float, f: str, value: dict[str, object]) -> Event:
    return Event(i, int(t_s * 1e9), NEMESIS, "info", f, value)


def test_fault_windows_pair_by_name_and_id_and_leave_open_ones_to_the_end() -> None:
    events = [
        _nem(0, 1.0, "start", {"fault": "partition", "id": 1}),
        _nem(1, 2.0, "start", {"fault": "partition", "id": 2}),
        _nem(2, 3.0, "stop", {"fault": "partition", "id": 2}),
        _nem(3, 4.0, "stop", {"fault": "partition", "id": 1}),
        _nem(4, 5.0, "kill", {"fault": "kill", "nodes": ["pg1"]}),
        _nem(5, 6.0, "start", {"fault": "clock-skew"}),
        _nem(6, 7.0, "heal", {"fault": "partition"}),
    ]
    windows, marks = fault_windows(events, duration_s=10.0)
    spans = [(w.fault, w.start_s, w.end_s, w.open) for w in windows]
    assert spans == [
        ("partition", 1.0, 4.0, False),
        ("partition", 2.0, 3.0, False),
        ("clock-skew", 6.0, 10.0, True),
    ]
    assert [(m.fault, m.f, m.at_s) for m in marks] == [
        ("kill", "kill", 5.0),
        ("partition", "heal", 7.0),
    ]


def cv(**fields: object) -> CheckerView:
    """A checker view from CheckResult.to_json() fields, with no history behind it."""
    return checker_view(fields, [], {}, {})


def test_headline_states_impact_or_the_clean_result() -> None:
    bad = cv(checker="dup", valid=False, kind="safety", summary="3 accounts double-charged")
    slow = cv(checker="avail", valid=False, kind="liveness", summary="availability 40%")
    good = cv(checker="dup", valid=True)
    assert headline(False, [bad, slow], 10, ["partition"]) == (
        "3 accounts double-charged; Liveness: availability 40%"
    )
    assert headline(True, [good], 1234, ["partition", "kill"]) == (
        "No anomalies in 1,234 operations under 2 faults (partition, kill)"
    )
    undecided = headline("unknown", [cv(checker="lin", valid="unknown")], 5, [])
    assert undecided.startswith("Undecided: lin could not decide")
    assert headline(None, [], 5, []).startswith("No verdict")


def test_impact_figures_read_as_plain_words() -> None:
    c = cv(checker="d", valid=False, impact={"duplicate_charges": 4, "amount_cents": 124000})
    assert c.impact_items == [("duplicate charges", "4"), ("amount", "$1,240.00")]
    assert format_figure("accounts", 12345) == "12,345"


def _resolved(anomaly: dict[str, object]) -> AnomalyView:
    events = [
        Event(0, 0, 0, "invoke", "write", 1),
        Event(1, 10, 0, "ok", "write", 1),
        Event(2, 20, 1, "invoke", "read", None),
        Event(3, 30, 1, "ok", "read", 2),
        Event(4, 40, 2, "invoke", "read-all", None),
        Event(5, 50_000_000, 2, "ok", "read-all", {"writes": list(range(5000))}),
    ]
    ops = pair_operations(events)
    rows = [op_row(o) for o in ops]
    by_index = {0: 0, 1: 0, 2: 1, 3: 1, 4: 2, 5: 2}
    c = checker_view(
        {"checker": "any", "valid": False, "anomalies": [anomaly]},
        rows,
        by_index,
        {e.index: e for e in events},
    )
    return c.anomalies[0]


def test_anomaly_is_laid_out_from_its_witnesses_whatever_its_data_holds() -> None:
    anomaly = Anomaly(
        "stale-read",
        "read 2 after write 1",
        data={"prefix": [0], "culprit": [2], "model": "register"},  # not decoded
        witnesses=(
            Witness("the write", 0, 1, "write 1"),
            Witness("the read", 2, 3, "read 2"),
            Witness("final read", 4, 5, excerpt=[1, 2]),
        ),
    )
    a = _resolved(anomaly.to_json())
    assert [g.role for g in a.groups] == ["the write", "the read", "final read"]
    write, read, final = a.groups
    assert [(r.f, r.invoke_value, r.note) for r in write.rows] == [("write", 1, "write 1")]
    assert [(r.f, r.value, r.note) for r in read.rows] == [("read", 2, "read 2")]
    # The final read is shown as the slice the checker cut, never as its whole value.
    assert final.rows == []
    (x,) = final.excerpts
    assert x.value == [1, 2] and x.source is not None and x.source.f == "read-all"
    assert a.data == anomaly.data
    # Complete when the read returned (the last operation witness), not at the final read.
    assert a.at_s == 30 / 1e9
    assert {r.f for r in a.ops} == {"write", "read", "read-all"}


def test_anomaly_without_witnesses_shows_its_events() -> None:
    a = _resolved({"kind": "old", "explanation": "x", "events": [2, 3], "data": {}})
    assert [(g.role, [r.f for r in g.rows]) for g in a.groups] == [(EVENTS_ROLE, ["read"])]
    assert a.at_s == 30 / 1e9


def test_a_checkers_many_witnesses_are_capped_and_counted() -> None:
    many = [Witness("write", 4, 5, excerpt=n).to_json() for n in range(MAX_WITNESSES + 7)]
    a = _resolved({"kind": "k", "explanation": "x", "witnesses": many})
    assert a.witnesses_elided == 7
    assert [x.value for x in a.groups[0].excerpts] == list(range(MAX_WITNESSES))


def test_load_run_rejects_missing_or_malformed_dirs(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="no such directory"):
        load_run(tmp_path / "nope")
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(RunDirError, match=r"campaign\.json: missing"):
        load_run(run)
    (run / "campaign.json").write_text("{not json")
    with pytest.raises(RunDirError, match="not valid JSON"):
        load_run(run)
    (run / "campaign.json").write_text(json.dumps({"target": "t"}))
    with pytest.raises(RunDirError, match=r"history\.jsonl: missing"):
        load_run(run)


def test_killed_run_without_results_still_loads(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    # A SIGKILLed harness never gets to change "running".
    (run / "campaign.json").write_text(json.dumps({"target": "t", "status": "running"}))
    write_history(run / "history.jsonl", [Event(0, 0, 0, "invoke", "read", None)])
    with open(run / "history.jsonl", "a") as fh:
        fh.write('{"index": 1, "ti')  # torn by SIGKILL
    view = load_run(run)
    assert view.verdict is None
    assert view.counts["info"] == 1
    assert any("never finished" in n for n in view.notes)
    assert any("cut short" in n for n in view.notes)
