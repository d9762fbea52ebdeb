"""Prometheus metrics of a running cluster (issue 15, item 3): every node and venue serves
exposition text over HTTP at the ``metrics_url`` that ``fixgw status --json`` gives; it
parses with prometheus_client's own parser; an accepted and a refused order move the order
counters, the ack latency histogram, the FIX message counters and replication."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from tests.support.cluster import Cluster
from tests.support.fixclient import FixClient
from tests.support.prometheus import Samples, scrape, value

pytestmark = pytest.mark.timeout(240)


def wait_for(url: str, check: Any, timeout: float = 30.0) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        _, samples = scrape(url)
        if check(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"{url}: condition not met within {timeout}s")
        time.sleep(0.2)


def test_metrics_of_a_running_cluster(cluster: Cluster) -> None:
    r = cluster.fixgw("status", "--config", str(cluster.config), "--json")
    assert r.returncode == 0, r.stderr
    status = json.loads(r.stdout)
    urls = {n["name"]: n["metrics_url"] for n in status["nodes"]}
    assert set(urls) == {"cfu1", "cfu2", "ssu1", "ssu2", "firm"}
    assert urls["cfu1"] == f"http://127.0.0.1:{cluster.ports['m_cfu1']}/metrics"
    venue_urls = {v["name"]: v["metrics_url"] for v in status["venues"]}
    human = cluster.fixgw("status", "--config", str(cluster.config)).stdout
    assert f"metrics cfu1: {urls['cfu1']}" in human and f"dashboard: {status['dashboard_url']}" in human
    assert venue_urls["exchange"] == f"http://127.0.0.1:{cluster.ports['m_exchange']}/metrics"

    for name, url in urls.items():
        families, samples = scrape(url)
        for fam in ("fixgw_record_appends", "fixgw_record_commits", "fixgw_record_commit_latency_seconds",
                    "fixgw_replication_high_water_mark", "fixgw_replication_lag_records",
                    "fixgw_broker_connected", "fixgw_malformed_payloads", "fixgw_fix_sessions_logged_on"):
            assert fam in families, (name, fam)
        assert value(samples, "fixgw_broker_connected", node=name) == 1
    families, samples = scrape(urls["cfu1"])
    for fam in ("fixgw_orders_received", "fixgw_orders_accepted", "fixgw_orders_rejected",
                "fixgw_execution_reports_sent", "fixgw_ack_latency_seconds", "fixgw_fix_messages_received",
                "fixgw_fix_messages_sent"):
        assert fam in families, fam
    # the street utilities are logged on to both venues; the venues see them
    _, ssu = scrape(urls["ssu1"])
    assert value(ssu, "fixgw_fix_sessions_logged_on", node="ssu1") == 2
    _, exch = scrape(venue_urls["exchange"])
    assert value(exch, "fixgw_fix_sessions_logged_on", node="exchange") >= 2

    before = samples
    _, before_cfu2 = scrape(urls["cfu2"])
    asyncio.run(_two_orders(cluster))

    after = wait_for(urls["cfu1"], lambda s: value(s, "fixgw_orders_received_total") >= value(
        before, "fixgw_orders_received_total") + 2 and value(s, "fixgw_execution_reports_sent_total") >= value(
        before, "fixgw_execution_reports_sent_total") + 4)
    assert value(after, "fixgw_orders_accepted_total") == value(before, "fixgw_orders_accepted_total") + 1
    assert value(after, "fixgw_orders_rejected_total") == value(before, "fixgw_orders_rejected_total") + 1
    assert value(after, "fixgw_ack_latency_seconds_count") == value(before, "fixgw_ack_latency_seconds_count") + 2
    assert value(after, "fixgw_ack_latency_seconds_bucket", le="+Inf") == value(after, "fixgw_ack_latency_seconds_count")
    assert value(after, "fixgw_ack_latency_seconds_sum") > value(before, "fixgw_ack_latency_seconds_sum")
    assert value(after, "fixgw_record_appends_total") >= value(before, "fixgw_record_appends_total") + 2
    assert value(after, "fixgw_record_commits_total") > value(before, "fixgw_record_commits_total")
    assert value(after, "fixgw_record_commit_latency_seconds_count") > value(
        before, "fixgw_record_commit_latency_seconds_count")
    assert value(after, "fixgw_fix_messages_received_total") >= value(before, "fixgw_fix_messages_received_total") + 2
    assert value(after, "fixgw_fix_messages_sent_total") >= value(before, "fixgw_fix_messages_sent_total") + 4
    # replication: cfu2 holds cfu1's new records and its lag behind cfu1 comes back to 0
    head = value(after, "fixgw_replication_head", node="cfu1")
    cfu2 = wait_for(urls["cfu2"], lambda s: value(s, "fixgw_replication_high_water_mark", origin="cfu1") >= head
                    and value(s, "fixgw_replication_lag_records", origin="cfu1") == 0)
    assert value(cfu2, "fixgw_replication_high_water_mark", origin="cfu1") > value(
        before_cfu2, "fixgw_replication_high_water_mark", origin="cfu1")
    # the venue sent ExecutionReports for the accepted order
    wait_for(venue_urls["exchange"], lambda s: value(s, "fixgw_execution_reports_sent_total") >= value(
        exch, "fixgw_execution_reports_sent_total") + 2)


async def _two_orders(cl: Cluster) -> None:
    async with FixClient(cl.ports["cfu1"], "BENCH2", "FIXGW") as c:
        ok = c.new_order(symbol="AAPL", side="1", qty="10", price="200.00", account="BENCH")
        bad = c.new_order(symbol="NOSUCH", side="1", qty="10", price="1.00", account="BENCH")
        seen: dict[str, str] = {}
        while seen.get(ok) != "2" or bad not in seen:
            m = await c.until(lambda m: m.msg_type == b"8", 30)
            seen[m.get_str(11) or ""] = m.get_str(39) or ""
        assert seen[bad] == "8"
