from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.schedule import FaultAction, FaultSpec, make_schedule, parse_fault_specs


def test_fault_spec_parsing() -> None:
    s = FaultSpec.parse("latency:ms=200:links=client->*")
    assert s.name == "latency"
    assert s.options == {"ms": 200, "links": "client->*"}
    assert [x.name for x in parse_fault_specs("kill, pause,")] == ["kill", "pause"]


@pytest.mark.parametrize("bad", [":ms=1", "latency:ms", "latency:=3"])
def test_bad_fault_specs_name_the_problem(bad: str) -> None:
    with pytest.raises(ValueError, match="fault spec"):
        FaultSpec.parse(bad)


@given(st.integers(1, 5), st.floats(1, 120), st.integers(0, 10**6), st.floats(0.5, 10))
def test_schedule_is_seeded_paired_and_bounded(
    n: int, duration: float, seed: int, interval: float
) -> None:
    a = make_schedule(n, duration, seed, interval=interval)
    assert a == make_schedule(n, duration, seed, interval=interval)
    starts = [x for x in a if x.action == "start"]
    stops = [x for x in a if x.action == "stop"]
    assert [x.window for x in starts] == [x.window for x in stops]
    assert all(x.at <= duration for x in a)
    assert all(0 <= x.fault < n for x in a)
    # One fault at a time: windows do not overlap.
    times = [x.at for x in a]
    assert times == sorted(times)
    assert [x.action for x in a] == ["start", "stop"] * len(starts)
    assert [FaultAction.from_json(x.to_json()) for x in a] == a


def test_no_faults_no_schedule() -> None:
    assert make_schedule(0, 30, 1) == []
