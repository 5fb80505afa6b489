"""A campaign from start to verdict.

0. build the target's :class:`workbench.target.Plan` for the variant and check it, the faults
   and any ``--external`` parts (a usage error stops here, before anything starts);
1. create the run directory and ``campaign.json`` (status ``running``);
2. reap processes an earlier, killed campaign left behind; start the target's topology;
3. main phase: workers run the workload for ``time_limit`` seconds while the nemesis applies
   the fault schedule;
4. final phase: heal every fault and verify it healed, then run the target's final generator
   (retries of unresolved work, final reads);
5. tear everything down (on every exit path), run the checkers, write ``results.json`` and
   the reports.

:func:`run_campaign` returns a :class:`Outcome`; its ``exit_code`` follows Jepsen's table.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
import traceback
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from workbench import __version__
from workbench.check import EXIT_HARNESS, EXIT_INTERRUPTED, check_run
from workbench.checker import Checker
from workbench.fault import Fault
from workbench.fault_check import check_selectors
from workbench.generator import stagger, time_limit
from workbench.history import HistoryWriter
from workbench.nemesis import Nemesis
from workbench.plugins import UsageError
from workbench.progress import Progress
from workbench.registry import check_variant, load_faults, make_fault, resolve_checkers
from workbench.runtime.cluster import Cluster
from workbench.runtime.local import start_local_cluster
from workbench.runtime.process import reap_orphans
from workbench.schedule import FaultAction, FaultSpec, make_schedule
from workbench.store import HISTORY_FILE, new_run_dir, update_campaign, utc_now
from workbench.target import Options, Plan, Target, make_plan
from workbench.topology import Topology
from workbench.workers import Tally, WorkerPool


@dataclass
class Campaign:
    """What to run. ``faults`` are specs (``"partition:links=client->*"``); ``None`` means the
    plan's defaults for the variant; ``schedule`` replays a stored one instead of drawing;
    ``external`` replaces parts of the topology by servers the user runs (``{"api":
    "http://127.0.0.1:8080"}``)."""

    target: Target
    target_spec: str
    variant: str | None = None
    faults: Sequence[str] | None = None
    workers: int = 8
    time_limit: float = 20.0
    rate: float | None = None
    seed: int = 0
    store: Path = Path("store")
    fault_interval: float = 4.0
    schedule: Sequence[FaultAction] | None = None
    command: str = ""
    progress: bool = True
    progress_stream: TextIO | None = None
    external: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    run_dir: Path
    exit_code: int
    results: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Prepared:
    """A campaign checked and ready to start: nothing has run yet."""

    variant: str
    options: Options
    plan: Plan
    topology: Topology
    specs: list[FaultSpec]
    faults: list[Fault]
    checkers: list[Checker]


def _versions(cluster: Cluster | None) -> dict[str, str]:
    out = {
        "workbench": __version__,
        "python": sys.version.split()[0],
    }
    if cluster is not None:
        with contextlib.suppress(Exception):
            out.update(cluster.versions())
    return out


def prepare(c: Campaign) -> Prepared:
    """Builds and checks everything a campaign needs before anything starts.

    Raises :class:`workbench.plugins.UsageError` (exit 64), naming the problem, for an unknown
    variant, a plan that does not fit the seam, an unknown fault or bad fault option, a bad
    ``--external``, a process fault aimed at an External server, a fault selector (``links``,
    ``service``, ``node``) that matches nothing in the topology, or a number no campaign can run
    with (no workers, a time limit or rate of 0 or less)."""
    variant = check_variant(c.target, c.variant)
    _check_numbers(c)
    options = Options(c.workers, c.time_limit, c.rate, c.seed)
    plan = make_plan(c.target, variant, options)
    topology = plan.topology
    for name, url in c.external.items():
        try:
            topology = topology.with_external(name, url)
        except ValueError as e:
            raise UsageError(str(e)) from None
    try:
        topology.validate()
    except ValueError as e:
        raise UsageError(f"target {c.target.name!r}: {e}") from None
    texts = list(c.faults) if c.faults is not None else list(plan.faults)
    try:
        specs = [FaultSpec.parse(t) for t in texts]
    except ValueError as e:
        raise UsageError(str(e)) from None
    faults: list[Fault] = []
    for spec in specs:
        try:
            faults.append(make_fault(spec.name, **spec.options))
        except UsageError:
            raise
        except (ValueError, TypeError) as e:
            raise UsageError(f"fault {spec.text!r}: {e}") from None
        _refuse_process_fault_on_external(spec, topology)
        check_selectors(spec, topology)
    if c.schedule is not None:
        beyond = sorted({a.fault for a in c.schedule if not 0 <= a.fault < len(specs)})
        if beyond:
            raise UsageError(
                f"the stored schedule names fault {beyond[0]}, but the campaign has "
                f"{len(specs)} fault spec(s) (0..{len(specs) - 1}): give --faults as stored in "
                "its campaign.json, or leave --faults out"
            )
    return Prepared(
        variant, options, plan, topology, specs, faults, resolve_checkers(plan.checkers)
    )


def _check_numbers(c: Campaign) -> None:
    """Numbers no campaign can run with are usage errors, not empty VALID runs."""
    problems = []
    if c.workers < 1:
        problems.append(f"workers must be at least 1 (got {c.workers})")
    if not c.time_limit > 0:
        problems.append(f"the time limit must be above 0 seconds (got {c.time_limit:g})")
    if c.rate is not None and not c.rate > 0:
        problems.append(f"the rate must be above 0 operations per second (got {c.rate:g})")
    if not c.fault_interval > 0:
        problems.append(f"the fault interval must be above 0 seconds (got {c.fault_interval:g})")
    if problems:
        raise UsageError("; ".join(problems))


def _refuse_process_fault_on_external(spec: FaultSpec, topology: Topology) -> None:
    """A process fault (kill, pause, clock, a database crash) cannot reach a server the harness
    does not run: say so before the campaign starts rather than fail mid-run."""
    cls = load_faults().get(spec.name)
    if not getattr(cls, "process_fault", False):
        return
    externals = topology.externals()
    if not externals:
        return
    named: list[str] = []
    for key in ("service", "node"):
        value = spec.options.get(key)
        named += [value] if isinstance(value, str) else list(value or [])
    for name in named:
        part = name if name in externals else name.rpartition("-")[0]
        if part in externals:
            raise UsageError(
                f"fault {spec.text!r} aims at {name}, part of External {part!r}: the harness does "
                "not run it, so it cannot kill, pause or shift its clock; use network faults on "
                f"its links (e.g. partition:links=client->{part}-*) or let the harness start it"
            )
    started = {
        "pg-crash": [p.name for p in topology.postgres],
        "redis-kill": [r.name for r in topology.redis],
    }.get(spec.name)
    if started is not None and not started:
        raise UsageError(
            f"fault {spec.text!r}: every such database in this topology is External, which the "
            "harness does not run; use network faults on its links"
        )
    if started is None and not named and not topology.services:
        raise UsageError(
            f"fault {spec.text!r}: every service in this topology is External, which the harness "
            "does not run, so there is nothing to kill, pause or shift the clock of; use network "
            "faults on its links (e.g. partition:links=client->*)"
        )


def run_campaign(c: Campaign) -> Outcome:
    """Runs a campaign to its verdict. ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM turned into it
    by the CLI) tears everything down, marks the run ``interrupted`` and is re-raised; a
    :class:`UsageError` is raised before anything starts."""
    p = prepare(c)
    schedule = (
        list(c.schedule)
        if c.schedule is not None
        else make_schedule(len(p.specs), c.time_limit, c.seed, interval=c.fault_interval)
    )
    # Absolute: servers run with other working directories (PostgreSQL's lock file needs it).
    store = c.store.resolve()
    store.mkdir(parents=True, exist_ok=True)
    reap_orphans(store)
    run_dir = new_run_dir(store, c.target.name)
    update_campaign(
        run_dir,
        target=c.target_spec,
        variant=p.variant,
        faults=[s.text for s in p.specs],
        seed=c.seed,
        workers=c.workers,
        rate=c.rate,
        time_limit=c.time_limit,
        fault_interval=c.fault_interval,
        schedule=[a.to_json() for a in schedule],
        external=dict(c.external),
        command=c.command,
        notes=dict(p.plan.notes),
        versions=_versions(None),
        started=utc_now(),
        finished=None,
        status="running",
    )
    error: str | None = None
    try:
        cluster = start_local_cluster(p.topology, run_dir, c.seed)
    except BaseException:
        # Nothing ran: there is no history to judge. The caller reports the cause in one line.
        update_campaign(run_dir, status="failed-to-start", finished=utc_now())
        raise
    try:
        update_campaign(run_dir, versions=_versions(cluster))
        with HistoryWriter(run_dir / HISTORY_FILE) as history:
            asyncio.run(_interruptible(_drive(c, p, cluster, history, schedule)))
    except KeyboardInterrupt:
        cluster.teardown()
        update_campaign(run_dir, status="interrupted", finished=utc_now())
        raise
    except Exception as e:  # any harness failure is reported, then judged
        error = f"{type(e).__name__}: {e}"
        (run_dir / "logs" / "harness-error.log").write_text(traceback.format_exc())
    finally:
        cluster.teardown()
    update_campaign(run_dir, status="failed" if error else "finished", finished=utc_now())
    results = (
        check_run(run_dir, harness_error=error, checkers=p.checkers)
        if (run_dir / HISTORY_FILE).exists()
        else {}
    )
    _write_reports(run_dir)
    code = EXIT_HARNESS if error else int(results.get("exit_code", EXIT_HARNESS))
    return Outcome(run_dir, code, results, error)


def _write_reports(run_dir: Path) -> None:
    from workbench.report import write_reports, write_store_index

    try:
        write_reports(run_dir)
        write_store_index(run_dir.parents[1])
    except Exception:  # a report bug must not change the campaign's verdict
        (run_dir / "logs" / "report-error.log").write_text(traceback.format_exc())


async def _interruptible(coro: Coroutine[Any, Any, None]) -> None:
    """Runs ``coro``; Ctrl-C or SIGTERM cancels it cleanly (every worker records its open
    operation as ``info``) and then surfaces as ``KeyboardInterrupt``.

    A plain signal handler that raises would land at an arbitrary point inside the event loop's
    machinery and leave tasks half torn down."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(coro)
    interrupted = False

    def interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        task.cancel()

    handled = threading.current_thread() is threading.main_thread()
    if handled:  # signals can only be handled in the main thread
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, interrupt)
    try:
        await task
    except asyncio.CancelledError:
        if not interrupted:
            raise
    finally:
        if handled:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
    if interrupted:
        raise KeyboardInterrupt


