"""Failpoints for service authors: named points in service code that a fault arms at run time.

A service marks a point in its code and declares the names it has::

    from workbench import FailpointMiddleware, declare_failpoints, failpoint

    declare_failpoints("after-charge")

    async def pay(request):
        charge = await provider.charge(...)
        await failpoint("after-charge")  # nothing happens unless a fault armed it
        ...

    app = FailpointMiddleware(Starlette(routes=[...]))

Unarmed, a failpoint is two dictionary lookups. Armed (through the control endpoint the
middleware serves, ``/_failpoints``), a request passing the point does one of:

- ``crash``: the process exits at once with status 137: no cleanup, no response;
- ``pause``: the process sends itself SIGSTOP, once (the point disarms itself first); it stays
  stopped until someone sends SIGCONT (the failpoint fault's stop or heal);
- ``sleep``: the request waits ``ms`` milliseconds; the process keeps serving others;
- ``raise``: :class:`FailpointError` is raised, which the service answers like any unexpected
  error.

The failpoints are process-wide (one registry per process, like the process a fault crashes).
The control protocol, precise enough to implement in another language, is ``docs/failpoints.md``.

**The control endpoint is off unless the harness turns it on.** It is a "crash this service"
button, and the middleware ships inside services that also run in production: it answers only
when the process has ``WORKBENCH_FAILPOINT_TOKEN`` in its environment (the harness sets a fresh
one per campaign for every replica it starts), only to requests from loopback, and only to
requests carrying that token in the ``X-Workbench-Failpoint-Token`` header. Without the variable,
``/_failpoints`` is passed to the app like any other path (its 404). The failpoints in the code
stay inert: nothing can arm them.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

ACTIONS = ("crash", "pause", "sleep", "raise")
"""What an armed failpoint does; ``off`` in a control request disarms instead."""

CONTROL_PATH = "/_failpoints"
TOKEN_ENV = "WORKBENCH_FAILPOINT_TOKEN"
"""The environment variable that turns the control endpoint on, holding the token it requires."""
TOKEN_HEADER = "X-Workbench-Failpoint-Token"
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
CRASH_EXIT_STATUS = 137  # what a SIGKILLed process reports, so a crash reads like a kill
DEFAULT_SLEEP_MS = 500

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class FailpointError(RuntimeError):
    """Raised at a failpoint armed with action ``raise``."""


class UndeclaredFailpoint(LookupError):
    """A failpoint name the process never declared: a typo in the code or a missing
    :func:`declare_failpoints`, which would otherwise make the point silently unarmable."""


@dataclass(frozen=True)
class Armed:
    """How one point is armed: ``action`` on a fraction ``probability`` of the passes; ``ms`` is
    the length of a ``sleep``."""

    action: str
    probability: float = 1.0
    ms: int = DEFAULT_SLEEP_MS


class BadControlRequest(ValueError):
    """A control request the protocol does not allow; ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


_ARM_KEYS = frozenset({"point", "action", "probability", "ms", "seed"})


class Registry:
    """The failpoints of one process: declared names, armed points, hit counts."""

    def __init__(self) -> None:
        self.declared: set[str] = set()
        self.armed: dict[str, Armed] = {}
        self.hits: dict[str, int] = {}
        self.rng = random.Random()

    def declare(self, *names: str) -> None:
        for name in names:
            if not isinstance(name, str) or not name:
                raise ValueError(f"a failpoint name is a non-empty string, not {name!r}")
        self.declared.update(names)

    def trigger(self, name: str) -> Armed | None:
        """Runs the process-level part of an armed point (crash, pause, raise) and returns the
        armed state when the caller still has to sleep; None when the point does nothing."""
        armed = self.armed.get(name)
        if armed is None:
            if name not in self.declared:
                known = ", ".join(sorted(self.declared)) or "none"
                raise UndeclaredFailpoint(
                    f"failpoint {name!r} is not declared (declared: {known}); "
                    f"call declare_failpoints({name!r}) where the service starts"
                )
            return None
        if armed.probability < 1.0 and self.rng.random() >= armed.probability:
            return None
        self.hits[name] = self.hits.get(name, 0) + 1
        if armed.action == "crash":
            os._exit(CRASH_EXIT_STATUS)
        if armed.action == "pause":
            # One-shot: disarmed before stopping, so that the SIGCONT that ends the pause cannot
            # race with the next request re-stopping the process before anyone could disarm it.
            self.armed.pop(name, None)
            os.kill(os.getpid(), signal.SIGSTOP)
            return None
        if armed.action == "raise":
            raise FailpointError(f"failpoint {name} raised")
        return armed

    def state(self) -> dict[str, Any]:
        """``{"points": [declared names, sorted], "armed": {name: {"action", "probability",
        "ms"}}, "hits": {name: passes that triggered, since the process started}}``."""
        return {
            "points": sorted(self.declared),
            "armed": {
                name: {"action": a.action, "probability": a.probability, "ms": a.ms}
                for name, a in sorted(self.armed.items())
            },
            "hits": dict(sorted(self.hits.items())),
        }

    def control(self, body: Any) -> None:
        """Applies one POST body of the control protocol; raises :class:`BadControlRequest`."""
        if not isinstance(body, dict):
            raise BadControlRequest("the body must be a JSON object")
        if "disarm" in body:
            if body != {"disarm": "all"}:
                raise BadControlRequest('disarming every point is exactly {"disarm": "all"}')
            self.armed.clear()
            return
        unknown = sorted(set(body) - _ARM_KEYS)
        if unknown:
            raise BadControlRequest(
                f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(_ARM_KEYS))}"
            )
        point, action = body.get("point"), body.get("action")
        if not isinstance(point, str) or not isinstance(action, str):
            raise BadControlRequest('"point" and "action" are required strings')
        if point not in self.declared:
            known = ", ".join(sorted(self.declared)) or "none"
            raise BadControlRequest(f"no failpoint {point!r}; declared: {known}", status=404)
        if action == "off":
            self.armed.pop(point, None)
            return
        if action not in ACTIONS:
            raise BadControlRequest(f"action {action!r} is not one of {', '.join(ACTIONS)} or off")
        probability = body.get("probability", 1.0)
        if (
            isinstance(probability, bool)
            or not isinstance(probability, int | float)
            or not 0.0 < probability <= 1.0
        ):
            raise BadControlRequest(f"probability {probability!r} is not a number in (0, 1]")
        ms = body.get("ms", DEFAULT_SLEEP_MS)
        if isinstance(ms, bool) or not isinstance(ms, int) or ms < 0:
            raise BadControlRequest(f"ms {ms!r} is not a whole number >= 0")
        if "seed" in body:
            seed = body["seed"]
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise BadControlRequest(f"seed {seed!r} is not an integer")
            self.rng.seed(seed)
        self.armed[point] = Armed(action, float(probability), ms)


