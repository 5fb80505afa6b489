"""The locks checkers on hand-built histories: known-good, known-bad, and properties."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from checkers.locks import Fencing, LockLiveness, MutexLinearizable, MutualExclusion
from checkers.lost_update import LostUpdate
from tests.locks.histories import Sim
from workbench.checker import CheckContext, CheckResult
from workbench.history import Event, write_history
from workbench.report.html import render_html
from workbench.report.model import load_run

CTX = CheckContext()


def judge(events: list[Event]) -> dict[str, CheckResult]:
    return {
        c.name: c.check(events, CTX)
        for c in (MutualExclusion(), Fencing(), LostUpdate(), LockLiveness())
    }


def kleppmann() -> Sim:
    """worker-1 takes the lock (token 1), reads, pauses past its lease; worker-2 takes it
    (token 2), increments and appends; worker-1 resumes and writes from its stale read."""
    s = Sim()
    s.invoke(1, "incr", {"op_id": "a", "resource": "r0"})
    stale = s.read("r0")  # worker-1's read, then the pause
    s.op(2, "b", writer="worker-2", token=2)
    s.op(2, "c", "append", arg=7, writer="worker-2", token=3)
    s.write("a", "incr", writer="worker-1", token=1, snapshot=stale)
    s.complete(1, "info", "incr")  # the client timed out long ago
    s.op(3, "f1", final=True, writer="worker-2", token=4)
    return s


def test_serial_history_is_valid_for_every_checker() -> None:
    s = Sim()
    for i in range(5):
        s.op(i % 2, f"o{i}", "incr" if i % 2 else "append", arg=i, token=i + 1)
    s.op(9, "f0", final=True, token=10)
    results = judge(s.final_read())
    for name, r in results.items():
        assert r.valid is True, (name, r.summary)
    assert "5 acknowledged increment" not in results["lost-update"].summary
    assert results["fencing"].summary.startswith("fencing tokens strictly increase over 6")


def test_kleppmann_pause_is_overlap_stale_token_and_lost_update() -> None:
    results = judge(kleppmann().final_read())
    me = results["mutual-exclusion"]
    assert me.valid is False
    (a,) = me.anomalies
    assert a.data["holders"] == ["worker-1", "worker-2"]
    assert "worker-1 (op a, token 1) read version 0 and wrote version 3" in a.explanation
    assert "worker-2 (op b, token 2)" in a.explanation and "end info" in a.explanation
    assert "worker-1, worker-2 held the lock at once" in me.summary
    fence = results["fencing"]
    assert fence.valid is False and fence.impact["stale_writes"] == 1
    assert "token 1 is not above 3" in fence.anomalies[0].explanation
    lost = results["lost-update"]
    assert lost.valid is False
    assert lost.impact["lost_increments"] == 1  # b's increment was overwritten
    assert lost.impact["lost_elements"] == 1  # so was c's element
    assert "1 of 3 applied increments of r0 lost" in lost.summary


def test_fenced_resource_refusing_the_stale_write_is_valid() -> None:
    s = Sim()
    s.invoke(1, "incr", {"op_id": "a", "resource": "r0"})
    s.op(2, "b", writer="worker-2", token=2)
    s.complete(1, "fail", "incr")  # fenced out: nothing written
    s.op(3, "f1", final=True, token=3)
    for name, r in judge(s.final_read()).items():
        assert r.valid is True, (name, r.summary)


def test_no_final_read_is_unknown() -> None:
    s = Sim()
    s.op(1, "a", token=1)
    results = judge(s.events)
    for name in ("mutual-exclusion", "fencing", "lost-update"):
        assert results[name].valid == "unknown"
        assert "final read" in results[name].summary


def test_acknowledged_but_never_applied_is_a_lost_update() -> None:
    """version-ignored: a zero-row UPDATE acknowledged as success."""
    s = Sim()
    s.op(1, "a")
    s.op(2, "b", applied=False)
    r = LostUpdate().check(s.final_read(), CTX)
    assert r.valid is False
    kinds = {a.kind for a in r.anomalies}
    assert kinds == {"acknowledged-not-applied", "lost-increments"}
    assert "op b (incr) was acknowledged but the resource never accepted" in str(
        [a.explanation for a in r.anomalies]
    )


def test_failed_but_applied_and_applied_twice() -> None:
    s = Sim()
    s.op(1, "a", result="fail")
    s.invoke(2, "incr", {"op_id": "b", "resource": "r0"})
    s.write("b", "incr")
    s.write("b", "incr")
    s.complete(2, "ok", "incr")
    r = LostUpdate().check(s.final_read(), CTX)
    assert r.valid is False
    assert {a.kind for a in r.anomalies} >= {"failed-but-applied", "applied-twice"}
    assert r.impact["phantom_increments"] == 1


def test_ok_that_completes_during_the_final_read_is_only_possible() -> None:
    s = Sim()
    s.invoke(1, "incr", {"op_id": "a", "resource": "r0"})
    s.invoke("final", "read-resource")
    record_events = Sim()
    record_events.final_read()  # an empty record: a was not applied when the read ran
    s.complete(1, "ok", "incr")
    s.complete("final", "ok", "read-resource", record_events.events[-1].value)
    r = LostUpdate().check(s.events, CTX)
    assert r.valid is True, r.summary


def test_unexpected_and_duplicated_elements() -> None:
    s = Sim()
    s.op(1, "a", "append", arg=5)
    s.write("zz", "append", arg=99)
    s.write("a", "append", arg=5)
    r = LostUpdate().check(s.final_read(), CTX)
    kinds = {a.kind for a in r.anomalies}
    assert {"unexpected-element", "duplicated-element", "applied-twice"} <= kinds


def test_liveness() -> None:
    s = Sim(("r0", "r1"))
    s.op(1, "a")
    assert LockLiveness().check(s.events, CTX).valid == "unknown"
    s.op(1, "f1", final=True, result="fail", applied=False)
    s.op(2, "f2", final=True, result="info", applied=False)
    r = LockLiveness().check(s.events, CTX)
    assert r.valid is False and r.kind == "liveness"
    assert "the lock of r0 was never free again after healing: 2 attempts" in r.summary
    s.op(3, "f3", final=True, resource="r1")  # another lock working does not excuse r0
    r = LockLiveness().check(s.events, CTX)
    assert r.valid is False and r.impact["stuck"] == ["r0"]
    s.op(2, "f4", final=True)
    r = LockLiveness().check(s.events, CTX)
    assert r.valid is True
    assert "2 of 4 locked operations on 2 resources succeeded" in r.summary


def test_mutex_linearizable_sees_only_acquire_and_release() -> None:
    s = Sim()
    s.op(1, "a")
    s.invoke(1, "acquire", "A")
    s.complete(1, "ok", "acquire")
    s.invoke(1, "release", "A")
    s.complete(1, "ok", "release")
    s.invoke(2, "acquire", "B")
    s.complete(2, "ok", "acquire")
    assert MutexLinearizable().check(s.events, CTX).valid is True
    # A's session ended while A believed it held the lock; C took it; A's release was unknown.
    s.invoke(3, "acquire", "C")
    s.complete(3, "ok", "acquire")
    s.invoke(2, "release", "B")
    s.complete(2, "info", "release")
    r = MutexLinearizable().check(s.events, CTX)
    assert r.valid is False, r.summary
    assert MutexLinearizable().check(Sim().events, CTX).valid is True


# -- properties --

outcome = st.sampled_from(["ok", "applied-info", "lost-info", "fail"])
ops = st.lists(
    st.tuples(st.sampled_from(["incr", "append"]), st.sampled_from(["r0", "r1"]), outcome),
    max_size=30,
)


def serial(plan: list[tuple[str, str, str]]) -> Sim:
    s = Sim(("r0", "r1"))
    token = 0
    for i, (kind, res, out) in enumerate(plan):
        token += 1
        result = "info" if out.endswith("info") else out
        applied = out in ("ok", "applied-info")
        s.op(
            i % 4,
            f"o{i}",
            kind,
            result=result,
            applied=applied,
            resource=res,
            arg=i,
            writer=f"worker-{i % 2 + 1}",
            token=token,
        )
    s.op(9, "final", final=True, resource="r0", token=token + 1)
    return s


@settings(max_examples=200, deadline=None)
@given(ops)
def test_property_serial_executions_never_alarm(plan: list[tuple[str, str, str]]) -> None:
    """Whatever mix of ok, fail and indeterminate (applied or not) operations, a resource that
    was only ever written under a working lock gives no anomaly."""
    for name, r in judge(serial(plan).final_read()).items():
        assert r.valid is True, (name, r.summary)


@settings(max_examples=200, deadline=None)
@given(ops, st.data())
def test_property_a_stale_write_is_always_an_overlap(
    plan: list[tuple[str, str, str]], data: st.DataObject
) -> None:
    """Add a holder that read before some other write and wrote after it: mutual exclusion
    reports it, naming both holders, and fencing reports its lower token."""
    s = serial(plan)
    snapshot = s.read("r0")
    s.op(5, "between", resource="r0", writer="worker-2", token=1000)
    extra = data.draw(st.integers(0, 3))
    for j in range(extra):
        s.op(6, f"more{j}", resource="r0", writer="worker-2", token=1001 + j)
    s.invoke(7, "incr", {"op_id": "late", "resource": "r0"})
    s.write("late", "incr", resource="r0", writer="worker-1", token=999, snapshot=snapshot)
    s.complete(7, data.draw(st.sampled_from(["ok", "info"])), "incr")
    results = judge(s.final_read())
    me = results["mutual-exclusion"]
    assert me.valid is False
    assert me.impact["overlapping_sections"] == 1
    assert me.anomalies[0].data["holders"] == ["worker-1", "worker-2"]
    assert results["fencing"].valid is False
    # The acknowledged "between" increment was overwritten by the stale write.
    assert results["lost-update"].valid is False


def test_overlap_witnesses_are_the_two_holders_and_only_their_writes() -> None:
    (a,) = MutualExclusion().check(kleppmann().final_read(), CTX).anomalies
    roles = [(w.role, w.invoke, w.completion) for w in a.witnesses if not w.is_excerpt]
    # worker-1's op a (events 0 -> 5) read first; b (1 -> 2) and c (3 -> 4) wrote meanwhile.
    assert roles == [("first holder", 0, 5), ("second holder", 1, 2), ("second holder", 3, 4)]
    (excerpt,) = [w for w in a.witnesses if w.is_excerpt]
    assert (excerpt.invoke, excerpt.completion) == (8, 9)  # cut from the final read
    assert [(w["op_id"], w["seq"], w["based_on"]) for w in excerpt.excerpt] == [
        ("b", 1, 0),
        ("c", 2, 1),
        ("a", 3, 0),
    ]
    assert a.at == 5  # complete when a's write landed, not at the final read


def test_mutual_exclusion_report_is_small_and_names_the_overlapping_writes(
    tmp_path: Path,
) -> None:
    s = Sim()
    for i in range(1500):  # a long clean run: the final read holds 1,501 writes
        s.op(i % 4, f"o{i}", token=i + 1)
    s.invoke(7, "incr", {"op_id": "late", "resource": "r0"})
    stale = s.read("r0")
    s.op(8, "intruder", writer="worker-2", token=2000)
    s.write("late", "incr", writer="worker-1", token=1999, snapshot=stale)
    s.complete(7, "ok", "incr")
    events = s.final_read()
    result = MutualExclusion().check(events, CTX)
    assert result.valid is False
    run = tmp_path / "run"
    run.mkdir()
    write_history(run / "history.jsonl", events)
    (run / "campaign.json").write_text(json.dumps({"target": "locks", "status": "finished"}))
    results = {"valid": False, "checkers": [result.to_json()]}
    (run / "results.json").write_text(json.dumps(results))
    page = render_html(load_run(run))
    card = page[page.index('<section id="safety">') : page.index('<section id="liveness">')]
    assert len(card) < 20_000, len(card)  # the whole final read would be ~500 kB
    assert "first holder</h4>" in card and "second holder</h4>" in card
    assert (
        "&#34;op_id&#34;: &#34;intruder&#34;" in card and "&#34;op_id&#34;: &#34;late&#34;" in card
    )
    assert "&#34;o700&#34;" not in card  # no write from elsewhere in the record


def test_lost_increment_witness_is_the_counter_not_the_whole_record() -> None:
    lu = LostUpdate().check(kleppmann().final_read(), CTX)
    (lost,) = [a for a in lu.anomalies if a.kind == "lost-increments"]
    (read,) = lost.witnesses
    assert (read.role, read.invoke, read.completion) == ("final read", 8, 9)
    assert read.excerpt == {"r0": {"value": 2, "version": 4, "initial": 0}}
