"""The fault catalogue against one real local cluster shared by the module.

Each test applies a fault, observes its effect from outside (a client request, a process's
state, a query), stops it, and checks the cluster verifies as healed.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import redis

from faults import Fault, FaultError, FaultNotHealed, builtin_faults, make_fault
from tests.runtime.support import full_topology, run_dir
from workbench.runtime.local import LocalCluster, start_local_cluster
from workbench.runtime.process import proc_alive

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with run_dir() as rd, start_local_cluster(full_topology(), rd, seed=11) as c:
        yield c


@pytest.fixture(autouse=True)
def healed(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test leaves the cluster healed, so one failure does not cascade."""
    yield
    if "cluster" in request.fixturenames:
        c: LocalCluster = request.getfixturevalue("cluster")
        for name in ("partition", "kill", "pg-crash", "redis-kill", "clock"):
            make_fault(name).heal(c)


def rng() -> random.Random:
    return random.Random(42)


def get(url: str, timeout: float = 3.0) -> httpx.Response:
    return httpx.get(url, timeout=timeout, trust_env=False)


def json_roundtrip(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(value))
    return out


# -- registry ------------------------------------------------------------------------------------


def test_builtin_catalogue() -> None:
    names = set(builtin_faults())
    assert names >= {
        "partition", "partition-oneway", "latency", "bandwidth", "slow-close", "reset-peer",
        "timeout", "slicer", "kill", "pause", "pg-crash", "pg-terminate", "redis-kill", "clock",
    }  # fmt: skip
    required = {"failpoint": {"point": "after-provider-charge"}}  # names a point in the code
    for name, cls in builtin_faults().items():
        assert cls.name == name and cls.description and "\n" not in cls.description
        assert isinstance(make_fault(name, **required.get(name, {})), Fault)
    with pytest.raises(ValueError, match="failpoint needs point=NAME"):
        make_fault("failpoint")


def test_make_fault_rejects_unknown_names_and_options() -> None:
    with pytest.raises(ValueError, match=r"unknown fault 'nope'; valid faults: .*partition"):
        make_fault("nope")
    with pytest.raises(ValueError, match="no option colour"):
        make_fault("latency", colour=3)
    with pytest.raises(
        ValueError, match=r"kill has no option .links.; its options: node, service, select"
    ):
        make_fault("kill", links="x")
    with pytest.raises(ValueError, match="select="):
        make_fault("partition", select="half")


# -- network -------------------------------------------------------------------------------------


def test_partition_refuses_and_heals(cluster: LocalCluster) -> None:
    url = cluster.endpoints("api")[0]
    fault = make_fault("partition", links="client->api-1")
    started = json_roundtrip(fault.start(cluster, rng()))
    assert started == {
        "links": ["client->api-1"],
        "proxies": ["client__to__api-1"],
        "enabled": False,
    }
    with pytest.raises(httpx.ConnectError):
        get(url + "/health", timeout=1.0)
    assert get(cluster.endpoints("api")[1] + "/health").status_code == 200
    with pytest.raises(FaultNotHealed, match="link client->api-1 is disabled"):
        fault.verify_healed(cluster)
    assert fault.stop(cluster) == {"links": ["client->api-1"], "enabled": True}
    assert get(url + "/health").status_code == 200
    fault.verify_healed(cluster)


def test_partition_patterns_and_random_subsets(cluster: LocalCluster) -> None:
    fault = make_fault("partition", links="*->pg", select="one")
    started = fault.start(cluster, rng())
    assert len(started["links"]) == 1 and started["links"][0] in {"api-1->pg", "api-2->pg"}
    fault.heal(cluster)
    fault.verify_healed(cluster)
    everything = make_fault("partition", links=["client->*", "api-1->redis"]).start(cluster, rng())
    assert everything["links"] == ["api-1->redis", "client->api-1", "client->api-2"]
    make_fault("partition").heal(cluster)
    with pytest.raises(FaultError, match="no link matches 'nope->\\*'"):
        make_fault("partition", links="nope->*").start(cluster, rng())


