"""Money is conserved between the API's ledger and the provider's ground truth.

Reads the operations described in :mod:`checkers.payments_history`. For each account,
``initial - sum(provider charges) == API balance`` once every key is resolved. A key that is
still unresolved at the end (no 2xx, no terminal answer) may legitimately be charged but not yet
debited (its request died between the two), so the difference ``charges - debits`` of an
account is accepted when it is a sum of charged amounts of that account's unresolved keys;
anything else is an anomaly. The liveness checker reports the unresolved keys themselves.

Per key, on the client's side of the bargain (Jepsen's meaning of ok / fail / info):

- ``acknowledged-uncharged``: a key got a 2xx but the provider holds no charge for it;
- ``charged-but-failed``: the provider charged a key whose every request ended ``fail`` (the API
  said, for each one, that nothing happened);
- ``recorded-failed-charged``: the API's final record for a charged key is a non-2xx answer:
  every retry will be told the payment failed although the money moved.

Together these give: acknowledged keys <= charged keys <= acknowledged + indeterminate keys.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from checkers.payments_history import (
    KeyId,
    PayRequest,
    balances,
    by_key,
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

#: Above this many reachable sums the exact check gives way to a range check (which can only
#: accept more, never raise a false alarm).
MAX_SUMS = 200_000


def explainable(diff: int, choices: Iterable[Sequence[int]]) -> bool:
    """Is ``diff`` a sum picking one value from each of ``choices``?"""
    sums = {0}
    lo = hi = 0
    exact = True
    for options in choices:
        lo += min(options)
        hi += max(options)
        if exact:
            sums = {s + o for s in sums for o in options}
            if len(sums) > MAX_SUMS:
                exact = False
    return diff in sums if exact else lo <= diff <= hi


def _resolved(reqs: Sequence[PayRequest]) -> bool:
    return any(r.type == "ok" or r.terminal for r in reqs if not r.reuse)


class Conservation:
    """API balances agree with the provider's charges; the per-key bounds hold.

    Result: ``impact = {"accounts", "amount_cents", "keys"}``: accounts whose balance is off
    (and by how much in total, unexplained), keys breaking a per-key bound. Anomaly kinds:
    ``balance-mismatch`` (data ``{"account", "initial_cents", "charged_cents", "balance_cents",
    "difference_cents", "unresolved_keys"}``), ``acknowledged-uncharged``,
    ``charged-but-failed``, ``recorded-failed-charged``. ``stats`` has the key counts behind the
    bounds. ``"unknown"`` without ok final reads of balances and provider charges.
    """

    name = "conservation"
    kind: Kind = "safety"

    def check(self, history: Sequence[Event], context: CheckContext) -> CheckResult:
        charges = provider_charges(history)
        read = balances(history)
        if charges is None or read is None:
            missing = "provider charges" if charges is None else "balances"
            return CheckResult(
                self.name, "unknown", self.kind,
                f"no final read of the {missing}: conservation cannot be judged",
            )  # fmt: skip
        bal, initial = read
        keys = by_key(pay_requests(history))
        charged = charges_by_key(charges)
        recs = records(history)
        anomalies: list[Anomaly] = []
        bad_keys: set[KeyId] = set()

        # Per key bounds.
        acknowledged = indeterminate = failed = 0
        for key_id in sorted(set(keys) | set(charged)):
            reqs = keys.get(key_id, [])
            kc = charged.get(key_id, [])
            cents = sum(int(c["amount_cents"]) for c in kc)
            oks = [r for r in reqs if r.type == "ok"]
            if oks:
                acknowledged += 1
            elif any(r.type != "fail" for r in reqs):
                indeterminate += 1
            elif reqs:
                failed += 1
            if oks and not kc:
                bad_keys.add(key_id)
                anomalies.append(
                    Anomaly(
                        "acknowledged-uncharged",
                        f"{key_name(key_id)} was acknowledged ({oks[0].status}) but the "
                        "provider holds no charge for it",
                        event_indices(*(r.op for r in oks)),
                        {"account": key_id[0], "key": key_id[1]},
                        witnesses=(
                            *request_witnesses(oks, "acknowledged request"),
                            read_witness(history, "read-provider", "charges for the key", []),
                        ),
                    )
                )
            if kc and reqs and all(r.type == "fail" for r in reqs):
                bad_keys.add(key_id)
                anomalies.append(
                    Anomaly(
                        "charged-but-failed",
                        f"{key_name(key_id)} was charged {dollars(cents)} although every one "
                        f"of its {plural(len(reqs), 'request')} was answered as failed",
                        event_indices(*(r.op for r in reqs)),
                        {
                            "account": key_id[0],
                            "key": key_id[1],
                            "charges": kc,
                            "errors": sorted({str(r.error) for r in reqs}),
                        },
                        witnesses=(
                            *request_witnesses(reqs, "failed request"),
                            read_witness(history, "read-provider", "charges for the key", kc),
                        ),
                    )
                )
            rec = recs.get(key_id) if recs is not None else None
            code = rec.get("response_code") if rec is not None else None
            if (
                kc
                and rec is not None
                and rec.get("state") == "finished"
                and isinstance(code, int)
                and not 200 <= code < 300
            ):
                bad_keys.add(key_id)
                anomalies.append(
                    Anomaly(
                        "recorded-failed-charged",
                        f"{key_name(key_id)} was charged {dollars(cents)} but the API's final "
                        f"answer for it is {code}: every retry is told the payment failed",
                        event_indices(*(r.op for r in reqs)),
                        {"account": key_id[0], "key": key_id[1], "charges": kc, "record": rec},
                        witnesses=(
                            *request_witnesses(reqs, "request"),
                            read_witness(history, "read-provider", "charges for the key", kc),
                            read_witness(
                                history,
                                "read-records",
                                "the API's record",
                                {key_name(key_id): rec},
                            ),
                        ),
                    )
                )

        # Per account balances.
        charged_by_account: dict[str, int] = defaultdict(int)
        for c in charges:
            charged_by_account[str(c["account"])] += int(c["amount_cents"])
        off_accounts = 0
        off_cents = 0
        for account in sorted(bal):
            total = charged_by_account.get(account, 0)
            diff = bal[account] - (initial - total)  # = charges - debits
            if diff == 0:
                continue
            unresolved = [
                (k, kc)
                for k, kc in charged.items()
                if k[0] == account and not _resolved(keys.get(k, []))
            ]
            # An unresolved key's charges may all still await their debit, or any number of
            # its charges may have been debited already (one amount each).
            choices = [
                [sum(int(c["amount_cents"]) for c in kc) - m * int(kc[0]["amount_cents"])
                 for m in range(len(kc) + 1)]
                for _, kc in unresolved
            ]  # fmt: skip
            if explainable(diff, choices):
                continue
            off_accounts += 1
            off_cents += abs(diff)
            what = "more charged than debited" if diff > 0 else "more debited than charged"
            anomalies.append(
                Anomaly(
                    "balance-mismatch",
                    f"{account}: the API's balance is {dollars(bal[account])}, but the initial "
                    f"{dollars(initial)} minus the provider's charges of {dollars(total)} is "
                    f"{dollars(initial - total)}: {dollars(abs(diff))} {what}",
                    (),
                    {
                        "account": account,
                        "initial_cents": initial,
                        "charged_cents": total,
                        "balance_cents": bal[account],
                        "difference_cents": diff,
                        "unresolved_keys": [key_name(k) for k, _ in unresolved],
                    },
                    witnesses=(
                        read_witness(
                            history, "read-balances", "the API's balance", {account: bal[account]}
                        ),
                        read_witness(
                            history,
                            "read-provider",
                            "the provider's charges",
                            {"account": account, "charged_cents": total},
                        ),
                    ),
                )
            )
        # Accounts the provider charged but the API has no balance for are mismatches too.
        for account in sorted(set(charged_by_account) - set(bal)):
            off_accounts += 1
            off_cents += charged_by_account[account]
            anomalies.append(
                Anomaly(
                    "balance-mismatch",
                    f"{account}: the provider charged {dollars(charged_by_account[account])} "
                    "but the API reports no balance for it",
                    (),
                    {"account": account, "charged_cents": charged_by_account[account]},
                    witnesses=(
                        read_witness(
                            history, "read-balances", "the API's balance", {account: None}
                        ),
                        read_witness(
                            history,
                            "read-provider",
                            "the provider's charges",
                            {"account": account, "charged_cents": charged_by_account[account]},
                        ),
                    ),
                )
            )

        parts = []
        if off_accounts:
            parts.append(
                f"{plural(off_accounts, 'account')} off by {dollars(off_cents)} "
                "(API balance vs provider charges)"
            )
        if bad_keys:
            parts.append(f"{plural(len(bad_keys), 'key')} breaking acknowledged <= charged <= "
                         "acknowledged + indeterminate")  # fmt: skip
        summary = "; ".join(parts) or (
            f"balances agree with {plural(len(charges), 'provider charge')} on "
            f"{plural(len(bal), 'account')}"
        )
        return CheckResult(
            self.name,
            not anomalies,
            self.kind,
            summary,
            tuple(anomalies),
            impact={"accounts": off_accounts, "amount_cents": off_cents, "keys": len(bad_keys)},
            stats={
                "acknowledged_keys": acknowledged,
                "indeterminate_keys": indeterminate,
                "failed_keys": failed,
                "charged_keys": len(charged),
            },
        )