async def _drive(
    c: Campaign,
    p: Prepared,
    cluster: Cluster,
    history: HistoryWriter,
    schedule: Sequence[FaultAction],
) -> None:
    tally = Tally()
    pool = WorkerPool(
        cluster=cluster,
        history=history,
        make_client=p.plan.client,
        workers=c.workers,
        op_timeout=float(p.plan.op_timeout),
        seed=c.seed,
        tally=tally,
    )
    nemesis = Nemesis(cluster=cluster, history=history, faults=p.faults, specs=p.specs, seed=c.seed)
    progress = Progress(
        tally, c.time_limit, lambda: list(nemesis.active.values()), stream=c.progress_stream
    )
    tasks: list[asyncio.Task[None]] = []
    if c.progress:
        tasks.append(asyncio.create_task(progress.run()))
    try:
        await pool.open()
        # The rate is applied here, once: a workload never staggers itself.
        workload = stagger(c.rate, p.plan.workload) if c.rate else p.plan.workload
        main = time_limit(c.time_limit, workload)
        nemesis_task = asyncio.create_task(nemesis.run(schedule, c.time_limit))
        workers_task = asyncio.create_task(pool.run(main))
        tasks += [nemesis_task, workers_task]
        # A nemesis failure must stop the campaign at once, not after the workload ends.
        done, _ = await asyncio.wait(
            {nemesis_task, workers_task}, return_when=asyncio.FIRST_EXCEPTION
        )
        for task in done:
            error = task.exception()
            if error is not None:
                raise error
        await asyncio.gather(nemesis_task, workers_task)
        progress.phase = "final"
        await nemesis.heal_all()
        if p.plan.final is not None:
            await pool.run(p.plan.final, stream="final")
    finally:
        # Stop every task before closing the clients they use (also when we are cancelled).
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await pool.close()


__all__ = ["EXIT_INTERRUPTED", "Campaign", "Outcome", "Prepared", "prepare", "run_campaign"]
