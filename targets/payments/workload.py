"""The payments workload: fresh payments, SDK-style retries, double submits, reused keys; and
the final phase that resolves every key and reads the ground truth.

A :class:`Ledger` remembers every key the campaign issued and whether it is resolved (its
original request got a 2xx, or a definite terminal answer). The main workload and the final
phase share it, so the final phase knows which keys to retry.

Operations (see ``client.py`` for how they complete):

- ``pay`` with ``value = {account, key, amount_cents, currency, rid, replica, reuse, final,
  attempt}``: ``rid`` is unique per operation (``key#attempt``) and reaches the provider as
  charge metadata, so a charge names the request that made it; ``reuse`` marks a request that
  reuses a resolved key with a different amount (it should get 422); ``final`` marks retries of
  the final phase.
- ``read-balances`` ``{accounts, initial_cents}``, ``read-provider`` ``{}``, ``read-records``
  ``{keys}``: the final reads the checkers judge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from targets.payments.schema import ACCOUNTS, CURRENCIES, INITIAL_BALANCE_CENTS
from workbench import Completion, Context, Generator, Op, Step, Wait, gen

#: Answers after which retrying the same request is pointless.
TERMINAL_ERRORS = frozenset({"fingerprint_mismatch", "bad_request"})


@dataclass
class KeyState:
    account: str
    key: str
    amount_cents: int
    currency: str
    attempts: int = 0
    failures: int = 0  # consecutive attempts that did not resolve the key
    in_flight: int = 0
    resolved: bool = False
    succeeded: bool = False
    retry_at: float | None = None  # when a retry is due; None: none pending

    def body(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "amount_cents": self.amount_cents,
            "currency": self.currency,
        }


@dataclass
class Ledger:
    """Every key of the campaign, in issue order."""

    keys: dict[str, KeyState] = field(default_factory=dict)
    succeeded: list[str] = field(default_factory=list)

    def unresolved(self) -> list[KeyState]:
        return [k for k in self.keys.values() if not k.resolved]

    def pay(self, st: KeyState, ctx: Context, replicas: int, *, final: bool = False) -> Op:
        st.attempts += 1
        st.in_flight += 1
        return Op(
            "pay",
            {
                **st.body(),
                "key": st.key,
                "rid": f"{st.key}#{st.attempts}",
                "replica": ctx.rng.randrange(replicas),
                "reuse": False,
                "final": final,
                "attempt": st.attempts,
            },
        )

    def record(self, op: Op, completion: Completion) -> KeyState | None:
        """Notes how a ``pay`` ended; returns the key's state when it still needs a retry."""
        v = op.value
        if op.f != "pay" or v.get("reuse"):
            return None
        st = self.keys[v["key"]]
        st.in_flight -= 1
        if st.resolved:
            return None
        if completion.type == "ok":
            st.resolved = st.succeeded = True
            st.retry_at = None
            self.succeeded.append(st.key)
            return None
        if completion.type == "fail" and completion.error in TERMINAL_ERRORS:
            st.resolved = True
            st.retry_at = None
            return None
        st.failures += 1
        return st


def backoff(failures: int, ctx: Context, base: float = 0.2, cap: float = 2.0) -> float:
    """Exponential backoff with jitter, as payment SDKs retry: ~0.2 s, 0.4 s, ... up to 2 s."""
    delay: float = min(cap, base * 2.0 ** max(0, failures - 1))
    return delay * ctx.rng.uniform(0.5, 1.5)


