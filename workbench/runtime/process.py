"""A managed subprocess: started in its own process group, tied to the harness's life, logged.

Every server and service the local runtime starts is a :class:`ManagedProcess`:

- its own session/process group (``start_new_session``), so kill/pause/stop signal the whole
  group: a PostgreSQL postmaster and its backends, a shell wrapper and what it runs;
- ``PR_SET_PDEATHSIG=SIGKILL`` set in the child, so it dies even if the harness is SIGKILLed and
  never runs its teardown. The kernel sends that signal when the *thread* that forked the child
  exits, not the process; so every spawn happens on one long-lived spawner thread (see
  :data:`_SPAWNER`), never on a short-lived worker thread of the runner, whose exit would
  silently kill a replica a fault restarted;
- stdout and stderr appended to ``<run>/logs/<name>.log``; a failed start quotes its last lines;
- a pid registry ``<run>/pids.json`` (:class:`PidRegistry`) so the next campaign can kill what a
  crashed earlier one left behind (:func:`reap_orphans`), in case the parent-death signal missed
  (e.g. a grandchild that re-parented itself).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from workbench.runtime.errors import MissingBinary, RuntimeStartError

PR_SET_PDEATHSIG = 1
LOG_TAIL_LINES = 20

# One long-lived thread performs every fork (see the module docstring: PDEATHSIG follows the
# forking thread). ThreadPoolExecutor workers live until interpreter exit, where they are joined;
# when that thread finally ends, any child still alive gets SIGKILL, which is the backstop we want.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbench-spawner")

# Resolved in the parent: loading a library in the child between fork and exec could deadlock.
_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_prctl.restype = ctypes.c_int


def wait_for(predicate: Callable[[], bool], timeout: float, *, interval: float = 0.05) -> bool:
    """Polls ``predicate`` until it is true (returns True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# --- /proc helpers -------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name (index 0 is the state letter)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may itself contain spaces or ')'.
    return raw[raw.rindex(")") + 2 :].split()


def proc_state(pid: int) -> str | None:
    """The one-letter state (R, S, D, T, t, Z, ...) or None when there is no such process."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def proc_alive(pid: int) -> bool:
    """True when the process exists and is not a zombie (a zombie is dead, only unreaped)."""
    state = proc_state(pid)
    return state is not None and state not in ("Z", "X")


def proc_starttime(pid: int) -> int | None:
    """Start time in clock ticks since boot (field 22): with the pid, identifies one process."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def proc_cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``. Zombies are skipped: in a container
    whose init does not reap, orphaned children of a killed postmaster may stay zombies."""
    members: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


# --- pid registry --------------------------------------------------------------------------------


class PidRegistry:
    """``<run>/pids.json``: the processes a run has alive, rewritten as they start and stop.

    Shape: ``{"owner": {"pid": int, "starttime": int}, "processes": {name: {"pid": int,
    "pgid": int, "starttime": int, "argv": [str, ...]}}}``. ``owner`` is the harness that wrote
    it: while that harness lives, its processes belong to a running campaign, not to orphans.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] = {}
        me = os.getpid()
        self._owner = {"pid": me, "starttime": proc_starttime(me)}

    def add(self, name: str, pid: int, argv: Sequence[str]) -> None:
        entry = {"pid": pid, "pgid": pid, "starttime": proc_starttime(pid), "argv": list(argv)}
        with self._lock:
            self._entries[name] = entry
            self._write()

    def remove(self, name: str, pid: int) -> None:
        with self._lock:
            if self._entries.get(name, {}).get("pid") == pid:
                del self._entries[name]
                self._write()

    def entries(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: dict(v) for k, v in self._entries.items()}

    def _write(self) -> None:
        # Atomic replace: a harness killed mid-write must not leave a truncated file behind.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        data = {"owner": self._owner, "processes": self._entries}
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        os.replace(tmp, self.path)


def _owner_alive(owner: Mapping[str, Any]) -> bool:
    pid = int(owner.get("pid", 0))
    return pid > 0 and proc_alive(pid) and proc_starttime(pid) == owner.get("starttime")


