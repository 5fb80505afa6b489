"""Service replicas: a target's own processes, reached through Toxiproxy links.

Each replica is a :class:`ManagedProcess` running ``Service.command`` with ``{port}`` replaced by
its listen port (fixed for the replica's life, so a restart after a kill listens where the
``client->`` proxy points). Readiness is an HTTP GET on ``127.0.0.1:PORT{ready.path}`` answering
2xx.

Clock faults (``Service.faketime``): the replica runs with ``LD_PRELOAD=libfaketime.so.1`` and
``FAKETIME_TIMESTAMP_FILE=<run>/<replica>.faketime`` holding an offset like ``+0`` or ``-30.5``
(seconds), with ``FAKETIME_NO_CACHE=1`` so libfaketime re-reads the file on every clock call and
a change takes effect at once (by default it caches for 10 s; see libfaketime's README, "Changing
the 'x' modifier during run-time"). Checked by experiment with libfaketime 0.9.10:

- the offset applies to ``CLOCK_REALTIME`` *and* ``CLOCK_MONOTONIC``: a monotonic clock jumps with
  the wall clock when the offset changes;
- ``FAKETIME_DONT_FAKE_MONOTONIC=1`` would keep monotonic time real, but with it Python's
  ``time.sleep`` fails with EINVAL (its absolute-deadline ``clock_nanosleep`` gets a faked
  deadline), so it is not used.

The file is replaced atomically (write + rename) so a reader never sees half a line.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

import httpx

from workbench.runtime.binaries import libfaketime
from workbench.runtime.ports import HOST, ensure_free, free_port
from workbench.runtime.process import ManagedProcess, PidRegistry
from workbench.topology import Service


class ServiceReplica:
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
        self.faketime_file: Path | None = None
        full_env = dict(env)
        full_env["WORKBENCH_PORT"] = str(self.port)
        if service.faketime:
            self.faketime_file = run_dir / f"{self.name}.faketime"
            self._write_offset(0.0)
            preload = str(libfaketime())
            if full_env.get("LD_PRELOAD"):
                preload = f"{preload}:{full_env['LD_PRELOAD']}"
            full_env.update(
                LD_PRELOAD=preload,
                FAKETIME_TIMESTAMP_FILE=str(self.faketime_file),
                FAKETIME_NO_CACHE="1",
            )
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

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process.is_running() else None

    def is_running(self) -> bool:
        return self.process.is_running()

    def is_paused(self) -> bool:
        return self.process.is_paused()

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
        self._remove_faketime_shm(pid)

    def stop(self, timeout: float = 5.0) -> None:
        pid = self.process.pid
        self.process.stop(timeout)
        self._remove_faketime_shm(pid)

    def _remove_faketime_shm(self, pid: int | None) -> None:
        # libfaketime creates /dev/shm/faketime_shm_<pid> and sem.faketime_sem_<pid> and removes
        # them only on a clean exit; a killed replica would leave them behind.
        if pid is None or self.faketime_file is None or self.process.is_running():
            return
        for leftover in (f"faketime_shm_{pid}", f"sem.faketime_sem_{pid}"):
            with contextlib.suppress(OSError):
                (Path("/dev/shm") / leftover).unlink()

    def pause(self) -> None:
        self.process.pause()

    def resume(self) -> None:
        self.process.resume()

    # -- ClockNode --

    def set_clock_offset(self, seconds: float) -> None:
        """Shifts the replica's clocks by ``seconds`` from real time (0 heals); immediate."""
        if self.faketime_file is None:
            raise ValueError(f"{self.name} does not run under faketime (Service.faketime=False)")
        self._write_offset(seconds)

    def clock_offset(self) -> float:
        if self.faketime_file is None:
            return 0.0
        return float(self.faketime_file.read_text().strip())

    def _write_offset(self, seconds: float) -> None:
        assert self.faketime_file is not None
        tmp = self.faketime_file.with_suffix(".tmp")
        # libfaketime wants an explicit sign; "%+.6f" gives "+0.000000" / "-30.500000".
        tmp.write_text(f"{seconds:+.6f}\n")
        os.replace(tmp, self.faketime_file)
