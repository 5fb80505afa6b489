"""One real local cluster (PostgreSQL, two Redis, two echo replicas, Toxiproxy) shared by the
module: wiring, node lifecycle, crash recovery, persistence, clock offsets."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest
import redis

from tests.runtime.support import full_topology, run_dir, wait_until
from workbench.runtime.cluster import Cluster
from workbench.runtime.local import LocalCluster, start_local_cluster
from workbench.runtime.process import proc_alive

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with run_dir() as rd, start_local_cluster(full_topology(), rd, seed=7) as c:
        yield c


def get(url: str, timeout: float = 3.0) -> httpx.Response:
    return httpx.get(url, timeout=timeout, trust_env=False)


def test_implements_cluster_protocol(cluster: LocalCluster) -> None:
    c: Cluster = cluster
    assert c.replicas("api") == ["api-1", "api-2"]
    assert set(c.nodes) == {"pg", "redis", "cache", "api-1", "api-2"}
    assert set(c.clocks) == {"api-1", "api-2"}


def test_links_are_toxiproxy_proxies(cluster: LocalCluster) -> None:
    expected = {"client->api-1", "client->api-2"} | {
        f"api-{i}->{d}" for i in (1, 2) for d in ("pg", "redis", "cache")
    }
    assert set(cluster.links) == expected
    proxies = cluster.toxiproxy.list_proxies()
    assert {link.proxy for link in cluster.links.values()} == set(proxies)
    for link in cluster.links.values():
        assert "->" not in link.proxy
        p = proxies[link.proxy]
        assert p.enabled and p.listen == link.listen and p.upstream == link.upstream
    pg = cluster.postgres["pg"]
    assert (
        cluster.links["api-2->pg"].upstream == f"127.0.0.1:{pg.dsn().split(':')[2].split('/')[0]}"
    )


def test_service_env_points_at_its_proxies(cluster: LocalCluster) -> None:
    env = get(cluster.endpoints("api")[0] + "/env").json()
    pg_link = cluster.links["api-1->pg"]
    assert env["WORKBENCH_SERVICE"] == "api" and env["WORKBENCH_REPLICA"] == "1"
    assert env["WORKBENCH_RUN_DIR"] == str(cluster.run_dir)
    assert f"127.0.0.1:{env['PG_PORT']}" == pg_link.listen
    assert env["PG_DSN"] == f"postgresql://workbench@{pg_link.listen}/workbench"
    assert env["REDIS_URL"] == f"redis://{cluster.links['api-1->redis'].listen}/0"
    assert env["CACHE_HOST"] == "127.0.0.1"
    assert env["WORKBENCH_PORT"] == cluster.direct_endpoints("api")[0].rsplit(":", 1)[1]
    # The service really reaches each dependency through its link.
    deps = get(cluster.endpoints("api")[1] + "/deps").json()
    assert deps == {"PG_DSN": 1, "REDIS_URL": True, "CACHE_URL": True}


def test_versions(cluster: LocalCluster) -> None:
    v = cluster.versions()
    assert v["toxiproxy"] == "2.12.0"
    assert v["postgresql"].startswith("15.") and v["redis"][0].isdigit()


def test_pid_registry_lists_live_processes(cluster: LocalCluster) -> None:
    data = json.loads((cluster.run_dir / "pids.json").read_text())["processes"]
    assert set(data) == {"pg", "redis", "cache", "toxiproxy", "api-1", "api-2"}
    assert all(proc_alive(e["pid"]) for e in data.values())


def test_kill_and_restart_replica(cluster: LocalCluster) -> None:
    node = cluster.nodes["api-2"]
    url = cluster.endpoints("api")[1]
    old = node.pid
    assert old is not None
    node.kill()
    assert not node.is_running() and not proc_alive(old)
    with pytest.raises(httpx.HTTPError):
        get(url + "/health", timeout=1.0)
    node.start()
    assert node.pid not in (None, old)
    assert get(url + "/health").status_code == 200


def test_pause_and_resume_replica(cluster: LocalCluster) -> None:
    node = cluster.nodes["api-1"]
    url = cluster.endpoints("api")[0]
    node.pause()
    try:
        assert node.is_paused() and node.is_running()
        with pytest.raises(httpx.TimeoutException):
            get(url + "/health", timeout=0.5)
    finally:
        node.resume()
    assert not node.is_paused()
    assert get(url + "/health").status_code == 200


def test_pg_crash_recovers_committed_rows(cluster: LocalCluster) -> None:
    pg = cluster.postgres["pg"]
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute("INSERT INTO kv VALUES ('crash', 'kept')")
    old = pg.pid
    pg.kill()
    assert not pg.accepts_connections() and old is not None and not proc_alive(old)
    pg.start()
    assert pg.accepts_connections()
    with psycopg.connect(pg.dsn()) as conn:
        row = conn.execute("SELECT v FROM kv WHERE k = 'crash'").fetchone()
    assert row == ("kept",)


def test_redis_kill_keeps_aof_always_and_loses_none(cluster: LocalCluster) -> None:
    durable, volatile = cluster.redis["redis"], cluster.redis["cache"]
    for node in (durable, volatile):
        with redis.Redis.from_url(node.url()) as r:
            r.set("k", "v")
        node.kill()
        assert not node.ping()
        node.start()
    with redis.Redis.from_url(durable.url()) as r:
        assert r.get("k") == b"v"
    with redis.Redis.from_url(volatile.url()) as r:
        assert r.get("k") is None


def test_terminate_backends(cluster: LocalCluster) -> None:
    pg = cluster.postgres["pg"]
    victim = psycopg.connect(pg.dsn(), autocommit=True, application_name="victim")
    bystander = psycopg.connect(pg.dsn(), autocommit=True, application_name="bystander")
    try:
        assert pg.terminate_backends("victim") == 1
        with pytest.raises(psycopg.OperationalError):
            victim.execute("SELECT 1")
        assert bystander.execute("SELECT 1").fetchone() == (1,)
        assert pg.terminate_backends() >= 1
    finally:
        victim.close()
        bystander.close()


def test_clock_offset_seen_by_faketime_replica(cluster: LocalCluster) -> None:
    clock = cluster.clocks["api-1"]
    url1, url2 = cluster.endpoints("api")

    def skew(url: str) -> float:
        return float(get(url + "/time").json()["time"]) - time.time()

    try:
        clock.set_clock_offset(3600.0)
        assert clock.clock_offset() == 3600.0
        assert abs(skew(url1) - 3600.0) < 5.0  # immediate: no wait for a cache to expire
        assert abs(skew(url2)) < 5.0
        clock.set_clock_offset(-120.5)
        assert abs(skew(url1) + 120.5) < 5.0
    finally:
        clock.set_clock_offset(0.0)
    wait_until(lambda: abs(skew(url1)) < 5.0, 5.0, "api-1 clock back to real time")
