"""Every verdict of the Porcupine corpus (108 real histories) must match."""

from __future__ import annotations

from pathlib import Path

import pytest

from checkers.linearizability import Linearizable
from workbench.checker import CheckContext
from workbench.jepsen_format import read_events

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "porcupine"
VERDICTS = CORPUS / "VERDICTS.tsv"


def _rows() -> list[tuple[str, str, str]]:
    # Fail loudly at collection: a missing corpus must not turn into skipped tests.
    if not VERDICTS.is_file():
        raise FileNotFoundError(f"linearizability corpus missing: {VERDICTS.resolve()}")
    rows = []
    for line in VERDICTS.read_text().splitlines()[1:]:
        if line.strip():
            f, model, expected = line.split("\t")
            rows.append((f, model, expected))
    return rows


ROWS = _rows()


def test_corpus_is_complete() -> None:
    assert len(ROWS) == 108


@pytest.mark.parametrize(("path", "model", "expected"), ROWS, ids=[r[0] for r in ROWS])
def test_corpus_verdict(path: str, model: str, expected: str) -> None:
    history = read_events(CORPUS / path)
    result = Linearizable(model, time_limit=60).check(history, CheckContext())
    assert result.valid == (expected == "linearizable"), result.summary
    if result.valid is False:
        anomaly = result.anomalies[0]
        assert anomaly.events, "a violation names the events involved"
        assert anomaly.data["operation"] is not None
        assert "Not linearizable" in anomaly.explanation
        culprit = [w for w in anomaly.witnesses if w.role == "culprit: cannot be linearized"]
        assert [w.invoke for w in culprit] == [anomaly.data["operation"]["invoke_index"]]
        assert anomaly.at == max(culprit[0].indices())
