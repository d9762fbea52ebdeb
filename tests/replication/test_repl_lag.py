"""Replication lag per origin (replication.lag): records and seconds behind, and when a node says
it is behind, with frozen time."""

from __future__ import annotations

import pytest

from replication.lag import MAX_MARKS, LagTracker, OriginLag


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_records_and_seconds_behind_follow_what_was_announced_and_what_is_held() -> None:
    clock = Clock()
    lag = LagTracker(behind_after_s=5.0, monotonic=clock)
    assert lag.report({}) == {}
    lag.heard("ssu1", 100)            # t=100
    clock.t = 101.0
    lag.heard("ssu1", 250)            # t=101
    lag.heard("ssu1", 200)            # lower than known: nothing new
    clock.t = 103.0
    assert lag.report({"ssu1": 40}) == {"ssu1": OriginLag(210, 3.0)}
    # everything announced at t=100 is held: behind since the next announcement (t=101)
    assert lag.report({"ssu1": 100}) == {"ssu1": OriginLag(150, 2.0)}
    assert lag.report({"ssu1": 250}) == {"ssu1": OriginLag(0, 0.0)}
    assert lag.report({"ssu1": 250})["ssu1"].as_dict() == {"records": 0, "seconds": 0.0}


def test_behind_after_the_threshold_and_caught_up_again_are_reported_once() -> None:
    clock = Clock()
    lag = LagTracker(behind_after_s=5.0, monotonic=clock)
    lag.heard("cfu1", 10)
    lag.heard("ssu2", 10)
    clock.t += 5.0
    assert lag.update_behind(lag.report({"ssu2": 10})) == ([], [])   # exactly 5 s: not over
    clock.t += 0.5
    assert lag.update_behind(lag.report({"ssu2": 10})) == (["cfu1"], [])
    assert lag.update_behind(lag.report({"ssu2": 10})) == ([], [])   # said once
    assert lag.behind == {"cfu1"}
    assert lag.update_behind(lag.report({"cfu1": 10, "ssu2": 10})) == ([], ["cfu1"])
    assert lag.behind == set()


def test_memory_per_origin_is_bounded_and_keeps_the_oldest_time() -> None:
    clock = Clock()
    lag = LagTracker(monotonic=clock)
    for i in range(1, 3 * MAX_MARKS):
        clock.t = 100.0 + i
        lag.heard("a", i)
    assert len(lag._marks["a"]) == MAX_MARKS
    clock.t = 10_000.0
    assert lag.report({"a": 0}) == {"a": OriginLag(3 * MAX_MARKS - 1, 10_000.0 - 101.0)}


def test_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError, match="behind_after_s"):
        LagTracker(behind_after_s=0)
