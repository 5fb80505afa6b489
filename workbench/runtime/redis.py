"""A throwaway Redis server run as a managed child process.

Persistence decides what a kill loses: ``aof-always`` (append-only file, fsync every write:
nothing acknowledged is lost), ``aof-everysec`` (up to about a second lost), ``none`` (no RDB
snapshots, no AOF: everything lost). The port and the data directory stay the same across
kill/start, so clients and proxies keep working after a restart.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import redis as redis_py

from workbench.runtime.binaries import redis_server
from workbench.runtime.ports import HOST, ensure_free, free_port
from workbench.runtime.process import ManagedProcess, PidRegistry, ProcessNode
from workbench.topology import RedisPersistence

_PERSISTENCE: dict[str, list[str]] = {
    "aof-always": ['save ""', "appendonly yes", "appendfsync always"],
    "aof-everysec": ['save ""', "appendonly yes", "appendfsync everysec"],
    "none": ['save ""', "appendonly no"],
}


class RedisServer(ProcessNode):
    """Implements :class:`workbench.runtime.cluster.RedisNode`."""

    kind = "redis"

    def __init__(
        self,
        name: str,
        run_dir: Path,
        *,
        persistence: RedisPersistence = "aof-always",
        port: int | None = None,
        registry: PidRegistry | None = None,
        ready_timeout: float = 30.0,
    ) -> None:
        if persistence not in _PERSISTENCE:
            raise ValueError(
                f"redis persistence {persistence!r} is not one of {', '.join(_PERSISTENCE)}"
            )
        self.name = name
        self.persistence = persistence
        self.port = port if port is not None else free_port()
        self.ready_timeout = ready_timeout
        self.base = run_dir / name
        self.conf_path = self.base / "redis.conf"
        self.binary = redis_server()
        self._version: str | None = None
        self.process = ManagedProcess(
            name,
            [str(self.binary), str(self.conf_path)],
            log_path=run_dir / "logs" / f"{name}.log",
            cwd=self.base,
            registry=registry,
        )

    def _write_config(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        lines = [
            f"bind {HOST}",
            f"port {self.port}",
            # Loopback only, no password: protected mode would only get in the way.
            "protected-mode no",
            "daemonize no",
            f'dir "{self.base}"',
            'logfile ""',
            'pidfile ""',
            *_PERSISTENCE[self.persistence],
        ]
        self.conf_path.write_text("\n".join(lines) + "\n")

    # -- Node --

    def start(self) -> None:
        """Starts (or restarts, loading the AOF if any) and waits until PING answers."""
        self._write_config()
        ensure_free(self.port, f"Redis {self.name!r}")
        self.process.start()
        self.process.wait_ready(self.ping, self.ready_timeout, "answering PING")

    def kill(self) -> None:
        self.process.kill()

    def stop(self, timeout: float = 5.0) -> None:
        self.process.stop(timeout)

    # -- RedisNode --

    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def client(self) -> redis_py.Redis:
        """A client straight to the server, with short timeouts."""
        return redis_py.Redis(
            host=HOST, port=self.port, socket_timeout=2.0, socket_connect_timeout=2.0
        )

    def ping(self) -> bool:
        if not self.process.is_running():
            return False
        try:
            with self.client() as c:
                return bool(c.ping())
        except redis_py.RedisError:
            return False

    def version(self) -> str:
        """``"7.0.15"``, from ``redis-server --version``."""
        if self._version is None:
            out = subprocess.run(
                [str(self.binary), "--version"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout
            # "Redis server v=7.0.15 sha=... malloc=... bits=64 build=..."
            words = [w for w in out.split() if w.startswith("v=")]
            self._version = words[0][2:] if words else out.strip()
        return self._version
