"""The latency histogram the metrics read: buckets by upper bound, cumulative like Prometheus."""

from __future__ import annotations

import pytest

from replication.histogram import LatencyHistogram


def test_observations_land_in_the_first_bucket_not_below_them() -> None:
    h = LatencyHistogram((0.001, 0.01, 0.1))
    for v in (0.0005, 0.001, 0.002, 0.05, 3.0):
        h.observe(v)
    assert h.counts == [2, 1, 1, 1]          # <=1ms (0.001 itself included), <=10ms, <=100ms, above
    assert h.count == 5
    assert h.sum == pytest.approx(3.0535)
    assert h.cumulative() == [("0.001", 2), ("0.01", 3), ("0.1", 4), ("+Inf", 5)]


def test_bounds_must_ascend() -> None:
    with pytest.raises(ValueError, match="ascending"):
        LatencyHistogram((0.1, 0.01))
    with pytest.raises(ValueError, match="ascending"):
        LatencyHistogram(())
