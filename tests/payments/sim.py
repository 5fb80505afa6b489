"""A simulated payments service that writes Jepsen-style histories, for checker tests.

It follows the API's design (claim with lease, provider call with a downstream key, recovery
points, response stored with the effect) and can be switched into some of the bug variants. It
also keeps the ground truth (charges and debits per key), so property tests can compare a
checker's verdict with what really happened.

Each request is given an ``outcome``: what happens inside the server while serving it.

- ``ok``: the server runs to the end and the client gets its answer;
- ``busy``: another request holds the lease: 409 (only when the key is leased, else ``ok``);
- ``store-down``: the store is unreachable at the claim: 503 ``charged: false``;
- ``crash-after-claim`` / ``crash-after-charge``: the replica dies there (client: info);
- ``provider-error``: the provider charged but answered 500 (client: 502, info);
- ``crash-between``: the effect committed, then the replica died before the response was stored
  (only differs from ``lost-response`` when the response is saved separately);
- ``lost-response``: everything committed, the answer was lost on the way back (info).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.history import Event

INITIAL = 1_000_000
OUTCOMES = (
    "ok",
    "busy",
    "store-down",
    "crash-after-claim",
    "crash-after-charge",
    "provider-error",
    "crash-between",
    "lost-response",
)


@dataclass
class Record:
    body: tuple[str, int, str]
    point: str = "started"  # started | charge_created | finished
    leased: bool = True
    charge_id: str | None = None
    code: int | None = None
    response: Any = None


@dataclass
class Sim:
    downstream_key: bool = True
    response_with_effect: bool = True
    fingerprint: bool = True
    cache_5xx: bool = False
    events: list[Event] = field(default_factory=list)
    charges: list[dict[str, Any]] = field(default_factory=list)
    balances: dict[str, int] = field(default_factory=dict)
    records: dict[tuple[str, str], Record] = field(default_factory=dict)
    debits: dict[tuple[str, str], int] = field(default_factory=dict)  # count per key
    resolved: set[tuple[str, str]] = field(default_factory=set)
    _provider_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    _procs: dict[int, int] = field(default_factory=dict)
    _n: int = 0
    workers: int = 3

    def __post_init__(self) -> None:
        for a in ("acct-1", "acct-2"):
            self.balances.setdefault(a, INITIAL)

    # -- history --

    def _emit(self, process: int, type_: str, f: str, value: Any, error: Any = None) -> None:
        i = len(self.events)
        self.events.append(Event(i, i * 1000, process, type_, f, value, error))

    def _process(self, worker: int) -> int:
        return self._procs.setdefault(worker, worker)

    def _crash(self, worker: int) -> None:
        self._procs[worker] = self._process(worker) + self.workers

    # -- provider --

    def _charge(self, account: str, key: str, amount: int, currency: str, rid: str) -> str:
        dkey = f"down-{account}-{key}" if self.downstream_key else None
        if dkey is not None and dkey in self._provider_keys:
            return str(self._provider_keys[dkey]["id"])
        self._n += 1
        charge = {
            "id": f"ch_{self._n}",
            "idempotency_key": dkey,
            "account": account,
            "amount_cents": amount,
            "currency": currency,
            "metadata": {"idempotency_key": key, "request_id": rid},
        }
        self.charges.append(charge)
        if dkey is not None:
            self._provider_keys[dkey] = charge
        return str(charge["id"])

    # -- the API --

    def pay(
        self,
        worker: int,
        account: str,
        key: str,
        amount: int,
        currency: str = "usd",
        outcome: str = "ok",
        *,
        reuse: bool = False,
        final: bool = False,
    ) -> str:
        """Serves one request; returns the completion type it got."""
        self._n += 1
        rid = f"{key}#{self._n}"
        proc = self._process(worker)
        value = {
            "account": account,
            "key": key,
            "amount_cents": amount,
            "currency": currency,
            "rid": rid,
            "replica": 0,
            "reuse": reuse,
            "final": final,
        }
        self._emit(proc, "invoke", "pay", value)
        type_, error, answer = self._serve(account, key, amount, currency, rid, outcome)
        self._emit(proc, type_, "pay", answer, error)
        if type_ == "info":
            self._crash(worker)
        if not reuse and (type_ == "ok" or (type_ == "fail" and error == "fingerprint_mismatch")):
            self.resolved.add((account, key))
        return type_

    def _serve(
        self, account: str, key: str, amount: int, currency: str, rid: str, outcome: str
    ) -> tuple[str, str | None, Any]:
        k = (account, key)
        body = (account, amount, currency)
        if outcome == "store-down":
            return "fail", "store_unavailable", {"status": 503, "body": {"charged": False}}
        rec = self.records.get(k)
        if rec is None:
            rec = self.records[k] = Record(body)
        else:
            if self.fingerprint and rec.body != body:
                return "fail", "fingerprint_mismatch", {"status": 422, "body": {}}
            if rec.point == "finished":
                return (
                    ("ok" if 200 <= (rec.code or 0) < 300 else "info"),
                    None,
                    {
                        "status": rec.code,
                        "body": rec.response,
                    },
                )
            if rec.leased and outcome == "busy":
                return "fail", "in_progress", {"status": 409, "body": {}}
            rec.leased = True  # the lease expired (or was released): take it over
        if outcome == "crash-after-claim":
            return "info", "crash", None
        if rec.point == "started":
            charge_id = self._charge(account, key, rec.body[1], rec.body[2], rid)
            if outcome == "crash-after-charge":
                return "info", "crash", None
            if outcome == "provider-error":
                failure = {"error": "provider_error"}
                if self.cache_5xx:
                    rec.point, rec.code, rec.response, rec.leased = "finished", 502, failure, False
                else:
                    rec.leased = False
                return "info", "http 502", {"status": 502, "body": failure}
            rec.point, rec.charge_id = "charge_created", charge_id
        payment = {
            "id": f"pay_{self._n}",
            "account": account,
            "amount_cents": rec.body[1],
            "currency": rec.body[2],
            "charge_id": rec.charge_id,
            "idempotency_key": key,
        }
        # The effect: the debit (and the payment row).
        self.balances[account] -= rec.body[1]
        self.debits[k] = self.debits.get(k, 0) + 1
        if outcome == "crash-between" and not self.response_with_effect:
            return "info", "crash", None  # the effect committed, the response did not
        rec.point, rec.code, rec.response, rec.leased = "finished", 201, payment, False
        if outcome in ("crash-between", "lost-response"):
            return "info", "lost", None
        return "ok", None, {"status": 201, "body": payment}

    # -- final phase --

    def resolve_all(self, keys: list[tuple[str, str, int]]) -> None:
        """Retries every unresolved key once with the server running to the end."""
        for account, key, amount in keys:
            if (account, key) not in self.resolved:
                self.pay(0, account, key, amount, final=True)

    def final_reads(self, keys: list[tuple[str, str, int]]) -> None:
        p = self._process(0)
        self._emit(p, "invoke", "read-balances", {"accounts": sorted(self.balances),
                                                  "initial_cents": INITIAL})  # fmt: skip
        self._emit(p, "ok", "read-balances", {"balances": dict(self.balances)})
        self._emit(p, "invoke", "read-provider", {})
        self._emit(p, "ok", "read-provider", {"charges": [dict(c) for c in self.charges]})
        names = [[a, k] for a, k, _ in keys]
        self._emit(p, "invoke", "read-records", {"keys": names})
        recs: dict[str, Any] = {}
        for a, k, _ in keys:
            r = self.records.get((a, k))
            recs[f"{a}/{k}"] = (
                None
                if r is None
                else {"state": r.point, "response_code": r.code, "response_body": r.response}
            )
        self._emit(p, "ok", "read-records", {"records": recs})

    # -- ground truth --

    def double_charged(self) -> bool:
        seen: dict[tuple[str, str], int] = {}
        for c in self.charges:
            k = (str(c["account"]), str(c["metadata"]["idempotency_key"]))
            seen[k] = seen.get(k, 0) + 1
        return any(n > 1 for n in seen.values())

    def ledger_disagrees(self) -> bool:
        """Does some account's debits differ from its charges?"""
        charged: dict[str, int] = {}
        for c in self.charges:
            charged[str(c["account"])] = charged.get(str(c["account"]), 0) + int(c["amount_cents"])
        return any(INITIAL - charged.get(a, 0) != b for a, b in self.balances.items())
