"""``fixgw bench --config`` against a running cluster: the numbers it promises, and no lost
order (every one known at the utility that owns its session, resting or final, and every
replica back in agreement), asked over the bench's own sessions: no session changes owner."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import Cluster

pytestmark = pytest.mark.timeout(180)

KEYS = {"orders_per_s", "ack_p50_us", "ack_p99_us", "fill_p50_us", "fill_p99_us", "lost"}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A cluster of its own, with a gateway (every kind of process is counted), stopped by the test."""
    c = Cluster(tmp_path, day_seconds=2.0, gateways=("gw1",))
    c.start()
    try:
        yield c
    finally:
        c.stop()


def test_end_to_end_bench_reports_and_loses_nothing(cluster: Cluster) -> None:
    n = 300
    # fixgw up names its own processes in the data dir: itself, the broker, the venues, the nodes
    procs = json.loads((cluster.data / "processes.json").read_text())
    assert cluster.up is not None and procs["up"] == cluster.up.pid
    children = {c["name"] for c in procs["children"]}
    assert {"broker", "exchange", "fund", "firm", "ssu1", "ssu2", "cfu1", "cfu2", "gw1"} <= children, procs
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
    # how the orders ended, apart (issue 19): all filled, none pending, refused or unanswered
    assert res["refused"] == res["throttled"] == res["unacked"] == res["pending"] == 0, res
    assert res["status_unanswered"] == 0 and res["status_counts"] == {"2": n}, res
    assert res["acked_per_s"] > 0 and res["sustained_fills_per_s"] == res["filled_per_s"] > 0, res
    assert res["replicas_agree"] is True and res["replication_lag_max"] >= 0, res
    # each process's resident memory sampled: start <= peak >= end, all > 0
    rss = res["rss_kb_by_process"]
    assert {"cfu1", "cfu2", "ssu1", "ssu2", "firm"} <= set(rss), rss
    assert all(0 < v["start"] <= v["peak"] and 0 < v["end"] <= v["peak"] for v in rss.values()), rss
    # the status phase asked over the bench's own sessions: no session moved to another
    # utility (it once logged on with BENCH1 at every utility, moving its ownership each time)
    bench_done = time.time()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and min(cluster.status(u)["updated_at"] for u in ("cfu1", "cfu2")) <= bench_done:
        time.sleep(0.1)
    for u, client in (("cfu1", "BENCH1"), ("cfu2", "BENCH2")):
        st = cluster.status(u)
        assert st["updated_at"] > bench_done, st
        assert st["session_counters"]["handed_over"] == 0, (u, st["session_counters"])
        assert [s["client"] for s in st["sessions"] if s["client"].startswith("BENCH")] == [client], (u, st["sessions"])
    # the machine's share during the load (this suite runs on Linux): a cluster under load is busy
    assert res["host_cpus"] >= 1 and 0 < res["host_busy_pct"] <= 100 and 0 <= res["host_steal_pct"] <= 100
    # CPU over the load of every process of the cluster, each >= 0, the total their sum
    by_proc = res["cpu_us_per_order_by_process"]
    assert set(by_proc) == children | {"up"}, by_proc
    assert set(res["cpu_s_by_process"]) == set(by_proc)
    assert all(v >= 0 for v in by_proc.values()) and all(v >= 0 for v in res["cpu_s_by_process"].values())
    assert res["cpu_us_per_order"] == pytest.approx(sum(by_proc.values()), abs=0.05)
    assert res["cpu_us_per_order"] > 0   # 300 orders through the cluster cost something
    # the cluster's total over the same processes
    assert res["cluster_processes"] == len(by_proc), res
    assert res["cluster_cpu_s"] > 0 and res["cluster_cpu_ms_per_order"] > 0, res
    # a clean stop removes the list of processes
    cluster.stop()
    assert not (cluster.data / "processes.json").exists()
