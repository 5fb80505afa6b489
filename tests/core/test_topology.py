"""Topology validation and the JSON shape of checker series (pure units)."""

from __future__ import annotations

import pytest

from workbench import CheckResult, Postgres, Series, Topology


def test_postgres_settings_pass_validation_unless_they_touch_the_harness_own() -> None:
    Topology(postgres=[Postgres("pg", settings={"wal_level": "logical"})]).validate()
    with pytest.raises(ValueError, match="fsync is the harness's own"):
        Topology(postgres=[Postgres("pg", settings={"fsync": "off"})]).validate()


def test_series_survive_a_json_round_trip_and_bad_points_are_dropped() -> None:
    s = Series("lag", "delivery lag", "s", ((0.5, 0.02), (1.5, 0.3)), "commit to applied")
    r = CheckResult("delivery-lag", True, "liveness", "p99 0.3 s", series=(s,))
    back = CheckResult.from_json(r.to_json())
    assert back.series == (s,)
    raw = r.to_json()
    raw["series"][0]["points"].append(["x", 1])
    assert CheckResult.from_json(raw).series[0].points == s.points
    assert "series" not in CheckResult("c", True).to_json()
