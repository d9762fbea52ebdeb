"""The cluster at overload (issue 19, "must show"): the bench as fast as it can (``--rate 0``),
bounded in count and time, against a cluster whose customer utilities bound their orders in
flight (``utilities.in_flight``). Fill latency stays bounded (the customer utilities stop
reading the bench's sockets instead of queueing), every order ends filled, none is lost, no
process builds a backlog in memory, and the replicas agree within seconds of the end.

The issue's goal, fill p99 <= 2 s for 50,000 orders on this machine, is measured by hand (README,
"Under overload"); here 6,000 orders and tighter bounds (300 in flight per utility, 200 per
session) keep the test near 15 s, and the p99 bound allows for the suite's two workers sharing
the machine's two cores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import Cluster

pytestmark = pytest.mark.timeout(150)

ORDERS = 6000
MAX_IN_FLIGHT = 300
PER_SESSION = 200


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, day_seconds=2.0,
                cluster_extra=f"max_in_flight = {MAX_IN_FLIGHT}\nmax_in_flight_per_session = {PER_SESSION}\n")
    c.start()
    try:
        yield c
    finally:
        c.stop()


def test_overload_keeps_fill_latency_memory_and_replication_bounded(cluster: Cluster) -> None:
    out = cluster.fixgw("bench", "--config", str(cluster.config), "--orders", str(ORDERS), "--rate", "0",
                        "--sessions", "2", "--seconds", "60", "--json", timeout=140)
    assert out.returncode == 0, out.stdout + out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(res, sort_keys=True))
    assert res["orders"] == res["acked"] == ORDERS, res
    # every order ends filled (crossing limits): nothing refused, lost, pending or unanswered
    assert res["filled"] == ORDERS and res["lost"] == 0, res
    assert res["refused"] == res["unacked"] == res["pending"] == res["status_unanswered"] == 0, res
    # the customer utilities held the bench back: never more in flight than the bound
    for u in ("cfu1", "cfu2"):
        flight = cluster.status(u)["in_flight"]
        assert flight["bound"] == MAX_IN_FLIGHT and flight["per_session_bound"] == PER_SESSION, flight
        assert 0 < flight["peak"] <= MAX_IN_FLIGHT, (u, flight)
        assert flight["total"] == 0, (u, flight)     # all answered once the load is over
    assert sum(cluster.status(u)["in_flight"]["holds"] for u in ("cfu1", "cfu2")) > 0
    # fill latency bounded by what is queued (the bench's window and the utilities' bound) over
    # the rate, not by the size of the run: a backlog (before the bound) put p99 near the whole
    # run's length (50,000 orders: p99 17-70 s of 38-118 s runs); here it stays a fraction of it.
    # The machine is shared (two test workers, other work): the bound scales with the rate seen.
    queued = 200 * 2 + MAX_IN_FLIGHT * 2
    p99_s = res["fill_p99_us"] / 1e6
    assert p99_s <= max(5.0, 3.0 * queued / res["sustained_fills_per_s"]), res
    assert p99_s <= 0.6 * res["fill_run_s"], res
    # memory: no process built a backlog and drained it (peak within 16 MB of the end), and
    # none grew by more than its per-order views of the day can explain (measured: customer
    # utilities +13 MB, street +8 MB for 6,000 orders; 50,000 orders: +100 MB and +65 MB, both
    # less than before the bound, 170 and 230 MB peaks). The dashboard is left out: it keeps
    # every record of the firm's log in memory by design (utilities/dashboard.py), so it grows
    # with the log, not with the load.
    rss = res["rss_kb_by_process"]
    assert {"cfu1", "cfu2", "ssu1", "ssu2", "firm", "exchange", "broker"} <= set(rss), rss
    for name, v in rss.items():
        if name != "dashboard":
            assert v["peak"] - v["end"] <= 16_000 and v["peak"] <= v["start"] + 64_000, (name, v)
    # replicas agree within seconds of the end, and nobody fell far behind meanwhile
    assert res["replicas_agree"] is True, res
    assert res["replication_lag_max"] <= 20_000, res
    for node in ("cfu1", "cfu2", "ssu1", "ssu2", "firm"):
        st = cluster.status(node)
        assert st["behind"] == [] and all(v["records"] == 0 for v in st["replication_lag"].values()), (node, st)
