"""Network faults through Toxiproxy: each aims at links by name or pattern, or a random subset.

Options shared by every network fault:

- ``links``: exact link names or fnmatch patterns (``"client->*"``, ``"*->pg"``, a list of them);
  default every link;
- ``select``: ``one`` / ``minority`` / ``majority`` / ``all`` of the matched links, drawn with the
  campaign's rng; default ``all`` matched links.

Toxic faults also take ``stream`` (``downstream``: server to client, ``upstream``: client to
server, or ``both``), ``toxicity`` (0..1, share of connections affected) and the toxic's own
attributes (milliseconds and KB/s, as Toxiproxy has them).

``heal`` is ``POST /reset`` (every proxy enabled, every toxic removed): idempotent and correct
whatever a crashed nemesis left behind.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, ClassVar

from faults._select import as_list, check_select, choose_links
from workbench.fault import FaultError, FaultNotHealed
from workbench.runtime.cluster import Cluster
from workbench.runtime.toxiproxy import ToxiproxyError

_STREAMS = ("downstream", "upstream", "both")


def verify_network_healed(cluster: Cluster) -> None:
    """Raises FaultNotHealed naming every disabled proxy and every toxic left."""
    by_proxy = {link.proxy: name for name, link in cluster.links.items()}
    problems: list[str] = []
    for pname, proxy in sorted(cluster.toxiproxy.list_proxies().items()):
        label = by_proxy.get(pname, pname)
        if not proxy.enabled:
            problems.append(f"link {label} is disabled")
        problems.extend(f"link {label} still has toxic {t.name} ({t.type})" for t in proxy.toxics)
    if problems:
        raise FaultNotHealed("; ".join(problems))


class _LinkFault:
    name: ClassVar[str]
    description: ClassVar[str]

    def __init__(self, *, links: str | Sequence[str] | None = None, select: str | None = None):
        check_select(select)
        self.patterns = as_list(links)
        self.select = select
        self._active: list[str] = []  # link names this fault currently affects

    def heal(self, cluster: Cluster) -> None:
        cluster.toxiproxy.reset()
        self._active = []

    def verify_healed(self, cluster: Cluster) -> None:
        verify_network_healed(cluster)


class Partition(_LinkFault):
    """Disables the chosen links' proxies: new connections are refused, open ones closed."""

    name = "partition"
    description = "disable the chosen links' proxies: connections refused and open ones cut"

    def start(self, cluster: Cluster, rng: random.Random) -> dict[str, Any]:
        """Returns ``{"links": [...], "proxies": [...], "enabled": false}``."""
        chosen = choose_links(cluster, self.patterns, self.select, rng)
        self._active = []
        for link in chosen:
            cluster.toxiproxy.disable(cluster.links[link].proxy)
            self._active.append(link)
        return {
            "links": chosen,
            "proxies": [cluster.links[n].proxy for n in chosen],
            "enabled": False,
        }

    def stop(self, cluster: Cluster) -> dict[str, Any]:
        """Returns ``{"links": [...], "enabled": true}``."""
        done = list(self._active)
        for link in done:
            cluster.toxiproxy.enable(cluster.links[link].proxy)
        self._active = []
        return {"links": done, "enabled": True}


