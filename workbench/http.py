"""HTTP for clients: :class:`HttpClient` owns the connection pool, replica choice, JSON bodies
and the one default mapping from an HTTP answer to a Jepsen completion.

A target's client names the service it talks to and writes ``invoke``::

    class KvClient(HttpClient):
        service = "kv"

        async def invoke(self, op: Op) -> Completion:
            resp = await self.put(f"/kv/{op.value['key']}", json={"value": op.value["value"]})
            return self.complete(resp)

How an operation ends (:meth:`HttpClient.complete`, from :meth:`HttpClient.status_type`):

- 2xx -> ``ok`` (value: the one given, else the parsed body);
- 4xx -> ``fail``: the server refused the request without acting on it;
- 5xx (and any other status) -> ``info``: the server may have acted before it failed;
- connection refused or connect timeout (nothing was sent) -> raises :class:`NotApplied`, which
  the harness records as ``fail``;
- reset, timeout or broken answer after the request was sent -> raises :class:`MaybeApplied`,
  recorded as ``info``.

Overriding: per operation, ``self.complete(resp, statuses={503: "fail"})``; for every operation
of a client, override :meth:`HttpClient.status_type`.

Built on aiohttp, chosen by measurement (``bench/runner_throughput.py``: 32 workers, no-op
service, history recorded, 2-core machine): aiohttp ~4,000 ops/s at ~250 us runner CPU per
operation, httpcore ~850 ops/s (~1,100 us), httpx ~700 ops/s (~1,400 us). httpcore (under
httpx too) takes anyio locks and cancel scopes on every request; aiohttp is plain asyncio with a
C HTTP parser.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp
from yarl import URL

from workbench.client import (
    Client,
    Completion,
    CompletionType,
    MaybeApplied,
    NotApplied,
    fail,
    info,
    ok,
)
from workbench.runtime.cluster import Cluster

#: Errors raised before a request left this process: the server cannot have seen it.
#: ``ClientConnectorError`` covers refused, unreachable and name errors while connecting.
_NOT_SENT: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
    aiohttp.InvalidURL,
)

#: How many parsed URLs a client keeps (paths with ids in them are many, and each is new).
_URL_CACHE = 4096

#: How much of a body an error message quotes.
_EXCERPT = 200

_dumps = jsonlib.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
#: Headers of a JSON body; aiohttp copies them, so one shared mapping serves every request.
_JSON: Mapping[str, str] = {"Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP answer: ``status`` code; ``body`` parsed as JSON when the response says it is
    JSON and parses, else the text (``""`` when empty); ``headers`` as received
    (case-insensitive lookup)."""

    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def ok(self) -> bool:
        """True for a 2xx status."""
        return 200 <= self.status < 300


