"""``fixgw bench --config`` against a running cluster: the numbers it promises, and no lost
order (every one known at every customer utility, resting or final)."""

from __future__ import annotations

import json

import pytest

from tests.support.cluster import Cluster

pytestmark = pytest.mark.timeout(180)

KEYS = {"orders_per_s", "ack_p50_us", "ack_p99_us", "fill_p50_us", "fill_p99_us", "lost"}


def test_end_to_end_bench_reports_and_loses_nothing(cluster: Cluster) -> None:
    n = 300
    out = cluster.fixgw("bench", "--config", str(cluster.config), "--orders", str(n), "--rate", "300",
                        "--sessions", "2", "--seconds", "60", "--json", timeout=150)
    assert out.returncode == 0, out.stdout + out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert KEYS <= set(res), res
    assert res["orders"] == res["acked"] == n and res["rejected"] == 0, res
    assert res["lost"] == 0, res
    assert res["filled"] == n, res  # crossing limits against the market maker: all fill
    assert 0 < res["ack_p50_us"] <= res["ack_p99_us"] and 0 < res["fill_p50_us"] <= res["fill_p99_us"]
    assert res["ack_p50_us"] < res["fill_p50_us"]  # acknowledged before it reached the venue
    assert res["orders_per_s"] > 0 and res["filled_per_s"] > 0
    # the machine's share during the load (this suite runs on Linux): a cluster under load is busy
    assert res["host_cpus"] >= 1 and 0 < res["host_busy_pct"] <= 100 and 0 <= res["host_steal_pct"] <= 100
    # the cluster's own CPU: every process of its `fixgw up` (5 nodes, 2 venues, the broker and
    # the dashboard), and some of it per order
    assert res["cluster_processes"] == 9, res
    assert res["cluster_cpu_s"] > 0 and res["cluster_cpu_ms_per_order"] > 0, res
