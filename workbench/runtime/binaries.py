"""Where the executables the local runtime starts live.

Each finder honours an environment override first (the same variables ``scripts/bootstrap.sh``
reads), then the place the bootstrap installs to. A missing binary raises :class:`MissingBinary`
naming it and the way to install it, instead of a bare ``FileNotFoundError`` from ``subprocess``.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from workbench.runtime.errors import MissingBinary, RuntimeStartError

__all__ = [
    "MissingBinary",
    "PgBinaries",
    "RuntimeStartError",
    "libfaketime",
    "pg_binaries",
    "redis_server",
    "repo_root",
    "toxiproxy_server",
]

_FIX = "run `make test` or `bash scripts/bootstrap.sh`, or set {var}"

# Debian/Ubuntu multiarch directories, then the classic ones; the faketime package puts the
# library in <libdir>/faketime/.
_FAKETIME_DIRS = (
    "/usr/lib/x86_64-linux-gnu/faketime",
    "/usr/lib/aarch64-linux-gnu/faketime",
    "/usr/lib/faketime",
    "/usr/local/lib/faketime",
    "/usr/lib64/faketime",
)


def repo_root() -> Path:
    """The checkout's root directory (this file is ``<root>/workbench/runtime/binaries.py``)."""
    return Path(__file__).resolve().parents[2]


def _missing(what: str, where: str, var: str) -> MissingBinary:
    return MissingBinary(f"{what} not found ({where}): " + _FIX.format(var=var))


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


@dataclass(frozen=True)
class PgBinaries:
    """The PostgreSQL server programs of one installation."""

    bin_dir: Path
    initdb: Path
    pg_ctl: Path
    postgres: Path


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/15/bin -> (15,); sorts 9.6 < 10 < 15 numerically, not as strings.
    return tuple(int(x) for x in re.findall(r"\d+", path.parent.name)) or (0,)


def pg_binaries() -> PgBinaries:
    """``$WORKBENCH_PG_BIN`` if set, else the newest ``/usr/lib/postgresql/*/bin``."""
    var = "WORKBENCH_PG_BIN"
    override = os.environ.get(var)
    if override:
        candidates = [Path(override)]
        where = f"{var}={override}"
    else:
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key)[-1:]
        where = "looked in /usr/lib/postgresql/*/bin"
    if not candidates:
        raise _missing("PostgreSQL (initdb, pg_ctl, postgres)", where, var)
    bin_dir = candidates[0]
    found = {n: bin_dir / n for n in ("initdb", "pg_ctl", "postgres")}
    absent = [n for n, p in found.items() if not _executable(p)]
    if absent:
        raise _missing(f"PostgreSQL {', '.join(absent)}", f"{where}: not in {bin_dir}", var)
    return PgBinaries(bin_dir, found["initdb"], found["pg_ctl"], found["postgres"])


def redis_server() -> Path:
    """``$WORKBENCH_REDIS_SERVER`` if set, else ``redis-server`` on ``PATH``."""
    var = "WORKBENCH_REDIS_SERVER"
    override = os.environ.get(var)
    if override:
        if not _executable(Path(override)):
            raise _missing("redis-server", f"{var}={override} is not an executable file", var)
        return Path(override)
    found = shutil.which("redis-server")
    if found is None:
        raise _missing("redis-server", "not on PATH", var)
    return Path(found)


def toxiproxy_server() -> Path:
    """``$WORKBENCH_TOXIPROXY`` if set, else ``<repo>/.tools/bin/toxiproxy-server``."""
    var = "WORKBENCH_TOXIPROXY"
    override = os.environ.get(var)
    path = Path(override) if override else repo_root() / ".tools" / "bin" / "toxiproxy-server"
    if not _executable(path):
        where = f"{var}={override}" if override else f"looked for {path}"
        raise _missing("toxiproxy-server 2.12.0", where, var)
    return path


FAKETIME_LIBRARY = "libfaketimeMT.so.1"


def libfaketime() -> Path:
    """``$WORKBENCH_LIBFAKETIME`` if set, else ``libfaketimeMT.so.1`` of Debian's faketime package.

    The MT build, not ``libfaketime.so.1``: with ``FAKETIME_NO_CACHE`` every clock call re-reads
    the offset file into one static buffer, and in the plain build two threads reading at once
    race on it (libfaketime PR #547), so a threaded service now and then reads real time: 118 of
    400,000 ``time.time()`` calls from 4 threads under a constant offset (the runtime's clock
    test saw a replica's skew at 0.0 during a -120.5 s fault). The MT build serialises those
    calls (0 of 400,000)."""
    var = "WORKBENCH_LIBFAKETIME"
    override = os.environ.get(var)
    if override:
        if not Path(override).is_file():
            raise _missing(FAKETIME_LIBRARY, f"{var}={override} is not a file", var)
        return Path(override)
    for d in _FAKETIME_DIRS:
        candidate = Path(d) / FAKETIME_LIBRARY
        if candidate.is_file():
            return candidate
    raise _missing(FAKETIME_LIBRARY, f"looked in {', '.join(_FAKETIME_DIRS)}", var)
