"""Judging a history: run a target's checkers and compose their verdicts into ``results.json``.

``results.json``::

    {"valid": true | false | "unknown",
     "exit_code": 0 | 1 | 2 | 255,
     "checkers": [CheckResult.to_json(), ...],
     "ops": {"ok": 812, "fail": 40, "info": 9},
     "duration_s": 21.4,
     "torn_line": null | 1234,          # a cut-short last history line that was dropped
     "harness_error": null | "..."}     # why the campaign itself failed, if it did

Exit codes follow Jepsen: 0 valid, 1 anomalies found, 2 unknown, 255 the harness failed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from workbench.checker import CheckContext, Checker, CheckResult, merge_validity
from workbench.history import Event, read_history
from workbench.registry import check_variant, load_target, resolve_checkers
from workbench.store import CAMPAIGN_FILE, HISTORY_FILE, RESULTS_FILE, read_json, write_json
from workbench.target import Options, make_plan

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_UNKNOWN = 2
EXIT_USAGE = 64
EXIT_INTERRUPTED = 130
EXIT_HARNESS = 255


def run_checkers(
    checkers: Sequence[Checker], history: Sequence[Event], context: CheckContext
) -> list[CheckResult]:
    """Runs each checker; one that raises gives ``unknown`` (with the error) rather than hiding
    the others' verdicts."""
    results = []
    for checker in checkers:
        try:
            results.append(checker.check(history, context))
        except Exception as e:  # a crashing checker must not look like a pass
            results.append(
                CheckResult(
                    checker.name,
                    "unknown",
                    summary=f"checker crashed: {type(e).__name__}: {e}",
                )
            )
    return results


def exit_code_for(valid: Any) -> int:
    if valid is True:
        return EXIT_VALID
    if valid is False:
        return EXIT_INVALID
    return EXIT_UNKNOWN


def compose_results(
    results: Sequence[CheckResult],
    history: Sequence[Event],
    *,
    duration_s: float | None = None,
    torn_line: int | None = None,
    harness_error: str | None = None,
) -> dict[str, Any]:
    valid = merge_validity(r.valid for r in results) if results else "unknown"
    ops = Counter(e.type for e in history if e.is_client and e.type != "invoke")
    reason: str | None = None
    if valid is True and not ops.get("ok"):
        # Checkers judge what happened; when nothing succeeded, "no anomaly" says nothing.
        valid = "unknown"
        reason = (
            f"no operation succeeded ({sum(ops.values())} completed, none ok): the checkers "
            "found nothing because nothing happened; see the run's logs"
        )
    return {
        "valid": valid,
        "reason": reason,
        "exit_code": EXIT_HARNESS if harness_error else exit_code_for(valid),
        "checkers": [r.to_json() for r in results],
        "ops": {t: ops.get(t, 0) for t in ("ok", "fail", "info")},
        "duration_s": duration_s,
        "torn_line": torn_line,
        "harness_error": harness_error,
    }


def checkers_of(campaign: Mapping[str, Any]) -> list[Checker]:
    """The checkers of a stored campaign: its target's plan for the variant and options."""
    target = load_target(str(campaign["target"]))
    variant = check_variant(target, campaign.get("variant"))
    options = Options(
        workers=int(campaign.get("workers", 8)),
        time_limit=float(campaign.get("time_limit", 20.0)),
        rate=campaign.get("rate"),
        seed=int(campaign.get("seed", 0)),
    )
    return resolve_checkers(make_plan(target, variant, options).checkers)


def check_run(
    run_dir: Path,
    *,
    harness_error: str | None = None,
    checkers: Sequence[Checker] | None = None,
) -> dict[str, Any]:
    """Re-reads a run's history and campaign, runs the checkers (by default the target's, from
    its plan), writes and returns ``results.json``. Works on the directory of a killed campaign
    (torn last line included)."""
    campaign: Mapping[str, Any] = read_json(run_dir / CAMPAIGN_FILE)
    if checkers is None:
        checkers = checkers_of(campaign)
    loaded = read_history(run_dir / HISTORY_FILE)
    t0 = time.monotonic()
    results = run_checkers(checkers, loaded.events, CheckContext(campaign=campaign))
    duration = loaded.events[-1].time / 1e9 if loaded.events else 0.0
    out = compose_results(
        results,
        loaded.events,
        duration_s=round(duration, 3),
        torn_line=loaded.torn_line,
        harness_error=harness_error,
    )
    out["check_seconds"] = round(time.monotonic() - t0, 3)
    write_json(run_dir / RESULTS_FILE, out)
    return out
