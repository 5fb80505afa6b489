"""The locks target's client: one per harness worker, talking to one ``worker`` replica.

``incr``/``append`` and the ``acquire``/``release`` probes go through the replica's
``client->worker-i`` proxy; the final ``read-resource`` reads PostgreSQL directly (bypassing
every proxy: it runs after healing and must not be faulted), returning the resource's state and
its record of accepted writes (:func:`targets.locks.resource.read_record`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psycopg

from targets.locks.resource import read_record
from workbench.client import Completion, CompletionType, Op, fail, info, ok
from workbench.runtime.cluster import Cluster

SERVICE = "worker"


class LocksClient:
    def __init__(self) -> None:
        self._http: httpx.AsyncClient | None = None
        self._dsn: str | None = None

    async def open(self, cluster: Cluster, worker: int) -> None:
        urls = cluster.endpoints(SERVICE)
        self._http = httpx.AsyncClient(base_url=urls[worker % len(urls)], timeout=30.0)
        self._dsn = cluster.postgres["pg"].dsn(direct=True)

    async def invoke(self, op: Op) -> Completion:
        if op.f == "read-resource":
            return await asyncio.to_thread(self._read_resource)
        assert self._http is not None
        if op.f in ("incr", "append"):
            v = op.value
            body: dict[str, Any] = {"kind": op.f, "resource": v["resource"], "op_id": v["op_id"]}
            if op.f == "append":
                body["element"] = v["element"]
            resp = await self._http.post("/op", json=body)
        elif op.f in ("acquire", "release"):
            resp = await self._http.post(f"/probe/{op.f}", json={"owner": op.value})
        else:
            return fail(f"unknown operation {op.f!r}")
        if resp.status_code != 200:
            # Bad requests are refused before anything runs; anything else may have run.
            if resp.status_code == 400:
                return fail(f"http 400: {resp.text[:200]}")
            return info(f"http {resp.status_code}: {resp.text[:200]}")
        answer = resp.json()
        status = answer.get("status")
        extra = answer.get("value") or {}
        if status == "ok":
            return ok(extra.get("value"), **{k: v for k, v in extra.items() if k != "value"})
        if status == "fail":
            return fail(answer.get("error"))
        return info(answer.get("error"))

    def _read_resource(self) -> Completion:
        assert self._dsn is not None
        try:
            with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as conn:
                return ok(read_record(conn))
        except psycopg.Error as e:
            return fail(f"final read failed: {type(e).__name__}: {e}")

    def classify(self, error: BaseException) -> CompletionType | None:
        # A connection refused before a byte was sent: the request never reached a replica.
        if isinstance(error, httpx.ConnectError):
            return "fail"
        return None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
