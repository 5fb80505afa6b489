"""Report size and render time on a 100,000-operation run (goal: report.html < 5 MB).

    .venv/bin/python bench/report_size.py [--ops 100000] [--out bench/out/report-size]

Synthesizes a payments run with faults and anomalies (workbench.report.synth), renders every
report, and prints the sizes and the time each step took.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from workbench.report.html import write_html  # noqa: E402
from workbench.report.junit import write_junit  # noqa: E402
from workbench.report.markdown import write_markdown  # noqa: E402
from workbench.report.model import load_run  # noqa: E402
from workbench.report.synth import synthesize_run  # noqa: E402

GOAL_MB = 5.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--ops", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=32)
    ap.add_argument("--duration", type=float, default=300.0, help="seconds of simulated run")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "report-size")
    args = ap.parse_args(argv)

    shutil.rmtree(args.out, ignore_errors=True)
    t0 = time.perf_counter()
    run = synthesize_run(
        args.out, n_ops=args.ops, workers=args.workers, duration_s=args.duration,
        hostile="<script>alert(1)</script>",
    )  # fmt: skip
    t1 = time.perf_counter()
    view = load_run(run)
    t2 = time.perf_counter()
    html = write_html(view)
    t3 = time.perf_counter()
    write_junit(view)
    write_markdown(view)
    t4 = time.perf_counter()

    mb = html.stat().st_size / 1e6
    hist_mb = (run / "history.jsonl").stat().st_size / 1e6
    print(f"operations        {len(view.ops):,} ({len(view.events):,} events, {hist_mb:.1f} MB)")
    print(f"synthesize        {t1 - t0:6.2f} s")
    print(f"load run          {t2 - t1:6.2f} s")
    print(f"render html       {t3 - t2:6.2f} s")
    print(f"junit + markdown  {t4 - t3:6.2f} s")
    print(f"total report time {t4 - t1:6.2f} s")
    print(f"report.html       {mb:6.2f} MB (goal < {GOAL_MB} MB) {html}")
    return 0 if mb < GOAL_MB else 1


if __name__ == "__main__":
    raise SystemExit(main())
