"""Processes killed with SIGKILL: a street utility with open orders, a customer utility under load."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

import pytest

from fixgw.message import Message
from tests.support.cluster import Cluster
from tests.support.fixclient import FixClient

pytestmark = pytest.mark.timeout(240)


def order_status(cluster: Cluster, node: str, txn: str) -> dict[str, Any]:
    out = cluster.fixgw("log", "status", "--data", str(cluster.data / node), "--txn", txn, "--json")
    assert out.returncode == 0, out.stderr
    status: dict[str, Any] = json.loads(out.stdout)
    return status


async def wait_reports(c: FixClient, want: dict[str, set[str]], timeout: float = 30.0) -> dict[str, Message]:
    """Wait until each ClOrdID in ``want`` has a report with an OrdStatus in its set."""
    last: dict[str, Message] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    missing = dict(want)
    for m in c.app.all:
        cl = m.get_str(11) or ""
        if cl in missing and m.get_str(39) in missing[cl]:
            last[cl] = m
            del missing[cl]
    while missing:
        m = await c.until(lambda m: m.msg_type == b"8", deadline - loop.time())
        cl = m.get_str(11) or ""
        if cl in missing and m.get_str(39) in missing[cl]:
            last[cl] = m
            del missing[cl]
    return last


def test_street_utility_killed_with_open_orders(own_cluster: Cluster) -> None:
    asyncio.run(_street_failover(own_cluster))


async def _street_failover(cl: Cluster) -> None:
    async with FixClient(cl.ports["cfu1"], "CLIENT1", "FIXGW") as c:
        resting = [c.new_order(symbol="AAPL", side="1", qty="10", price="150.00", account="ACC1") for _ in range(12)]
        news = await wait_reports(c, {x: {"0"} for x in resting})
        txns = {x: news[x].get_str(37) or "" for x in resting}
        streets = {x: order_status(cl, "cfu1", txns[x])["street"] for x in resting}
        assert set(streets.values()) == {"ssu1", "ssu2"}, "orders are spread over both streets"

        cl.kill("ssu1")
        # orders in flight while ssu1 is dead but not yet known to be
        marketable = [c.new_order(symbol="AAPL", side="1", qty="10", price="200.00", account="ACC1") for _ in range(8)]
        fills = await wait_reports(c, {x: {"2"} for x in marketable}, timeout=45)
        assert all(fills[x].get_decimal(14) == Decimal(10) for x in marketable)

        # ssu2 takes over ssu1's open orders: they can be canceled through it
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if all(order_status(cl, "cfu1", txns[x])["street"] == "ssu2" for x in resting):
                break
            await asyncio.sleep(0.5)
        assert all(order_status(cl, "cfu1", txns[x])["street"] == "ssu2" for x in resting)
        cancels = {x: c.cancel(x, symbol="AAPL", side="1", qty="10") for x in resting}
        done = await wait_reports(c, {k: {"4"} for k in cancels.values()}, timeout=30)
        assert len(done) == len(resting)

    # the venue confirms every order's state, and none was executed twice
    mkt_txns = [fills[x].get_str(37) or "" for x in marketable]
    async with FixClient(cl.ports["exchange"], "FIXGW-AUDIT", "EXCH") as audit:
        for txn, (status, cum) in [(txns[x], ("4", "0")) for x in resting] + [(t, ("2", "10")) for t in mkt_txns]:
            audit.status(txn, symbol="AAPL", side="1")
            m = await audit.until(lambda m: m.msg_type == b"8" and txn in (m.get_str(11) or "") + (m.get_str(41) or ""))  # noqa: B023 (awaited within the iteration)
            assert m.get_str(39) == status and m.get_decimal(14) == Decimal(cum), m
    for txn in mkt_txns:
        st = order_status(cl, "cfu2", txn)
        assert st["ord_status"] == "2" and Decimal(str(st["cum_qty"])) == 10
        fills_seen = {r["exec_id"] for r in st["records"] if r["type"] == "fill"}
        assert len(fills_seen) >= 1
        venue_orders = {r["venue_order_id"] for r in st["records"] if r.get("venue_order_id")}
        assert len(venue_orders) == 1, f"{txn} reached the venue more than once: {venue_orders}"


def test_customer_utility_killed_under_load_loses_no_acknowledged_order(own_cluster: Cluster) -> None:
    asyncio.run(_customer_crash(own_cluster))


async def _customer_crash(cl: Cluster) -> None:
    acked: set[str] = set()
    async with FixClient(cl.ports["cfu1"], "BENCH1", "FIXGW") as c:
        sent = 0
        killed_at = None
        t_end = time.monotonic() + 20
        while time.monotonic() < t_end and sent < 400:
            if c.engine.session(c.sid).logged_on:
                for _ in range(10):
                    side = "1" if sent % 2 == 0 else "2"
                    c.new_order(symbol="MSFT", side=side, qty="10", price="430.00" if side == "1" else "410.00",
                                account="BENCH", cl_ord_id=f"L{sent}")
                    sent += 1
            await asyncio.sleep(0.02)
            acked |= {m.get_str(11) or "" for m in c.app.all if m.get_str(150) == "A"}
            if killed_at is None and len(acked) >= 100:
                cl.kill("cfu1")             # SIGKILL while orders are in flight
                killed_at = sent
                await asyncio.sleep(1.0)
                cl.start_node("cfu1")
        assert killed_at is not None
        await asyncio.sleep(2.0)
        acked |= {m.get_str(11) or "" for m in c.app.all if m.get_str(150) == "A"}
    assert len(acked) > 100

    # every acknowledged order is known, resting or final, at both customer utilities
    for node in ("cfu1", "cfu2"):
        port = cl.ports[node]
        async with FixClient(port, "BENCH1", "FIXGW") as q:
            unknown = set(acked)
            got: dict[str, str] = {}
            for attempt in range(10):
                for cid in sorted(unknown):
                    q.status(cid, symbol="MSFT", side="1")
                got = {}
                try:
                    while len(got) < len(unknown):
                        m = await q.until(lambda m: m.msg_type == b"8" and m.get_str(150) == "I", 10)
                        got[m.get_str(11) or ""] = m.get_str(39) or ""
                except TimeoutError:
                    pass
                unknown = {cid for cid in unknown if got.get(cid) not in ("0", "1", "2", "4", "C")}
                if not unknown:
                    break
                await asyncio.sleep(1.0)
            # what it answered for them (nothing: no answer within 10 s, 10 times), and where to look:
            # failed once in a full suite run (session 13), not again in 8 runs alone or beside busy loops
            assert not unknown, (f"acknowledged orders lost at {node}: "
                                 f"{[(cid, got.get(cid)) for cid in sorted(unknown)[:10]]} of {len(unknown)}; "
                                 f"logged on: {q.engine.session(q.sid).logged_on}; logs in {cl.data / 'logs'}")
