"""The ``workbench lin`` command: verdicts as exit codes, one-line errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from checkers.linearizability.cli import add_lin_parser
from workbench.history import Event, write_history

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "porcupine"


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="workbench")
    add_lin_parser(parser.add_subparsers())
    args = parser.parse_args(["lin", *argv])
    code: int = args.func(args)
    return code


def test_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(str(CORPUS / "kv" / "c10-ok.txt"), "--model", "kv") == 0
    assert run(str(CORPUS / "jepsen" / "etcd_000.log"), "--model", "cas-register") == 1
    out = capsys.readouterr().out
    assert "not linearizable" in out and "longest linearizable prefix" in out
    assert run(str(CORPUS / "kv" / "c50-ok.txt"), "--model", "kv", "--timeout", "0.001") == 2


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(str(CORPUS / "kv" / "c01-bad.txt"), "-m", "kv", "--format", "edn", "--json") == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is False and doc["anomalies"][0]["events"]


def test_jsonl_history(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    write_history(path, [Event(0, 0, 0, "invoke", "write", 1), Event(1, 1, 0, "ok", "write", 1)])
    assert run(str(path), "-m", "register") == 0


@pytest.mark.parametrize(
    ("argv", "message", "expected"),
    [
        (["/no/such/file.edn", "-m", "kv"], "no such file", 65),  # unreadable input: data
        ([str(CORPUS / "kv" / "c01-ok.txt"), "-m", "nope"], "known models", 64),
        ([str(CORPUS / "kv" / "c01-ok.txt"), "-m", "register"], "unknown operation", 64),
        ([str(CORPUS / "kv" / "c01-ok.txt"), "-m", "kv", "--format", "jepsen-log"], "", 0),
        ([str(CORPUS / "kv" / "c01-ok.txt"), "-m", "kv", "--timeout", "-1"], "timeout", 64),
    ],
)
def test_usage_errors(
    argv: list[str], message: str, expected: int, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(*argv)
    err = capsys.readouterr().err
    assert code == expected
    if expected == 0:
        # Not a console log: no jepsen.util lines, so an empty (linearizable) history.
        return
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_a_history_whose_indices_go_backwards_is_bad_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "h.edn"
    path.write_text(
        "{:index 4, :process 0, :type :invoke, :f :write, :value 1}\n"
        "{:index 2, :process 0, :type :ok, :f :write, :value 1}\n"
    )
    assert run(str(path), "-m", "register") == 65
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "h.edn:2: index 2 goes backwards (line 1 has 4)" in err
