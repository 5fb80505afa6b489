"""The view-model: fault windows, anomaly resolution, headlines, figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.history import NEMESIS, Event, pair_operations, write_history
from workbench.report.model import (
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


def test_anomaly_resolves_indices_and_linearizability_lists(tmp_path: Path) -> None:
    events = [
        Event(0, 0, 0, "invoke", "write", 1),
        Event(1, 10, 0, "ok", "write", 1),
        Event(2, 20, 1, "invoke", "read", None),
        Event(3, 30, 1, "ok", "read", 2),
    ]
    ops = pair_operations(events)
    rows = [op_row(o) for o in ops]
    by_index = {0: 0, 1: 0, 2: 1, 3: 1}
    c = checker_view(
        {
            "checker": "lin",
            "valid": False,
            "anomalies": [
                {
                    "kind": "nonlinearizable",
                    "explanation": "read 2 after write 1",
                    "events": [2, 3],
                    "data": {"prefix": [0], "culprit": [2], "concurrent": [], "model": "register"},
                }
            ],
        },
        rows,
        by_index,
        {e.index: e for e in events},
    )
    a = c.anomalies[0]
    assert [r.f for r in a.ops] == ["read"]
    assert [r.value for r in a.lin["culprit"]] == [2]
    assert [r.invoke_value for r in a.lin["prefix"]] == [1]
    assert a.lin["concurrent"] == []
    assert a.data == {"model": "register"}


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