def _same_process(entry: Mapping[str, Any]) -> bool:
    """Is the process recorded in ``entry`` still the one alive under that pid?

    Pids are recycled, so both the start time and the program must match. Servers rewrite their
    title (redis-server shows ``redis-server 127.0.0.1:PORT``, postgres children ``postgres:
    ...``), so the program is compared by the basename of the first word.
    """
    pid = int(entry["pid"])
    if not proc_alive(pid):
        return False
    started = entry.get("starttime")
    if started is not None and proc_starttime(pid) != started:
        return False
    cmdline = proc_cmdline(pid)
    argv = entry.get("argv") or []
    if not cmdline or not argv:
        return False
    return os.path.basename(cmdline[0].split()[0]) == os.path.basename(str(argv[0]))


def release_leftovers(pid: int, argv: Sequence[str]) -> None:
    """Frees what a SIGKILLed process of ours leaves outside its run directory.

    - libfaketime's ``/dev/shm/faketime_shm_<pid>`` and ``sem.faketime_sem_<pid>`` (removed only
      on a clean exit);
    - a postmaster's small System V shared memory segment, whose id is on line 7 of
      ``<data>/postmaster.pid`` (released only by a clean shutdown or the next start of that
      same data directory, which a throwaway run never has).
    """
    if proc_alive(pid):
        return
    for leftover in (f"faketime_shm_{pid}", f"sem.faketime_sem_{pid}"):
        with contextlib.suppress(OSError):
            (Path("/dev/shm") / leftover).unlink()
    args = list(argv)
    if "-D" in args[:-1] and os.path.basename(args[0]) == "postgres":
        lockfile = Path(args[args.index("-D") + 1]) / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            lines = lockfile.read_text().splitlines()
            if int(lines[0]) == pid:
                shmid = int(lines[6].split()[1])
                _libc.shmctl(shmid, 0, None)  # IPC_RMID: freed once nobody is attached


