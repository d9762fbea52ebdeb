"""The per-requester resend budget, on an injected clock."""

from __future__ import annotations

from replication.request_budget import RequestBudget


class Tick:
    def __init__(self) -> None:
        self.t = 50.0

    def __call__(self) -> float:
        return self.t


def test_bursts_then_the_rate_per_requester() -> None:
    tick = Tick()
    b = RequestBudget(records_per_s=1000, record_burst=2000, requests_per_s=5, request_burst=3, monotonic=tick)
    assert [b.allow("a", 1000) for _ in range(3)] == [True, True, False]  # 2,000 records of burst
    assert b.allow("b", 1000)  # another requester has its own budget
    tick.t += 0.5
    assert b.allow("a", 500) and not b.allow("a", 1)  # 0.5 s brought 500 records back
    tick.t += 10
    assert [b.allow("a", 1) for _ in range(4)] == [True, True, True, False]  # 3 requests of burst
    tick.t += 0.2
    assert b.allow("a", 1) and not b.allow("a", 1)  # 5 requests/s


def test_a_refused_request_takes_nothing_and_a_big_one_fits_a_full_bucket() -> None:
    tick = Tick()
    b = RequestBudget(records_per_s=100, record_burst=1000, requests_per_s=100, request_burst=100, monotonic=tick)
    assert b.allow("a", 5000)  # more than the burst: allowed once the bucket is full, leaving a debt
    assert not b.allow("a", 1)
    tick.t += 40  # the debt of 4,000 paid: an empty bucket
    assert not b.allow("a", 1000)
    tick.t += 10  # and full again
    assert b.allow("a", 1000)
