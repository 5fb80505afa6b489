"""Detection benchmark of the locks target (not a unit test; about 40 minutes).

Every bug variant should be caught in at least 9 of 10 campaigns of 20 s with its catalogue
fault mix; every correct variant should show no safety anomaly in 10 campaigns of 30 s with all
its fault kinds (the claims and the table are described in ``bench/detection.py``).

    .venv/bin/python bench/locks_detection.py                 # everything, 2 at a time
    .venv/bin/python bench/locks_detection.py --variants redis-unfenced --campaigns 3
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.detection import Bench, main
from targets.locks.variants import BUGGY, CORRECT

BENCH = Bench(
    name="locks",
    spec="targets.locks.target:LocksTarget",
    variants=[*BUGGY, *CORRECT],
    correct=lambda v: v in CORRECT,
    final_reads=frozenset({"read-resource"}),
)

if __name__ == "__main__":
    sys.exit(main(BENCH, __file__, __doc__))
