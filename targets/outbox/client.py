"""The outbox target's client: one per worker, speaking HTTP to the order service like an app.

Operations (``Op.f``) and how they complete:

- ``place`` ``{order, command, replica, final}``: ``POST /orders`` to API replica ``replica``
  through its proxy; ``set-status`` ``{order, status, command, replica, final}``: ``POST
  /orders/{order}/status``. 2xx -> ``ok`` with the service's answer ``{order, version, status,
  event, replayed}``; 4xx -> ``fail`` with the service's error (``invalid_transition``,
  ``duplicate_order``, ``unknown_order``, ``bad_request``: nothing changed); 5xx, a timeout or
  a broken connection -> ``info`` (the change may have committed); refused -> ``fail``.
- ``progress`` ``{}``: each relay's backlog and each consumer's pending/lag/applied, read from
  the replicas directly -> ok ``{"relay_backlog", "pending", "lag", "applied"}`` (sums).
- ``read-orders``, ``read-effects``, ``read-stream``: the final reads, straight from the order
  service, the consumer's schema and the broker (direct endpoints: after healing nothing should
  be in the way, and no fault may cut them) -> ok with the body (shapes in
  ``checkers/outbox_history.py``); anything but a 200 -> ``fail`` (a read has no effect).
"""

from __future__ import annotations

from typing import Any

from workbench import Cluster, Completion, HttpClient, MaybeApplied, NotApplied, Op, fail, info, ok

API = "orders-api"
RELAY = "relay"
CONSUMER = "consumer"
#: Below the harness's per-operation timeout so the client reports its own timeouts.
HTTP_TIMEOUT = 4.5
READ_TIMEOUT = 20.0
_READS = {"read-orders": (API, "/_orders"), "read-effects": (CONSUMER, "/_effects")}
_READS["read-stream"] = (CONSUMER, "/_stream")


class OutboxClient(HttpClient):
    service = API
    timeout = HTTP_TIMEOUT

    def __init__(self) -> None:
        super().__init__()
        self.direct: dict[str, list[str]] = {}

    async def open(self, cluster: Cluster, worker: int) -> None:
        await super().open(cluster, worker)
        for name in (API, RELAY, CONSUMER):
            try:
                self.direct[name] = cluster.direct_endpoints(name)
            except KeyError:
                self.direct[name] = []  # a variant without a relay

    async def invoke(self, op: Op) -> Completion:
        v = op.value
        if op.f in ("place", "set-status"):
            if op.f == "place":
                path, body = "/orders", {"order": v["order"], "command": v["command"]}
            else:
                path = f"/orders/{v['order']}/status"
                body = {"status": v["status"], "command": v["command"]}
            try:
                resp = await self.post(path, json=body, replica=int(v.get("replica", 0)))
            except NotApplied as e:
                return fail("refused", {"detail": str(e)})
            # MaybeApplied (sent, no answer) propagates: the harness records info.
            if 200 <= resp.status < 300:
                return ok(resp.body)
            error = resp.body.get("error") if isinstance(resp.body, dict) else None
            if 400 <= resp.status < 500:
                return fail(str(error or f"http {resp.status}"), {"status": resp.status})
            return info(str(error or f"http {resp.status}"), {"status": resp.status})
        try:
            if op.f == "progress":
                return await self._progress()
            if op.f in _READS:
                service, path = _READS[op.f]
                resp = await self.get(f"{self.direct[service][0]}{path}", timeout=READ_TIMEOUT)
                if resp.status != 200:
                    return fail(f"http {resp.status}", {"status": resp.status})
                return ok(resp.body)
        except (NotApplied, MaybeApplied) as e:
            # A read has no effect: whatever went wrong, it certainly did not happen.
            return fail(f"{type(e).__name__}: {e}")
        return fail(f"unknown operation {op.f!r}")

    async def _progress(self) -> Completion:
        total: dict[str, int] = {"relay_backlog": 0, "pending": 0, "lag": 0, "applied": 0}
        for base in self.direct[RELAY]:
            resp = await self.get(f"{base}/progress", timeout=10.0)
            if resp.status != 200:
                return fail(f"relay http {resp.status}")
            total["relay_backlog"] += int(resp.body["backlog"])
        for base in self.direct[CONSUMER]:
            resp = await self.get(f"{base}/progress", timeout=10.0)
            if resp.status != 200:
                return fail(f"consumer http {resp.status}")
            body: dict[str, Any] = resp.body
            for k in ("pending", "lag", "applied"):
                total[k] += int(body[k])
        return ok(total)