def test_oneway_partition_blackholes_requests(cluster: LocalCluster) -> None:
    url = cluster.endpoints("api")[0]
    fault = make_fault("partition-oneway", links="client->api-1")
    started = fault.start(cluster, rng())
    assert started["toxic"] == "timeout" and started["streams"] == ["upstream"]
    assert started["attributes"] == {"timeout": 0}
    with pytest.raises(httpx.TimeoutException):
        get(url + "/health", timeout=0.7)
    stopped = fault.stop(cluster)
    assert stopped["removed"] == ["client__to__api-1/wb-partition-oneway-upstream"]
    assert get(url + "/health").status_code == 200
    fault.verify_healed(cluster)


def test_latency_shows_in_measured_time(cluster: LocalCluster) -> None:
    url = cluster.endpoints("api")[1]

    def elapsed() -> float:
        began = time.monotonic()
        assert get(url + "/health").status_code == 200
        return time.monotonic() - began

    fault = make_fault("latency", links="client->api-2", latency=300, jitter=0)
    started = fault.start(cluster, rng())
    assert started["attributes"] == {"latency": 300, "jitter": 0}
    assert elapsed() >= 0.3
    fault.stop(cluster)
    assert elapsed() < 0.3
    fault.verify_healed(cluster)


def test_leftover_toxic_is_named_until_healed(cluster: LocalCluster) -> None:
    fault = make_fault("slicer", links="api-2->redis", stream="both")
    started = fault.start(cluster, rng())
    assert started["streams"] == ["downstream", "upstream"] and len(started["toxics"]) == 2
    with pytest.raises(FaultNotHealed, match="link api-2->redis still has toxic wb-slicer"):
        fault.verify_healed(cluster)
    # Data still flows, sliced: the replica's dependencies answer.
    assert get(cluster.endpoints("api")[1] + "/deps").json()["REDIS_URL"] is True
    fault.heal(cluster)
    fault.verify_healed(cluster)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("bandwidth", {"rate": 1}),
        ("slow-close", {"delay": 100}),
        ("timeout", {"timeout": 100}),
        ("reset-peer", {"timeout": 0}),
    ],
)
def test_other_toxics_apply_and_stop(
    cluster: LocalCluster, name: str, options: dict[str, int]
) -> None:
    fault = make_fault(name, links="client->api-1", **options)
    started = json_roundtrip(fault.start(cluster, rng()))
    assert started["links"] == ["client->api-1"] and started["attributes"] == options
    proxy = cluster.toxiproxy.get_proxy("client__to__api-1")
    assert [t.name for t in proxy.toxics] == [f"wb-{name}-downstream"]
    if name in ("timeout", "reset-peer"):
        with pytest.raises(httpx.HTTPError):
            get(cluster.endpoints("api")[0] + "/health", timeout=1.0)
    fault.stop(cluster)
    fault.verify_healed(cluster)
    assert get(cluster.endpoints("api")[0] + "/health").status_code == 200


# -- processes -----------------------------------------------------------------------------------


def test_kill_one_replica_then_restart(cluster: LocalCluster) -> None:
    fault = make_fault("kill", service="api")
    started = fault.start(cluster, rng())
    [victim] = started["nodes"]
    old_pid = started["pids"][victim]
    assert started["signal"] == "SIGKILL" and not proc_alive(old_pid)
    with pytest.raises(FaultNotHealed, match=f"service {victim} is not running"):
        fault.verify_healed(cluster)
    stopped = fault.stop(cluster)
    assert stopped["nodes"] == [victim] and stopped["pids"][victim] != old_pid
    fault.verify_healed(cluster)
    for url in cluster.endpoints("api"):
        assert get(url + "/health").status_code == 200


def test_kill_all_then_heal_restarts(cluster: LocalCluster) -> None:
    fault = make_fault("kill", service="api", select="all")
    assert fault.start(cluster, rng())["nodes"] == ["api-1", "api-2"]
    make_fault("kill").heal(cluster)  # a fresh instance heals what another left
    fault.verify_healed(cluster)


