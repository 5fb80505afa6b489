from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from checkers.sets import SetChecker
from workbench.checker import CheckContext
from workbench.history import Event


def history(adds: list[tuple[int, str]], final: list[int] | None) -> list[Event]:
    events: list[Event] = []
    for element, result in adds:
        i = len(events)
        events.append(Event(i, i, element, "invoke", "add", element))
        events.append(Event(i + 1, i + 1, element, result, "add", element))
    if final is not None:
        i = len(events)
        events.append(Event(i, i, 999, "invoke", "read", None))
        events.append(Event(i + 1, i + 1, 999, "ok", "read", final))
    return events


def check(events: list[Event]):  # type: ignore[no-untyped-def]
    return SetChecker().check(events, CheckContext())


def test_all_acknowledged_present_is_valid() -> None:
    r = check(history([(1, "ok"), (2, "info"), (3, "fail")], [1, 2]))
    assert r.valid is True
    assert r.stats["recovered"] == 1


def test_lost_element_is_reported_with_its_operations() -> None:
    r = check(history([(1, "ok"), (2, "ok")], [1]))
    assert r.valid is False
    (a,) = r.anomalies
    assert a.kind == "lost" and a.data["element"] == 2
    assert a.events == (2, 3, 4, 5)
    assert "1 acknowledged elements lost" in r.summary
    ack, read = a.witnesses
    assert (ack.role, ack.invoke, ack.completion) == ("acknowledged add", 2, 3)
    assert (read.invoke, read.completion) == (4, 5)
    assert read.excerpt == {"element": 2, "present": False, "elements_read": 1}
    assert a.at == 4


def test_failed_add_that_took_effect_is_an_anomaly() -> None:
    r = check(history([(1, "fail")], [1]))
    assert r.valid is False and r.anomalies[0].kind == "failed-but-present"
    failed, read = r.anomalies[0].witnesses
    assert (failed.role, failed.invoke, failed.completion) == ("failed add", 0, 1)
    assert read.excerpt == {"element": 1, "present": True} and read.completion == 3


def test_unexpected_element_is_an_anomaly() -> None:
    r = check(history([(1, "ok")], [1, 42]))
    assert r.valid is False and r.anomalies[0].kind == "unexpected"
    (read,) = r.anomalies[0].witnesses
    assert read.excerpt == {"element": 42, "present": True} and read.invoke == 2


def test_no_final_read_is_unknown() -> None:
    assert check(history([(1, "ok")], None)).valid == "unknown"


@given(
    st.lists(
        st.tuples(st.integers(0, 50), st.sampled_from(["ok", "info", "fail"]), st.booleans()),
        unique_by=lambda x: x[0],
    )
)
def test_a_correct_store_is_never_flagged(adds: list[tuple[int, str, bool]]) -> None:
    """A store that keeps every ok add, may or may not keep info adds, and keeps no failed add
    always passes."""
    final = [e for e, t, kept in adds if t == "ok" or (t == "info" and kept)]
    assert check(history([(e, t) for e, t, _ in adds], final)).valid is True