REGISTRY = Registry()
"""This process's failpoints (what :func:`failpoint` and :class:`FailpointMiddleware` use)."""


def declare_failpoints(*names: str) -> None:
    """Declares the failpoints this process has, so the control endpoint lists them and a fault
    can tell a typo from a point. Call it at import time of the module that has the points;
    declaring a name twice is harmless."""
    REGISTRY.declare(*names)


async def failpoint(name: str) -> None:
    """A failpoint in async code: returns at once unless ``name`` is armed, then crashes, pauses,
    sleeps (``asyncio.sleep``) or raises :class:`FailpointError` as armed.

    Raises :class:`UndeclaredFailpoint` when ``name`` was never declared."""
    armed = REGISTRY.trigger(name)
    if armed is not None:
        await asyncio.sleep(armed.ms / 1000)


def failpoint_sync(name: str) -> None:
    """:func:`failpoint` for synchronous code (a worker thread): a ``sleep`` blocks the thread."""
    armed = REGISTRY.trigger(name)
    if armed is not None:
        time.sleep(armed.ms / 1000)


class FailpointMiddleware:
    """Pure ASGI middleware: serves the control protocol at ``/_failpoints`` and passes every
    other request (and the lifespan) to ``app`` untouched.

    ``GET`` answers the state (:meth:`Registry.state`); ``POST`` applies one control request and
    answers the new state; errors answer ``{"error": message}`` (plus ``"points"`` on 404).

    The endpoint is served only with a ``token`` (default: ``$WORKBENCH_FAILPOINT_TOKEN``, read
    when the middleware is made); a request from anywhere but loopback, or without the token in
    ``X-Workbench-Failpoint-Token``, is answered 403 and changes nothing.
    """

    def __init__(
        self, app: ASGIApp, registry: Registry | None = None, *, token: str | None = None
    ) -> None:
        self.app = app
        self.registry = REGISTRY if registry is None else registry
        self.token = token if token is not None else os.environ.get(TOKEN_ENV, "")

    def _refusal(self, scope: Scope) -> str | None:
        client = scope.get("client")
        host = client[0] if client else None
        if host not in LOOPBACK:
            return f"failpoint control is served to loopback only, not to {host}"
        sent = b""
        for key, value in scope.get("headers", ()):
            if key.lower() == TOKEN_HEADER.lower().encode():
                sent = value
        if not hmac.compare_digest(sent, self.token.encode()):
            return f"failpoint control needs this campaign's token in {TOKEN_HEADER}"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != CONTROL_PATH or not self.token:
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await _send_json(send, 403, {"error": refusal}, [])
            return
        method = scope["method"]
        headers: list[tuple[bytes, bytes]] = []
        if method == "GET":
            status, body = 200, self.registry.state()
        elif method == "POST":
            status, body = await self._post(receive)
        else:
            status, body = 405, {"error": f"{method} is not allowed; use GET or POST"}
            headers.append((b"allow", b"GET, POST"))
        await _send_json(send, status, body, headers)

    async def _post(self, receive: Receive) -> tuple[int, dict[str, Any]]:
        raw = await _read_body(receive)
        try:
            self.registry.control(json.loads(raw))
        except json.JSONDecodeError as e:
            return 400, {"error": f"bad failpoint request: the body is not JSON: {e}"}
        except BadControlRequest as e:
            out: dict[str, Any] = {"error": f"bad failpoint request: {e}"}
            if e.status == 404:
                out["points"] = sorted(self.registry.declared)
            return e.status, out
        return 200, self.registry.state()


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


__all__ = [
    "ACTIONS",
    "CONTROL_PATH",
    "TOKEN_ENV",
    "TOKEN_HEADER",
    "Armed",
    "FailpointError",
    "FailpointMiddleware",
    "Registry",
    "UndeclaredFailpoint",
    "declare_failpoints",
    "failpoint",
    "failpoint_sync",
]
