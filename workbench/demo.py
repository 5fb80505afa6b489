"""``workbench demo`` (``make demo``): short campaigns that show what the workbench finds.

With the payments target installed it runs the correct implementation and a known-buggy one
under the same faults and seed, and prints both verdicts side by side; otherwise it runs the
bundled end-to-end test target.
"""

from __future__ import annotations

from pathlib import Path

from workbench.registry import UnknownName, load_target
from workbench.runner import Campaign, Outcome, run_campaign

DEMO_RUNS = [("payments", "correct-pg"), ("payments", "check-then-act")]
FALLBACK = ("tests.e2e.counter_target:SetTarget", None)
VERDICT = {0: "valid", 1: "ANOMALIES FOUND", 2: "unknown"}


def _run(spec: str, variant: str | None, store: Path) -> Outcome:
    target = load_target(spec)
    return run_campaign(
        Campaign(
            target=target,
            target_spec=spec,
            variant=variant,
            workers=6,
            time_limit=15.0,
            seed=42,
            store=store,
            command=f"workbench run {spec}"
            + (f" --variant {variant}" if variant else "")
            + " --time-limit 15 --workers 6 --seed 42",
        )
    )


def run_demo(store: Path) -> int:
    try:
        load_target("payments")
        runs: list[tuple[str, str | None]] = list(DEMO_RUNS)
    except UnknownName:
        runs = [FALLBACK]
    worst = 0
    lines = []
    for spec, variant in runs:
        print(f"demo: running {spec} {variant or ''} for 15 s under faults ...", flush=True)
        outcome = _run(spec, variant, store)
        worst = max(worst, outcome.exit_code)
        summaries = [
            f"{r['checker']}: {r['summary']}"
            for r in outcome.results.get("checkers", [])
            if r["valid"] is not True
        ]
        verdict = VERDICT.get(outcome.exit_code, f"harness failed ({outcome.error})")
        lines.append(f"  {spec} {variant or ''}: {verdict}")
        lines.extend(f"      {s}" for s in summaries)
        report = outcome.run_dir / "report.html"
        lines.append(f"      report: {report if report.exists() else outcome.run_dir}")
    print("\ndemo verdicts:")
    print("\n".join(lines))
    # The demo succeeds when the campaigns ran; finding the bug in the buggy variant is the point.
    return 0 if worst in (0, 1) else worst