def reap_orphans(store_dir: Path, *, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Kills processes recorded in any ``pids.json`` under ``store_dir`` that are still alive.

    Only processes whose ``/proc/<pid>`` start time and program still match the record are
    killed (SIGKILL to their process group); files are then rewritten without them. Call it at
    the start of a campaign. Returns one ``{"file", "name", "pid", "argv"}`` per process killed.
    """
    killed: list[dict[str, Any]] = []
    if not store_dir.is_dir():
        return killed
    for path in sorted(store_dir.rglob("pids.json")):
        try:
            data = json.loads(path.read_text())
            entries: dict[str, dict[str, Any]] = dict(data.get("processes", {}))
            owner = data.get("owner")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(owner, dict) and _owner_alive(owner):
            continue  # a campaign running now, perhaps in another terminal: not orphans
        for name, entry in list(entries.items()):
            was_alive = _same_process(entry)
            if was_alive:
                pgid = int(entry.get("pgid", entry["pid"]))
                _signal_group(pgid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry["pid"]), signal.SIGKILL)
                wait_for(lambda g=pgid: not group_members(g), timeout)  # type: ignore[misc]
                killed.append(
                    {"file": str(path), "name": name, "pid": entry["pid"], "argv": entry["argv"]}
                )
            if was_alive or not proc_alive(int(entry["pid"])):
                release_leftovers(int(entry["pid"]), entry.get("argv") or [])
            del entries[name]
        with contextlib.suppress(OSError):
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(
                json.dumps({"owner": owner, "processes": entries}, indent=2, sort_keys=True)
            )
            os.replace(tmp, path)
    return killed


# --- the managed process -------------------------------------------------------------------------


class ManagedProcess:
    """One subprocess the runtime owns. Not thread-safe per instance: one caller at a time."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        registry: PidRegistry | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.stop_signal = stop_signal
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        # Switching user needs root; as an ordinary user we simply run as ourselves.
        self.user = user if (user is not None and os.geteuid() == 0) else None
        self.registry = registry
        self._popen: subprocess.Popen[bytes] | None = None

    # -- state --

    @property
    def pid(self) -> int | None:
        """The pid of the current incarnation, None before start and after it was reaped."""
        return self._popen.pid if self._popen is not None else None

    def is_running(self) -> bool:
        """Alive (running or stopped), not exited and not a zombie."""
        p = self._popen
        return p is not None and p.poll() is None and proc_alive(p.pid)

    def is_paused(self) -> bool:
        """The leader is stopped by a signal (``/proc/<pid>/stat`` state ``T``)."""
        p = self._popen
        return p is not None and p.poll() is None and proc_state(p.pid) == "T"

    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen is not None else None

    # -- lifecycle --

    def start(self) -> int:
        """Spawns the process (does not wait for readiness); returns its pid.

        Raises :class:`MissingBinary` when the program does not exist, :class:`RuntimeStartError`
        when it cannot be executed or is already running.
        """
        if self.is_running():
            raise RuntimeStartError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
            log.write(f"--- workbench {stamp}: starting {' '.join(self.argv)}\n".encode())
        try:
            popen = _SPAWNER.submit(self._spawn).result()
        except FileNotFoundError as e:
            raise MissingBinary(
                f"{self.name}: cannot run {self.argv[0]!r}: not found; run `make test` or "
                "`bash scripts/bootstrap.sh`, or set the WORKBENCH_… variable naming it"
            ) from e
        except (OSError, subprocess.SubprocessError) as e:
            raise RuntimeStartError(f"{self.name}: cannot start {self.argv[0]!r}: {e}") from e
        self._popen = popen
        if self.registry is not None:
            self.registry.add(self.name, popen.pid, self.argv)
        return popen.pid

    def _spawn(self) -> subprocess.Popen[bytes]:
        parent = os.getpid()

        def child_setup() -> None:
            # Runs in the child after Popen applied user/group (a credential change clears the
            # parent-death signal, so it must be set afterwards) and before exec.
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            # The parent may have died before prctl: then no signal will ever come.
            if os.getppid() != parent:
                os._exit(1)

        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                user=self.user,
                group=self._group(),
                extra_groups=[] if self.user is not None else None,
                preexec_fn=child_setup,
            )

    def _group(self) -> int | None:
        if self.user is None:
            return None
        import pwd

        return pwd.getpwnam(self.user).pw_gid

    def wait_ready(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Polls ``ready`` until true; raises :class:`RuntimeStartError` (with the log's tail)
        when the process exits first or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.is_running():
                code = self.returncode()
                raise RuntimeStartError(
                    f"{self.name} exited (code {code}) before {what}\n{self.log_excerpt()}"
                )
            try:
                if ready():
                    return
            except Exception:  # a readiness probe failing is just "not yet"
                pass
            if time.monotonic() >= deadline:
                raise RuntimeStartError(
                    f"{self.name} not ready ({what}) within {timeout:.0f} s\n{self.log_excerpt()}"
                )
            time.sleep(0.05)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_bytes().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log_excerpt(self) -> str:
        return f"last lines of {self.log_path}:\n{self.log_tail()}"

    def signal(self, sig: signal.Signals) -> None:
        """Sends ``sig`` to the whole process group (a no-op when not running)."""
        if self._popen is not None and self._popen.poll() is None:
            _signal_group(self._popen.pid, sig)

    def pause(self) -> None:
        """SIGSTOP the group and wait until the leader shows state ``T``."""
        self.signal(signal.SIGSTOP)
        wait_for(lambda: self.is_paused() or not self.is_running(), 5.0, interval=0.01)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)
        wait_for(lambda: not self.is_paused(), 5.0, interval=0.01)

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL the whole group; wait until the leader is reaped and the group is empty."""
        p = self._popen
        if p is None:
            return
        _signal_group(p.pid, signal.SIGKILL)
        self._reap(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """``stop_signal`` (SIGTERM unless set) to the group, plus SIGCONT so a paused process
        can act on it; after ``timeout`` seconds SIGKILL. Waits until the group is gone."""
        p = self._popen
        if p is None:
            return
        if p.poll() is None:
            _signal_group(p.pid, self.stop_signal)
            _signal_group(p.pid, signal.SIGCONT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout)
        _signal_group(p.pid, signal.SIGKILL)
        self._reap(timeout)

    def _reap(self, timeout: float) -> None:
        p = self._popen
        assert p is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout)
        # Children of the leader (postgres backends) are in its group; they die with the group
        # SIGKILL but are reaped by init, so wait until none is left alive.
        wait_for(lambda: not group_members(p.pid), timeout, interval=0.02)
        if self.registry is not None and p.poll() is not None:
            self.registry.remove(self.name, p.pid)


class ProcessNode:
    """The :class:`workbench.runtime.cluster.Node` methods that only delegate to the node's
    :class:`ManagedProcess` (``self.process``); servers and replicas add start/kill/readiness."""

    process: ManagedProcess

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process.is_running() else None

    def is_running(self) -> bool:
        return self.process.is_running()

    def is_paused(self) -> bool:
        return self.process.is_paused()

    def pause(self) -> None:
        self.process.pause()

    def resume(self) -> None:
        self.process.resume()