class PaymentsWorkload:
    """Endless main-phase operations (the runner bounds them by time).

    Each step is, in order of preference: a retry that is due (same key, same body); else a
    reused key with a different amount (``reuse_share``); else a fresh payment, which with
    ``double_submit`` probability is also queued for an immediate concurrent duplicate (a
    double-clicked button, or two app servers retrying one job).
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        replicas: int,
        reuse_share: float = 0.04,
        double_submit: float = 0.15,
        max_attempts: int = 8,
    ) -> None:
        self.ledger = ledger
        self.replicas = replicas
        self.reuse_share = reuse_share
        self.double_submit = double_submit
        self.max_attempts = max_attempts
        self._n = 0

    def _due(self, now: float) -> KeyState | None:
        best: KeyState | None = None
        for st in self.ledger.keys.values():
            if (
                st.retry_at is not None
                and st.retry_at <= now
                and not st.resolved
                and (best is None or st.retry_at < (best.retry_at or 0.0))
            ):
                best = st
        return best

    def next(self, ctx: Context) -> Step:
        due = self._due(ctx.time)
        if due is not None:
            due.retry_at = None
            return self.ledger.pay(due, ctx, self.replicas)
        if self.ledger.succeeded and ctx.rng.random() < self.reuse_share:
            st = self.ledger.keys[ctx.rng.choice(self.ledger.succeeded)]
            return Op(
                "pay",
                {
                    "account": st.account,
                    "amount_cents": st.amount_cents + ctx.rng.randint(1, 500),
                    "currency": st.currency,
                    "key": st.key,
                    "rid": f"{st.key}#reuse{ctx.rng.randrange(10**9)}",
                    "replica": ctx.rng.randrange(self.replicas),
                    "reuse": True,
                    "final": False,
                    "attempt": 0,
                },
            )
        self._n += 1
        st = KeyState(
            account=ctx.rng.choice(ACCOUNTS),
            key=f"k{self._n}-{ctx.rng.randrange(16**6):06x}",
            amount_cents=ctx.rng.randint(100, 10_000),
            currency=ctx.rng.choice(CURRENCIES),
        )
        self.ledger.keys[st.key] = st
        if ctx.rng.random() < self.double_submit:
            st.retry_at = ctx.time
        return self.ledger.pay(st, ctx, self.replicas)

    def update(self, ctx: Context, op: Op, completion: Completion) -> None:
        st = self.ledger.record(op, completion)
        # Each request chain retries on its own, as independent clients (a double-clicked
        # button, two app servers on one job) do: a 409 is retried even while another request
        # for the key is still in flight. One retry pending per key is enough.
        if st is None or st.retry_at is not None:
            return
        if st.attempts < self.max_attempts:
            st.retry_at = ctx.time + backoff(st.failures, ctx)


class Resolver:
    """Final phase: retries every unresolved key (one request per key at a time, with backoff)
    until it resolves, ``attempts`` more tries per key, or ``budget`` seconds pass."""

    def __init__(self, ledger: Ledger, *, replicas: int, attempts: int = 8, budget: float = 25.0):
        self.ledger = ledger
        self.replicas = replicas
        self.attempts = attempts
        self.budget = budget
        self._deadline: float | None = None
        self._tries: dict[str, int] = {}
        self._ready_at: dict[str, float] = {}

    def next(self, ctx: Context) -> Step:
        if self._deadline is None:
            self._deadline = ctx.time + self.budget
        if ctx.time >= self._deadline:
            return None
        earliest: float | None = None
        pending = False
        for st in self.ledger.unresolved():
            if self._tries.get(st.key, 0) >= self.attempts:
                continue
            pending = True
            if st.in_flight > 0:
                continue
            at = self._ready_at.get(st.key, 0.0)
            if at <= ctx.time:
                self._tries[st.key] = self._tries.get(st.key, 0) + 1
                st.retry_at = None
                return self.ledger.pay(st, ctx, self.replicas, final=True)
            earliest = at if earliest is None else min(earliest, at)
        if not pending:
            return None
        return Wait(earliest)

    def update(self, ctx: Context, op: Op, completion: Completion) -> None:
        st = self.ledger.record(op, completion)
        if st is not None:
            self._ready_at[st.key] = ctx.time + backoff(st.failures, ctx, base=0.3, cap=1.0)


def final_phase(ledger: Ledger, *, replicas: int, lease_seconds: float) -> Generator:
    """Wait out the leases, resolve every key, then read balances, then the provider's charges
    (in that order: a straggling request charges before it debits, so reading balances first
    can only make a charge look unrecorded, which unresolved keys explain, never the reverse),
    then every key's API record."""
    return gen.phases(
        gen.sleep(lease_seconds + 0.5),
        Resolver(ledger, replicas=replicas),
        gen.read_until_ok(
            Op(
                "read-balances",
                {"accounts": list(ACCOUNTS), "initial_cents": INITIAL_BALANCE_CENTS},
            )
        ),
        gen.read_until_ok(Op("read-provider", {})),
        gen.lazy(
            lambda: gen.read_until_ok(
                Op("read-records", {"keys": [[s.account, s.key] for s in ledger.keys.values()]})
            )
        ),
    )
