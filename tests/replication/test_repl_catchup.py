from __future__ import annotations

from replication.catchup import CatchUp, MissingRange


class Tick:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_a_gap_is_requested_once_until_retry_time() -> None:
    tick = Tick()
    c = CatchUp(retry_after=2.0, chunk=100, grace=0.5, monotonic=tick)
    assert c.wanted("o", hwm=5, next_held=9) == MissingRange("o", 6, 8)
    assert c.wanted("o", hwm=5, next_held=12) is None  # the same gap, already asked
    tick.t += 2.0
    assert c.wanted("o", hwm=5, next_held=12) == MissingRange("o", 6, 11)


def test_answered_request_allows_the_next_one_at_once() -> None:
    c = CatchUp(retry_after=10.0, chunk=100, monotonic=Tick())
    assert c.wanted("o", 0, 5) == MissingRange("o", 1, 4)
    assert c.wanted("o", 20, 30) == MissingRange("o", 21, 29)


def test_no_gap_no_request() -> None:
    c = CatchUp(monotonic=Tick())
    assert c.wanted("o", 10, None) is None
    assert c.wanted("o", 10, 11) is None


def test_digest_head_counts_after_the_grace_period_and_is_chunked() -> None:
    tick = Tick()
    c = CatchUp(retry_after=1.0, chunk=100, grace=0.5, monotonic=tick)
    c.saw_head("o", 1000)
    assert c.wanted("o", 10, None) is None  # records up to 1000 may still be on their way
    tick.t += 0.5
    assert c.head("o") == 1000
    assert c.wanted("o", 10, None) == MissingRange("o", 11, 110)
    assert c.wanted("o", 60, None) is None  # inside the request in flight
    assert c.wanted("o", 110, None) == MissingRange("o", 111, 210)


def test_a_replica_that_is_still_catching_up_does_not_ask() -> None:
    tick = Tick()
    c = CatchUp(retry_after=1.0, chunk=1000, grace=0.5, monotonic=tick)
    c.saw_head("o", 5000)
    for hwm in range(0, 3000, 300):  # the backlog streams in: hwm keeps moving
        tick.t += 0.2
        assert c.wanted("o", hwm, None) is None
    tick.t += 0.5  # hwm stuck at 2700 for the grace period: the rest was lost
    assert c.wanted("o", 2700, None) == MissingRange("o", 2701, 3700)


def test_a_growing_head_still_becomes_due() -> None:
    tick = Tick()
    c = CatchUp(grace=0.5, monotonic=tick)
    for i in range(10):
        c.saw_head("o", 100 + i)
        tick.t += 0.1
    assert c.head("o") >= 100


def test_forget_lets_a_failed_request_be_sent_again() -> None:
    c = CatchUp(retry_after=100.0, monotonic=Tick())
    assert c.wanted("o", 0, 3) is not None
    c.forget("o")
    assert c.wanted("o", 0, 3) == MissingRange("o", 1, 2)


def test_a_forged_high_head_is_dropped_when_the_origin_announces_its_own() -> None:
    tick = Tick()
    c = CatchUp(retry_after=1.0, chunk=100, grace=0.5, monotonic=tick)
    c.saw_head("o", 10**12)  # forged
    assert c.wanted("o", 10, None) is None  # not before the grace period
    tick.t += 1.0
    assert c.head("o") == 10**12
    assert c.wanted("o", 10, None) == MissingRange("o", 11, 110)
    c.saw_head("o", 10)  # the origin's own digest: it has 10 records
    assert c.head("o") == 10
    tick.t += 5.0
    assert c.wanted("o", 10, None) is None  # nothing more to ask for, ever
    c.saw_head("o", 12)  # and real progress still counts
    tick.t += 1.0
    assert c.wanted("o", 10, None) == MissingRange("o", 11, 12)
