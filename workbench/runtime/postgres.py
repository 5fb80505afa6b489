"""A throwaway PostgreSQL server run as a managed child process.

Why ``postgres`` directly and not ``pg_ctl start``: pg_ctl forks the postmaster and exits, so the
postmaster would be re-parented to init, outside our process group and immune to the parent-death
signal that guarantees nothing outlives a SIGKILLed harness. Running ``postgres -D ...`` as the
managed child keeps it (and its backends, which share its process group) under our control;
``initdb`` is used once for setup and ``pg_ctl`` not at all.

Layout: ``<run>/<name>/data`` (cluster; a link to a directory under /tmp when the postgres user
cannot reach the run directory), the Unix socket in a short ``/tmp/wb-<name>-sock-*`` directory
(so we never touch ``/var/run/postgresql`` and never exceed the socket path limit), log in
``<run>/logs/<name>.log``. When we are root, PostgreSQL refuses to run as root, so both
directories are owned by, and the server runs as, the ``postgres`` user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import psycopg

from workbench.runtime.binaries import pg_binaries
from workbench.runtime.errors import RuntimeStartError
from workbench.runtime.ports import HOST, ensure_free, free_port
from workbench.runtime.process import ManagedProcess, PidRegistry, ProcessNode

SUPERUSER = "postgres"
APP_USER = "workbench"
APP_DB = "workbench"
CONNECT_TIMEOUT = 2


class PostgresServer(ProcessNode):
    """Implements :class:`workbench.runtime.cluster.PostgresNode`.

    ``setup()`` runs initdb; ``start()`` starts the server and waits until it accepts
    connections; the first start also creates role and database ``workbench`` and runs
    ``init_sql``. ``kill()`` + ``start()`` is a crash followed by WAL recovery (fsync is on).
    """

    kind = "postgres"

    def __init__(
        self,
        name: str,
        run_dir: Path,
        *,
        init_sql: str = "",
        settings: Mapping[str, str] | None = None,
        port: int | None = None,
        registry: PidRegistry | None = None,
        ready_timeout: float = 60.0,
    ) -> None:
        self.name = name
        self.run_dir = run_dir
        self.init_sql = init_sql
        # Topology.validate() refused any of the harness's own settings already.
        extra = [arg for k, v in (settings or {}).items() for arg in ("-c", f"{k}={v}")]
        self.port = port if port is not None else free_port()
        self.ready_timeout = ready_timeout
        self.bins = pg_binaries()
        self._run_as = SUPERUSER if os.geteuid() == 0 else None
        self.base = run_dir / name
        self._outside: Path | None = None
        if self._run_as is not None and _unreachable_dir(run_dir) is not None:
            # The postgres user cannot reach the run directory (pytest's and mkdtemp's are 0700,
            # so is /root): keep the server's files in a directory of its own under /tmp and
            # leave a link in the run directory, so the layout reads the same.
            self._outside = Path(tempfile.mkdtemp(prefix=f"workbench-{name}-", dir="/tmp"))
            run_dir.mkdir(parents=True, exist_ok=True)
            self.base.symlink_to(self._outside)
        # Real paths: the server and initdb cannot follow a link through the run directory.
        home = self._outside or self.base
        self.data_dir = home / "data"
        # A Unix socket path must fit in 107 bytes; under a deep run directory it would not.
        # Clients use TCP on 127.0.0.1 anyway: the socket only serves PostgreSQL's own tools.
        self.sock_dir = Path(tempfile.mkdtemp(prefix=f"wb-{name}-sock-", dir="/tmp"))
        self._initialised = False
        self._version: str | None = None
        self.process = ManagedProcess(
            name,
            [
                str(self.bins.postgres),
                "-D",
                str(self.data_dir),
                "-k",
                str(self.sock_dir),
                "-h",
                HOST,
                "-p",
                str(self.port),
                "-c",
                "fsync=on",
                "-c",
                "synchronous_commit=on",
                "-c",
                "full_page_writes=on",
                "-c",
                "max_connections=200",
                # Dynamic shared memory as files in the data dir: POSIX segments in /dev/shm would
                # be left behind by every SIGKILL.
                "-c",
                "dynamic_shared_memory_type=mmap",
                *extra,
            ],
            log_path=run_dir / "logs" / f"{name}.log",
            cwd=self.data_dir.parent,
            user=self._run_as,
            registry=registry,
            # SIGINT is PostgreSQL's "fast" shutdown (SIGTERM would wait for clients to leave).
            stop_signal=signal.SIGINT,
        )

    # -- setup --

    def setup(self) -> None:
        """initdb into ``<run>/<name>/data``; idempotent."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.base.mkdir(parents=True, exist_ok=True)
        if self._run_as is not None:
            self._check_reachable()
            ids = pwd.getpwnam(self._run_as)
            for d in (self.base, self.sock_dir):
                os.chown(d, ids.pw_uid, ids.pw_gid)
        log = self.run_dir / "logs" / f"{self.name}-initdb.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        argv = [
            str(self.bins.initdb),
            "-D", str(self.data_dir),
            "-U", SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            # Skips syncing initdb's own files to disk (seconds saved per run); the server itself
            # runs with fsync on, which is what a crash test depends on.
            "--no-sync",
        ]  # fmt: skip
        with log.open("wb") as out:
            result = subprocess.run(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir.parent,
                user=self._run_as,
                group=pwd.getpwnam(self._run_as).pw_gid if self._run_as else None,
                extra_groups=[] if self._run_as else None,
                timeout=120,
                check=False,
            )
        if result.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeStartError(
                f"initdb for {self.name} failed (exit {result.returncode}); last lines of "
                f"{log}:\n{tail}"
            )

    def _check_reachable(self) -> None:
        # Say so clearly instead of letting initdb fail with "permission denied".
        d = _unreachable_dir(self.base.resolve().parent)
        if d is not None:
            raise RuntimeStartError(
                f"PostgreSQL runs as user {SUPERUSER!r} (it refuses root) but cannot reach "
                f"{self.data_dir}: directory {d} is not searchable by others "
                f"(chmod o+x {d}, or use a run directory outside it)"
            )

    # -- Node --

    def start(self) -> None:
        """Starts the server (initdb first if needed) and waits until it accepts connections."""
        self.setup()
        ensure_free(self.port, f"PostgreSQL {self.name!r}")
        self.process.start()
        self.process.wait_ready(
            self.accepts_connections, self.ready_timeout, "accepting connections"
        )
        if not self._initialised:
            self._create_app_db()
            self._initialised = True

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends (the whole process group) and wait.

        Killing the group, not just the postmaster: backends left alive keep the old shared
        memory attached and a new postmaster would refuse to start until they notice and exit.
        For the data it is the same crash: nothing gets to flush or checkpoint.
        """
        self.process.kill()

    def stop(self, timeout: float = 5.0) -> None:
        """Fast shutdown (SIGINT), SIGKILL after ``timeout`` s. Teardown uses this rather than
        :meth:`kill`: a killed postmaster leaves its small System V segment behind."""
        self.process.stop(timeout)
        shutil.rmtree(self.sock_dir, ignore_errors=True)
        if self._outside is not None:
            # Outside the run directory nobody would clean it up; each one is ~40 MB. The link
            # to it goes too: a dangling link in a run directory only misleads.
            shutil.rmtree(self._outside, ignore_errors=True)
            if self.base.is_symlink():
                self.base.unlink(missing_ok=True)

    # -- PostgresNode --

    def dsn(self, *, direct: bool = True) -> str:
        """``postgresql://workbench@127.0.0.1:PORT/workbench``, straight to the server.

        Proxied DSNs are per link (a replica's ``{DEP}_DSN``), so ``direct=False`` is an error.
        """
        if not direct:
            raise ValueError(
                "a proxied DSN belongs to a link: use cluster.links['<svc>-<i>->"
                f"{self.name}'].listen"
            )
        return f"postgresql://{APP_USER}@{HOST}:{self.port}/{APP_DB}"

    def superuser_dsn(self, dbname: str = APP_DB) -> str:
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{dbname}"

    def _connect(self, dsn: str) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            dsn, connect_timeout=CONNECT_TIMEOUT, autocommit=True, application_name="workbench"
        )

    def accepts_connections(self) -> bool:
        """True when a superuser session opens and runs ``SELECT 1``."""
        if not self.process.is_running():
            return False
        try:
            with self._connect(self.superuser_dsn("postgres")) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def terminate_backends(self, application_name: str | None = None) -> int:
        """``pg_terminate_backend`` of every client session but ours (or those of one
        ``application_name``); returns how many were terminated."""
        with self._connect(self.superuser_dsn("postgres")) as conn:
            row = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' "
                "AND (%(app)s::text IS NULL OR application_name = %(app)s::text)",
                {"app": application_name},
            ).fetchone()
        return int(row[0]) if row else 0  # type: ignore[call-overload]

    def version(self) -> str:
        """``"15.14"``: from the running server, else from ``postgres --version``."""
        if self._version is None:
            out = subprocess.run(
                [str(self.bins.postgres), "--version"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout
            # "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)"
            words = out.split()
            self._version = words[2] if len(words) >= 3 else out.strip()
        return self._version

    def _create_app_db(self) -> None:
        with self._connect(self.superuser_dsn("postgres")) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_USER,)
            ).fetchone()
            if not exists:
                conn.execute(f"CREATE ROLE {APP_USER} LOGIN CREATEDB REPLICATION")
            if not conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (APP_DB,)
            ).fetchone():
                conn.execute(f"CREATE DATABASE {APP_DB} OWNER {APP_USER}")
        if self.init_sql.strip():
            started = time.monotonic()
            try:
                with self._connect(self.dsn()) as conn:
                    conn.execute(self.init_sql.encode())
            except psycopg.Error as e:
                raise RuntimeStartError(
                    f"init_sql of {self.name} failed after {time.monotonic() - started:.1f} s: {e}"
                ) from e


def _unreachable_dir(path: Path) -> Path | None:
    """The first of ``path`` and its parents that others may not search, if any."""
    for d in [path, *path.parents]:
        if d.exists() and not (d.stat().st_mode & 0o001):
            return d
    return None
