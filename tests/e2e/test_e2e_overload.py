"""The cluster at overload (issue 19, "must show"): the bench as fast as it can (``--rate 0``),
bounded in count and time, against a cluster whose customer utilities bound their orders in
flight (``utilities.in_flight``). Fill latency stays bounded (the customer utilities stop
reading the bench's sockets instead of queueing), every order ends filled, none is lost, no
process's memory keeps growing, and the replicas agree within seconds of the end."""

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
    # fill latency bounded by what is in flight, not by the size of the run
    assert res["fill_p99_us"] <= 5_000_000, res
    # memory flat: no process ends far above where it peaked... and none peaked far above its start
    for name, v in res["rss_kb_by_process"].items():
        assert v["peak"] <= v["start"] + 120_000, (name, v)
    assert res["replicas_agree"] is True, res
