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
  - connection refused / connect timeout -> ``fail`` (nothing was sent); a timeout or a broken
    connection after sending -> ``info``.

- ``read-balances`` ``{accounts, initial_cents}`` -> ok ``{"balances": {account: cents}}``;
- ``read-provider`` -> ok ``{"charges": [...]}`` (the provider's ground truth, see provider.py);
- ``read-records`` ``{keys: [[account, key], ...]}`` -> ok ``{"records": {"account/key": record
  or null}}``.

Final reads go to each service's direct endpoint (after healing, nothing is in the way anyway);
a read that gets no 200 ends ``fail`` (a read has no effect).
"""

from __future__ import annotations

from typing import Any

import httpx

from workbench.client import Completion, Op, fail, info, ok
from workbench.runtime.cluster import Cluster

API = "payments-api"
PROVIDER = "provider"
#: Below the harness's per-operation timeout so the client reports its own timeouts.
HTTP_TIMEOUT = 4.5

_DEFINITE = {400: "bad_request", 409: "in_progress", 422: "fingerprint_mismatch"}


def _body(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text[:500]


def classify_payment(status: int, body: Any) -> tuple[str, str | None]:
    """``(type, error)`` of a ``pay`` answer: see the module docstring."""
    if 200 <= status < 300:
        return "ok", None
    if status in _DEFINITE:
        return "fail", _DEFINITE[status]
    if status == 503 and isinstance(body, dict) and body.get("charged") is False:
        return "fail", "store_unavailable"
    return "info", f"http {status}"


class PaymentsClient:
    def __init__(self) -> None:
        self.api: list[str] = []
        self.api_direct: list[str] = []
        self.provider_direct: list[str] = []
        self.http: httpx.AsyncClient | None = None

    async def open(self, cluster: Cluster, worker: int) -> None:
        self.api = cluster.endpoints(API)
        self.api_direct = cluster.direct_endpoints(API)
        self.provider_direct = cluster.direct_endpoints(PROVIDER)
        self.http = httpx.AsyncClient(timeout=HTTP_TIMEOUT, trust_env=False)

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()
            self.http = None

    async def invoke(self, op: Op) -> Completion:
        assert self.http is not None, "invoke before open"
        if op.f == "pay":
            return await self._pay(self.http, op.value)
        try:
            if op.f == "read-balances":
                return await self._read_balances(self.http, op.value)
            if op.f == "read-provider":
                resp = await self.http.get(f"{self.provider_direct[0]}/charges", timeout=15.0)
                if resp.status_code != 200:
                    return fail(f"http {resp.status_code}", {"status": resp.status_code})
                return ok({"charges": resp.json()["charges"]})
            if op.f == "read-records":
                resp = await self.http.post(
                    f"{self.api_direct[0]}/_records", json={"keys": op.value["keys"]}, timeout=15.0
                )
                if resp.status_code != 200:
                    return fail(f"http {resp.status_code}", {"status": resp.status_code})
                return ok({"records": resp.json()["records"]})
        except httpx.HTTPError as e:
            # A read has no effect: whatever went wrong, it certainly did not happen.
            return fail(f"{type(e).__name__}: {e}")
        return fail(f"unknown operation {op.f!r}")

    async def _pay(self, http: httpx.AsyncClient, v: dict[str, Any]) -> Completion:
        base = self.api[int(v.get("replica", 0)) % len(self.api)]
        headers = {"Idempotency-Key": v["key"], "X-Request-Id": v["rid"]}
        payload = {k: v[k] for k in ("account", "amount_cents", "currency")}
        try:
            resp = await http.post(f"{base}/payments", json=payload, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as e:
            return fail("refused", {"detail": f"{type(e).__name__}: {e}"})
        except httpx.HTTPError as e:
            return info(f"{type(e).__name__}", {"detail": str(e)[:200]})
        body = _body(resp)
        value = {"status": resp.status_code, "body": body}
        kind, error = classify_payment(resp.status_code, body)
        if kind == "ok":
            return ok(value)
        if kind == "fail":
            return fail(error, value)
        return info(error, value)

    async def _read_balances(self, http: httpx.AsyncClient, v: dict[str, Any]) -> Completion:
        balances: dict[str, int] = {}
        for account in v["accounts"]:
            resp = await http.get(f"{self.api_direct[0]}/accounts/{account}")
            if resp.status_code != 200:
                return fail(f"http {resp.status_code}", {"account": account})
            balances[account] = int(resp.json()["balance_cents"])
        return ok({"balances": balances})
