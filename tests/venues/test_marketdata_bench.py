"""``fixgw bench marketdata`` runs as the README shows (a small count): a real venue process,
10 subscribers, and every order reached every subscriber as one incremental refresh."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.venues.vfix_support import PROJECT


@pytest.mark.timeout(120)
def test_bench_marketdata_small_run() -> None:
    out = subprocess.run([sys.executable, "-m", "fixgw", "bench", "marketdata", "--orders", "200", "--seconds", "30",
                          "--json"], cwd=PROJECT, capture_output=True, text=True, timeout=110, check=False)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["subscribers"] == 10 and res["orders"] == 200
    assert res["md_messages"] == 200 * 10  # one X per order to each subscriber, none lost
    assert res["md_messages_per_s"] > 0 and res["latency_orders"] > 0 and 0 < res["p50_us"] <= res["p99_us"]
