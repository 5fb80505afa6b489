from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.history import Event, write_history

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_lists_every_subcommand_with_one_line() -> None:
    p = run_cli("--help")
    assert p.returncode == 0
    for cmd in ("run", "check", "targets", "faults", "import-jepsen", "export-jepsen", "demo"):
        assert cmd in p.stdout


def test_unknown_target_is_a_usage_error_listing_valid_ones() -> None:
    p = run_cli("run", "no-such-target")
    assert p.returncode == 64
    assert "unknown target 'no-such-target'" in p.stderr
    assert "valid targets" in p.stderr
    assert "Traceback" not in p.stderr


def test_unknown_variant_lists_the_valid_variants(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "tests.e2e.counter_target:SetTarget", "--variant", "nope"])
    assert code == 64
    err = capsys.readouterr().err
    assert "no variant 'nope'" in err and "default" in err


def test_unknown_fault_lists_the_valid_faults(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "tests.e2e.counter_target:SetTarget", "--faults", "meteor"])
    assert code == 64
    err = capsys.readouterr().err
    assert "unknown fault 'meteor'" in err and "partition" in err


def test_bad_arguments_are_a_usage_error() -> None:
    p = run_cli("run")
    assert p.returncode == 64


def _run_dir(tmp_path: Path, events: list[Event]) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    write_history(run / "history.jsonl", events)
    (run / "campaign.json").write_text(
        json.dumps({"target": "tests.e2e.counter_target:SetTarget", "variant": "default"})
    )
    return run


def _set_history(lost: bool) -> list[Event]:
    return [
        Event(0, 0, 0, "invoke", "add", 1),
        Event(1, 1, 0, "ok", "add", 1),
        Event(2, 2, 1, "invoke", "add", 2),
        Event(3, 3, 1, "ok", "add", 2),
        Event(4, 4, 0, "invoke", "read"),
        Event(5, 5, 0, "ok", "read", [1] if lost else [1, 2]),
    ]


@pytest.mark.parametrize(("lost", "code"), [(False, 0), (True, 1)])
def test_check_rejudges_a_stored_run(tmp_path: Path, lost: bool, code: int) -> None:
    run = _run_dir(tmp_path, _set_history(lost))
    p = run_cli("check", str(run))
    assert p.returncode == code, p.stderr
    results = json.loads((run / "results.json").read_text())
    assert results["valid"] is (not lost)
    assert results["checkers"][0]["checker"] == "set"


def test_check_reads_a_torn_history_and_says_so(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, _set_history(False))
    with open(run / "history.jsonl", "a") as fh:
        fh.write('{"index": 6, "ti')
    p = run_cli("check", str(run))
    assert p.returncode == 0, p.stderr
    assert "cut short" in p.stderr


def test_malformed_history_is_a_data_error_without_traceback(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, _set_history(False))
    text = (run / "history.jsonl").read_text().splitlines()
    text.insert(2, "not json")
    (run / "history.jsonl").write_text("\n".join(text) + "\n")
    p = run_cli("check", str(run))
    assert p.returncode == 65
    assert "history.jsonl:3" in p.stderr
    assert "Traceback" not in p.stderr


def test_check_of_a_missing_directory_is_a_data_error(tmp_path: Path) -> None:
    p = run_cli("check", str(tmp_path / "nope"))
    assert p.returncode == 65
    assert "does not exist" in p.stderr


def test_a_fault_missing_its_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "tests.e2e.counter_target:SetTarget", "--faults", "failpoint"])
    assert code == 64
    assert "needs point=NAME" in capsys.readouterr().err


SET = "tests.e2e.counter_target:SetTarget"


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        (
            "partition:links=zzz",
            "no link matches 'zzz'; links: api-1->pg, api-2->pg, client->api-1, client->api-2",
        ),
        ("kill:service=ap", "no service 'ap'; services: api"),
        ("pause:node=api-3", "no node 'api-3'; nodes: pg, api-1, api-2"),
        ("kill:nodes=x", "kill has no option 'nodes'; its options: node, service, select"),
    ],
)
def test_a_fault_aimed_at_nothing_is_a_usage_error_naming_what_exists(
    fault: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Refused before anything starts: no run directory is made.
    code = main(["run", SET, "--faults", fault, "--store", str(tmp_path / "store")])
    assert code == 64
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--time-limit", "-5"], "the time limit must be above 0 seconds (got -5)"),
        (["--workers", "0"], "workers must be at least 1 (got 0)"),
        (["--rate", "0"], "the rate must be above 0 operations per second (got 0)"),
    ],
)
def test_impossible_numbers_are_usage_errors(
    args: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", SET, *args, "--store", str(tmp_path / "store")])
    assert code == 64
    assert says in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_a_bad_schedule_file_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    missing = run_cli("run", SET, "--schedule", str(tmp_path / "nope.json"))
    assert missing.returncode == 64 and "no such file" in missing.stderr
    assert "Traceback" not in missing.stderr
    garbage = tmp_path / "campaign.json"
    garbage.write_text("{not json")
    bad = run_cli("run", SET, "--schedule", str(garbage))
    assert bad.returncode == 65 and "not a readable campaign.json" in bad.stderr
    assert "Traceback" not in bad.stderr
    garbage.write_text(json.dumps({"schedule": [{"at": 1.0, "action": "start"}]}))
    partial = run_cli("run", SET, "--schedule", str(garbage))
    assert partial.returncode == 65 and "not a stored schedule" in partial.stderr


def test_a_schedule_naming_a_fault_the_campaign_lacks_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stored = tmp_path / "campaign.json"
    stored.write_text(
        json.dumps(
            {
                "faults": ["kill"],
                "schedule": [
                    {"at": 1.0, "action": "start", "fault": 3, "window": 0},
                    {"at": 2.0, "action": "stop", "fault": 3, "window": 0},
                ],
            }
        )
    )
    code = main(["run", SET, "--schedule", str(stored), "--store", str(tmp_path / "s")])
    assert code == 64
    assert "the stored schedule names fault 3, but the campaign has 1 fault spec" in (
        capsys.readouterr().err
    )
