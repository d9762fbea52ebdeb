"""``fixgw bench disk``: the synced-commit floor, on a real disk and a real record log."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from replication import diskbench
from replication.log import RecordLog

ROOT = Path(__file__).resolve().parents[2]


def test_percentiles_of_a_known_series() -> None:
    samples = [i * 1000 for i in range(1, 1001)]  # 1..1000 us, shuffled order must not matter
    got = diskbench.percentiles(list(reversed(samples)), "x")
    assert got == {"x_p50_us": 501.0, "x_p90_us": 901.0, "x_p99_us": 991.0, "x_p999_us": 1000.0,
                   "x_max_us": 1000.0, "x_samples": 1000}
    with pytest.raises(ValueError, match="no samples"):
        diskbench.percentiles([], "x")


def test_paced_is_bounded_in_count_and_time_and_calls_in_order() -> None:
    calls: list[int] = []
    t = time.monotonic()
    samples = diskbench.paced(calls.append, rate=200.0, seconds=0.2)
    elapsed = time.monotonic() - t
    assert calls == list(range(len(calls))) and len(samples) == len(calls)
    assert 1 <= len(calls) <= 40 and elapsed < 1.0
    with pytest.raises(ValueError, match="positive"):
        diskbench.paced(calls.append, rate=0.0, seconds=1.0)


class FrozenTime:
    """A clock that moves only when the code under test sleeps or an operation takes time."""

    def __init__(self) -> None:
        self.t = 100.0

    def monotonic(self) -> float:
        return self.t

    def sleep(self, d: float) -> None:
        assert d > 0
        self.t += d

    def ns(self) -> int:
        return round(self.t * 1e9)


def test_paced_keeps_its_slots_and_never_bursts_after_a_late_call() -> None:
    clock = FrozenTime()
    starts: list[float] = []
    durations = {0: 0.001, 3: 0.035}  # call 3 overruns three and a half slots

    def op(i: int) -> None:
        starts.append(round(clock.t - 100.0, 6))
        clock.t += durations.get(i, 0.001)

    samples = diskbench.paced(op, rate=100.0, seconds=0.1, monotonic=clock.monotonic, sleep=clock.sleep,
                              timer=clock.ns)
    # on the 10 ms grid until the late call, then one interval after each start: no catch-up burst
    assert starts == [0.0, 0.01, 0.02, 0.03, 0.065, 0.075, 0.085, 0.095]
    assert samples == [1_000_000] * 3 + [35_000_000] + [1_000_000] * 4


def test_each_commit_sample_is_one_durable_record(tmp_path: Path) -> None:
    samples = diskbench.bench_commit(tmp_path, rate=500.0, seconds=0.2)
    assert samples and all(s > 0 for s in samples)
    with RecordLog(tmp_path / "log", readonly=True) as log:
        assert log.head == len(samples)  # one own record per timed commit


@pytest.mark.timeout(60)
def test_fixgw_bench_disk_prints_one_json_object_and_leaves_nothing_behind(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "fixgw", "bench", "disk", "--json", "--seconds", "0.3",
                          "--rate", "300", "--data", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=50, check=True).stdout
    lines = out.strip().splitlines()
    assert len(lines) == 1
    got = json.loads(lines[0])
    assert got["data"] == str(tmp_path.resolve()) and got["rate"] == 300.0
    for name in ("fdatasync", "commit"):
        p = [got[f"{name}_{q}_us"] for q in ("p50", "p90", "p99", "p999", "max")]
        assert 0 < p[0] <= p[1] <= p[2] <= p[3] <= p[4], (name, p)
        assert 1 <= got[f"{name}_samples"] <= 90
    assert list(tmp_path.iterdir()) == []  # the bench's own directory is gone
