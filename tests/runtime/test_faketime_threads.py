"""A threaded process under a clock fault reads the faked time from every thread, every call.

The plain ``libfaketime.so.1`` re-reads the offset file into one static buffer on each call
(``FAKETIME_NO_CACHE``); two threads reading at once race on it and one of them now and then
gets real time (118 of 400,000 calls from 4 threads here). A service handling requests on
threads would then answer with a healed clock in the middle of a clock fault.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from workbench.runtime.faketime import FaketimeClock

pytestmark = pytest.mark.servers

# Real time through the raw syscall, which libfaketime does not intercept.
PROBE = textwrap.dedent(
    """
    import ctypes, json, os, threading, time
    SYS_CLOCK_GETTIME = {"x86_64": 228, "aarch64": 113}[os.uname().machine]
    libc = ctypes.CDLL(None, use_errno=True)
    class Timespec(ctypes.Structure):
        _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]
    def real() -> float:
        ts = Timespec()
        libc.syscall(SYS_CLOCK_GETTIME, 0, ctypes.byref(ts))
        return ts.sec + ts.nsec / 1e9
    skews: dict[int, int] = {}
    lock = threading.Lock()
    def reader() -> None:
        seen: dict[int, int] = {}
        for _ in range(50_000):
            s = round(time.time() - real())
            seen[s] = seen.get(s, 0) + 1
        with lock:
            for s, n in seen.items():
                skews[s] = skews.get(s, 0) + n
    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(skews))
    """
)


def test_every_thread_reads_the_offset(tmp_path: Path) -> None:
    clock = FaketimeClock(tmp_path / "probe.faketime")
    clock.set_offset(-120.5)
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=clock.environ(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    skews = {int(k): n for k, n in json.loads(out.stdout).items()}
    # round(-120.5 + a few microseconds of drift between the two readings) is -120 or -121.
    assert sum(skews.values()) == 200_000
    assert set(skews) <= {-121, -120}, f"readings by skew (s): {skews}"
