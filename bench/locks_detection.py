"""Detection benchmark of the locks target (not a unit test).

Every bug variant should be caught (some checker invalid) in at least 9 of 10 campaigns of
20 s with its catalogue fault mix; every correct variant should show no safety anomaly in 10
campaigns of 30 s with all its fault kinds. Each campaign runs in its own process and store (the
runner reaps other campaigns' processes in a shared store), a few at a time.

    .venv/bin/python bench/locks_detection.py                 # everything, 2 at a time
    .venv/bin/python bench/locks_detection.py --variants redis-unfenced --campaigns 3

Prints one row per variant: caught (bug) or clean (correct) out of N, the median seconds from
the campaign's start to the first complete anomaly (the last operation event it involves),
and the median campaign wall time; ``--out`` also writes every campaign's outcome as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def one(variant: str, seed: int, seconds: float, store: Path) -> dict[str, Any]:
    """Runs one campaign in this process and returns its outcome."""
    from targets.locks.target import LocksTarget
    from workbench.runner import Campaign, run_campaign

    started = time.monotonic()
    out = run_campaign(
        Campaign(
            target=LocksTarget(),
            target_spec="targets.locks.target:LocksTarget",
            variant=variant,
            time_limit=seconds,
            seed=seed,
            store=store,
            progress=False,
        )
    )
    wall = time.monotonic() - started
    return judge(variant, seed, out.run_dir, out.exit_code, round(wall, 1))


def judge(variant: str, seed: int, run_dir: Path, exit_code: int, wall: float) -> dict[str, Any]:
    """Judges a campaign's stored history with the target's current checkers (pure functions
    of the history, so a stored campaign can be judged again after a checker changes)."""
    from workbench.check import checkers_of
    from workbench.checker import CheckContext
    from workbench.history import read_history

    events = read_history(run_dir / "history.jsonl").events
    # When an anomaly was complete: its last operation event, the final read left out.
    times = {e.index: e.time for e in events if e.f != "read-resource"}
    judges = checkers_of({"target": "locks", "variant": variant})
    checks = [c.check(events, CheckContext()) for c in judges]
    bad = [c for c in checks if c.valid is False]
    first: float | None = None
    for c in bad:
        for a in c.anomalies:
            ts = [times[i] for i in a.events if i in times]
            if ts:
                t = max(ts) / 1e9
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


def _child(variant: str, seed: int, seconds: float, base: Path) -> dict[str, Any]:
    """One campaign in a fresh process; a harness failure (e.g. a port taken by a parallel
    campaign during start-up) is retried twice: it says nothing about the variant."""
    for _ in range(3):
        r = _child_once(variant, seed, seconds, base)
        if r["exit"] != 255:
            return r
    return r


def _child_once(variant: str, seed: int, seconds: float, base: Path) -> dict[str, Any]:
    store = Path(tempfile.mkdtemp(prefix=f"{variant}-{seed}-", dir=base))
    cmd = [sys.executable, __file__, "--one", variant, str(seed), str(seconds), str(store)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=seconds + 240)
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


def table(variants: list[str], outcomes: dict[str, list[dict[str, Any]]], buggy: list[str]) -> int:
    """Prints the detection table (Markdown); 0 when every target was met."""
    print("| variant | kind | result | median s to first anomaly | median wall s |")
    print("|---|---|---|---:|---:|")
    ok = True
    for v in variants:
        rs = outcomes[v]
        n = len(rs)
        if v in buggy:
            good = sum(1 for r in rs if r["invalid"])
            label = f"caught {good}/{n}"
            ok &= good >= 0.9 * n
        else:
            good = sum(1 for r in rs if not r["unsafe"] and r["exit"] != 255)
            label = f"clean {good}/{n}"
            ok &= good == n
        firsts = [r["first_anomaly_s"] for r in rs if r.get("first_anomaly_s") is not None]
        walls = [r["wall_s"] for r in rs if "wall_s" in r]
        med_first = f"{statistics.median(firsts):.1f}" if firsts else "-"
        med_wall = f"{statistics.median(walls):.1f}" if walls else "-"
        kind = "bug" if v in buggy else "correct"
        print(f"| {v} | {kind} | {label} | {med_first} | {med_wall} |")
    return 0 if ok else 1


def main() -> int:
    from targets.locks.variants import BUGGY, CORRECT

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
        print(json.dumps(one(variant, int(seed), float(seconds), Path(store))))
        return 0
    variants = args.variants.split(",") if args.variants else [*BUGGY, *CORRECT]
    if args.rejudge is not None:
        outcomes: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
        for line in args.rejudge.read_text().splitlines():
            r = json.loads(line)
            if r["variant"] in outcomes and r.get("run_dir"):
                again = judge(r["variant"], r["seed"], Path(r["run_dir"]), r["exit"], r["wall_s"])
                outcomes[r["variant"]].append(again)
        return table(variants, outcomes, BUGGY)
    base = Path(tempfile.mkdtemp(prefix="locks-bench-"))
    jobs = [
        (v, seed, args.bug_seconds if v in BUGGY else args.correct_seconds)
        for v in variants
        for seed in range(1, args.campaigns + 1)
    ]
    outcomes = {v: [] for v in variants}
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        futures = [pool.submit(_child, v, seed, secs, base) for v, seed, secs in jobs]
        for fut in futures:
            r = fut.result()
            outcomes[r["variant"]].append(r)
            if args.out is not None:
                with args.out.open("a") as fh:
                    fh.write(json.dumps(r) + "\n")
            print(
                f"# {r['variant']} seed {r['seed']}: exit {r['exit']} "
                f"invalid={','.join(r['invalid']) or '-'} {r.get('error', '')[:200]}",
                flush=True,
            )
    return table(variants, outcomes, BUGGY)


if __name__ == "__main__":
    sys.exit(main())