class _ToxicFault(_LinkFault):
    """Adds one toxic per chosen link and stream; ``stop`` removes exactly those."""

    toxic_type: ClassVar[str]
    defaults: ClassVar[dict[str, int]]
    default_stream: ClassVar[str] = "downstream"

    def __init__(
        self,
        *,
        links: str | Sequence[str] | None = None,
        select: str | None = None,
        stream: str | None = None,
        toxicity: float = 1.0,
        **attributes: float,
    ) -> None:
        super().__init__(links=links, select=select)
        unknown = sorted(set(attributes) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"fault {self.name!r} has no option {', '.join(unknown)}; its toxic attributes "
                f"are {', '.join(self.defaults)} (plus links, select, stream, toxicity)"
            )
        stream = stream or self.default_stream
        if stream not in _STREAMS:
            raise ValueError(f"stream={stream!r} is not one of {', '.join(_STREAMS)}")
        if not 0.0 <= toxicity <= 1.0:
            raise ValueError(f"toxicity={toxicity} is not between 0 and 1")
        self.stream = stream
        self.toxicity = toxicity
        # Toxiproxy's attributes are all integers (Go int64): 200.0 would be rejected with 400.
        self.attributes: dict[str, int] = {
            k: round(v) for k, v in {**self.defaults, **attributes}.items()
        }
        self._toxics: list[tuple[str, str, str]] = []  # (link, proxy, toxic name)

    def _streams(self) -> list[str]:
        return ["downstream", "upstream"] if self.stream == "both" else [self.stream]

    def start(self, cluster: Cluster, rng: random.Random) -> dict[str, Any]:
        """Returns ``{"links": [...], "toxic": type, "streams": [...], "toxicity": x,
        "attributes": {...}, "toxics": [{"link", "proxy", "name"}...]}``."""
        chosen = choose_links(cluster, self.patterns, self.select, rng)
        self._toxics = []
        for link in chosen:
            proxy = cluster.links[link].proxy
            for stream in self._streams():
                toxic_name = f"wb-{self.name}-{stream}"
                try:
                    cluster.toxiproxy.add_toxic(
                        proxy,
                        self.toxic_type,
                        name=toxic_name,
                        stream=stream,
                        toxicity=self.toxicity,
                        attributes=self.attributes,
                    )
                except ToxiproxyError as e:
                    raise FaultError(f"{self.name} on link {link}: {e}") from e
                self._toxics.append((link, proxy, toxic_name))
        self._active = chosen
        return {
            "links": chosen,
            "toxic": self.toxic_type,
            "streams": self._streams(),
            "toxicity": self.toxicity,
            "attributes": dict(self.attributes),
            "toxics": [{"link": lk, "proxy": p, "name": t} for lk, p, t in self._toxics],
        }

    def stop(self, cluster: Cluster) -> dict[str, Any]:
        """Returns ``{"links": [...], "removed": [toxic names], "reset_fallback": bool}``;
        ``reset_fallback`` means a delete hung (Toxiproxy #558) and ``/reset`` was used."""
        removed: list[str] = []
        fallback = False
        for _link, proxy, toxic in self._toxics:
            if fallback:
                break  # /reset already removed everything
            fallback = cluster.toxiproxy.remove_toxic(proxy, toxic)
            removed.append(f"{proxy}/{toxic}")
        done = list(self._active)
        self._toxics = []
        self._active = []
        return {"links": done, "removed": removed, "reset_fallback": fallback}

    def heal(self, cluster: Cluster) -> None:
        super().heal(cluster)
        self._toxics = []


class PartitionOneway(_ToxicFault):
    name = "partition-oneway"
    description = "blackhole one direction of the chosen links (timeout toxic, timeout 0)"
    toxic_type = "timeout"
    defaults: ClassVar[dict[str, int]] = {"timeout": 0}
    default_stream = "upstream"


class Latency(_ToxicFault):
    name = "latency"
    description = "add latency (ms) with jitter (ms) to the chosen links"
    toxic_type = "latency"
    defaults: ClassVar[dict[str, int]] = {"latency": 200, "jitter": 50}


class Bandwidth(_ToxicFault):
    name = "bandwidth"
    description = "limit the chosen links to a rate in KB/s"
    toxic_type = "bandwidth"
    defaults: ClassVar[dict[str, int]] = {"rate": 16}


class SlowClose(_ToxicFault):
    name = "slow-close"
    description = "delay closing the chosen links' connections by a delay in ms"
    toxic_type = "slow_close"
    defaults: ClassVar[dict[str, int]] = {"delay": 2000}


class ResetPeer(_ToxicFault):
    name = "reset-peer"
    description = "reset (TCP RST) the chosen links' connections after a timeout in ms"
    toxic_type = "reset_peer"
    defaults: ClassVar[dict[str, int]] = {"timeout": 0}


class Timeout(_ToxicFault):
    name = "timeout"
    description = "stop the chosen links' data and close connections after a timeout in ms"
    toxic_type = "timeout"
    defaults: ClassVar[dict[str, int]] = {"timeout": 1000}


class Slicer(_ToxicFault):
    name = "slicer"
    description = "slice the chosen links' data into small packets (bytes) with a delay (us)"
    toxic_type = "slicer"
    defaults: ClassVar[dict[str, int]] = {"average_size": 8, "size_variation": 4, "delay": 100}