def test_pause_and_resume(cluster: LocalCluster) -> None:
    fault = make_fault("pause", node="api-1")
    started = fault.start(cluster, rng())
    assert started["nodes"] == ["api-1"] and started["signal"] == "SIGSTOP"
    assert cluster.nodes["api-1"].is_paused()
    with pytest.raises(httpx.TimeoutException):
        get(cluster.endpoints("api")[0] + "/health", timeout=0.5)
    with pytest.raises(FaultNotHealed, match="api-1 is stopped"):
        fault.verify_healed(cluster)
    assert fault.stop(cluster)["signal"] == "SIGCONT"
    fault.verify_healed(cluster)
    assert get(cluster.endpoints("api")[0] + "/health").status_code == 200


# -- databases -----------------------------------------------------------------------------------


def test_pg_crash_and_recovery(cluster: LocalCluster) -> None:
    pg = cluster.postgres["pg"]
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute("INSERT INTO kv VALUES ('fault', 'committed') ON CONFLICT DO NOTHING")
    fault = make_fault("pg-crash")
    started = fault.start(cluster, rng())
    assert started["node"] == "pg" and not proc_alive(started["pid"])
    with pytest.raises(FaultNotHealed, match="PostgreSQL pg is not running"):
        fault.verify_healed(cluster)
    stopped = fault.stop(cluster)
    assert stopped["node"] == "pg" and stopped["recovery_s"] >= 0
    fault.verify_healed(cluster)
    with psycopg.connect(pg.dsn()) as conn:
        assert conn.execute("SELECT v FROM kv WHERE k = 'fault'").fetchone() == ("committed",)
    # The services reach it again through their links.
    assert get(cluster.endpoints("api")[0] + "/deps").json()["PG_DSN"] == 1


def test_pg_terminate(cluster: LocalCluster) -> None:
    pg = cluster.postgres["pg"]
    session = psycopg.connect(pg.dsn(), autocommit=True, application_name="svc")
    try:
        started = make_fault("pg-terminate", application_name="svc").start(cluster, rng())
        assert started == {"node": "pg", "terminated": 1, "application_name": "svc"}
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1")
    finally:
        session.close()
    make_fault("pg-terminate").verify_healed(cluster)


def test_redis_kill(cluster: LocalCluster) -> None:
    node = cluster.redis["redis"]
    with redis.Redis.from_url(node.url()) as r:
        r.set("fault-key", "durable")
    fault = make_fault("redis-kill", node="redis")
    started = fault.start(cluster, rng())
    assert started["node"] == "redis" and not node.ping()
    with pytest.raises(FaultNotHealed, match="Redis redis is not running"):
        fault.verify_healed(cluster)
    fault.stop(cluster)
    fault.verify_healed(cluster)
    with redis.Redis.from_url(node.url()) as r:
        assert r.get("fault-key") == b"durable"  # aof-always


# -- clock ---------------------------------------------------------------------------------------


def test_clock_shift_and_reset(cluster: LocalCluster) -> None:
    url = cluster.endpoints("api")[1]

    def skew() -> float:
        return float(get(url + "/time").json()["time"]) - time.time()

    fault = make_fault("clock", node="api-2", offset=-600)
    assert fault.start(cluster, rng()) == {"nodes": ["api-2"], "offsets": {"api-2": -600}}
    assert abs(skew() + 600) < 5
    with pytest.raises(FaultNotHealed, match="api-2 clock is -600 s off"):
        fault.verify_healed(cluster)
    assert fault.stop(cluster) == {"nodes": ["api-2"], "offsets": {"api-2": 0.0}}
    assert abs(skew()) < 5
    fault.verify_healed(cluster)
    random_shift = make_fault("clock", service="api", select="all", max_offset=30)
    offsets = random_shift.start(cluster, rng())["offsets"]
    assert set(offsets) == {"api-1", "api-2"} and all(abs(o) <= 30 for o in offsets.values())
    random_shift.heal(cluster)
    random_shift.verify_healed(cluster)
