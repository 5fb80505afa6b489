"""Detection benchmarks: how often a target's bug variants are caught and its correct ones clean.

A target's script (``bench/locks_detection.py``, ``bench/outbox_detection.py``) describes
itself with a :class:`Bench` and calls :func:`main`. The claims measured, for every target:

- every bug variant is caught (some checker invalid) in at least 9 of 10 campaigns of 20 s with
  its catalogue fault mix (the plan's ``faults``);
- every correct variant shows no safety anomaly in 10 campaigns of 30 s with every fault kind
  that applies to it (also the plan's ``faults``: correct variants get them all).

Each campaign runs in its own process and store (the runner reaps other campaigns' processes in
a shared store), ``--parallel`` at a time. A campaign that ends in a harness error (exit 255,
e.g. a port taken by a parallel campaign while starting) is run again, at most twice, and the
row says how often that happened: it says nothing about the variant.

Prints one row per variant (Markdown): caught (bug) or clean (correct) out of N, which checkers
fired, the median seconds from the campaign's start to the first complete anomaly (the last
main-phase operation event it involves; an anomaly seen only in the final reads counts at the
first final read) and the median campaign wall time. ``--out`` appends every campaign's outcome
as JSON lines; ``--rejudge FILE`` judges stored campaigns again with the current checkers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Bench:
    """One target's benchmark: its registry ``name`` and ``spec`` (``module:Class``), its
    ``variants`` in table order, which of them are ``correct``, and the operations of its final
    phase (left out when timing the first anomaly)."""

    name: str
    spec: str
    variants: Sequence[str]
    correct: Callable[[str], bool]
    final_reads: frozenset[str]


def one(bench: Bench, variant: str, seed: int, seconds: float, store: Path) -> dict[str, Any]:
    """Runs one campaign in this process and returns its outcome."""
    from workbench.registry import load_target
    from workbench.runner import Campaign, run_campaign

    started = time.monotonic()
    out = run_campaign(
        Campaign(
            target=load_target(bench.spec),
            target_spec=bench.spec,
            variant=variant,
            time_limit=seconds,
            seed=seed,
            store=store,
            progress=False,
        )
    )
    wall = round(time.monotonic() - started, 1)
    return judge(bench, variant, seed, out.run_dir, out.exit_code, wall)


def judge(
    bench: Bench, variant: str, seed: int, run_dir: Path, exit_code: int, wall: float
) -> dict[str, Any]:
    """Judges a stored campaign with the target's current checkers (pure functions of the
    history, so stored campaigns can be judged again after a checker changes)."""
    from workbench.check import checkers_of
    from workbench.checker import CheckContext
    from workbench.history import read_history

    events = read_history(run_dir / "history.jsonl").events
    times = {e.index: e.time for e in events if e.f not in bench.final_reads}
    first_read = next((e.time for e in events if e.f in bench.final_reads), 0)
    judges = checkers_of({"target": bench.spec, "variant": variant})
    checks = [c.check(events, CheckContext()) for c in judges]
    bad = [c for c in checks if c.valid is False]
    first: float | None = None
    for c in bad:
        for a in c.anomalies:
            t = max([times[i] for i in a.events if i in times] or [first_read]) / 1e9
            first = t if first is None else min(first, t)
    return {
        "variant": variant,
        "seed": seed,
        "exit": exit_code,
        "invalid": [c.checker for c in bad],
        "unsafe": [c.checker for c in bad if c.kind == "safety"],
        "unknown": [c.checker for c in checks if c.valid == "unknown"],
        "summaries": {c.checker: c.summary for c in bad},
        "first_anomaly_s": first,
        "wall_s": wall,
        "run_dir": str(run_dir),
    }


def _child(script: str, variant: str, seed: int, seconds: float, base: Path) -> dict[str, Any]:
    r: dict[str, Any] = {}
    for attempt in range(3):
        r = _child_once(script, variant, seed, seconds, base)
        r["harness_retries"] = attempt
        if r["exit"] != 255:
            break
    return r


def _child_once(script: str, variant: str, seed: int, seconds: float, base: Path) -> dict[str, Any]:
    store = Path(tempfile.mkdtemp(prefix=f"{variant}-{seed}-", dir=base))
    cmd = [sys.executable, script, "--one", variant, str(seed), str(seconds), str(store)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=seconds + 300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {
            "variant": variant,
            "seed": seed,
            "exit": 255,
            "error": (proc.stderr or proc.stdout)[-800:],
            "invalid": [],
            "unsafe": [],
        }
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def table(bench: Bench, variants: Sequence[str], outcomes: dict[str, list[dict[str, Any]]]) -> int:
    """Prints the detection table (Markdown); 0 when every goal was met."""
    print(
        "| variant | kind | result | checkers that fired | median s to first anomaly "
        "| median wall s |"
    )
    print("|---|---|---|---|---:|---:|")
    met = True
    for v in variants:
        rs = outcomes[v]
        n = len(rs)
        correct = bench.correct(v)
        if correct:
            good = sum(1 for r in rs if not r["unsafe"] and r["exit"] != 255)
            label = f"clean {good}/{n}"
            met &= good == n
        else:
            good = sum(1 for r in rs if r["invalid"])
            label = f"caught {good}/{n}"
            met &= good >= 0.9 * n
        retried = sum(r.get("harness_retries", 0) for r in rs)
        if retried:
            label += f" ({retried} harness retries)"
        fired = Counter(c for r in rs for c in r["invalid"])
        named = ", ".join(f"{c} {k}" for c, k in fired.most_common()) or "-"
        firsts = [r["first_anomaly_s"] for r in rs if r.get("first_anomaly_s") is not None]
        walls = [r["wall_s"] for r in rs if "wall_s" in r]
        med_first = f"{statistics.median(firsts):.1f}" if firsts else "-"
        med_wall = f"{statistics.median(walls):.1f}" if walls else "-"
        kind = "correct" if correct else "bug"
        print(f"| {v} | {kind} | {label} | {named} | {med_first} | {med_wall} |")
    return 0 if met else 1


def main(bench: Bench, script: str, doc: str | None) -> int:
    """The command line of a target's detection script (``script`` is its path)."""
    sys.path.insert(0, str(REPO))
    p = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    p.add_argument("--one", nargs=4, metavar=("VARIANT", "SEED", "SECONDS", "STORE"))
    p.add_argument("--variants", help="comma-separated (default: all)")
    p.add_argument("--campaigns", type=int, default=10)
    p.add_argument("--bug-seconds", type=float, default=20.0)
    p.add_argument("--correct-seconds", type=float, default=30.0)
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--out", type=Path, help="append each campaign's outcome (JSON lines)")
    p.add_argument("--rejudge", type=Path, help="judge the campaigns of an --out file again")
    args = p.parse_args()
    if args.one:
        variant, seed, seconds, store = args.one
        print(json.dumps(one(bench, variant, int(seed), float(seconds), Path(store))))
        return 0
    variants = args.variants.split(",") if args.variants else list(bench.variants)
    outcomes: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    if args.rejudge is not None:
        for line in args.rejudge.read_text().splitlines():
            r = json.loads(line)
            if r["variant"] in outcomes and r.get("run_dir"):
                outcomes[r["variant"]].append(
                    judge(bench, r["variant"], r["seed"], Path(r["run_dir"]), r["exit"],
                          r["wall_s"])
                )  # fmt: skip
        return table(bench, variants, outcomes)
    base = Path(tempfile.mkdtemp(prefix=f"{bench.name}-bench-"))
    jobs = [
        (v, seed, args.correct_seconds if bench.correct(v) else args.bug_seconds)
        for v in variants
        for seed in range(1, args.campaigns + 1)
    ]
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        futures = [pool.submit(_child, script, v, seed, secs, base) for v, seed, secs in jobs]
        for fut in futures:
            r = fut.result()
            outcomes[r["variant"]].append(r)
            if args.out is not None:
                with args.out.open("a") as fh:
                    fh.write(json.dumps(r) + "\n")
            print(
                f"# {r['variant']} seed {r['seed']}: exit {r['exit']} "
                f"invalid={','.join(r['invalid']) or '-'} {r.get('error', '')[:300]}",
                flush=True,
            )
    return table(bench, variants, outcomes)
