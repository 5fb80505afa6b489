"""Reading a payments history: idempotent requests, their answers and the final reads.

The shapes (written by ``targets/payments``, but nothing here imports it; any target that
records the same operations can use these checkers):

- ``pay``: invocation value ``{account, key, amount_cents, currency, rid, reuse?, final?}``;
  completion value ``{"status": int, "body": ...}`` when an HTTP answer arrived. ``ok`` means
  2xx; ``fail`` means the request certainly had no effect (its ``error`` says why:
  ``in_progress``, ``fingerprint_mismatch``, ``store_unavailable``, ``bad_request``, ``refused``);
  ``info`` (or no completion) means it may have.
- ``read-provider``: ok value ``{"charges": [{id, account, amount_cents, currency,
  idempotency_key, metadata: {idempotency_key, request_id}}, ...]}``: the provider's ground truth.
- ``read-balances``: invocation ``{accounts, initial_cents}``, ok value
  ``{"balances": {account: cents}}``.
- ``read-records``: ok value ``{"records": {"account/key": {state, response_code,
  response_body} or null}}``.

A key is identified by ``(account, key)``, the scope of an idempotency key.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workbench.checker import Witness
from workbench.history import Event, Operation, pair_operations

KeyId = tuple[str, str]

#: Errors of a ``fail`` that settle a request for good (retrying it cannot succeed).
TERMINAL_ERRORS = frozenset({"fingerprint_mismatch", "bad_request"})


@dataclass(frozen=True)
class PayRequest:
    """One ``pay`` operation with its request and (if any) its answer."""

    op: Operation
    account: str
    key: str
    amount_cents: int
    currency: str
    rid: str
    reuse: bool
    final: bool

    @property
    def key_id(self) -> KeyId:
        return (self.account, self.key)

    @property
    def type(self) -> str:
        return self.op.type

    @property
    def error(self) -> Any:
        return None if self.op.completion is None else self.op.completion.error

    @property
    def answer(self) -> dict[str, Any] | None:
        """``{"status", "body"}`` when an HTTP answer arrived, else None."""
        c = self.op.completion
        if c is None or not isinstance(c.value, dict) or "status" not in c.value:
            return None
        return c.value

    @property
    def status(self) -> int | None:
        a = self.answer
        return None if a is None else int(a["status"])

    @property
    def body(self) -> tuple[str, int, str]:
        """The request body as a comparable triple (account, amount_cents, currency)."""
        return (self.account, self.amount_cents, self.currency)

    @property
    def terminal(self) -> bool:
        return self.type == "fail" and self.error in TERMINAL_ERRORS


def pay_requests(history: Sequence[Event]) -> list[PayRequest]:
    """Every ``pay`` operation of the history, in invocation order."""
    out: list[PayRequest] = []
    for op in pair_operations(history):
        if op.f != "pay" or not isinstance(op.invoke.value, dict):
            continue
        v = op.invoke.value
        out.append(
            PayRequest(
                op=op,
                account=str(v["account"]),
                key=str(v["key"]),
                amount_cents=int(v["amount_cents"]),
                currency=str(v["currency"]),
                rid=str(v.get("rid", "")),
                reuse=bool(v.get("reuse", False)),
                final=bool(v.get("final", False)),
            )
        )
    return out


def by_key(requests: Sequence[PayRequest]) -> dict[KeyId, list[PayRequest]]:
    out: dict[KeyId, list[PayRequest]] = defaultdict(list)
    for r in requests:
        out[r.key_id].append(r)
    return dict(out)


def last_ok(history: Sequence[Event], f: str) -> Operation | None:
    """The last operation ``f`` that completed ``ok`` (final reads may be retried)."""
    found: Operation | None = None
    for op in pair_operations(history):
        if op.f == f and op.type == "ok":
            found = op
    return found


def provider_charges(history: Sequence[Event]) -> list[dict[str, Any]] | None:
    op = last_ok(history, "read-provider")
    if op is None or op.completion is None:
        return None
    charges = op.completion.value.get("charges")
    return list(charges) if isinstance(charges, list) else None


def charge_key(charge: dict[str, Any]) -> KeyId | None:
    """The client's (account, key) a charge was made for, from its metadata."""
    meta = charge.get("metadata") or {}
    key = meta.get("idempotency_key") if isinstance(meta, dict) else None
    return None if key is None else (str(charge["account"]), str(key))


def charge_request(charge: dict[str, Any]) -> str | None:
    meta = charge.get("metadata") or {}
    rid = meta.get("request_id") if isinstance(meta, dict) else None
    return None if rid is None else str(rid)


def charges_by_key(charges: Sequence[dict[str, Any]]) -> dict[KeyId, list[dict[str, Any]]]:
    """Charges grouped by the client key in their metadata (charges without one are left out)."""
    out: dict[KeyId, list[dict[str, Any]]] = defaultdict(list)
    for c in charges:
        k = charge_key(c)
        if k is not None:
            out[k].append(c)
    return dict(out)


def balances(history: Sequence[Event]) -> tuple[dict[str, int], int] | None:
    """``(balances, initial_cents)`` from the last ok ``read-balances``."""
    op = last_ok(history, "read-balances")
    if op is None or op.completion is None:
        return None
    b = op.completion.value.get("balances")
    initial = op.invoke.value.get("initial_cents") if isinstance(op.invoke.value, dict) else None
    if not isinstance(b, dict) or initial is None:
        return None
    return {str(a): int(v) for a, v in b.items()}, int(initial)


def records(history: Sequence[Event]) -> dict[KeyId, dict[str, Any] | None] | None:
    """What the API recorded per key, from the last ok ``read-records``."""
    op = last_ok(history, "read-records")
    if op is None or op.completion is None:
        return None
    raw = op.completion.value.get("records")
    if not isinstance(raw, dict):
        return None
    out: dict[KeyId, dict[str, Any] | None] = {}
    for name, rec in raw.items():
        account, _, key = str(name).partition("/")
        out[(account, key)] = rec if isinstance(rec, dict) else None
    return out


def dollars(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) / 100:,.2f}"


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else (words or word + 's')}"


def key_name(k: KeyId) -> str:
    return f"{k[0]}/{k[1]}"


MAX_REQUESTS_SHOWN = 20


def request_witnesses(requests: Sequence[PayRequest], role: str) -> tuple[Witness, ...]:
    """The requests as witnesses, each noted with its request id and answer."""
    out = []
    for r in requests[:MAX_REQUESTS_SHOWN]:
        answer = str(r.status) if r.status is not None else f"{r.type} {r.error or ''}".strip()
        out.append(Witness.of(r.op, role, f"request {r.rid}: {answer}"))
    return tuple(out)


def read_witness(history: Sequence[Event], f: str, role: str, excerpt: Any) -> Witness:
    """A slice of the last ok final read ``f`` (``read-provider``, ``read-records``...)."""
    return Witness.excerpt_of(last_ok(history, f), role, excerpt)
