"""Detection benchmark of the payments target (not a unit test; takes about an hour).

Claims it measures:

- every bug variant is caught (some checker says invalid) in >= 9 of 10 campaigns of 20 s with
  its catalogue fault mix (the plan's ``faults``);
- both correct variants are free of safety anomalies in 10 campaigns of 30 s with every fault
  kind on (``targets.payments.target.all_faults``).

Each campaign runs in its own subprocess and store directory: ``workbench run payments ...``
when the CLI can run it (target and failpoint fault registered), else the runner API
(``workbench.runner.run_campaign``) with the failpoint fault added to the catalogue in that
process only. The verdicts are read from each run's ``results.json``.

Usage::

    .venv/bin/python bench/payments_detection.py [--campaigns 10] [--parallel 2]
        [--variants a,b] [--mode auto|cli|api] [--out bench/out/payments]
    .venv/bin/python bench/payments_detection.py --from-logs first.jsonl,rerun.jsonl

Prints a Markdown table (variant, caught/10 or clean/10, median campaign seconds, what fired)
and writes it to ``OUT/table.md`` with every campaign's summary in ``OUT/campaigns.jsonl``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_SPEC = "targets.payments.target:PaymentsTarget"


def _one(
    variant: str, seed: int, time_limit: float, store: Path, all_faults: bool, interval: float
) -> int:
    """Runs one campaign in this process with the runner API; returns its exit code."""
    from targets.payments.target import PaymentsTarget
    from targets.payments.target import all_faults as every_fault
    from targets.payments.variants import variant as spec_of
    from workbench.runner import Campaign, run_campaign

    faults = every_fault(spec_of(variant)) if all_faults else None
    outcome = run_campaign(
        Campaign(
            target=PaymentsTarget(),
            target_spec=TARGET_SPEC,
            variant=variant,
            faults=faults,
            time_limit=time_limit,
            seed=seed,
            store=store,
            progress=False,
            fault_interval=interval,
        )
    )
    return outcome.exit_code


def cli_usable() -> bool:
    """True when ``workbench run payments`` would work with failpoint faults."""
    try:
        probe = subprocess.run(
            [str(ROOT / ".venv/bin/workbench"), "run", "--help"],
            capture_output=True,
            timeout=60,
        )
        if probe.returncode != 0:
            return False
        from workbench.registry import load_faults, target_names

        return "payments" in target_names() and "failpoint" in load_faults()
    except Exception:
        return False


def run(
    variant: str,
    seed: int,
    time_limit: float,
    out: Path,
    all_faults: bool,
    mode: str,
    interval: float = 4.0,
) -> dict[str, Any]:
    """One campaign in a subprocess; returns its summary row."""
    # Short: PostgreSQL's Unix socket path (under the run directory) must fit in 107 bytes.
    store = out / "s" / f"{variant[:12]}-{seed}"
    if mode == "cli":
        cmd = [
            str(ROOT / ".venv/bin/workbench"), "run", "payments", "--variant", variant,
            "--time-limit", str(time_limit), "--seed", str(seed), "--store", str(store), "--quiet",
        ]  # fmt: skip
        if all_faults:
            from targets.payments.target import all_faults as every_fault
            from targets.payments.variants import variant as spec_of

            cmd += ["--faults", ",".join(every_fault(spec_of(variant)))]
    else:
        cmd = [sys.executable, __file__, "--one", variant, str(seed), str(time_limit), str(store)]
        cmd += ["--fault-interval", str(interval)]
        if all_faults:
            cmd.append("--all-faults")
    began = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    seconds = time.monotonic() - began
    results_files = sorted(p for p in store.glob("*/*/results.json") if "latest" not in p.parts)
    results: dict[str, Any] = {}
    if results_files:
        results = json.loads(results_files[-1].read_text())
    windows: list[str] = []
    for history in store.glob("*/*/history.jsonl"):
        if "latest" in history.parts:
            continue  # the store's "latest" link points at the same run
        for line in history.read_text().splitlines():
            if '"nemesis"' in line and '"start"' in line:
                event = json.loads(line)
                if event.get("f") == "start":
                    windows.append(str(event["value"].get("spec")))
    for run_dir in store.glob("*/*"):
        # Keep the history and verdicts, drop the databases' data (tens of MB per campaign).
        for data in ("pg", "redis"):
            shutil.rmtree(run_dir / data, ignore_errors=True)
    checkers = results.get("checkers", [])
    invalid = [c["checker"] for c in checkers if c.get("valid") is False]
    safety = [c["checker"] for c in checkers if c.get("valid") is False and c["kind"] == "safety"]
    unknown = [c["checker"] for c in checkers if c.get("valid") == "unknown"]
    return {
        "variant": variant,
        "seed": seed,
        "exit": proc.returncode,
        "seconds": round(seconds, 1),
        "invalid": invalid,
        "safety": safety,
        "unknown": unknown,
        "windows": windows,
        "summaries": {c["checker"]: c["summary"] for c in checkers if c.get("valid") is not True},
        "run_dir": str(results_files[-1].parent) if results_files else None,
        "stderr": proc.stderr[-400:] if proc.returncode not in (0, 1) else "",
    }


def table(rows: list[dict[str, Any]], correct: set[str], campaigns: int) -> str:
    lines = [
        "| variant | faults | result | median s | what fired (campaigns) |",
        "|---|---|---|---|---|",
    ]
    order: list[str] = []
    for r in rows:
        if r["variant"] not in order:
            order.append(r["variant"])
    for v in order:
        rs = [r for r in rows if r["variant"] == v]
        fired = Counter(c for r in rs for c in r["invalid"])
        fired_text = ", ".join(f"{c} ({n})" for c, n in fired.most_common()) or "nothing"
        if v in correct:
            clean = sum(1 for r in rs if not r["safety"] and r["exit"] in (0, 1))
            result = f"{clean}/{len(rs)} free of safety anomalies"
            windows = [w for r in rs for w in r.get("windows", [])]
            faults = f"all kinds ({len(windows)} windows, {len(set(windows))} distinct faults)"
        else:
            caught = sum(1 for r in rs if r["invalid"])
            result = f"caught {caught}/{len(rs)}"
            faults = "catalogue mix"
        harness = [r for r in rs if r["exit"] not in (0, 1) or r["run_dir"] is None]
        if harness:
            seeds = ", ".join(str(r["seed"]) for r in harness)
            result += f" ({len(harness)} without a verdict: harness failure, seeds {seeds})"
        median = statistics.median(r["seconds"] for r in rs)
        lines.append(f"| {v} | {faults} | {result} | {median:.0f} | {fired_text} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--one", nargs=4, metavar=("VARIANT", "SEED", "TIME", "STORE"))
    ap.add_argument("--all-faults", action="store_true")
    ap.add_argument(
        "--fault-interval",
        type=float,
        default=4.0,
        help="seconds per quiet period and fault window (api mode only; the CLI uses 4)",
    )
    ap.add_argument("--campaigns", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--bug-time", type=float, default=20.0)
    ap.add_argument("--correct-time", type=float, default=30.0)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--variants", help="comma-separated (default: all)")
    ap.add_argument("--mode", choices=("auto", "cli", "api"), default="auto")
    ap.add_argument("--out", default=str(ROOT / "bench/out/payments"))
    ap.add_argument(
        "--from-logs",
        help="comma-separated campaigns.jsonl files: print their table, later rows replacing "
        "earlier ones of the same variant and seed (to merge reruns), and run nothing",
    )
    args = ap.parse_args()
    if args.from_logs:
        from targets.payments.variants import CORRECT_VARIANTS, VARIANTS

        latest: dict[tuple[str, int], dict[str, Any]] = {}
        for log_path in args.from_logs.split(","):
            for line in Path(log_path).read_text().splitlines():
                row = json.loads(line)
                latest[(row["variant"], row["seed"])] = row
        merged = sorted(
            latest.values(), key=lambda r: (list(VARIANTS).index(r["variant"]), r["seed"])
        )
        print(table(merged, set(CORRECT_VARIANTS), args.campaigns))
        return 0
    if args.one:
        variant, seed, tl, store = args.one
        return _one(
            variant, int(seed), float(tl), Path(store), args.all_faults, args.fault_interval
        )

    from targets.payments.variants import CORRECT_VARIANTS, VARIANTS

    variants = args.variants.split(",") if args.variants else list(VARIANTS)
    mode = args.mode
    if mode == "auto":
        mode = "cli" if cli_usable() else "api"
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for v in variants:
        correct = v in CORRECT_VARIANTS
        for seed in range(args.first_seed, args.first_seed + args.campaigns):
            jobs.append((v, seed, args.correct_time if correct else args.bug_time, correct))
    print(f"payments detection: {len(jobs)} campaigns, mode {mode}, {args.parallel} at a time")
    rows: list[dict[str, Any]] = []
    log = (out / "campaigns.jsonl").open("a")
    with cf.ThreadPoolExecutor(args.parallel) as pool:
        futures = {
            pool.submit(run, v, s, t, out, c, mode, args.fault_interval): (v, s)
            for v, s, t, c in jobs
        }
        for fut in cf.as_completed(futures):
            row = fut.result()
            rows.append(row)
            log.write(json.dumps(row) + "\n")
            log.flush()
            print(
                f"  {row['variant']:<26} seed {row['seed']:>2}  exit {row['exit']}  "
                f"{row['seconds']:>5.1f}s  {', '.join(row['invalid']) or '-'}",
                flush=True,
            )
    rows.sort(key=lambda r: (variants.index(r["variant"]), r["seed"]))
    text = table(rows, set(CORRECT_VARIANTS), args.campaigns)
    (out / "table.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
