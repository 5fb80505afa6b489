"""The outbox checkers on known-good and known-bad histories (tests/outbox/histories.py plays
the database, relay and consumer), and properties over generated histories."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkers.aggregate_order import AggregateOrder
from checkers.delivery_lag import DeliveryLag
from checkers.messages import DuplicateEffects, LostMessages, PhantomMessages
from tests.outbox.histories import Builder
from workbench.checker import CheckContext, CheckResult
from workbench.history import Event
from workbench.plugins import check_plugin
from workbench.registry import CHECKER_SPEC

CTX = CheckContext()
SAFETY = (LostMessages(), PhantomMessages(), DuplicateEffects(), AggregateOrder())
ALL = (*SAFETY, DeliveryLag())
PROPS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(checker: Any, events: Sequence[Event]) -> CheckResult:
    result = checker.check(events, CTX)
    assert isinstance(result, CheckResult)
    return result


def lifecycle(b: Builder, order: str, *, process: int = 0) -> list[str | None]:
    return [b.write(order, s, process=process) for s in ("created", "paid", "shipped")]


def op_index(events: Sequence[Event], f: str, type_: str = "invoke") -> int:
    return next(e.index for e in reversed(events) if e.f == f and e.type == type_)


# -- registration --


def test_every_outbox_checker_is_registered_under_its_name_and_fits_the_seam() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    registered = pyproject["project"]["entry-points"]["workbench.checkers"]
    for checker in ALL:
        module, _, attr = registered[checker.name].partition(":")
        cls = getattr(import_module(module), attr)
        check_plugin(cls, CHECKER_SPEC, checker.name)
        assert cls().name == checker.name and isinstance(checker, cls)


# -- known-good --


def test_clean_history_is_valid_everywhere() -> None:
    b = Builder()
    for n in range(1, 4):
        lifecycle(b, f"o{n}")
    events = b.final_reads()
    for checker in ALL:
        r = run(checker, events)
        assert r.valid is True, (r.checker, r.summary, r.anomalies)
    lost = run(LostMessages(), events)
    assert lost.summary == "all 9 committed events applied"
    assert lost.stats == {
        "attempted": 9, "acknowledged": 9, "committed": 9, "applied": 9, "lost": 0,
        "lost_commits": 0, "recovered": 0,
    }  # fmt: skip
    assert run(DuplicateEffects(), events).summary == "no effect applied twice among 9 effects"


def test_at_least_once_with_duplicates_deduplicated_is_valid_and_counted() -> None:
    b = Builder()
    e1 = b.write("o1", deliveries=3, published=2)
    b.write("o1", "paid", deliveries=2)
    b.write("o2", published=2)
    events = b.final_reads()
    for checker in ALL:
        r = run(checker, events)
        assert r.valid is True, (r.checker, r.summary, r.anomalies)
    dup = run(DuplicateEffects(), events)
    assert dup.summary == (
        "no effect applied twice; 2 messages redelivered, 2 published twice, all deduplicated"
    )
    assert dup.stats["redelivered"] == 2 and dup.stats["published_twice"] == 2
    assert dup.impact == {"duplicated": 0, "extra_applications": 0}
    assert b.effect(e1 or "")["deliveries"] == 3


def test_indeterminate_writes_that_committed_are_recovered_and_others_ignored() -> None:
    b = Builder()
    took = b.write("o1", outcome="info", committed=True)
    b.write("o1", "paid", outcome="info", committed=False, published=1)  # relay raced a rollback
    b.write("o1", "paid", outcome="fail", error="invalid_transition")
    b.replay(took or "")
    events = b.final_reads()
    for checker in ALL:
        r = run(checker, events)
        assert r.valid is True, (r.checker, r.summary, r.anomalies)
    stats = run(LostMessages(), events).stats
    assert stats["attempted"] == 4 and stats["acknowledged"] == 1 and stats["committed"] == 1
    # The replay answered ok, so the committed event had an ok write: not "recovered".
    assert stats["recovered"] == 0
    assert run(PhantomMessages(), events).stats["published_uncommitted"] == 1


def test_recovered_counts_a_committed_event_whose_writes_all_ended_info() -> None:
    b = Builder()
    b.write("o1", outcome="info", committed=True)
    b.write("o2")
    r = run(LostMessages(), b.final_reads())
    assert r.valid is True and r.stats["recovered"] == 1 and r.stats["applied"] == 2


def test_missing_final_reads_give_unknown() -> None:
    b = Builder()
    lifecycle(b, "o1")
    no_effects = Builder()
    lifecycle(no_effects, "o1")
    for events, checkers in (
        (b.final_reads(orders=False), (LostMessages(), PhantomMessages(), DeliveryLag())),
        (no_effects.final_reads(effects=False), ALL),
    ):
        for checker in checkers:
            r = run(checker, events)
            assert r.valid == "unknown", (r.checker, r.summary)
    # Needing only the effects, these two still judge without the orders.
    assert run(DuplicateEffects(), b.events).valid is True
    assert run(AggregateOrder(), b.events).valid is True
    r = run(LostMessages(), b.events)
    assert r.summary == "no successful final read-orders: lost messages cannot be judged"


# -- lost --


def test_lost_message_published_but_never_applied() -> None:
    b = Builder()
    b.write("o1")
    lost = b.write("o1", "paid", applied=0)
    b.write("o2")
    events = b.final_reads()
    r = run(LostMessages(), events)
    assert r.valid is False
    assert r.summary == "1 message lost (orders o1)"
    assert r.impact == {"lost": 1, "orders": 1}
    assert r.stats["lost"] == 1 and r.stats["applied"] == 2
    (a,) = r.anomalies
    assert a.kind == "lost" and a.data["event"] == lost
    assert a.data["published_to"] == ["orders.events.1"]
    # Committed at the paid write's ok, 40 ms into the run (on the history's clock).
    assert a.explanation == (
        "order o1 v2 (paid) committed at 0.0 s but was never applied: it was published to "
        "orders.events.1 and never applied"
    )
    assert a.at == op_index(events, "read-effects")
    writes = [w for w in a.witnesses if w.role == "write that committed"]
    paid = next(e for e in events if e.f == "set-status" and e.type == "invoke")
    assert [w.invoke for w in writes] == [paid.index]
    by_role = {w.role: w.excerpt for w in a.witnesses if w.is_excerpt}
    assert by_role["committed change"]["event"] == lost
    assert by_role["effects read"] == {"event": lost, "applied": False}
    assert by_role["stream read"]["streams"].keys() == {"orders.events.1"}
    # The other checkers do not report a lost message.
    for checker in (PhantomMessages(), DuplicateEffects(), AggregateOrder()):
        assert run(checker, events).valid is True


def test_lost_message_that_never_reached_the_broker_names_its_outbox_row() -> None:
    b = Builder()
    stuck = b.write("o3", applied=0, published=0)
    claimed = b.write("o4", applied=0, published=0)
    b.outbox[claimed or ""] = {"state": "claimed", "claimed_by": "relay-1"}
    r = run(LostMessages(), b.final_reads())
    first, second = r.anomalies
    assert first.explanation.endswith(
        "never applied: it never reached the broker (outbox row: sent)"
    )
    assert second.explanation.endswith(
        "it never reached the broker (outbox row: claimed by relay-1, never sent)"
    )
    assert first.data["published_to"] == [] and first.data["event"] == stuck
    stream = next(w for w in first.witnesses if w.role == "stream read")
    assert stream.excerpt == {"event": stuck, "in_stream": False}
    assert r.summary == "2 messages lost (orders o3, o4)"


def test_lost_message_without_stream_read_says_nothing_of_the_broker() -> None:
    b = Builder()
    b.write("o1", applied=0)
    b.write("o2", applied=0)
    b.outbox[b.changes[-1]["event"]] = {"state": "pending", "claimed_by": None}
    r = run(LostMessages(), b.final_reads(stream=False, outbox=False))
    with_outbox = run(LostMessages(), b.final_reads(stream=False))
    assert with_outbox.anomalies[1].explanation.endswith(
        "was never applied (the stream was not read; outbox row: pending, never claimed)"
    )
    a = r.anomalies[0]
    assert a.explanation.endswith("was never applied (the stream was not read)")
    assert a.data["published_to"] is None
    assert not [w for w in a.witnesses if w.role == "stream read"]


def test_lost_summary_names_at_most_five_orders_in_natural_order() -> None:
    b = Builder()
    for n in (12, 2, 57, 58, 90, 91, 3):
        b.write(f"o{n}", applied=0)
    r = run(LostMessages(), b.final_reads())
    assert r.summary == "7 messages lost (orders o2, o3, o12, o57, o58, ...)"
    assert r.impact == {"lost": 7, "orders": 7}


def test_acknowledged_write_missing_from_the_changes_is_a_lost_commit() -> None:
    b = Builder()
    b.write("o1")
    ghost = b.write("o1", "paid", committed=False)  # acknowledged, never committed
    events = b.final_reads()
    r = run(LostMessages(), events)
    assert r.valid is False
    (a,) = r.anomalies
    assert a.kind == "lost-commit" and a.data["event"] == ghost
    assert "was acknowledged with event" in a.explanation
    assert a.at == op_index(events, "read-orders")
    (read,) = [w for w in a.witnesses if w.is_excerpt]
    assert read.excerpt["committed"] is False and len(read.excerpt["order_changes"]) == 1
    assert r.summary == "1 acknowledged write never committed"
    assert r.stats["lost_commits"] == 1


# -- phantom --


def test_effect_of_a_change_that_never_committed_is_a_phantom() -> None:
    b = Builder()
    b.write("o9")
    phantom = b.write("o9", "paid", outcome="info", committed=False, applied=1)
    events = b.final_reads()
    r = run(PhantomMessages(), events)
    assert r.valid is False
    (a,) = r.anomalies
    assert a.kind == "phantom" and a.data["event"] == phantom
    assert a.explanation == (
        "order o9 v2 (paid) was applied, but no such change ever committed "
        "(its write ended info: http 500)"
    )
    assert r.impact == {"phantom": 1, "orders": 1}
    assert r.summary == "1 effect of changes that never committed (orders o9)"
    roles = [w.role for w in a.witnesses]
    assert roles == ["write of the command", "applied effect", "committed changes of the order"]
    assert a.witnesses[2].excerpt["changes"][0]["version"] == 1
    assert a.at == op_index(events, "read-effects")
    assert run(LostMessages(), events).valid is True


def test_published_uncommitted_events_are_counted_not_failed() -> None:
    b = Builder()
    b.write("o1")
    b.write("o1", "paid", outcome="info", committed=False, published=2)
    r = run(PhantomMessages(), b.final_reads())
    assert r.valid is True and r.stats["published_uncommitted"] == 1


# -- duplicate --


def test_effect_applied_twice_is_a_duplicate() -> None:
    b = Builder()
    b.write("o3")
    twice = b.write("o3", "paid", applied=2, deliveries=2)
    b.write("o4", applied=3)
    events = b.final_reads()
    r = run(DuplicateEffects(), events)
    assert r.valid is False
    first, second = r.anomalies
    assert first.kind == "duplicate-effect" and first.data["event"] == twice
    assert first.explanation == "order o3 v2 (paid) applied 2 times (2 deliveries)"
    assert r.impact == {"duplicated": 2, "extra_applications": 3}
    assert r.summary.startswith(
        "2 effects applied more than once (orders o3, o4), 3 extra applications"
    )
    assert second.data["applied"] == 3
    assert any(w.role == "effect applied more than once" for w in first.witnesses)


# -- aggregate order --


def test_later_change_applied_first_is_out_of_order() -> None:
    b = Builder()
    placed, paid, shipped = lifecycle(b, "o7")
    lifecycle(b, "o8")
    # The consumer applied o7's shipped before its paid.
    b.effect(paid or "")["first_seq"], b.effect(shipped or "")["first_seq"] = (
        b.effect(shipped or "")["first_seq"],
        b.effect(paid or "")["first_seq"],
    )
    events = b.final_reads()
    r = run(AggregateOrder(), events)
    assert r.valid is False
    (a,) = r.anomalies
    assert a.kind == "out-of-order"
    assert a.explanation == "order o7: shipped (v3) applied before paid (v2)"
    assert a.data["versions"] == [1, 3, 2]
    assert a.data["first"]["event"] == shipped and a.data["second"]["event"] == paid
    assert r.impact == {"orders": 1} and r.summary == "1 order applied out of version order (o7)"
    roles = {w.role for w in a.witnesses}
    assert roles == {
        "write applied first", "write applied second", "effect applied first",
        "effect applied second",
    }  # fmt: skip
    assert placed is not None
    for checker in (LostMessages(), PhantomMessages(), DuplicateEffects()):
        assert run(checker, events).valid is True


# -- delivery lag --


def test_delivery_lag_measures_quantiles_and_draws_a_series() -> None:
    b = Builder(lag=0.05)
    for n in range(1, 5):
        b.write(f"o{n}", lag=0.01 * n)
    events = b.final_reads()
    r = run(DeliveryLag(), events)
    assert r.valid is True and r.kind == "liveness"
    assert r.stats["count"] == 4
    assert r.stats["p50"] == pytest.approx(0.02, abs=1e-4)
    assert r.stats["max"] == pytest.approx(0.04, abs=1e-4)
    assert r.summary == (
        "delivery lag p50 0.02 s, p95 0.04 s, p99 0.04 s, max 0.04 s over 4 events"
    )
    (series,) = r.series
    assert series.key == "delivery-lag" and series.unit == "s" and len(series.points) == 4
    # Commit times land on the history's clock at the acknowledging ok (the builder commits
    # one step before it answers, and the offset is measured on the answers).
    oks = [e.time / 1e9 for e in events if e.f == "place" and e.type == "ok"]
    assert [t for t, _ in series.points] == pytest.approx(oks, abs=1e-4)
    assert [y for _, y in series.points] == pytest.approx([0.01, 0.02, 0.03, 0.04], abs=1e-4)
    assert r.stats["offset_from"] == "4 acknowledged writes"


def test_delivery_lag_falls_back_to_the_read_orders_answer_without_acknowledgements() -> None:
    b = Builder()
    b.write("o1", outcome="info", committed=True)
    events = b.final_reads()
    r = run(DeliveryLag(), events)
    assert r.stats["offset_from"] == "the read-orders answer"
    (series,) = r.series
    read_ok = next(e for e in events if e.f == "read-orders" and e.type == "ok")
    assert series.points[0][0] == pytest.approx(read_ok.time / 1e9, abs=1e-4)


def test_events_slower_than_max_seconds_are_slow_deliveries() -> None:
    b = Builder()
    b.write("o1", lag=0.1)
    slow = b.write("o2", lag=3.2)
    events = b.final_reads()
    assert run(DeliveryLag(), events).valid is True  # informational by default
    r = run(DeliveryLag(max_seconds=1.0), events)
    assert r.valid is False
    (a,) = r.anomalies
    assert a.kind == "slow-delivery" and a.data["event"] == slow
    assert (
        a.explanation == "order o2 v1 (created) took 3.2 s from commit to application (limit 1 s)"
    )
    assert r.impact == {"slow": 1, "orders": 1}
    assert r.summary.startswith("1 of 2 events slower than 1 s (orders o2); delivery lag")


def test_delivery_lag_is_unknown_when_nothing_was_applied() -> None:
    b = Builder()
    b.write("o1", applied=0)
    r = run(DeliveryLag(), b.final_reads())
    assert r.valid == "unknown" and "no committed event was applied" in r.summary


# -- properties --

OUTCOMES = ("ok", "ok", "info-committed", "info-uncommitted", "fail", "ok-then-replay")
STATUSES = ("paid", "shipped", "cancelled")


@st.composite
def plans(draw: st.DrawFn) -> list[tuple[int, str]]:
    return draw(
        st.lists(st.tuples(st.integers(0, 3), st.sampled_from(OUTCOMES)), min_size=1, max_size=14)
    )


def build(plan: list[tuple[int, str]], b: Builder | None = None) -> Builder:
    """Runs a plan of (order, outcome) writes: each order's first write places it, later ones
    set a status; every committed change is published and applied once."""
    b = b or Builder()
    steps: dict[int, int] = {}
    for n, outcome in plan:
        order = f"o{n}"
        k = steps.get(n, 0)
        status = "created" if k == 0 else STATUSES[(k - 1) % len(STATUSES)]
        kind, _, rest = outcome.partition("-")
        committed = kind == "ok" or rest == "committed"
        if committed:
            steps[n] = k + 1
        event = b.write(order, status, outcome=kind, committed=committed, process=n)
        if outcome == "ok-then-replay" and event is not None:
            b.replay(event, process=n)
    return b


@PROPS
@given(plan=plans(), data=st.data())
def test_no_loss_is_valid_under_any_reordering_and_redelivery(
    plan: list[tuple[int, str]], data: st.DataObject
) -> None:
    b = build(plan)
    b.effects = data.draw(st.permutations(b.effects))
    for e in b.effects:
        e["deliveries"] += data.draw(st.integers(0, 3))
    for name in list(b.streams):
        entries = b.streams[name] + data.draw(st.lists(st.sampled_from(b.streams[name])))
        b.streams[name] = data.draw(st.permutations(entries))
    events = b.final_reads()
    for checker in SAFETY:
        r = run(checker, events)
        assert r.valid is True, (r.checker, r.summary, r.anomalies)


@PROPS
@given(plan=plans(), data=st.data())
def test_deleting_effects_makes_exactly_those_events_lost(
    plan: list[tuple[int, str]], data: st.DataObject
) -> None:
    b = build(plan)
    gone = (
        data.draw(st.sets(st.sampled_from([e["event"] for e in b.effects]))) if b.effects else set()
    )
    b.effects = [e for e in b.effects if e["event"] not in gone]
    r = run(LostMessages(), b.final_reads())
    assert {a.data["event"] for a in r.anomalies} == gone
    assert all(a.kind == "lost" for a in r.anomalies)
    assert r.impact["lost"] == len(gone) and (r.valid is True) == (not gone)


@PROPS
@given(plan=plans(), data=st.data())
def test_permuting_first_seq_within_an_order_is_valid_iff_versions_increase(
    plan: list[tuple[int, str]], data: st.DataObject
) -> None:
    b = build(plan)
    orders = sorted({e["order"] for e in b.effects})
    if not orders:
        return
    order = data.draw(st.sampled_from(orders))
    own = [e for e in b.effects if e["order"] == order]
    seqs = data.draw(st.permutations([e["first_seq"] for e in own]))
    for e, s in zip(own, seqs, strict=True):
        e["first_seq"] = s
    applied = [e["version"] for e in sorted(own, key=lambda e: e["first_seq"])]
    r = run(AggregateOrder(), b.final_reads())
    assert (r.valid is True) == (applied == sorted(applied))
    if r.valid is False:
        assert [a.data["order"] for a in r.anomalies] == [order]
        assert r.anomalies[0].data["versions"] == applied


@PROPS
@given(plan=plans(), uncommitted=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2))))
def test_info_writes_that_did_not_commit_never_make_an_anomaly(
    plan: list[tuple[int, str]], uncommitted: list[tuple[int, int]]
) -> None:
    b = build(plan)
    for n, published in uncommitted:
        b.write(f"o{n}", "paid", outcome="info", committed=False, published=published, process=n)
    events = b.final_reads()
    for checker in ALL:
        r = run(checker, events)
        assert not r.anomalies, (r.checker, r.summary, r.anomalies)
        assert r.valid in (True, "unknown")


def test_a_phantom_whose_version_a_committed_change_took_again_is_not_out_of_order() -> None:
    # publish-before-commit: "paid" is published and applied as v2, its transaction rolls back,
    # the retry commits another "paid" as v2, then "shipped" v3. One phantom, no ordering fault.
    b = Builder()
    b.write("o5")
    b.write("o5", "paid", outcome="info", committed=False, applied=1)
    b.write("o5", "paid", command="o5:paid-retry")
    b.write("o5", "shipped")
    events = b.final_reads()
    r = run(AggregateOrder(), events)
    assert r.valid is True
    assert r.stats["phantoms_left_out"] == 1
    assert run(PhantomMessages(), events).valid is False


def test_events_missing_while_the_relay_still_had_a_backlog_are_unknown_not_lost() -> None:
    b = Builder()
    b.write("o1")
    b.write("o2", applied=0, published=0)
    r = run(LostMessages(), b.final_reads(backlog=12))
    assert r.valid == "unknown"
    assert "had not drained when the final reads ran (relay backlog 12)" in r.summary
    assert [a.kind for a in r.anomalies] == ["lost"]  # still listed, for the report
    # Drained (the same history with a zero backlog): the same event is lost.
    b2 = Builder()
    b2.write("o1")
    b2.write("o2", applied=0, published=0)
    assert run(LostMessages(), b2.final_reads()).valid is False
