"""Detection benchmark of the outbox target (not a unit test; about 75 minutes at 2 at a time).

Every bug variant should be caught in at least 9 of 10 campaigns of 20 s with its catalogue
fault mix (``targets.outbox.target.BUG_FAULTS``); every correct variant should show no safety
anomaly in 10 campaigns of 30 s with every fault kind that applies to it
(``targets.outbox.target.all_faults``). The claims and the table: ``bench/detection.py``.

    .venv/bin/python bench/outbox_detection.py                      # everything
    .venv/bin/python bench/outbox_detection.py --variants serial-cursor --campaigns 3
    .venv/bin/python bench/outbox_detection.py --rejudge out.jsonl  # judge stored runs again
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.detection import Bench, main
from targets.outbox.variants import VARIANTS

BENCH = Bench(
    name="outbox",
    spec="targets.outbox.target:OutboxTarget",
    variants=list(VARIANTS),
    correct=lambda v: VARIANTS[v].correct,
    final_reads=frozenset({"read-orders", "read-effects", "read-stream", "progress"}),
)

if __name__ == "__main__":
    sys.exit(main(BENCH, __file__, __doc__))
