"""Checkers of the payments target on known-good and known-bad histories, and property tests
against a simulated service whose ground truth is known (tests/payments/sim.py)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkers.conservation import Conservation, explainable
from checkers.idempotency import DoubleCharge, Fingerprint, ReplayConsistency
from checkers.liveness import Liveness
from tests.payments.sim import OUTCOMES, Sim
from workbench.checker import CheckContext, CheckResult
from workbench.history import Event

CTX = CheckContext()
SAFETY = (DoubleCharge(), ReplayConsistency(), Fingerprint(), Conservation())
KEYS = [("acct-1", "k1", 1000), ("acct-2", "k2", 2500), ("acct-1", "k3", 700)]


def run(checker: object, events: Sequence[Event]) -> CheckResult:
    result = checker.check(events, CTX)  # type: ignore[attr-defined]
    assert isinstance(result, CheckResult)
    return result


def finished(sim: Sim, keys: list[tuple[str, str, int]] = KEYS) -> list[Event]:
    sim.resolve_all(keys)
    sim.final_reads(keys)
    return sim.events


# -- known-good -------------------------------------------------------------------------------


def test_clean_history_is_valid_everywhere() -> None:
    sim = Sim()
    for a, k, amount in KEYS:
        sim.pay(0, a, k, amount)
        sim.pay(1, a, k, amount)  # a retry: the identical replay
    sim.pay(2, "acct-1", "k1", 1001, reuse=True)  # 422
    events = finished(sim)
    for checker in (*SAFETY, Liveness()):
        r = run(checker, events)
        assert r.valid is True, (r.checker, r.summary, r.anomalies)
    assert run(DoubleCharge(), events).summary == "no duplicate charges among 3 provider charges"
    assert run(Liveness(), events).summary == "all 3 payments resolved"


def test_indeterminate_requests_recovered_by_retries_are_valid() -> None:
    sim = Sim()
    sim.pay(0, "acct-1", "k1", 1000, outcome="crash-after-charge")
    sim.pay(1, "acct-1", "k1", 1000, outcome="busy")  # 409 while the dead request's lease holds
    sim.pay(1, "acct-1", "k1", 1000, outcome="provider-error")
    sim.pay(2, "acct-2", "k2", 2500, outcome="lost-response")
    sim.pay(0, "acct-1", "k3", 700, outcome="store-down")
    events = finished(sim)
    for checker in (*SAFETY, Liveness()):
        r = run(checker, events)
        assert r.valid is True, (r.checker, r.summary, r.anomalies)


def test_unresolved_charged_key_is_not_a_conservation_anomaly() -> None:
    # Charged, never debited, never retried: conservation accepts it (the money may still be
    # recorded by a retry); liveness is what reports it.
    sim = Sim()
    sim.pay(0, "acct-1", "k1", 1000)
    sim.pay(1, "acct-1", "k2", 400, outcome="crash-after-charge")
    sim.final_reads([("acct-1", "k1", 1000), ("acct-1", "k2", 400)])
    assert run(Conservation(), sim.events).valid is True
    live = run(Liveness(), sim.events)
    assert live.valid is False
    assert live.kind == "liveness"
    assert live.impact == {"keys": 1, "amount_cents": 400}
    assert "1 payment of 2 never resolved" in live.summary


def test_missing_final_reads_give_unknown() -> None:
    sim = Sim()
    sim.pay(0, "acct-1", "k1", 1000, outcome="crash-after-claim")
    for checker in (DoubleCharge(), Conservation()):
        assert run(checker, sim.events).valid == "unknown"
    # Unresolved keys but no final phase in the history: the campaign ended early.
    assert run(Liveness(), sim.events).valid == "unknown"


# -- known-bad --------------------------------------------------------------------------------


def test_double_charge_reports_charges_operations_and_impact() -> None:
    sim = Sim(downstream_key=False)
    sim.pay(0, "acct-1", "k1", 1000, outcome="crash-after-charge")
    sim.pay(1, "acct-1", "k1", 1000)  # recovery charges again: no downstream key
    sim.pay(1, "acct-2", "k2", 2500, outcome="provider-error")
    sim.pay(2, "acct-2", "k2", 2500, outcome="provider-error")
    sim.pay(2, "acct-2", "k2", 2500)
    events = finished(sim, KEYS[:2])
    r = run(DoubleCharge(), events)
    assert r.valid is False
    assert r.summary == "2 accounts double-charged, 3 duplicate charges, $60.00"
    assert r.impact == {"accounts": 2, "duplicate_charges": 3, "amount_cents": 6000}
    (first, second) = r.anomalies
    assert first.data["account"] == "acct-1" and len(first.data["charges"]) == 2
    # The operations named are the requests whose ids the charges carry.
    pays = [e for e in events if e.f == "pay" and e.type == "invoke"]
    assert set(first.events) >= {pays[0].index, pays[1].index}
    assert len(second.data["charges"]) == 3
    # Witnesses: the two requests that charged, and only this key's charges from the provider.
    charged = [w for w in first.witnesses if w.role == "request charged"]
    assert [w.invoke for w in charged] == [pays[0].index, pays[1].index]
    (provider,) = [w for w in first.witnesses if w.is_excerpt]
    read = next(e for e in events if e.f == "read-provider" and e.type == "ok")
    assert provider.completion == read.index
    assert provider.excerpt == first.data["charges"] and len(provider.excerpt) == 2
    assert first.at == max(charged[-1].indices())


def test_divergent_replay_and_lost_record() -> None:
    sim = Sim()
    sim.pay(0, "acct-1", "k1", 1000)
    sim.pay(1, "acct-1", "k2", 400)
    events = finished(sim, [*KEYS[:1], ("acct-1", "k2", 400)])
    # Tamper: the second answer for k1 differs (another payment id) and k2's record is gone.
    replay = Event(len(events), 0, 7, "invoke", "pay", events[0].value)
    body = dict(events[1].value["body"], id="pay_other")
    answer = Event(len(events) + 1, 0, 7, "ok", "pay", {"status": 201, "body": body})
    reads = next(e for e in events if e.f == "read-records" and e.type == "ok")
    records = dict(reads.value["records"], **{"acct-1/k2": None})
    tampered = [
        e
        if e is not reads
        else Event(e.index, e.time, e.process, e.type, e.f, {"records": records})
        for e in events
    ] + [replay, answer]
    r = run(ReplayConsistency(), tampered)
    assert r.valid is False
    assert sorted(a.kind for a in r.anomalies) == ["divergent-replay", "record-lost"]
    assert r.impact == {"keys": 2}
    assert r.summary.startswith("2 acknowledged keys would not replay their answer")


def test_record_differs_from_acknowledged_answer() -> None:
    sim = Sim()
    sim.pay(0, "acct-1", "k1", 1000)
    events = finished(sim, KEYS[:1])
    sim.records[("acct-1", "k1")].response = {"id": "pay_else"}
    sim.events = [e for e in events if not e.f.startswith("read-")]
    sim.final_reads(KEYS[:1])
    r = run(ReplayConsistency(), sim.events)
    assert [a.kind for a in r.anomalies] == ["record-differs"]


def test_fingerprint_flags_replay_to_a_different_body() -> None:
    sim = Sim(fingerprint=False)
    sim.pay(0, "acct-1", "k1", 1000)
    sim.pay(1, "acct-1", "k1", 1234, reuse=True)  # gets the 201 of the $10.00 payment
    events = finished(sim, KEYS[:1])
    r = run(Fingerprint(), events)
    assert r.valid is False
    assert [a.kind for a in r.anomalies] == ["wrong-body"]
    assert r.impact == {"keys": 1, "amount_cents": 1234}
    assert "a request for $12.34 usd was answered 201 with a payment of $10.00" in (
        r.anomalies[0].explanation
    )
    # The replay itself is consistent: that is the fingerprint checker's finding alone.
    assert run(ReplayConsistency(), events).valid is True


def test_fingerprint_flags_two_bodies_succeeding() -> None:
    sim = Sim()
    sim.pay(0, "acct-1", "k1", 1000)
    events = sim.events
    # A service that executed the reused body as a new payment.
    inv = Event(len(events), 0, 5, "invoke", "pay", dict(events[0].value, amount_cents=50))
    body = dict(events[1].value["body"], amount_cents=50, id="pay_x")
    ok = Event(len(events) + 1, 0, 5, "ok", "pay", {"status": 201, "body": body})
    r = run(Fingerprint(), [*events, inv, ok])
    assert [a.kind for a in r.anomalies] == ["two-bodies"]


def test_conservation_flags_double_debit() -> None:
    sim = Sim(response_with_effect=False)
    sim.pay(0, "acct-1", "k1", 1000, outcome="crash-between")
    events = finished(sim, KEYS[:1])  # the recovery debits again
    r = run(Conservation(), events)
    assert r.valid is False
    (a,) = r.anomalies
    assert a.kind == "balance-mismatch"
    assert a.data["difference_cents"] == -1000
    balance, provider = a.witnesses
    assert balance.excerpt == {"acct-1": a.data["balance_cents"]}
    assert provider.excerpt == {"account": "acct-1", "charged_cents": a.data["charged_cents"]}
    assert a.at == max(balance.indices() + provider.indices())  # once both reads returned
    assert r.summary.startswith("1 account off by $10.00")
    assert run(DoubleCharge(), events).valid is True  # the provider deduplicated


def test_conservation_flags_cached_failure_of_a_charged_payment() -> None:
    sim = Sim(cache_5xx=True)
    sim.pay(0, "acct-1", "k1", 1000, outcome="provider-error")
    events = finished(sim, KEYS[:1])
    kinds = sorted(a.kind for a in run(Conservation(), events).anomalies)
    assert kinds == ["recorded-failed-charged"]
    assert run(Liveness(), events).valid is False


def test_conservation_flags_charged_but_failed_and_acknowledged_uncharged() -> None:
    sim = Sim()
    sim.pay(0, "acct-1", "k1", 1000)
    events = finished(sim, KEYS[:1])
    # A "fail" for a key the provider charged, and an ok for a key it never charged.
    extra = [
        Event(len(events), 0, 9, "invoke", "pay", dict(events[0].value, key="k9", rid="k9#1")),
        Event(len(events) + 1, 0, 9, "fail", "pay", {"status": 409}, "in_progress"),
        Event(len(events) + 2, 0, 9, "invoke", "pay", dict(events[0].value, key="k8")),
        Event(len(events) + 3, 0, 9, "ok", "pay", {"status": 201, "body": {}}),
    ]
    reads = next(e for e in events if e.f == "read-provider" and e.type == "ok")
    charges = [*reads.value["charges"], dict(reads.value["charges"][0], id="ch_9",
                                              metadata={"idempotency_key": "k9"})]  # fmt: skip
    history = [
        e
        if e is not reads
        else Event(e.index, e.time, e.process, e.type, e.f, {"charges": charges})
        for e in events
    ] + extra
    r = run(Conservation(), history)
    kinds = sorted(a.kind for a in r.anomalies)
    assert "charged-but-failed" in kinds and "acknowledged-uncharged" in kinds


def test_explainable_sums() -> None:
    assert explainable(0, [])
    assert explainable(700, [[0, 700], [0, 300]])
    assert explainable(1000, [[0, 700], [0, 300]])
    assert not explainable(500, [[0, 700], [0, 300]])
    assert not explainable(-300, [[0, 300]])


# -- properties -------------------------------------------------------------------------------

steps = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from(OUTCOMES), st.integers(0, 2), st.booleans()),
    max_size=30,
)


def simulate(sim: Sim, script: list[tuple[int, str, int, bool]], resolve: bool) -> list[Event]:
    for key_index, outcome, worker, reuse in script:
        account, key, amount = KEYS[key_index]
        if reuse and (account, key) in sim.resolved:
            sim.pay(worker, account, key, amount + 1, outcome=outcome, reuse=True)
        else:
            sim.pay(worker, account, key, amount, outcome=outcome)
    if resolve:
        sim.resolve_all(KEYS)
    sim.final_reads(KEYS)
    return sim.events


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=steps, resolve=st.booleans())
def test_correct_service_never_flags(
    script: list[tuple[int, str, int, bool]], resolve: bool
) -> None:
    sim = Sim()
    events = simulate(sim, script, resolve)
    for checker in SAFETY:
        r = run(checker, events)
        assert r.valid is True, (r.checker, r.summary, [a.explanation for a in r.anomalies])
    issued = {
        (e.value["account"], e.value["key"])
        for e in events
        if e.f == "pay" and e.type == "invoke" and not e.value["reuse"]
    }
    live = run(Liveness(), events)
    assert live.valid is (issued <= sim.resolved)
    if resolve:
        assert live.valid is True


@settings(max_examples=300, deadline=None)
@given(script=steps, resolve=st.booleans())
def test_double_charge_verdict_matches_ground_truth(
    script: list[tuple[int, str, int, bool]], resolve: bool
) -> None:
    sim = Sim(downstream_key=False)
    events = simulate(sim, script, resolve)
    assert (run(DoubleCharge(), events).valid is False) == sim.double_charged()


@settings(max_examples=300, deadline=None)
@given(script=steps)
def test_conservation_verdict_matches_ground_truth(
    script: list[tuple[int, str, int, bool]],
) -> None:
    # Every key resolved at the end: the balances must then equal the charges exactly.
    sim = Sim(response_with_effect=False)
    events = simulate(sim, script, resolve=True)
    assert (run(Conservation(), events).valid is False) == sim.ledger_disagrees()


@settings(max_examples=200, deadline=None)
@given(script=steps)
def test_fingerprint_verdict_matches_ground_truth(
    script: list[tuple[int, str, int, bool]],
) -> None:
    sim = Sim(fingerprint=False)
    events = simulate(sim, script, resolve=True)
    wrong = any(
        e.type == "ok" and e.value["body"]["amount_cents"] != inv.value["amount_cents"]
        for inv, e in itertools.pairwise(events)
        if inv.type == "invoke" and inv.f == "pay" and e.f == "pay"
    )
    assert (run(Fingerprint(), events).valid is False) == wrong


@pytest.mark.parametrize("checker", [*SAFETY, Liveness()], ids=lambda c: c.name)
def test_checkers_have_names_and_kinds(checker: object) -> None:
    assert checker.name in {  # type: ignore[attr-defined]
        "double-charge", "replay-consistency", "fingerprint", "conservation", "liveness",
    }  # fmt: skip
    assert checker.kind in ("safety", "liveness")  # type: ignore[attr-defined]
