"""The payments API: ``POST /payments`` made idempotent by a client-chosen key.

Run as ``python -m uvicorn targets.payments.api:app --host 127.0.0.1 --port PORT`` with
``PAYMENTS_VARIANT`` (see ``variants.py``), ``PG_DSN`` or ``REDIS_URL`` (the key store) and
``PROVIDER_URL`` set.

Contract (answers are JSON):

- ``POST /payments``, header ``Idempotency-Key`` (missing: 400), body ``{account, amount_cents,
  currency}`` (invalid: 400). First success: 201 with the payment ``{id, object, account,
  amount_cents, currency, charge_id, idempotency_key, status}``. A retry with the same key and
  body gets the identical status and body (header ``Idempotent-Replayed: true``). The same key
  with another body: 422. Another request holds the key: 409 with ``Retry-After``. Key store
  unreachable before anything was done: 503 ``{"error": "store_unavailable", "charged": false}``
  (fail closed). Any other 5xx (502 provider error, 503 later store error, 500) means the
  outcome is unknown and the client should retry with the same key.
- ``GET /accounts/{account}`` -> ``{"account", "balance_cents"}``.
- ``GET /payments/{account}/{key}`` -> what the store holds for a key (404 when nothing):
  ``{"state", "response_code", "response_body", "fingerprint", "rows"}``.
- ``POST /_records`` ``{"keys": [[account, key], ...]}`` -> ``{"records": {"account/key":
  record or null}}`` (the final read of every key at once).
- ``GET /health``; ``/_failpoints`` (``docs/failpoints.md``; points ``after-key-lookup``,
  ``after-claim``, ``after-provider-charge``, ``before-response-commit``,
  ``after-response-commit``).
"""

from __future__ import annotations

import contextlib
import math
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from targets.payments.schema import ACCOUNTS
from targets.payments.store import Claim, KeyStore, downstream_key, fingerprint
from targets.payments.variants import VariantSpec, from_env
from targets.pg_pool import StoreUnavailable, deadline
from workbench import FailpointMiddleware, declare_failpoints, failpoint

PROVIDER_TIMEOUT = 1.5


class ProviderError(RuntimeError):
    """The provider did not confirm a charge: it may or may not have made one."""


