"""Toxiproxy 2.12.0: the server process and a small typed HTTP client.

Quirks handled here (see /work/shared/references.md):

- a ``Mozilla/`` User-Agent gets 403, so the client sends its own;
- every server handler gives up with 503 after 25 s and deleting a toxic under heavy traffic can
  hang until then (Shopify/toxiproxy#558): every call has a client timeout, and
  :meth:`ToxiproxyClient.remove_toxic` falls back to ``POST /reset`` when the delete times out;
- adding a toxic answers 200 (not 201), ``/populate`` 201, deletes and ``/reset`` 204: any 2xx is
  success, anything else raises :class:`ToxiproxyError` with the status and the server's
  ``error`` text;
- a proxy created with listen port 0 gets a free port, reported in the answer and kept when the
  proxy is disabled and enabled again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from workbench.runtime.binaries import toxiproxy_server
from workbench.runtime.errors import RuntimeStartError
from workbench.runtime.ports import HOST, ensure_free, free_port
from workbench.runtime.process import ManagedProcess, PidRegistry

EXPECTED_VERSION = "2.12.0"
USER_AGENT = "fault-workbench-toxiproxy-client/0.1"
Stream = Literal["upstream", "downstream"]


class ToxiproxyError(RuntimeError):
    """Toxiproxy answered something other than 2xx, or could not be reached in time."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ToxiproxyTimeout(ToxiproxyError):
    """The server did not answer within the client's timeout."""


@dataclass(frozen=True)
class Toxic:
    """A toxic on one stream of a proxy. ``attributes`` as Toxiproxy reports them (ms, KB/s)."""

    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Toxic:
        return cls(
            name=str(data["name"]),
            type=str(data["type"]),
            stream=str(data.get("stream", "downstream")),
            toxicity=float(data.get("toxicity", 1.0)),
            attributes=dict(data.get("attributes") or {}),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": dict(self.attributes),
        }


