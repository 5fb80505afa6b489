"""Failpoints: make a service replica crash, pause, stall or fail at a named point in its code.

The service must serve the control protocol of ``docs/failpoints.md`` at ``/_failpoints`` (a
Python ASGI service wraps its app in ``workbench.FailpointMiddleware``). Options (fault spec
``failpoint:point=after-provider-charge:action=crash``):

- ``point`` (required): the failpoint's name in the service code;
- ``action``: ``crash`` (``os._exit``), ``pause`` (the process SIGSTOPs itself), ``sleep``
  (``ms`` milliseconds, default 500) or ``raise`` (the request fails with an error);
- ``replicas``: ``one`` (default, drawn with the campaign's rng) or ``all``;
- ``probability``: chance that a request passing the point triggers it (default 1);
- ``service``: the service whose replicas to arm (default: every service whose replicas
  declare ``point`` in ``GET /_failpoints``).

Control requests go to each replica's direct endpoint, never through a proxy another fault may
be cutting, carrying the campaign's token (``cluster.failpoint_token``) that the harness gave
every replica it started. ``stop`` disarms the point on the running replicas it armed, then
resumes the ones it paused (and disarms them) and restarts the ones it crashed (a new process
starts unarmed); ``heal`` does the same for every point of every replica; ``verify_healed``
checks that every replica runs, is not stopped, and has nothing armed.
"""

from __future__ import annotations

import random
from typing import Any

import httpx

from workbench.failpoints import TOKEN_HEADER
from workbench.fault import FaultError, FaultNotHealed
from workbench.runtime.cluster import Cluster

ACTIONS = ("crash", "pause", "sleep", "raise")
CONTROL_TIMEOUT = 2.0


def _service_of(node: str) -> str:
    return node.rsplit("-", 1)[0]


