"""A small ASGI service with failpoints, for ``test_failpoints.py``: Starlette behind
:class:`workbench.FailpointMiddleware`, as a service author would write it.

- ``GET /health`` -> ``{"ok": true, "lifespan": bool}`` (the lifespan ran through the middleware);
- ``GET /pass/{name}`` passes ``await failpoint(name)``; ``GET /pass-sync/{name}`` passes
  ``failpoint_sync(name)`` in a worker thread. Both answer ``{"passed": name, "pid": pid}``, or
  500 ``{"error": message}`` when the failpoint raised or was never declared.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from workbench import (
    FailpointError,
    FailpointMiddleware,
    UndeclaredFailpoint,
    declare_failpoints,
    failpoint,
    failpoint_sync,
)

POINTS = ("alpha", "beta")
declare_failpoints(*POINTS)

_started = {"lifespan": False}


def _answer(name: str, error: Exception | None) -> JSONResponse:
    if error is not None:
        return JSONResponse({"error": f"{type(error).__name__}: {error}"}, status_code=500)
    return JSONResponse({"passed": name, "pid": os.getpid()})


async def passing(request: Request) -> JSONResponse:
    name = request.path_params["name"]
    try:
        await failpoint(name)
    except (FailpointError, UndeclaredFailpoint) as e:
        return _answer(name, e)
    return _answer(name, None)


def passing_sync(request: Request) -> JSONResponse:  # Starlette runs it in a worker thread
    name = request.path_params["name"]
    try:
        failpoint_sync(name)
    except (FailpointError, UndeclaredFailpoint) as e:
        return _answer(name, e)
    return _answer(name, None)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "lifespan": _started["lifespan"]})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    _started["lifespan"] = True
    yield


app = FailpointMiddleware(
    Starlette(
        routes=[
            Route("/health", health),
            Route("/pass/{name}", passing),
            Route("/pass-sync/{name}", passing_sync),
        ],
        lifespan=lifespan,
    )
)
