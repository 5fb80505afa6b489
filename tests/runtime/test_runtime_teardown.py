"""Nothing outlives a cluster: teardown, a failed start, and a SIGKILLed harness."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.runtime.support import all_dead, echo_service, run_dir, wait_until
from workbench.runtime.errors import RuntimeStartError
from workbench.runtime.local import start_local_cluster
from workbench.runtime.process import group_members, reap_orphans
from workbench.topology import Postgres, Redis, Service, Topology

pytestmark = pytest.mark.servers

REPO = Path(__file__).resolve().parents[2]


def small_topology() -> Topology:
    return Topology(
        postgres=[Postgres("pg")],
        redis=[Redis("redis", "none")],
        services=[echo_service("api", depends_on=("pg", "redis"), faketime=True)],
    )


def test_teardown_leaves_no_process() -> None:
    with run_dir() as rd:
        cluster = start_local_cluster(small_topology(), rd, seed=1)
        pids = list(cluster.pids().values())
        # The postmaster's backends and auxiliary processes too, not just the leaders.
        pids += [p for leader in list(pids) for p in group_members(leader)]
        assert len(pids) > 4
        cluster.teardown()
        wait_until(lambda: all_dead(pids), 10.0, "every cluster process gone")
        cluster.teardown()  # idempotent
        assert json.loads((rd / "pids.json").read_text())["processes"] == {}
        leftovers = [
            p
            for p in Path("/dev/shm").glob("faketime_*")
            if p.name.endswith(tuple(str(x) for x in pids))
        ]
        assert leftovers == []


def test_failed_start_tears_down_and_quotes_the_log() -> None:
    broken = Service("broken", [sys.executable, "-c", "print('boom: no such config'); exit(3)"])
    topo = Topology(redis=[Redis("redis", "none")], services=[broken])
    with run_dir() as rd:
        with pytest.raises(RuntimeStartError) as err:
            start_local_cluster(topo, rd, seed=1)
        assert "broken-1 exited (code 3)" in str(err.value)
        assert "boom: no such config" in str(err.value)
        assert json.loads((rd / "pids.json").read_text())["processes"] == {}


HARNESS = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    from tests.runtime.test_runtime_teardown import small_topology
    from workbench.runtime.local import start_local_cluster
    from workbench.runtime.process import group_members, reap_orphans
    cluster = start_local_cluster(small_topology(), Path({run!r}), seed=3)
    pids = list(cluster.pids().values())
    pids += [p for leader in list(pids) for p in group_members(leader)]
    print(json.dumps(sorted(set(pids))), flush=True)
    time.sleep(600)
    """
)


def test_sigkilled_harness_leaves_no_orphans() -> None:
    with run_dir() as rd:
        harness = subprocess.Popen(
            [sys.executable, "-c", HARNESS.format(repo=str(REPO), run=str(rd))],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        try:
            assert harness.stdout is not None
            line = harness.stdout.readline()  # the harness prints once its cluster is up
            assert line, f"harness exited early with {harness.wait(5)}"
            pids: list[int] = json.loads(line)
            assert pids and not all_dead(pids)
            os.kill(harness.pid, signal.SIGKILL)
            harness.wait(10)
            # PR_SET_PDEATHSIG: the kernel kills every child; their children follow.
            wait_until(lambda: all_dead(pids), 15.0, f"orphans {pids} to die")
            # What a SIGKILL leaves outside the run dir is freed by the next reap_orphans.
            shmid = (rd / "pg" / "data" / "postmaster.pid").read_text().splitlines()[6].split()[1]
            assert reap_orphans(rd) == []  # nothing alive to kill
            assert not [
                p
                for p in Path("/dev/shm").glob("*faketime_s*_*")
                if int(p.name.rsplit("_", 1)[1]) in pids
            ]
            segments = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
            assert shmid not in [line.split()[1] for line in segments]
        finally:
            if harness.poll() is None:
                harness.kill()
                harness.wait(10)