class Failpoint:
    name = "failpoint"
    description = "arm a named failpoint in service code: crash, pause, sleep or raise there"

    def __init__(
        self,
        *,
        point: str | None = None,
        action: str = "crash",
        replicas: str = "one",
        probability: float = 1.0,
        ms: int = 500,
        service: str | None = None,
    ) -> None:
        if not point:
            raise ValueError("failpoint needs point=NAME (a failpoint in the service code)")
        if action not in ACTIONS:
            raise ValueError(f"action={action!r} is not one of {', '.join(ACTIONS)}")
        if replicas not in ("one", "all"):
            raise ValueError(f"replicas={replicas!r} is not one or all")
        if not 0.0 < float(probability) <= 1.0:
            raise ValueError(f"probability={probability} is not in (0, 1]")
        self.point = str(point)
        self.action = action
        self.replicas = replicas
        self.probability = float(probability)
        self.ms = int(ms)
        self.service = service
        self._armed: list[str] = []
        self._headers: dict[str, str] = {}

    # -- helpers --

    def _endpoints(self, cluster: Cluster) -> dict[str, str]:
        """``{node name: direct base URL}`` of the replicas that serve failpoints (and the token
        that their control endpoint requires, for the requests that follow)."""
        self._headers = {TOKEN_HEADER: getattr(cluster, "failpoint_token", "")}
        services = (
            [self.service]
            if self.service
            else sorted(
                {_service_of(n) for n, node in cluster.nodes.items() if node.kind == "service"}
            )
        )
        out: dict[str, str] = {}
        for svc in services:
            try:
                names = cluster.replicas(svc)
                urls = cluster.direct_endpoints(svc)
            except KeyError as e:
                if self.service:
                    raise FaultError(f"failpoint: no service {svc!r}: {e}") from e
                continue
            out.update(zip(names, urls, strict=True))
        return out

    def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = httpx.post(
            f"{url}/_failpoints",
            json=body,
            headers=self._headers,
            timeout=CONTROL_TIMEOUT,
            trust_env=False,
        )
        if resp.status_code != 200:
            raise FaultError(f"failpoint control at {url} answered {resp.status_code}: {resp.text}")
        out = resp.json()
        assert isinstance(out, dict)
        return out

    def _points(self, url: str) -> list[str] | None:
        """The points a replica declares (None: it serves no failpoints or is unreachable)."""
        try:
            resp = httpx.get(
                f"{url}/_failpoints",
                headers=self._headers,
                timeout=CONTROL_TIMEOUT,
                trust_env=False,
            )
        except httpx.HTTPError:
            return None
        if resp.status_code != 200:
            return None
        points = resp.json().get("points")
        return [str(p) for p in points] if isinstance(points, list) else None

    def _restore(self, cluster: Cluster, names: list[str]) -> dict[str, list[str]]:
        """Resumes stopped and restarts dead replicas among ``names``."""
        resumed: list[str] = []
        restarted: list[str] = []
        for name in names:
            node = cluster.nodes.get(name)
            if node is None:
                continue
            if node.is_running() and node.is_paused():
                node.resume()
                resumed.append(name)
            if not node.is_running():
                node.start()
                restarted.append(name)
        return {"resumed": resumed, "restarted": restarted}

    def _disarm(self, urls: dict[str, str], names: list[str], point: str | None) -> list[str]:
        done: list[str] = []
        for name in names:
            body = {"disarm": "all"} if point is None else {"point": point, "action": "off"}
            try:
                self._post(urls[name], body)
                done.append(name)
            except (httpx.HTTPError, FaultError):
                # A replica that died with the point armed comes back unarmed.
                continue
        return done

    # -- Fault --

    def start(self, cluster: Cluster, rng: random.Random) -> dict[str, Any]:
        """Returns ``{"point", "action", "probability", "ms", "replicas": [armed node names]}``
        (no replicas when none that has the point is up)."""
        urls = self._endpoints(cluster)
        if not urls:
            raise FaultError("failpoint: the cluster has no service replicas")
        # Only live, running replicas that serve failpoints can be armed; one that another
        # fault left down is skipped (recorded), not an error that would end the campaign.
        live = {
            n: u
            for n, u in urls.items()
            if (node := cluster.nodes.get(n)) is None
            or (node.is_running() and not node.is_paused())
        }
        declared = {n: self._points(u) for n, u in live.items()}
        pool = sorted(n for n, pts in declared.items() if pts is not None and self.point in pts)
        known = sorted({p for pts in declared.values() for p in (pts or [])})
        if not pool and known and len(live) == len(urls):
            # Every replica is up and none has this point: a typo, not a transient state.
            raise FaultError(
                f"failpoint: no replica declares point {self.point!r}; declared: {', '.join(known)}"
            )
        chosen = [rng.choice(pool)] if self.replicas == "one" and pool else pool
        armed: list[str] = []
        for name in chosen:
            try:
                self._post(
                    urls[name],
                    {
                        "point": self.point,
                        "action": self.action,
                        "probability": self.probability,
                        "ms": self.ms,
                        "seed": rng.randrange(2**32),
                    },
                )
            except httpx.HTTPError:
                continue
            armed.append(name)
        chosen = armed
        self._armed = chosen
        return {
            "point": self.point,
            "action": self.action,
            "probability": self.probability,
            "ms": self.ms,
            "replicas": chosen,
        }

    def _live(self, cluster: Cluster, names: list[str]) -> list[str]:
        out = []
        for name in names:
            node = cluster.nodes.get(name)
            if node is None or (node.is_running() and not node.is_paused()):
                out.append(name)
        return out

    def _clear(self, cluster: Cluster, names: list[str], point: str | None) -> dict[str, Any]:
        # Disarm the running replicas first, so none can crash or stop between being restored
        # and being disarmed; then resume / restart the others (a restarted replica comes back
        # unarmed) and disarm the resumed ones.
        urls = self._endpoints(cluster)
        names = [n for n in names if n in urls]
        disarmed = self._disarm(urls, self._live(cluster, names), point)
        restored = self._restore(cluster, names)
        disarmed += self._disarm(urls, restored["resumed"], point)
        return {"disarmed": sorted(set(disarmed)), **restored}

    def stop(self, cluster: Cluster) -> dict[str, Any]:
        """Returns ``{"point", "disarmed": [...], "resumed": [...], "restarted": [...]}``."""
        names, self._armed = self._armed, []
        return {"point": self.point, **self._clear(cluster, names, self.point)}

    def heal(self, cluster: Cluster) -> None:
        self._clear(cluster, sorted(self._endpoints(cluster)), None)
        self._armed = []

    def verify_healed(self, cluster: Cluster) -> None:
        problems: list[str] = []
        for name, url in sorted(self._endpoints(cluster).items()):
            node = cluster.nodes.get(name)
            if node is not None and not node.is_running():
                problems.append(f"{name} is not running")
                continue
            if node is not None and node.is_paused():
                problems.append(f"{name} is stopped (SIGSTOP)")
                continue
            try:
                resp = httpx.get(
                    f"{url}/_failpoints",
                    headers=self._headers,
                    timeout=CONTROL_TIMEOUT,
                    trust_env=False,
                )
            except httpx.HTTPError as e:
                problems.append(f"{name}: failpoint control unreachable ({type(e).__name__})")
                continue
            if resp.status_code == 404 and not self.service:
                continue  # a service without failpoints
            if resp.status_code != 200:
                # Not "nothing armed": an erroring control cannot vouch for its state.
                problems.append(f"{name}: failpoint control answered {resp.status_code}")
                continue
            armed = resp.json().get("armed")
            if armed:
                problems.append(f"{name} still has failpoints armed: {', '.join(sorted(armed))}")
        if problems:
            raise FaultNotHealed("; ".join(problems))
