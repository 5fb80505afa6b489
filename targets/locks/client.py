"""The locks target's client: one per harness worker, talking to one ``worker`` replica.

``incr``/``append`` and the ``acquire``/``release`` probes go through the replica's
``client->worker-i`` proxy; the final ``read-resource`` reads PostgreSQL directly (bypassing
every proxy: it runs after healing and must not be faulted), returning the resource's state and
its record of accepted writes (:func:`targets.locks.resource.read_record`).

An HTTP 200 carries the service's own verdict (``{"status": "ok"|"fail"|"info", ...}``); a 400
is refused before anything runs (``fail``); any other status may have run (``info``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from targets.locks.resource import read_record
from workbench import Cluster, Completion, CompletionType, HttpClient, Op, fail, info, ok

SERVICE = "worker"


class LocksClient(HttpClient):
    service = SERVICE
    timeout = 30.0

    def __init__(self) -> None:
        super().__init__()
        self._dsn: str | None = None

    async def open(self, cluster: Cluster, worker: int) -> None:
        await super().open(cluster, worker)
        self._dsn = cluster.postgres["pg"].dsn(direct=True)

    def status_type(self, status: int) -> CompletionType:
        # Only a bad request is refused before anything runs; anything else may have run.
        if status == 200:
            return "ok"
        return "fail" if status == 400 else "info"

    async def invoke(self, op: Op) -> Completion:
        if op.f == "read-resource":
            return await asyncio.to_thread(self._read_resource)
        if op.f in ("incr", "append"):
            v = op.value
            body: dict[str, Any] = {"kind": op.f, "resource": v["resource"], "op_id": v["op_id"]}
            if op.f == "append":
                body["element"] = v["element"]
            resp = await self.post("/op", json=body)
        elif op.f in ("acquire", "release"):
            resp = await self.post(f"/probe/{op.f}", json={"owner": op.value})
        else:
            return fail(f"unknown operation {op.f!r}")
        if resp.status != 200:
            return self.complete(resp)
        answer = resp.body
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
