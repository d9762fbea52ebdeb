"""``fixgw bench replication --json`` end to end, with small counts so that it stays quick."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest

from replication import bench


@pytest.mark.timeout(90)
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])  # fixgw bench passes uvloop when installed
def test_bench_prints_one_json_object_with_the_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       loop: str) -> None:
    sizes = bench.Sizes(append_records=4000, append_producers=200, replicate_records=3000, lag_seconds=0.5)
    rc = bench.main(argparse.Namespace(json=True, seconds=30.0, data=str(tmp_path), loop=loop), sizes)
    assert rc == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    result = json.loads(out[0])
    for key in ("durable_appends_per_s", "replicated_per_s", "lag_p50_ms", "lag_p99_ms"):
        assert isinstance(result[key], (int, float)) and math.isfinite(result[key]) and result[key] > 0, key
    assert result["appends"] == 4000 and result["replicated"] == 3000
    assert result["lag_samples"] == 500 and result["lag_p50_ms"] <= result["lag_p99_ms"]
    assert result["broker"] == "mosquitto"
