"""Service replicas: a target's own processes, reached through Toxiproxy links.

Each replica is a :class:`ManagedProcess` running ``Service.command`` with ``{port}`` replaced by
its listen port (fixed for the replica's life, so a restart after a kill listens where the
``client->`` proxy points). Readiness is an HTTP GET on ``127.0.0.1:PORT{ready.path}`` answering
2xx.

Clock faults (``Service.faketime``): the replica runs under libfaketime with its own offset
file (:mod:`workbench.runtime.faketime`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import httpx

from workbench.runtime.faketime import FaketimeClock
from workbench.runtime.ports import HOST, ensure_free, free_port
from workbench.runtime.process import ManagedProcess, PidRegistry, ProcessNode
from workbench.topology import Service


class ServiceReplica(ProcessNode):
    """Replica ``index`` (1-based) of a service; implements ``Node`` and ``ClockNode``."""

    kind = "service"

    def __init__(
        self,
        service: Service,
        index: int,
        run_dir: Path,
        *,
        env: Mapping[str, str],
        port: int | None = None,
        registry: PidRegistry | None = None,
    ) -> None:
        self.service = service
        self.index = index
        self.name = f"{service.name}-{index}"
        self.port = port if port is not None else free_port()
        self.run_dir = run_dir
        self.clock: FaketimeClock | None = None
        full_env = dict(env)
        full_env["WORKBENCH_PORT"] = str(self.port)
        if service.faketime:
            self.clock = FaketimeClock(run_dir / f"{self.name}.faketime")
            full_env = self.clock.environ(full_env)
        self.env = full_env
        argv = [a.replace("{port}", str(self.port)) for a in service.command]
        self.process = ManagedProcess(
            self.name,
            argv,
            log_path=run_dir / "logs" / f"{self.name}.log",
            env=full_env,
            # The harness's working directory: commands name scripts relative to the checkout;
            # the run directory is in WORKBENCH_RUN_DIR.
            cwd=None,
            registry=registry,
        )

    @property
    def url(self) -> str:
        """The replica's own address (bypassing the ``client->`` proxy)."""
        return f"http://{HOST}:{self.port}"

    # -- Node --

    def spawn(self) -> None:
        """Starts the process without waiting (the cluster starts replicas, then waits)."""
        ensure_free(self.port, f"service replica {self.name!r}")
        self.process.start()

    def wait_ready(self, timeout: float | None = None) -> None:
        path = self.service.ready.path
        self.process.wait_ready(
            self.ready,
            self.service.ready_timeout if timeout is None else timeout,
            f"GET {path} answering 2xx",
        )

    def start(self) -> None:
        """Starts (again) on the same port and waits until the readiness check passes."""
        self.spawn()
        self.wait_ready()

    def ready(self) -> bool:
        try:
            resp = httpx.get(self.url + self.service.ready.path, timeout=1.0, trust_env=False)
        except httpx.HTTPError:
            return False
        return resp.is_success

    def kill(self) -> None:
        pid = self.process.pid
        self.process.kill()
        if self.clock is not None:
            self.clock.remove_leftovers(pid)

    def stop(self, timeout: float = 5.0) -> None:
        pid = self.process.pid
        self.process.stop(timeout)
        if self.clock is not None:
            self.clock.remove_leftovers(pid)

    # -- ClockNode --

    def set_clock_offset(self, seconds: float) -> None:
        """Shifts the replica's clocks by ``seconds`` from real time (0 heals); immediate."""
        if self.clock is None:
            raise ValueError(f"{self.name} does not run under faketime (Service.faketime=False)")
        self.clock.set_offset(seconds)

    def clock_offset(self) -> float:
        return 0.0 if self.clock is None else self.clock.offset()
