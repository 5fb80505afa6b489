"""Named failpoints in service code, armed at run time through ``/_failpoints``.

Service code marks a point with ``await FAILPOINTS.hit("after-provider-charge")``. Unarmed, that
is one dict lookup. Armed, the point does one of:

- ``crash``: ``os._exit(137)`` at once: no cleanup, no response, open transactions roll back;
- ``pause``: SIGSTOP to itself, once (the point disarms itself first); the process stays
  stopped until someone sends SIGCONT (the failpoint fault's stop/heal, or any heal);
- ``sleep``: ``await asyncio.sleep(ms / 1000)`` (the request stalls, the replica keeps serving);
- ``raise``: raises :class:`FailpointError`, which the service answers like any unexpected error.

Control endpoint, served on every replica (reach it on the replica's direct endpoint, never
through a proxy a fault may be cutting):

- ``GET /_failpoints`` -> ``{"points": [declared names], "armed": {point: {"action",
  "probability", "ms"}}, "hits": {point: n}}``
- ``POST /_failpoints`` with ``{"point", "action", "probability"?, "ms"?, "seed"?}`` arms a point;
  ``{"point": P, "action": "off"}`` disarms one; ``{"disarm": "all"}`` disarms every point.
  Answers the new state as GET does (400 on a bad request).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ACTIONS = ("crash", "pause", "sleep", "raise")


class FailpointError(RuntimeError):
    """Raised at a failpoint armed with action ``raise``."""


@dataclass(frozen=True)
class Armed:
    action: str
    probability: float = 1.0
    ms: int = 500


class Failpoints:
    """The failpoints of one process."""

    def __init__(self) -> None:
        self.points: list[str] = []
        self.armed: dict[str, Armed] = {}
        self.hits: dict[str, int] = {}
        self._rng = random.Random()

    async def hit(self, point: str) -> None:
        fp = self.armed.get(point)
        if fp is None:
            return
        if fp.probability < 1.0 and self._rng.random() >= fp.probability:
            return
        self.hits[point] = self.hits.get(point, 0) + 1
        if fp.action == "crash":
            os._exit(137)
        elif fp.action == "pause":
            # One-shot: disarmed before stopping, so that the SIGCONT that ends the pause cannot
            # race with the next request re-stopping the process before anyone could disarm it.
            self.armed.pop(point, None)
            os.kill(os.getpid(), signal.SIGSTOP)
        elif fp.action == "sleep":
            await asyncio.sleep(fp.ms / 1000)
        elif fp.action == "raise":
            raise FailpointError(f"failpoint {point} raised")

    def declare(self, *points: str) -> None:
        """Names the points this process has, so a fault can tell a typo from a point."""
        self.points = sorted(set(self.points) | set(points))

    def arm(self, point: str, action: str, probability: float = 1.0, ms: int = 500) -> None:
        if action not in ACTIONS:
            raise ValueError(f"action {action!r} is not one of {', '.join(ACTIONS)} or off")
        if not 0.0 < probability <= 1.0:
            raise ValueError(f"probability {probability} is not in (0, 1]")
        self.armed[point] = Armed(action, probability, int(ms))

    def state(self) -> dict[str, Any]:
        return {
            "points": list(self.points),
            "armed": {
                p: {"action": a.action, "probability": a.probability, "ms": a.ms}
                for p, a in self.armed.items()
            },
            "hits": dict(self.hits),
        }

    async def endpoint(self, request: Request) -> JSONResponse:
        if request.method == "POST":
            try:
                body = await request.json()
                if not isinstance(body, dict):
                    raise ValueError("body must be a JSON object")
                if body.get("disarm") == "all":
                    self.armed.clear()
                elif body.get("action") == "off":
                    self.armed.pop(str(body["point"]), None)
                else:
                    if "seed" in body:
                        self._rng.seed(int(body["seed"]))
                    self.arm(
                        str(body["point"]),
                        str(body["action"]),
                        float(body.get("probability", 1.0)),
                        int(body.get("ms", 500)),
                    )
            except (ValueError, KeyError, TypeError) as e:
                return JSONResponse({"error": f"bad failpoint request: {e}"}, status_code=400)
        return JSONResponse(self.state())

    def route(self) -> Route:
        return Route("/_failpoints", self.endpoint, methods=["GET", "POST"])


FAILPOINTS = Failpoints()
