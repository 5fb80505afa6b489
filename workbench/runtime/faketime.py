"""A process clock that clock faults can shift at run time, through libfaketime.

The process runs with ``LD_PRELOAD=libfaketimeMT.so.1`` (the thread-safe build: see
:func:`workbench.runtime.binaries.libfaketime`) and
``FAKETIME_TIMESTAMP_FILE=<run>/<node>.faketime`` holding an offset like ``+0`` or ``-30.5``
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

from workbench.runtime.binaries import libfaketime


class FaketimeClock:
    """The offset file of one process started under libfaketime."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.set_offset(0.0)

    def environ(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` plus what makes a process read its clock through this file."""
        env = dict(base)
        preload = str(libfaketime())
        if env.get("LD_PRELOAD"):
            preload = f"{preload}:{env['LD_PRELOAD']}"
        env.update(
            LD_PRELOAD=preload,
            FAKETIME_TIMESTAMP_FILE=str(self.path),
            FAKETIME_NO_CACHE="1",
        )
        return env

    def set_offset(self, seconds: float) -> None:
        tmp = self.path.with_suffix(".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # libfaketime wants an explicit sign; "%+.6f" gives "+0.000000" / "-30.500000".
        tmp.write_text(f"{seconds:+.6f}\n")
        os.replace(tmp, self.path)

    def offset(self) -> float:
        return float(self.path.read_text().strip())

    @staticmethod
    def remove_leftovers(pid: int | None) -> None:
        """libfaketime creates ``/dev/shm/faketime_shm_<pid>`` and ``sem.faketime_sem_<pid>`` and
        removes them only on a clean exit; call this once a killed process is gone."""
        if pid is None:
            return
        for leftover in (f"faketime_shm_{pid}", f"sem.faketime_sem_{pid}"):
            with contextlib.suppress(OSError):
                (Path("/dev/shm") / leftover).unlink()