class HttpClient(Client):
    """A :class:`workbench.Client` speaking HTTP to the replicas of ``service``.

    Subclasses set ``service`` and write ``async def invoke(self, op)``. Each worker's client
    has its own connection pool, opened by :meth:`open` and closed by :meth:`close` (the harness
    makes a fresh client after an ``info``, so a broken connection is never reused). A worker
    sticks to one replica, ``worker % replicas``; ``replica=i`` on a call picks another
    (mod the replica count). ``direct=True`` goes to the replica itself, bypassing its proxy
    (for final reads and control endpoints that must not be faulted). A ``path`` that is a
    full ``http://`` URL is used as it is.

    ``timeout`` (seconds, whole request) should stay below the plan's ``op_timeout`` so the
    client, not the harness, reports its own timeouts; ``connect_timeout`` bounds connecting.
    """

    service: ClassVar[str] = ""
    timeout: ClassVar[float] = 10.0
    connect_timeout: ClassVar[float] = 5.0

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._endpoints: list[str] = []
        self._direct: list[str] = []
        self.cluster: Cluster | None = None
        #: This worker's replica: an index into the service's replicas.
        self.replica = 0
        # Parsed URLs by string: parsing one costs about as much as recording an event.
        self._urls: dict[str, URL] = {}

    async def open(self, cluster: Cluster, worker: int) -> None:
        """Finds the service's replicas and opens this worker's connection pool."""
        if not self.service:
            raise TypeError(f"{type(self).__qualname__} must set service = 'name'")
        self.cluster = cluster
        self._endpoints = cluster.endpoints(self.service)
        self._direct = cluster.direct_endpoints(self.service)
        if not self._endpoints:
            raise ValueError(f"service {self.service!r} has no replicas")
        self.replica = worker % len(self._endpoints)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=None),
            timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=self.connect_timeout),
            trust_env=False,
            # Services under test set no cookies the harness should send back; the jar's
            # per-request filtering is measurable on the hot path.
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        # aiohttp sends an idempotent-method request (GET, PUT, DELETE) a second time when its
        # pooled connection turns out closed; then one invocation may act twice and the answer
        # (a 409 to a PUT that was applied) reports the second attempt. A history needs one
        # request per operation: a dead connection must surface as MaybeApplied instead.
        if hasattr(self._session, "_retry_connection"):
            self._session._retry_connection = False

    async def close(self) -> None:
        """Closes the pool and every connection in it; safe to call twice."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def url(self, path: str, *, replica: int | None = None, direct: bool = False) -> str:
        """The full URL of ``path`` on a replica (this worker's unless ``replica`` is given)."""
        if path.startswith(("http://", "https://")):
            return path
        bases = self._direct if direct else self._endpoints
        if not bases:
            raise RuntimeError(f"{type(self).__qualname__}: request before open()")
        i = self.replica if replica is None else replica
        return bases[i % len(bases)] + path

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        replica: int | None = None,
        direct: bool = False,
        timeout: float | None = None,
    ) -> Response:
        """Sends one request (``json`` as its body when given) and reads the whole answer.

        Raises :class:`NotApplied` when nothing was sent, :class:`MaybeApplied` when the request
        was sent (or may have been) and no complete answer came back."""
        # The workers' hot path: every line here is paid per operation (bench/runner_throughput).
        session = self._session
        if session is None:
            raise RuntimeError(f"{type(self).__qualname__}: request before open()")
        url = self.url(path, replica=replica, direct=direct)
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= _URL_CACHE:
                self._urls.clear()
            parsed = self._urls[url] = URL(url)
        data: bytes | None = None
        hdrs: Mapping[str, str] | None = headers
        if json is not None:
            data = _dumps(json).encode()
            hdrs = _JSON if headers is None else _with_json_type(headers)
        try:
            if timeout is None:
                ctx = session.request(method, parsed, data=data, headers=hdrs)
            else:
                per_call = aiohttp.ClientTimeout(total=timeout, sock_connect=self.connect_timeout)
                ctx = session.request(method, parsed, data=data, headers=hdrs, timeout=per_call)
            async with ctx as resp:
                raw = await resp.read()
                ctype = resp.headers.get("Content-Type", "")
                return Response(resp.status, _parse(raw, ctype), resp.headers)
        except _NOT_SENT as e:
            raise NotApplied(f"{method} {url}: {_describe(e)}") from e
        except (aiohttp.ClientError, TimeoutError) as e:
            raise MaybeApplied(f"{method} {url}: {_describe(e)}") from e

    async def get(self, path: str, **kw: Any) -> Response:
        """``GET path``; keywords as :meth:`request`."""
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> Response:
        """``POST path``; keywords as :meth:`request`."""
        return await self.request("POST", path, **kw)

    async def put(self, path: str, **kw: Any) -> Response:
        """``PUT path``; keywords as :meth:`request`."""
        return await self.request("PUT", path, **kw)

    async def delete(self, path: str, **kw: Any) -> Response:
        """``DELETE path``; keywords as :meth:`request`."""
        return await self.request("DELETE", path, **kw)

    def status_type(self, status: int) -> CompletionType:
        """The completion an HTTP status means for this client: 2xx ``ok``, 4xx ``fail``,
        anything else ``info``. Override it to change the mapping for every operation."""
        if 200 <= status < 300:
            return "ok"
        if 400 <= status < 500:
            return "fail"
        return "info"

    def complete(
        self,
        resp: Response,
        value: Any = None,
        *,
        statuses: Mapping[int, CompletionType] | None = None,
    ) -> Completion:
        """The completion for ``resp``: its type from ``statuses`` (a per-operation override,
        e.g. ``{503: "fail"}``) or else :meth:`status_type`.

        ``ok`` carries ``value``, or the body when ``value`` is None. ``fail`` and ``info``
        carry ``value`` (None: the harness records the invocation's value) and the error
        ``"http STATUS: <body excerpt>"``."""
        kind = statuses.get(resp.status) if statuses else None
        if kind is None:
            kind = self.status_type(resp.status)
        if kind == "ok":
            return ok(resp.body if value is None else value)
        error = http_error(resp)
        return fail(error, value) if kind == "fail" else info(error, value)


def http_error(resp: Response) -> str:
    """``"http 503"``, followed by ``": "`` and an excerpt of the body when there is one."""
    body = resp.body
    if body in ("", None):
        return f"http {resp.status}"
    text = body if isinstance(body, str) else jsonlib.dumps(body, separators=(",", ":"))
    return f"http {resp.status}: {text[:_EXCERPT]}"


def _with_json_type(headers: Mapping[str, str]) -> dict[str, str]:
    """The caller's headers, with a JSON content type unless they name one."""
    out = dict(headers)
    if not any(k.lower() == "content-type" for k in out):
        out["Content-Type"] = "application/json"
    return out


def _parse(raw: bytes, content_type: str) -> Any:
    if raw and "json" in content_type:
        try:
            return jsonlib.loads(raw)
        except ValueError:
            pass
    return raw.decode("utf-8", "replace")


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    name = type(error).__name__
    return f"{name}: {text}" if text else name
