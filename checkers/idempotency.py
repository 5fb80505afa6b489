"""Checkers for idempotent requests: double charges, divergent replays, reused keys.

All three read the operations described in :mod:`checkers.payments_history`.

- :class:`DoubleCharge` (``double-charge``): the provider's ground truth holds at most one charge
  per (account, key). Indeterminate requests do not matter here: whatever the client saw, two
  charges for one key are one too many.
- :class:`ReplayConsistency` (``replay-consistency``): every 2xx answer for one key is identical
  (status and body), and the API's final record of an acknowledged key still holds that answer.
- :class:`Fingerprint` (``fingerprint``): a key reused with a different body never succeeds for
  the second body: a 2xx answer describes the request it answers, and only one body per key ever
  gets one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from checkers.payments_history import (
    KeyId,
    PayRequest,
    by_key,
    charge_request,
    charges_by_key,
    dollars,
    key_name,
    pay_requests,
    plural,
    provider_charges,
    read_witness,
    records,
    request_witnesses,
)
from workbench.checker import Anomaly, CheckContext, CheckResult, Kind, event_indices
from workbench.history import Event


def _events(requests: Sequence[PayRequest]) -> tuple[int, ...]:
    return event_indices(*(r.op for r in requests))


class DoubleCharge:
    """At most one provider charge per (account, key).

    Result: ``impact = {"accounts", "duplicate_charges", "amount_cents"}`` (the extra charges,
    all but the first of each key); one anomaly per key charged more than once, its ``data``
    holding ``{"account", "key", "charges": [...], "requests": [rid...]}`` and its ``events`` the
    requests whose ``rid`` a charge names (all the key's requests when none does).
    ``"unknown"`` when the history has no ok ``read-provider``.
    """

    name = "double-charge"
    kind: Kind = "safety"

    def check(self, history: Sequence[Event], context: CheckContext) -> CheckResult:
        charges = provider_charges(history)
        if charges is None:
            return CheckResult(
                self.name, "unknown", self.kind,
                "no final read of the provider's charges: double charges cannot be judged",
            )  # fmt: skip
        requests = by_key(pay_requests(history))
        anomalies: list[Anomaly] = []
        accounts: set[str] = set()
        extra = 0
        extra_cents = 0
        for key_id, group in sorted(charges_by_key(charges).items()):
            if len(group) < 2:
                continue
            accounts.add(key_id[0])
            extra += len(group) - 1
            extra_cents += sum(int(c["amount_cents"]) for c in group[1:])
            rids = {r for c in group if (r := charge_request(c)) is not None}
            reqs = requests.get(key_id, [])
            causing = [r for r in reqs if r.rid in rids] or reqs
            listed = ", ".join(
                f"{c['id']} {dollars(int(c['amount_cents']))} (request {charge_request(c)})"
                for c in group
            )
            anomalies.append(
                Anomaly(
                    "double-charge",
                    f"{key_name(key_id)} was charged {len(group)} times: {listed}",
                    _events(causing),
                    {
                        "account": key_id[0],
                        "key": key_id[1],
                        "charges": list(group),
                        "requests": sorted(rids),
                    },
                    witnesses=(
                        *request_witnesses(causing, "request charged"),
                        read_witness(history, "read-provider", "charges for the key", list(group)),
                    ),
                )
            )
        if anomalies:
            summary = (
                f"{plural(len(accounts), 'account')} double-charged, "
                f"{plural(extra, 'duplicate charge')}, {dollars(extra_cents)}"
            )
        else:
            summary = f"no duplicate charges among {plural(len(charges), 'provider charge')}"
        return CheckResult(
            self.name,
            not anomalies,
            self.kind,
            summary,
            tuple(anomalies),
            impact={
                "accounts": len(accounts),
                "duplicate_charges": extra,
                "amount_cents": extra_cents,
            },
            stats={"charges": len(charges), "keys_charged": len(charges_by_key(charges))},
        )


def _response(r: PayRequest) -> dict[str, Any]:
    a = r.answer or {}
    return {"status": a.get("status"), "body": a.get("body")}


class ReplayConsistency:
    """Every successful answer for a key is the same answer.

    Anomalies: ``divergent-replay`` (two 2xx answers for one key differ in status or body; data
    ``{"account", "key", "responses": [...]}``); ``record-lost`` (the final ``read-records``
    has nothing for a key the API acknowledged: a retry would pay again); ``record-differs``
    (the final record of an acknowledged key holds another answer). ``impact = {"keys"}``.
    Without an ok ``read-records`` only answers are compared (stats say so).
    """

    name = "replay-consistency"
    kind: Kind = "safety"

    def check(self, history: Sequence[Event], context: CheckContext) -> CheckResult:
        keys = by_key(pay_requests(history))
        recs = records(history)
        anomalies: list[Anomaly] = []
        bad_keys: set[KeyId] = set()
        acknowledged = 0
        for key_id, reqs in sorted(keys.items()):
            oks = [r for r in reqs if r.type == "ok" and r.answer is not None]
            if not oks:
                continue
            acknowledged += 1
            first = _response(oks[0])
            differing = [r for r in oks if _response(r) != first]
            if differing:
                bad_keys.add(key_id)
                distinct: list[dict[str, Any]] = []
                for r in oks:
                    if _response(r) not in distinct:
                        distinct.append(_response(r))
                anomalies.append(
                    Anomaly(
                        "divergent-replay",
                        f"{key_name(key_id)} got {len(distinct)} different successful answers "
                        f"across {plural(len(oks), 'request')}",
                        _events(oks),
                        {"account": key_id[0], "key": key_id[1], "responses": distinct},
                        witnesses=request_witnesses(oks, "acknowledged request"),
                    )
                )
            if recs is None:
                continue
            rec = recs.get(key_id)
            if rec is None:
                bad_keys.add(key_id)
                anomalies.append(
                    Anomaly(
                        "record-lost",
                        f"{key_name(key_id)} was acknowledged ({first['status']}) but the API "
                        "no longer has a record of it: a retry would execute it again",
                        _events(oks),
                        {"account": key_id[0], "key": key_id[1], "acknowledged": first},
                        witnesses=(
                            *request_witnesses(oks, "acknowledged request"),
                            read_witness(
                                history,
                                "read-records",
                                "the API's record",
                                {key_name(key_id): None},
                            ),
                        ),
                    )
                )
                continue
            stored = {"status": rec.get("response_code"), "body": rec.get("response_body")}
            if rec.get("state") == "finished" and stored not in [_response(r) for r in oks]:
                bad_keys.add(key_id)
                anomalies.append(
                    Anomaly(
                        "record-differs",
                        f"{key_name(key_id)}: the API's record answers {stored['status']} with "
                        f"another body than the {first['status']} it acknowledged",
                        _events(oks),
                        {
                            "account": key_id[0],
                            "key": key_id[1],
                            "acknowledged": first,
                            "record": stored,
                        },
                        witnesses=(
                            *request_witnesses(oks, "acknowledged request"),
                            read_witness(
                                history, "read-records", "the API's record", {key_name(key_id): rec}
                            ),
                        ),
                    )
                )
        if anomalies:
            kinds = sorted({a.kind for a in anomalies})
            summary = (
                f"{plural(len(bad_keys), 'acknowledged key')} would not replay their answer "
                f"({', '.join(kinds)})"
            )
        else:
            summary = f"all {plural(acknowledged, 'acknowledged key')} replay one answer"
        return CheckResult(
            self.name,
            not anomalies,
            self.kind,
            summary,
            tuple(anomalies),
            impact={"keys": len(bad_keys)},
            stats={"acknowledged_keys": acknowledged, "records_read": recs is not None},
        )


def _describes(r: PayRequest) -> bool:
    """Does the 2xx answer of ``r`` describe ``r``'s own body? (True when it says nothing.)"""
    body = (r.answer or {}).get("body")
    if not isinstance(body, dict):
        return True
    for field, want in (("account", r.account), ("amount_cents", r.amount_cents),
                        ("currency", r.currency)):  # fmt: skip
        if field in body and body[field] != want:
            return False
    return True


class Fingerprint:
    """A key reused with a different body never succeeds for the second body.

    Anomalies: ``wrong-body`` (a 2xx answer describes another body than the request's: the
    client believes it paid what it asked while another payment was made); ``two-bodies``
    (one key executed for two bodies: 2xx answers each describing their own, different body).
    ``impact = {"keys", "amount_cents"}`` (the amounts the clients believed paid but were not).
    """

    name = "fingerprint"
    kind: Kind = "safety"

    def check(self, history: Sequence[Event], context: CheckContext) -> CheckResult:
        keys = by_key(pay_requests(history))
        anomalies: list[Anomaly] = []
        bad: set[KeyId] = set()
        cents = 0
        reused = 0
        for key_id, reqs in sorted(keys.items()):
            if len({r.body for r in reqs}) > 1:
                reused += 1
            oks = [r for r in reqs if r.type == "ok"]
            wrong = [r for r in oks if not _describes(r)]
            for r in wrong:
                bad.add(key_id)
                cents += r.amount_cents
                got = (r.answer or {}).get("body") or {}
                anomalies.append(
                    Anomaly(
                        "wrong-body",
                        f"{key_name(key_id)}: a request for {dollars(r.amount_cents)} "
                        f"{r.currency} was answered {r.status} with a payment of "
                        f"{dollars(int(got.get('amount_cents', 0)))} {got.get('currency')}",
                        event_indices(r.op),
                        {
                            "account": key_id[0],
                            "key": key_id[1],
                            "request": list(r.body),
                            "response": got,
                        },
                        witnesses=request_witnesses([r], "request answered for another body"),
                    )
                )
            # Executed for two bodies: answers that each describe their own, different body
            # (answers describing another body are already reported as wrong-body).
            bodies = sorted({r.body for r in oks if _describes(r)})
            if len(bodies) > 1:
                bad.add(key_id)
                anomalies.append(
                    Anomaly(
                        "two-bodies",
                        f"{key_name(key_id)} succeeded for {len(bodies)} different bodies",
                        _events(oks),
                        {
                            "account": key_id[0],
                            "key": key_id[1],
                            "bodies": [list(b) for b in bodies],
                        },
                        witnesses=request_witnesses(oks, "acknowledged request"),
                    )
                )
        if anomalies:
            summary = (
                f"{plural(len(bad), 'reused key')} succeeded for a body they were not used "
                f"with, {dollars(cents)} believed paid but not"
            )
        else:
            summary = f"no reused key succeeded for a second body ({plural(reused, 'key')} reused)"
        return CheckResult(
            self.name,
            not anomalies,
            self.kind,
            summary,
            tuple(anomalies),
            impact={"keys": len(bad), "amount_cents": cents},
            stats={"keys_reused_with_other_body": reused},
        )
