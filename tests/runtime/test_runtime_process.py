"""Managed processes, orphan reaping, binaries, ports and the Toxiproxy client, against real
processes (a stdlib HTTP server stands in for Toxiproxy only where a real one cannot misbehave
on demand: a wrong version and a hanging delete)."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.runtime.support import run_dir, wait_until
from workbench.runtime import binaries
from workbench.runtime.errors import MissingBinary, PortInUse, RuntimeStartError
from workbench.runtime.ports import free_port
from workbench.runtime.process import (
    ManagedProcess,
    PidRegistry,
    proc_alive,
    proc_state,
    reap_orphans,
)
from workbench.runtime.redis import RedisServer
from workbench.runtime.toxiproxy import (
    Proxy,
    ToxiproxyClient,
    ToxiproxyError,
    ToxiproxyServer,
)

pytestmark = pytest.mark.servers

SLEEPER = [sys.executable, "-c", "import time\nwhile True: time.sleep(0.1)"]


@pytest.fixture
def rd() -> Iterator[Path]:
    with run_dir() as d:
        yield d


def test_pause_resume_stop(rd: Path) -> None:
    reg = PidRegistry(rd / "pids.json")
    p = ManagedProcess("sleeper", SLEEPER, log_path=rd / "logs" / "sleeper.log", registry=reg)
    pid = p.start()
    assert p.is_running() and not p.is_paused()
    assert json.loads((rd / "pids.json").read_text())["processes"]["sleeper"]["pid"] == pid
    p.pause()
    assert p.is_paused() and proc_state(pid) == "T"
    p.resume()
    assert not p.is_paused()
    p.pause()
    p.stop(timeout=2.0)  # SIGTERM reaches a stopped process too (SIGCONT follows)
    assert not p.is_running() and not proc_alive(pid)
    assert json.loads((rd / "pids.json").read_text())["processes"] == {}


def test_failed_readiness_quotes_log(rd: Path) -> None:
    p = ManagedProcess(
        "talker",
        [sys.executable, "-c", "import time\nprint('line one', flush=True)\ntime.sleep(30)"],
        log_path=rd / "logs" / "talker.log",
    )
    p.start()
    try:
        with pytest.raises(RuntimeStartError) as err:
            p.wait_ready(lambda: False, 0.5, "never")
        assert "not ready (never)" in str(err.value)
        wait_until(lambda: "line one" in p.log_tail(), 5.0, "output in the log")
    finally:
        p.kill()
    assert not p.is_running()


def test_child_survives_the_thread_that_started_it(rd: Path) -> None:
    # PDEATHSIG follows the forking thread: spawning on the long-lived spawner thread keeps a
    # replica restarted from a short-lived worker thread alive.
    p = ManagedProcess("sleeper", SLEEPER, log_path=rd / "logs" / "s.log")
    t = threading.Thread(target=p.start)
    t.start()
    t.join()
    try:
        time.sleep(0.3)  # give a (wrong) parent-death SIGKILL time to land; the assert is below
        assert p.is_running()
    finally:
        p.kill()


def test_reap_orphans_kills_recorded_live_processes_only(rd: Path) -> None:
    run = rd / "store" / "t" / "run1"
    reg = PidRegistry(run / "pids.json")
    p = ManagedProcess("leftover", SLEEPER, log_path=run / "logs" / "l.log", registry=reg)
    pid = p.start()
    # A record whose pid is alive but is some other program (our own test process): kept alive.
    reg.add("recycled", os.getpid(), ["/usr/bin/not-us"])
    # While the harness that wrote the registry lives, its campaign is running: nothing reaped.
    assert reap_orphans(rd / "store") == []
    assert p.is_running()
    # Its harness gone (as after a SIGKILL), the processes are orphans.
    data = json.loads((run / "pids.json").read_text())
    data["owner"] = {"pid": 2**22 + 1, "starttime": 1}  # above pid_max's default: never alive
    (run / "pids.json").write_text(json.dumps(data))
    killed = reap_orphans(rd / "store")
    assert [k["pid"] for k in killed] == [pid]
    wait_until(lambda: not p.is_running(), 5.0, "the orphan to die")
    assert json.loads((run / "pids.json").read_text())["processes"] == {}
    assert reap_orphans(rd / "store") == []


def test_port_in_use_is_a_clear_error(rd: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        server = RedisServer("redis", rd, persistence="none", port=port)
        with pytest.raises(
            PortInUse, match=f"127.0.0.1:{port} for Redis 'redis' is already in use"
        ):
            server.start()
    assert not server.is_running()


@pytest.mark.parametrize(
    ("var", "finder"),
    [
        ("WORKBENCH_REDIS_SERVER", binaries.redis_server),
        ("WORKBENCH_PG_BIN", binaries.pg_binaries),
        ("WORKBENCH_TOXIPROXY", binaries.toxiproxy_server),
        ("WORKBENCH_LIBFAKETIME", binaries.libfaketime),
    ],
)
def test_missing_binary(monkeypatch: pytest.MonkeyPatch, var: str, finder: Any) -> None:
    monkeypatch.setenv(var, "/nonexistent/bin")
    with pytest.raises(MissingBinary) as err:
        finder()
    assert var in str(err.value) and "scripts/bootstrap.sh" in str(err.value)
    assert isinstance(err.value, RuntimeStartError)


def test_binaries_found() -> None:
    assert binaries.pg_binaries().initdb.name == "initdb"
    assert binaries.redis_server().name == "redis-server"
    assert binaries.toxiproxy_server().is_file()
    assert binaries.libfaketime().name == "libfaketimeMT.so.1"


@pytest.fixture(scope="module")
def toxiproxy() -> Iterator[ToxiproxyServer]:
    with run_dir() as d:
        server = ToxiproxyServer(d, seed=1)
        server.start()
        try:
            yield server
        finally:
            server.kill()


def test_toxiproxy_client_round_trip(toxiproxy: ToxiproxyServer) -> None:
    c = toxiproxy.client
    assert c.version() == "2.12.0"
    [p] = c.populate([Proxy("a__to__b", "127.0.0.1:0", "127.0.0.1:9")])
    assert p.listen_port > 0
    assert c.disable("a__to__b").enabled is False
    assert c.enable("a__to__b").listen == p.listen  # the port survives disable/enable
    t = c.add_toxic("a__to__b", "latency", name="lat", attributes={"latency": 10})
    assert t.attributes["latency"] == 10 and t.stream == "downstream"
    assert [x.name for x in c.list_toxics("a__to__b")] == ["lat"]
    assert c.remove_toxic("a__to__b", "lat") is False
    c.add_toxic("a__to__b", "timeout", stream="upstream", attributes={"timeout": 0})
    c.disable("a__to__b")
    c.reset()
    after = c.get_proxy("a__to__b")
    assert after.enabled and after.toxics == ()
    c.delete_proxy("a__to__b")


def test_toxiproxy_errors_raise(toxiproxy: ToxiproxyServer) -> None:
    c = toxiproxy.client
    with pytest.raises(ToxiproxyError, match="404: proxy not found") as e404:
        c.get_proxy("nope")
    assert e404.value.status == 404
    c.create_proxy(Proxy("dup", "127.0.0.1:0", "127.0.0.1:9"))
    with pytest.raises(ToxiproxyError, match="409") as e409:
        c.create_proxy(Proxy("dup", "127.0.0.1:0", "127.0.0.1:9"))
    assert e409.value.status == 409
    with pytest.raises(ToxiproxyError, match="400: invalid toxic type"):
        c.add_toxic("dup", "no-such-toxic")
    # Listening on Toxiproxy's own API port: the server answers 500.
    with pytest.raises(ToxiproxyError, match=r"500: .*address already in use") as e500:
        c.create_proxy(Proxy("clash", f"127.0.0.1:{toxiproxy.port}", "127.0.0.1:9"))
    assert e500.value.status == 500
    c.delete_proxy("dup")


class _Fake(BaseHTTPRequestHandler):
    """Stands in for a Toxiproxy that is the wrong version and hangs on toxic deletes."""

    resets: ClassVar[list[str]] = []

    def _answer(self, status: int, body: Any = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if "Mozilla" in self.headers.get("User-Agent", ""):
            self._answer(403, {"error": "browser", "status": 403})
        else:
            self._answer(200, {"version": "2.11.0"})

    def do_DELETE(self) -> None:
        time.sleep(2.0)  # like Shopify/toxiproxy#558
        self._answer(204)

    def do_POST(self) -> None:
        _Fake.resets.append(self.path)
        self._answer(204 if self.path == "/reset" else 503, {"error": "busy", "status": 503})

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fake_toxiproxy() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Fake)
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_wrong_version_and_hanging_delete(fake_toxiproxy: str) -> None:
    with ToxiproxyClient(fake_toxiproxy, timeout=0.5) as c:
        with pytest.raises(ToxiproxyError, match=r"'2\.11\.0', the workbench needs 2\.12\.0"):
            c.check_version()
        _Fake.resets.clear()
        assert c.remove_toxic("p", "t") is True  # timed out, fell back to /reset
        assert _Fake.resets == ["/reset"]
        with pytest.raises(ToxiproxyError, match="503: busy"):
            c.populate([])
