"""fixgw.throttle's token bucket with frozen time: a second's worth at once, then the rate."""

from __future__ import annotations

import pytest

from fixgw.throttle import RateLimit


def test_bucket_allows_a_seconds_worth_then_the_rate() -> None:
    b = RateLimit(5)
    assert [b.allow(100.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert b.allow(100.1) is False          # 0.5 of a token refilled
    assert b.allow(100.2) is True           # one whole token
    assert b.allow(100.2) is False
    assert [b.allow(110.0) for _ in range(6)] == [True] * 5 + [False]   # never more than the bucket
    assert b.text() == "throttled: more than 5 messages/s on this session"


def test_bucket_fractional_rate_and_bad_rate() -> None:
    b = RateLimit(0.5)                      # one message every 2 s, bucket of one
    assert [b.allow(0.0), b.allow(1.0), b.allow(2.0)] == [True, False, True]
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match="rate must be > 0"):
            RateLimit(bad)
