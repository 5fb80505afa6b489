"""The workload's client: one per worker, speaking HTTP to the API replicas like an SDK would.

Operations (``Op.f``) and what their completions carry:

- ``pay`` ``{account, key, amount_cents, currency, rid, replica, reuse, final}``: ``POST
  /payments`` to API replica ``replica`` (mod the replica count) through its proxy, with
  ``Idempotency-Key: key`` and ``X-Request-Id: rid``. The completion's value is ``{"status",
  "body"}`` whenever an HTTP answer arrived. Classification:

  - 2xx -> ``ok``;
  - 400 / 409 / 422, and 503 whose body says ``"charged": false`` -> ``fail``: the API answered
    without doing anything for this request (the error names which: ``bad_request``,
    ``in_progress``, ``fingerprint_mismatch``, ``store_unavailable``);
  - any other status (502, 500, 503 after the claim) -> ``info``: the payment may have happened;
  - connection refused / connect timeout -> ``fail`` ``refused`` (nothing was sent); a timeout or
    a broken connection after sending -> ``info`` (:class:`workbench.MaybeApplied`).

- ``read-balances`` ``{accounts, initial_cents}`` -> ok ``{"balances": {account: cents}}``;
- ``read-provider`` -> ok ``{"charges": [...]}`` (the provider's ground truth, see provider.py);
- ``read-records`` ``{keys: [[account, key], ...]}`` -> ok ``{"records": {"account/key": record
  or null}}``.

Final reads go to each service's direct endpoint (after healing, nothing is in the way anyway);
a read that gets no 200 ends ``fail`` (a read has no effect).
"""

from __future__ import annotations

from typing import Any

from workbench import (
    Cluster,
    Completion,
    HttpClient,
    MaybeApplied,
    NotApplied,
    Op,
    Response,
    fail,
    info,
    ok,
)

API = "payments-api"
PROVIDER = "provider"
#: Below the harness's per-operation timeout so the client reports its own timeouts.
HTTP_TIMEOUT = 4.5
#: Final reads may be large and run after healing: longer than a payment.
READ_TIMEOUT = 15.0
#: How much of a non-JSON body a completion keeps.
BODY_EXCERPT = 500

_DEFINITE = {400: "bad_request", 409: "in_progress", 422: "fingerprint_mismatch"}


def classify_payment(status: int, body: Any) -> tuple[str, str | None]:
    """``(type, error)`` of a ``pay`` answer: see the module docstring."""
    if 200 <= status < 300:
        return "ok", None
    if status in _DEFINITE:
        return "fail", _DEFINITE[status]
    if status == 503 and isinstance(body, dict) and body.get("charged") is False:
        return "fail", "store_unavailable"
    return "info", f"http {status}"


class PaymentsClient(HttpClient):
    service = API
    timeout = HTTP_TIMEOUT

    def __init__(self) -> None:
        super().__init__()
        self.provider = ""

    async def open(self, cluster: Cluster, worker: int) -> None:
        await super().open(cluster, worker)
        self.provider = cluster.direct_endpoints(PROVIDER)[0]

    async def invoke(self, op: Op) -> Completion:
        if op.f == "pay":
            return await self._pay(op.value)
        try:
            if op.f == "read-balances":
                return await self._read_balances(op.value)
            if op.f == "read-provider":
                resp = await self.get(f"{self.provider}/charges", timeout=READ_TIMEOUT)
                if resp.status != 200:
                    return fail(f"http {resp.status}", {"status": resp.status})
                return ok({"charges": resp.body["charges"]})
            if op.f == "read-records":
                resp = await self.post(
                    "/_records",
                    json={"keys": op.value["keys"]},
                    direct=True,
                    replica=0,
                    timeout=READ_TIMEOUT,
                )
                if resp.status != 200:
                    return fail(f"http {resp.status}", {"status": resp.status})
                return ok({"records": resp.body["records"]})
        except (NotApplied, MaybeApplied) as e:
            # A read has no effect: whatever went wrong, it certainly did not happen.
            return fail(f"{type(e).__name__}: {e}")
        return fail(f"unknown operation {op.f!r}")

    async def _pay(self, v: dict[str, Any]) -> Completion:
        headers = {"Idempotency-Key": v["key"], "X-Request-Id": v["rid"]}
        payload = {k: v[k] for k in ("account", "amount_cents", "currency")}
        try:
            resp = await self.post(
                "/payments", json=payload, headers=headers, replica=int(v.get("replica", 0))
            )
        except NotApplied as e:
            return fail("refused", {"detail": str(e)})
        # MaybeApplied (sent, no answer) propagates: the harness records info.
        value = {"status": resp.status, "body": _excerpt(resp)}
        kind, error = classify_payment(resp.status, value["body"])
        if kind == "ok":
            return ok(value)
        if kind == "fail":
            return fail(error, value)
        return info(error, value)

    async def _read_balances(self, v: dict[str, Any]) -> Completion:
        balances: dict[str, int] = {}
        for account in v["accounts"]:
            resp = await self.get(f"/accounts/{account}", direct=True, replica=0)
            if resp.status != 200:
                return fail(f"http {resp.status}", {"account": account})
            balances[account] = int(resp.body["balance_cents"])
        return ok({"balances": balances})


def _excerpt(resp: Response) -> Any:
    return resp.body[:BODY_EXCERPT] if isinstance(resp.body, str) else resp.body