def _json(
    body: Any, status: int, retry_after: float | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    headers = dict(headers or {})
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return JSONResponse(body, status_code=status, headers=headers or None)


def _parse(body: Any) -> dict[str, Any] | str:
    """The validated request body, or a message saying what is wrong with it."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    account, amount, currency = body.get("account"), body.get("amount_cents"), body.get("currency")
    if account not in ACCOUNTS:
        return f"unknown account {account!r}"
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        return "amount_cents must be a positive integer"
    if not isinstance(currency, str) or not currency:
        return "currency must be a non-empty string"
    return {"account": account, "amount_cents": amount, "currency": currency}


class PaymentsApi:
    def __init__(self, spec: VariantSpec, store: KeyStore, provider_url: str) -> None:
        self.spec = spec
        self.store = store
        self.provider_url = provider_url
        self.replica = os.environ.get("WORKBENCH_REPLICA", "?")
        self._http: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self.provider_url, timeout=PROVIDER_TIMEOUT, trust_env=False
            )
        return self._http

    async def charge(
        self, account: str, key: str, record: str, body: dict[str, Any], request_id: str
    ) -> dict[str, Any]:
        headers = {}
        if self.spec.downstream_key:
            headers["Idempotency-Key"] = downstream_key(account, key, record)
        payload = dict(body)
        # Metadata lets the ground truth name the client key and request behind each charge.
        payload["metadata"] = {
            "idempotency_key": key,
            "request_id": request_id,
            "replica": self.replica,
        }
        try:
            resp = await deadline(
                self.http.post("/charges", json=payload, headers=headers),
                PROVIDER_TIMEOUT + 0.5,
                "provider",
            )
        except (httpx.HTTPError, StoreUnavailable) as e:
            raise ProviderError(f"provider: {type(e).__name__}: {e}") from e
        if resp.status_code not in (200, 201):
            raise ProviderError(f"provider answered {resp.status_code}")
        charge = resp.json()["charge"]
        assert isinstance(charge, dict)
        return charge

    async def create_payment(self, request: Request) -> JSONResponse:
        key = request.headers.get("idempotency-key", "").strip()
        if not key:
            return _json({"error": "missing Idempotency-Key header"}, 400)
        try:
            raw = await request.json()
        except ValueError:
            return _json({"error": "body is not JSON"}, 400)
        body = _parse(raw)
        if isinstance(body, str):
            return _json({"error": body}, 400)
        account = body["account"]
        request_id = request.headers.get("x-request-id", uuid.uuid4().hex)
        fp = fingerprint(body) if self.spec.fingerprint else "-"
        token = uuid.uuid4().hex
        try:
            claim = await self.store.claim(account, key, fp, body, token)
        except StoreUnavailable as e:
            # Fail closed: without the key's record nothing may be charged.
            return _json({"error": "store_unavailable", "charged": False, "detail": str(e)}, 503, 1)
        if claim.kind == "mismatch":
            return _json({"error": "idempotency key reused with a different request body"}, 422)
        if claim.kind == "replay":
            replayed = {"Idempotent-Replayed": "true"}
            return _json(claim.response_body, claim.response_code or 500, headers=replayed)
        if claim.kind == "busy":
            return _json({"error": "in_progress"}, 409, claim.retry_after)
        try:
            return await self._execute(claim, token, account, key, body, request_id)
        except StoreUnavailable as e:
            # We hold the lease and may have charged: unknown outcome, retry the same key.
            return _json({"error": "store_unavailable", "detail": str(e)}, 503, 1)
        except Exception as e:  # a raising failpoint or a bug: give the key back, answer 500
            with contextlib.suppress(Exception):
                await self.store.release(claim, token)
            return _json({"error": f"internal: {type(e).__name__}: {e}"}, 500, 1)

    async def _execute(
        self,
        claim: Claim,
        token: str,
        account: str,
        key: str,
        body: dict[str, Any],
        request_id: str,
    ) -> JSONResponse:
        await failpoint("after-claim")
        charge_id = claim.charge_id
        if claim.recovery_point == "started" or charge_id is None:
            try:
                charge = await self.charge(account, key, claim.row, body, request_id)
            except ProviderError as e:
                failure = {"error": "provider_error", "detail": str(e)}
                if self.spec.cache_5xx:
                    with contextlib.suppress(StoreUnavailable):
                        await self.store.finish_failed(claim, token, 502, failure)
                    return _json(failure, 502)
                # The charge may exist: keep recovery point "started" and let a retry call the
                # provider again with the same downstream key.
                with contextlib.suppress(StoreUnavailable):
                    await self.store.release(claim, token)
                return _json(failure, 502, 1)
            charge_id = str(charge["id"])
            await failpoint("after-provider-charge")
            if not await self.store.record_charge(claim, token, charge_id):
                return _json({"error": "lease_lost"}, 503, 1)
        payment = {
            "id": "pay_" + uuid.uuid4().hex[:24],
            "object": "payment",
            "account": account,
            "amount_cents": body["amount_cents"],
            "currency": body["currency"],
            "charge_id": charge_id,
            "idempotency_key": key,
            "status": "succeeded",
        }
        if not await self.store.finish(claim, token, payment, 201, payment):
            return _json({"error": "lease_lost"}, 503, 1)
        await failpoint("after-response-commit")
        return _json(payment, 201)

    async def account(self, request: Request) -> JSONResponse:
        account = request.path_params["account"]
        try:
            balance = await self.store.balance(account)
        except KeyError:
            return _json({"error": f"no account {account!r}"}, 404)
        except StoreUnavailable as e:
            return _json({"error": "store_unavailable", "detail": str(e)}, 503, 1)
        return _json({"account": account, "balance_cents": balance}, 200)

    async def record(self, request: Request) -> JSONResponse:
        try:
            rec = await self.store.record(
                request.path_params["account"], request.path_params["key"]
            )
        except StoreUnavailable as e:
            return _json({"error": "store_unavailable", "detail": str(e)}, 503, 1)
        if rec is None:
            return _json({"error": "no record"}, 404)
        return _json(rec, 200)

    async def records(self, request: Request) -> JSONResponse:
        try:
            pairs = [(str(a), str(k)) for a, k in (await request.json())["keys"]]
        except (ValueError, KeyError, TypeError) as e:
            return _json({"error": f"bad request: {e}"}, 400)
        out: dict[str, Any] = {}
        try:
            for a, k in pairs:
                out[f"{a}/{k}"] = await self.store.record(a, k)
        except StoreUnavailable as e:
            return _json({"error": "store_unavailable", "detail": str(e)}, 503, 1)
        return _json({"records": out}, 200)

    async def health(self, request: Request) -> JSONResponse:
        # Liveness of the process only: a replica restarted during a partition must still
        # count as started.
        return _json({"ok": True, "variant": self.spec.name, "replica": self.replica}, 200)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        if self._http is not None:
            await self._http.aclose()
        await self.store.close()


POINTS = (
    "after-key-lookup",
    "after-claim",
    "after-provider-charge",
    "before-response-commit",
    "after-response-commit",
)
declare_failpoints(*POINTS)


def make_app(spec: VariantSpec, store: KeyStore, provider_url: str) -> FailpointMiddleware:
    api = PaymentsApi(spec, store, provider_url)
    app = Starlette(
        routes=[
            Route("/payments", api.create_payment, methods=["POST"]),
            Route("/payments/{account}/{key}", api.record, methods=["GET"]),
            Route("/accounts/{account}", api.account, methods=["GET"]),
            Route("/_records", api.records, methods=["POST"]),
            Route("/health", api.health, methods=["GET"]),
        ],
        lifespan=api.lifespan,
    )
    return FailpointMiddleware(app)


def app_from_env() -> FailpointMiddleware:
    """The app as configured by the runtime's environment variables."""
    spec = from_env()
    store: KeyStore
    if spec.store == "pg":
        from targets.payments.store_pg import PgKeyStore

        store = PgKeyStore(os.environ["PG_DSN"], spec)
    else:
        from targets.payments.store_redis import RedisKeyStore

        store = RedisKeyStore(os.environ["REDIS_URL"], spec)
    return make_app(spec, store, os.environ["PROVIDER_URL"])


app = app_from_env() if "PROVIDER_URL" in os.environ else FailpointMiddleware(Starlette())
