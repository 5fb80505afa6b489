"""Readers for Jepsen's console log and EDN, the EDN writer, and format detection."""

from __future__ import annotations

from pathlib import Path

import edn_format
import pytest

from workbench.history import Event, HistoryError, write_history
from workbench.jepsen_format import (
    detect_format,
    event_to_edn,
    parse_edn,
    parse_jepsen_log,
    read_events,
    write_edn,
)

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "porcupine"


def test_jepsen_log_lines() -> None:
    text = (
        "INFO  jepsen.util - 3\t:invoke\t:cas\t[1 4]\n"
        "INFO  jepsen.core - something else\n"
        "INFO  jepsen.util - 3  :fail  :cas  [1 4]\n"
        "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n"
        "INFO  jepsen.util - 0\t:fail\t:read\t:timed-out\n"
        "INFO  jepsen.util - :nemesis\t:info\t:start\tnil\n"
    )
    evs = parse_jepsen_log(text)
    assert [(e.index, e.time) for e in evs] == [(i, i) for i in range(5)]
    assert evs[0] == Event(0, 0, 3, "invoke", "cas", [1, 4])
    assert evs[3].value == "timed-out"
    assert evs[4].process == "nemesis"


def test_jepsen_log_malformed_names_file_and_line() -> None:
    with pytest.raises(HistoryError, match=r"x\.log:2: .*type :bogus"):
        parse_jepsen_log(
            "INFO  jepsen.util - 1 :invoke :read nil\nINFO  jepsen.util - 1 :bogus :read nil",
            "x.log",
        )
    with pytest.raises(HistoryError, match=r"x\.log:1:"):
        parse_jepsen_log("INFO  jepsen.util - 1 :invoke", "x.log")


def test_corpus_log_and_edn_read() -> None:
    evs = read_events(CORPUS / "jepsen" / "etcd_000.log")
    assert len(evs) > 100 and {e.type for e in evs} <= {"invoke", "ok", "fail", "info"}
    kv = read_events(CORPUS / "kv" / "c01-ok.txt")
    assert kv[0].value == {"key": kv[0].value["key"], "value": kv[0].value["value"]}
    assert kv[0].f in ("get", "put", "append")
    assert read_events(CORPUS / "jepsen" / "etcd_095.log") == []


def test_fast_edn_reader_agrees_with_edn_format() -> None:
    text = (CORPUS / "kv" / "c10-bad.txt").read_text()
    ours = parse_edn(text)
    for line, event in zip(text.splitlines(), ours, strict=True):
        ref = edn_format.loads(line)
        assert event.process == ref[edn_format.Keyword("process")]
        assert event.value["value"] == ref[edn_format.Keyword("value")]
        assert event.value["key"] == ref[edn_format.Keyword("key")]


def test_edn_vector_of_maps_and_fallback() -> None:
    text = (
        "[{:index 5, :time 10, :type :invoke, :process 0, :f :read}\n"
        " {:index 6, :time 11, :type :ok, :process 0, :f :read, :value 3}]"
    )
    evs = parse_edn(text)
    assert [(e.index, e.time, e.type, e.value) for e in evs] == [
        (5, 10, "invoke", None),
        (6, 11, "ok", 3),
    ]
    # A tagged literal is outside the fast subset: edn_format reads it.
    tagged = '{:type :invoke, :process 0, :f :read, :at #inst "2020-01-01T00:00:00Z"}'
    (e,) = parse_edn(tagged)
    assert e.f == "read" and "at" in e.extra


def test_edn_malformed_names_line() -> None:
    with pytest.raises(HistoryError, match=r"h\.edn:2: not a Jepsen operation \(missing :f\)"):
        parse_edn("{:type :invoke, :process 0, :f :read}\n{:type :ok, :process 0}", "h.edn")
    with pytest.raises(HistoryError, match=r"h\.edn:1: .*never closed"):
        parse_edn("{:type :invoke", "h.edn")
    with pytest.raises(HistoryError, match="type"):
        parse_edn("{:type :done, :process 0, :f :read}", "h.edn")


def test_edn_writer_round_trip(tmp_path: Path) -> None:
    evs = [
        Event(0, 5, 0, "invoke", "append", {"key": "k", "value": "x 1"}),
        Event(1, 7, 0, "ok", "append", {"key": "k", "value": "x 1"}),
        Event(2, 8, "nemesis", "info", "partition", ["n1", "n2"], extra={"note": 'a "q"'}),
        Event(3, 9, 1, "invoke", "cas", [1, None], error="timed-out"),
        Event(4, 10, 1, "fail", "cas", [1, None], extra={"flag": True, "ratio": 0.5}),
    ]
    path = tmp_path / "h.edn"
    write_edn(path, evs)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("{:index 0, :time 5, :type :invoke, :process 0, :f :append")
    assert ":process :nemesis" in lines[2]
    for line in lines:  # Jepsen's tools (any EDN reader) can read every line
        edn_format.loads(line)
    assert read_events(path) == evs
    assert event_to_edn(evs[0], split_key=False).endswith(':value {:key "k", :value "x 1"}}')


def test_detect_format(tmp_path: Path) -> None:
    j = tmp_path / "history.jsonl"
    write_history(j, [Event(0, 0, 0, "invoke", "read")])
    assert detect_format(j) == "jsonl"
    assert detect_format(CORPUS / "kv" / "c01-ok.txt") == "edn"
    assert detect_format(CORPUS / "jepsen" / "etcd_001.log") == "jepsen-log"
    odd = tmp_path / "odd.txt"
    odd.write_text("hello\n")
    with pytest.raises(HistoryError, match="cannot tell the format"):
        detect_format(odd)
    with pytest.raises(HistoryError, match="no such file"):
        read_events(tmp_path / "missing.edn")