@dataclass(frozen=True)
class Proxy:
    """A proxy: traffic to ``listen`` goes to ``upstream`` (both ``"HOST:PORT"``)."""

    name: str
    listen: str
    upstream: str
    enabled: bool = True
    toxics: tuple[Toxic, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Proxy:
        return cls(
            name=str(data["name"]),
            listen=str(data["listen"]),
            upstream=str(data["upstream"]),
            enabled=bool(data.get("enabled", True)),
            toxics=tuple(Toxic.from_json(t) for t in data.get("toxics") or ()),
        )

    def to_json(self) -> dict[str, Any]:
        """The create/populate body (toxics are added separately)."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
        }

    @property
    def listen_port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


class ToxiproxyClient:
    """Synchronous client of one Toxiproxy server (``base_url`` like ``http://127.0.0.1:8474``).

    Thread-safe (httpx.Client is). Every call has ``timeout`` seconds; failures raise
    :class:`ToxiproxyError`.
    """

    def __init__(self, base_url: str, *, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": USER_AGENT},
            trust_env=False,  # never route loopback calls through an HTTP proxy from the env
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ToxiproxyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(
        self, method: str, path: str, *, json: Any = None, timeout: float | None = None
    ) -> Any:
        """Returns the decoded JSON body (None for an empty one); raises ToxiproxyError."""
        what = f"{method} {path}"
        try:
            resp = self._http.request(
                method,
                path,
                json=json,
                timeout=httpx.Timeout(timeout) if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException as e:
            raise ToxiproxyTimeout(
                f"toxiproxy {what} at {self.base_url}: no answer within "
                f"{timeout or self.timeout:.1f} s"
            ) from e
        except httpx.HTTPError as e:
            raise ToxiproxyError(f"toxiproxy {what} at {self.base_url} failed: {e}") from e
        if not resp.is_success:
            try:
                detail = resp.json().get("error") or resp.text
            except (ValueError, AttributeError):
                detail = resp.text.strip() or resp.reason_phrase
            raise ToxiproxyError(
                f"toxiproxy {what} answered {resp.status_code}: {detail}", resp.status_code
            )
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError as e:
            raise ToxiproxyError(f"toxiproxy {what}: answer is not JSON: {resp.text!r}") from e

    # -- server --

    def version(self) -> str:
        """The server's version string (``"2.12.0"``)."""
        data = self._request("GET", "/version")
        # 2.12.0 answers {"version": "2.12.0"}; older servers answered plain text.
        return str(data["version"]) if isinstance(data, dict) else str(data)

    def check_version(self, expected: str = EXPECTED_VERSION) -> str:
        """Raises :class:`ToxiproxyError` unless the server is ``expected``; returns it."""
        got = self.version()
        if got != expected:
            raise ToxiproxyError(
                f"toxiproxy at {self.base_url} is version {got!r}, the workbench needs "
                f"{expected}: run `bash scripts/bootstrap.sh` or set WORKBENCH_TOXIPROXY"
            )
        return got

    def reset(self) -> None:
        """Enables every proxy and removes every toxic (``POST /reset``)."""
        self._request("POST", "/reset")

    # -- proxies --

    def populate(self, proxies: Iterable[Proxy]) -> list[Proxy]:
        """Creates or replaces the given proxies at once; returns them as the server has them
        (with real listen ports when 0 was asked)."""
        data = self._request("POST", "/populate", json=[p.to_json() for p in proxies])
        return [Proxy.from_json(p) for p in data["proxies"]]

    def create_proxy(self, proxy: Proxy) -> Proxy:
        return Proxy.from_json(self._request("POST", "/proxies", json=proxy.to_json()))

    def list_proxies(self) -> dict[str, Proxy]:
        """``{name: Proxy}`` of every proxy, with its toxics."""
        data = self._request("GET", "/proxies")
        return {name: Proxy.from_json(p) for name, p in data.items()}

    def get_proxy(self, name: str) -> Proxy:
        return Proxy.from_json(self._request("GET", f"/proxies/{name}"))

    def delete_proxy(self, name: str) -> None:
        self._request("DELETE", f"/proxies/{name}")

    def set_enabled(self, name: str, enabled: bool) -> Proxy:
        """Disabling closes the listener (new connections refused) and every open connection."""
        return Proxy.from_json(
            self._request("PATCH", f"/proxies/{name}", json={"enabled": enabled})
        )

    def enable(self, name: str) -> Proxy:
        return self.set_enabled(name, True)

    def disable(self, name: str) -> Proxy:
        return self.set_enabled(name, False)

    # -- toxics --

    def list_toxics(self, proxy: str) -> list[Toxic]:
        return [Toxic.from_json(t) for t in self._request("GET", f"/proxies/{proxy}/toxics")]

    def add_toxic(
        self,
        proxy: str,
        type: str,
        *,
        name: str | None = None,
        stream: Stream | str = "downstream",
        toxicity: float = 1.0,
        attributes: Mapping[str, Any] | None = None,
    ) -> Toxic:
        """Adds a toxic; ``name`` defaults to Toxiproxy's ``{type}_{stream}``."""
        body: dict[str, Any] = {
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes or {}),
        }
        if name is not None:
            body["name"] = name
        return Toxic.from_json(self._request("POST", f"/proxies/{proxy}/toxics", json=body))

    def remove_toxic(self, proxy: str, toxic: str) -> bool:
        """Removes one toxic. Returns False normally, True when the delete timed out (#558) and
        the client fell back to ``/reset``, which also removed every other toxic and re-enabled
        every proxy."""
        try:
            self._request("DELETE", f"/proxies/{proxy}/toxics/{toxic}")
            return False
        except ToxiproxyTimeout:
            self.reset()
            return True


class ToxiproxyServer:
    """The ``toxiproxy-server`` process, bound to 127.0.0.1 on a free port."""

    kind = "toxiproxy"

    def __init__(
        self,
        run_dir: Path,
        *,
        seed: int = 0,
        port: int | None = None,
        registry: PidRegistry | None = None,
        name: str = "toxiproxy",
        ready_timeout: float = 15.0,
    ) -> None:
        self.name = name
        self.port = port if port is not None else free_port()
        self.ready_timeout = ready_timeout
        self.process = ManagedProcess(
            name,
            [
                str(toxiproxy_server()),
                "-host",
                HOST,
                "-port",
                str(self.port),
                # Toxicity and jitter draws are seeded so a campaign's seed reproduces them.
                "-seed",
                str(seed),
            ],
            log_path=run_dir / "logs" / f"{name}.log",
            cwd=run_dir,
            registry=registry,
        )
        self.client = ToxiproxyClient(self.url)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        """Starts the server, waits for ``/version`` and checks it is 2.12.0."""
        ensure_free(self.port, "toxiproxy-server")
        self.process.start()

        def answers() -> bool:
            try:
                self.client.version()
                return True
            except ToxiproxyError:
                return False

        self.process.wait_ready(answers, self.ready_timeout, "answering GET /version")
        try:
            self.client.check_version()
        except ToxiproxyError as e:
            self.process.kill()
            raise RuntimeStartError(str(e)) from e

    def version(self) -> str:
        return self.client.version()

    def stop(self, timeout: float = 5.0) -> None:
        self.process.stop(timeout)
        self.client.close()

    def kill(self) -> None:
        self.process.kill()
