"""Failpoints for service authors: :class:`workbench.FailpointMiddleware` and ``failpoint()``
in a real uvicorn service (``failpoint_app.py``, two replicas on free ports), driven over the
control protocol of ``docs/failpoints.md``, then by the ``failpoint`` fault."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from faults.failpoint import Failpoint
from tests.runtime.support import run_dir, wait_until
from workbench import FaultError, FaultNotHealed, Service, Topology
from workbench.failpoints import TOKEN_HEADER
from workbench.runtime.local import LocalCluster, start_local_cluster

pytestmark = pytest.mark.servers

APP = "tests.core.failpoint_app:app"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    topology = Topology(services=[Service.asgi("fp", APP, replicas=2, ready_timeout=20.0)])
    with run_dir() as rd, start_local_cluster(topology, rd, seed=3) as c:
        yield c


@pytest.fixture(autouse=True)
def restored(cluster: LocalCluster) -> Iterator[None]:
    """Every test starts and leaves both replicas running, not stopped, with nothing armed."""
    yield
    for name in cluster.replicas("fp"):
        node = cluster.replica(name)
        if node.is_running() and node.is_paused():
            node.resume()
        if not node.is_running():
            node.start()
        control(cluster, name, {"disarm": "all"})


def url_of(cluster: LocalCluster, name: str) -> str:
    return cluster.replica(name).url


def control(
    cluster: LocalCluster, name: str, body: Any = None, *, method: str = "POST"
) -> httpx.Response:
    url = f"{url_of(cluster, name)}/_failpoints"
    token = {TOKEN_HEADER: cluster.failpoint_token}
    if method == "GET":
        return httpx.get(url, headers=token, timeout=5, trust_env=False)
    if isinstance(body, bytes):
        return httpx.request(method, url, content=body, headers=token, timeout=5, trust_env=False)
    return httpx.request(method, url, json=body, headers=token, timeout=5, trust_env=False)


def state(cluster: LocalCluster, name: str = "fp-1") -> dict[str, Any]:
    resp = control(cluster, name, method="GET")
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert isinstance(out, dict)
    return out


def arm(cluster: LocalCluster, name: str, **body: Any) -> dict[str, Any]:
    resp = control(cluster, name, body)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert isinstance(out, dict)
    return out


def pass_point(
    cluster: LocalCluster, name: str, point: str, *, sync: bool = False, timeout: float = 5.0
) -> httpx.Response:
    path = "pass-sync" if sync else "pass"
    return httpx.get(f"{url_of(cluster, name)}/{path}/{point}", timeout=timeout, trust_env=False)


def hits(cluster: LocalCluster, name: str, point: str) -> int:
    return int(state(cluster, name)["hits"].get(point, 0))


# -- the protocol --


def test_state_lists_the_declared_points_and_other_paths_pass_through(
    cluster: LocalCluster,
) -> None:
    s = state(cluster)
    assert s["points"] == ["alpha", "beta"]
    assert s["armed"] == {}
    health = httpx.get(f"{url_of(cluster, 'fp-1')}/health", timeout=5, trust_env=False)
    assert health.json() == {"ok": True, "lifespan": True}
    passed = pass_point(cluster, "fp-1", "alpha")
    assert passed.status_code == 200 and passed.json()["passed"] == "alpha"


def test_arm_then_disarm_one_point_then_all(cluster: LocalCluster) -> None:
    armed = arm(cluster, "fp-1", point="alpha", action="sleep", ms=50, probability=0.5)
    assert armed["armed"] == {"alpha": {"action": "sleep", "probability": 0.5, "ms": 50}}
    armed = arm(cluster, "fp-1", point="beta", action="raise")
    assert set(armed["armed"]) == {"alpha", "beta"}
    assert armed["armed"]["beta"] == {"action": "raise", "probability": 1.0, "ms": 500}
    assert state(cluster, "fp-2")["armed"] == {}  # arming is per process
    assert set(arm(cluster, "fp-1", point="alpha", action="off")["armed"]) == {"beta"}
    assert arm(cluster, "fp-1", disarm="all")["armed"] == {}
    assert pass_point(cluster, "fp-1", "beta").status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"point": "gamma", "action": "crash"}, 404, "no failpoint 'gamma'; declared: alpha, beta"),
        ({"point": "gamma", "action": "off"}, 404, "no failpoint 'gamma'"),
        ({"point": "alpha", "action": "explode"}, 400, "action 'explode' is not one of"),
        ({"point": "alpha", "action": "raise", "probability": 0}, 400, "probability 0"),
        ({"point": "alpha", "action": "raise", "probability": 1.5}, 400, "probability 1.5"),
        ({"point": "alpha", "action": "sleep", "ms": -1}, 400, "ms -1"),
        ({"point": "alpha", "action": "sleep", "ms": 1.5}, 400, "ms 1.5"),
        ({"point": "alpha", "action": "raise", "seed": "x"}, 400, "seed 'x'"),
        ({"point": "alpha", "action": "raise", "probabilty": 0.5}, 400, "unknown field(s)"),
        ({"point": "alpha"}, 400, '"point" and "action" are required'),
        ({"disarm": "alpha"}, 400, '{"disarm": "all"}'),
        (["alpha"], 400, "must be a JSON object"),
        (b"{not json", 400, "not JSON"),
    ],
)
def test_bad_requests_are_refused_and_change_nothing(
    cluster: LocalCluster, body: Any, status: int, says: str
) -> None:
    arm(cluster, "fp-1", point="beta", action="sleep", ms=10)
    resp = control(cluster, "fp-1", body)
    assert resp.status_code == status, resp.text
    assert says in resp.json()["error"]
    if status == 404:
        assert resp.json()["points"] == ["alpha", "beta"]
    assert state(cluster)["armed"] == {"beta": {"action": "sleep", "probability": 1.0, "ms": 10}}


def test_other_methods_are_405(cluster: LocalCluster) -> None:
    resp = control(cluster, "fp-1", {"disarm": "all"}, method="PUT")
    assert resp.status_code == 405
    assert resp.headers["allow"] == "GET, POST"


def test_an_undeclared_point_in_the_code_is_an_error_not_a_silent_no_op(
    cluster: LocalCluster,
) -> None:
    resp = pass_point(cluster, "fp-1", "alhpa")
    assert resp.status_code == 500
    assert "UndeclaredFailpoint: failpoint 'alhpa' is not declared" in resp.json()["error"]


# -- each action's effect --


@pytest.mark.parametrize("sync", [False, True])
def test_raise_fails_the_request_and_counts_a_hit(cluster: LocalCluster, sync: bool) -> None:
    before = hits(cluster, "fp-1", "alpha")
    arm(cluster, "fp-1", point="alpha", action="raise")
    resp = pass_point(cluster, "fp-1", "alpha", sync=sync)
    assert resp.status_code == 500
    assert resp.json()["error"] == "FailpointError: failpoint alpha raised"
    assert pass_point(cluster, "fp-1", "beta", sync=sync).status_code == 200  # only that point
    assert pass_point(cluster, "fp-2", "alpha", sync=sync).status_code == 200  # only that replica
    assert hits(cluster, "fp-1", "alpha") == before + 1
    assert state(cluster)["armed"]["alpha"]["action"] == "raise"  # stays armed


def test_probability_triggers_a_seeded_fraction_of_the_passes(cluster: LocalCluster) -> None:
    def outcomes() -> list[int]:
        arm(cluster, "fp-1", point="alpha", action="raise", probability=0.5, seed=42)
        return [pass_point(cluster, "fp-1", "alpha").status_code for _ in range(40)]

    before = hits(cluster, "fp-1", "alpha")
    first = outcomes()
    raised = first.count(500)
    assert set(first) == {200, 500} and 5 < raised < 35
    assert hits(cluster, "fp-1", "alpha") == before + raised
    assert outcomes() == first  # the same seed draws the same passes


@pytest.mark.parametrize("sync", [False, True])
def test_sleep_stalls_the_request_while_the_replica_keeps_serving(
    cluster: LocalCluster, sync: bool
) -> None:
    arm(cluster, "fp-1", point="alpha", action="sleep", ms=3000)
    with pytest.raises(httpx.ReadTimeout):
        pass_point(cluster, "fp-1", "alpha", sync=sync, timeout=0.5)
    # The stalled request still sits in its sleep; the control and other requests answer.
    assert pass_point(cluster, "fp-1", "beta", sync=sync).status_code == 200
    wait_until(lambda: hits(cluster, "fp-1", "alpha") >= 1, 10, "the stalled request's hit")
    arm(cluster, "fp-1", point="alpha", action="off")
    assert pass_point(cluster, "fp-1", "alpha", sync=sync).status_code == 200


def test_crash_exits_137_and_the_restarted_process_is_unarmed(cluster: LocalCluster) -> None:
    node = cluster.replica("fp-1")
    pid = node.pid
    arm(cluster, "fp-1", point="alpha", action="crash")
    with pytest.raises(httpx.TransportError):
        pass_point(cluster, "fp-1", "alpha")
    # Wait on the exit status itself: another thread polling the same process can hold the
    # reap for a moment after the process is gone.
    wait_until(lambda: node.process.returncode() is not None, 10, "fp-1's exit status")
    assert node.process.returncode() == 137
    assert not node.is_running()
    node.start()
    assert node.pid != pid
    assert state(cluster)["armed"] == {}
    assert pass_point(cluster, "fp-1", "alpha").status_code == 200


def test_pause_stops_the_process_once(cluster: LocalCluster) -> None:
    node = cluster.replica("fp-1")
    before = hits(cluster, "fp-1", "alpha")
    arm(cluster, "fp-1", point="alpha", action="pause")
    with pytest.raises(httpx.ReadTimeout):
        pass_point(cluster, "fp-1", "alpha", timeout=1.0)
    wait_until(node.is_paused, 10, "fp-1 to stop itself")
    node.resume()
    s = state(cluster)
    assert s["armed"] == {}  # one-shot: disarmed before stopping
    assert s["hits"]["alpha"] == before + 1
    assert pass_point(cluster, "fp-1", "alpha").status_code == 200


# -- the failpoint fault against the middleware --


def test_fault_arms_one_replica_and_verify_healed_sees_it(cluster: LocalCluster) -> None:
    fault = Failpoint(point="alpha", action="raise")
    started = fault.start(cluster, random.Random(5))
    assert len(started["replicas"]) == 1
    armed = started["replicas"][0]
    other = next(n for n in cluster.replicas("fp") if n != armed)
    assert pass_point(cluster, armed, "alpha").status_code == 500
    assert pass_point(cluster, other, "alpha").status_code == 200
    with pytest.raises(FaultNotHealed, match=f"{armed} still has failpoints armed: alpha"):
        fault.verify_healed(cluster)
    stopped = fault.stop(cluster)
    assert stopped["disarmed"] == [armed]
    fault.verify_healed(cluster)
    assert pass_point(cluster, armed, "alpha").status_code == 200


def test_fault_crash_on_every_replica_then_stop_restarts_them(cluster: LocalCluster) -> None:
    fault = Failpoint(point="beta", action="crash", replicas="all")
    assert fault.start(cluster, random.Random(1))["replicas"] == ["fp-1", "fp-2"]
    for name in ("fp-1", "fp-2"):
        with pytest.raises(httpx.TransportError):
            pass_point(cluster, name, "beta")
    wait_until(lambda: not cluster.replica("fp-2").is_running(), 10, "fp-2 to exit")
    with pytest.raises(FaultNotHealed, match="fp-2 is not running"):
        fault.verify_healed(cluster)
    stopped = fault.stop(cluster)
    assert sorted(stopped["restarted"]) == ["fp-1", "fp-2"]
    fault.verify_healed(cluster)
    assert all(pass_point(cluster, n, "beta").status_code == 200 for n in ("fp-1", "fp-2"))


def test_fault_pause_then_heal_resumes_and_disarms(cluster: LocalCluster) -> None:
    fault = Failpoint(point="alpha", action="pause", service="fp")
    armed = fault.start(cluster, random.Random(2))["replicas"][0]
    arm(cluster, "fp-1", point="beta", action="sleep", ms=10)  # heal clears every point
    arm(cluster, "fp-2", point="beta", action="sleep", ms=10)
    with pytest.raises(httpx.ReadTimeout):
        pass_point(cluster, armed, "alpha", timeout=1.0)
    wait_until(cluster.replica(armed).is_paused, 10, f"{armed} to stop itself")
    with pytest.raises(FaultNotHealed, match=rf"{armed} is stopped \(SIGSTOP\)"):
        fault.verify_healed(cluster)
    fault.heal(cluster)
    fault.verify_healed(cluster)
    assert state(cluster, "fp-1")["armed"] == {} and state(cluster, "fp-2")["armed"] == {}


def test_fault_refuses_a_point_no_replica_declares(cluster: LocalCluster) -> None:
    refused = "no replica declares point 'gamma'; declared: alpha, beta"
    with pytest.raises(FaultError, match=refused):
        Failpoint(point="gamma").start(cluster, random.Random(0))
    Failpoint(point="gamma").verify_healed(cluster)


# -- the guard: off unless enabled, loopback and token only (pure ASGI, no server) --


def _call(mw: Any, *, client: tuple[str, int] | None, headers: dict[str, str]) -> tuple[int, bytes]:
    import asyncio

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/_failpoints",
        "client": client,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(mw(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def _app_404(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b"app"})


def test_control_is_off_without_the_harness_token_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from workbench.failpoints import TOKEN_ENV, FailpointMiddleware, Registry

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    mw = FailpointMiddleware(_app_404, Registry())
    # The app answers, as for any path it does not have: nothing can arm a point.
    assert _call(mw, client=("127.0.0.1", 5), headers={TOKEN_HEADER: ""}) == (404, b"app")


def test_control_answers_loopback_requests_with_the_token_only() -> None:
    from workbench.failpoints import FailpointMiddleware, Registry

    mw = FailpointMiddleware(_app_404, Registry(), token="s3cret")
    right = {TOKEN_HEADER: "s3cret"}
    assert _call(mw, client=("127.0.0.1", 5), headers=right)[0] == 200
    assert _call(mw, client=("::1", 5), headers=right)[0] == 200
    status, body = _call(mw, client=("10.1.2.3", 5), headers=right)
    assert status == 403 and b"loopback only, not to 10.1.2.3" in body
    assert _call(mw, client=("127.0.0.1", 5), headers={})[0] == 403
    status, body = _call(mw, client=("127.0.0.1", 5), headers={TOKEN_HEADER: "guess"})
    assert status == 403 and TOKEN_HEADER.encode() in body


def test_a_replica_the_harness_started_refuses_control_without_the_token(
    cluster: LocalCluster,
) -> None:
    url = f"{url_of(cluster, 'fp-1')}/_failpoints"
    refused = httpx.post(url, json={"point": "alpha", "action": "crash"}, timeout=5)
    assert refused.status_code == 403
    assert state(cluster)["armed"] == {}
