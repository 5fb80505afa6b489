"""Plugins are checked when they load: a missing part or a misspelled optional one is one line
naming it, and exit 64 from the CLI — never silently ignored."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from workbench.plugins import PluginError, Spec, check_plugin
from workbench.registry import (
    UnknownName,
    load_checkers,
    load_faults,
    load_target,
    resolve_checkers,
)
from workbench.runner import Campaign, prepare
from workbench.target import Options, make_plan

REPO = Path(__file__).resolve().parents[2]
MOD = "tests.core.plugin_targets"


def usage_error(spec: str) -> str:
    """Runs ``workbench run SPEC`` and returns its one line on stderr (asserting exit 64)."""
    p = subprocess.run(
        [sys.executable, "-m", "workbench", "run", spec, "--quiet", "--store", "/nonexistent"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 64, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    return lines[0]


def test_a_good_target_prepares_with_registered_checker_names() -> None:
    target = load_target(f"{MOD}:Good")
    prepared = prepare(Campaign(target=target, target_spec=f"{MOD}:Good", faults=["kill"]))
    assert [c.name for c in prepared.checkers] == ["set"]
    assert [f.name for f in prepared.faults] == ["kill"]


def test_missing_plan_names_the_part_and_the_likely_typo() -> None:
    line = usage_error(f"{MOD}:NoPlan")
    assert "has no 'plan'" in line and "plann" in line


def test_missing_description_is_named() -> None:
    assert "has no 'description'" in usage_error(f"{MOD}:NoDescription")


def test_misspelled_plan_field_suggests_the_field() -> None:
    line = usage_error(f"{MOD}:PlanFieldTypo")
    assert "op_timout" in line and "did you mean 'op_timeout'" in line


def test_misspelled_optional_client_method_is_an_error() -> None:
    line = usage_error(f"{MOD}:ClientTypo")
    assert "'clasify' is not a part of a client; did you mean 'classify'" in line


def test_a_sync_invoke_is_refused() -> None:
    assert "'invoke' should be an async method" in usage_error(f"{MOD}:ClientNotAsync")


def test_unknown_checker_name_lists_the_registered_ones() -> None:
    line = usage_error(f"{MOD}:UnknownChecker")
    assert "unknown checker 'no-such-checker'" in line and "mutual-exclusion" in line


def test_spec_accepts_helpers_that_are_not_near_a_part() -> None:
    class WithHelpers:
        name = "x"

        def check(self) -> None: ...

        def summarise(self) -> None: ...  # not close to any part: allowed

    spec = Spec("checker", {"name": "str", "check": "method"}, {"kind": "str"})
    check_plugin(WithHelpers, spec)
    WithHelpers.knd = "safety"  # type: ignore[attr-defined]
    with pytest.raises(PluginError, match="'knd' is not a part of a checker; did you mean 'kind'"):
        check_plugin(WithHelpers, spec)


def test_the_builtin_entry_points_really_load() -> None:
    faults = load_faults()
    assert len(faults) == 15 and {"partition", "kill", "failpoint", "clock"} <= set(faults)
    checkers = load_checkers()
    assert {"set", "double-charge", "mutual-exclusion", "lost-update"} <= set(checkers)
    assert [c.name for c in resolve_checkers(["fencing", "liveness"])] == ["fencing", "liveness"]
    with pytest.raises(UnknownName, match="valid checkers"):
        resolve_checkers(["nope"])


def test_every_bundled_target_plans_every_variant() -> None:
    for spec in ("payments", "locks"):
        target = load_target(spec)
        for variant in target.variants:
            plan = make_plan(target, variant, Options(workers=4, seed=3))
            assert plan.faults and plan.checkers, (spec, variant)
            prepare(Campaign(target=target, target_spec=spec, variant=variant))


def test_two_plans_share_no_state() -> None:
    """A plan is built per campaign: the payments ledger is not shared between two of them."""
    target = load_target("payments")
    a = make_plan(target, "correct-pg", Options())
    b = make_plan(target, "correct-pg", Options())
    assert a.workload is not b.workload
    assert a.workload.ledger is not b.workload.ledger  # type: ignore[attr-defined]
