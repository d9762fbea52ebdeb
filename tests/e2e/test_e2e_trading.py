"""End to end over real processes: broker, 2 customer, 2 street, firm, exchange and fund.

A FIX client trades through customer utility cfu1 (buys, sells, cancels, replaces, fund
orders) and gets the right ExecutionReports; the firm's positions match the fills; cfu2
answers the same statuses; ``fixgw log verify`` shows the replicas converged.
"""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import pytest

from fixgw.message import Message
from tests.support.cluster import Cluster
from tests.support.fixclient import FixClient

pytestmark = pytest.mark.timeout(240)


def er(m: Message) -> tuple[str, str, str]:
    return (m.get_str(150) or "", m.get_str(39) or "", m.get_str(11) or "")


async def reports_for(c: FixClient, cl: str, until_status: set[str], timeout: float = 20.0) -> list[Message]:
    """ExecutionReports about ClOrdID ``cl`` until one has OrdStatus in ``until_status``."""
    got: list[Message] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        m = await c.until(lambda m: m.msg_type in (b"8", b"9") and cl in (m.get_str(11), m.get_str(41)),
                          deadline - loop.time())
        got.append(m)
        if m.get_str(39) in until_status:
            return got


def test_trading_through_the_brokerage(cluster: Cluster) -> None:
    asyncio.run(_trade(cluster))


async def _trade(cl: Cluster) -> None:
    async with FixClient(cl.ports["cfu1"], "CLIENT1", "FIXGW") as c:
        # a marketable buy: PendingNew (after the durable append), New, then filled
        buy = c.new_order(symbol="AAPL", side="1", qty="100", price="200.00", account="ACC1")
        reps = await reports_for(c, buy, {"2"})
        assert er(reps[0])[:2] == ("A", "A")
        assert ("0", "0") in [er(m)[:2] for m in reps]
        last = reps[-1]
        assert last.get_str(150) == "F" and last.get_decimal(14) == Decimal(100) and last.get_decimal(151) == 0
        order_id = last.get_str(37)

        # a marketable sell of what we hold
        sell = c.new_order(symbol="MSFT", side="2", qty="50", price="400.00", account="ACC1")
        reps = await reports_for(c, sell, {"2"})
        assert reps[-1].get_decimal(14) == Decimal(50)

        # a resting buy, replaced (qty down, keeps priority), then canceled
        rest = c.new_order(symbol="IBM", side="1", qty="10", price="100.00", account="ACC1")
        await reports_for(c, rest, {"0"})
        rep = c.replace(rest, symbol="IBM", side="1", qty="5", price="100.00")
        reps = await reports_for(c, rep, {"0", "1"})
        assert ("E", "E") in [er(m)[:2] for m in reps]
        assert reps[-1].get_str(150) == "5" and reps[-1].get_decimal(38) == Decimal(5)
        cxl = c.cancel(rep, symbol="IBM", side="1", qty="5")
        reps = await reports_for(c, cxl, {"4"})
        assert ("6", "6") in [er(m)[:2] for m in reps]
        assert reps[-1].get_str(150) == "4" and reps[-1].get_str(41) == rep

        # canceling it again: OrderCancelReject, too late
        again = c.cancel(rep, symbol="IBM", side="1", qty="5")
        rej = await c.until(lambda m: m.msg_type == b"9" and m.get_str(11) == again)
        assert rej.get_str(434) == "1" and rej.get_str(102) == "0"

        # refused before the venue: selling what the account does not hold
        bad = c.new_order(symbol="IBM", side="2", qty="10", price="100.00", account="ACC1")
        reps = await reports_for(c, bad, {"8"})
        assert reps[-1].get_str(150) == "8" and "Insufficient position" in (reps[-1].get_str(58) or "")

        # a fund order by amount: acknowledged, then filled at the next valuation (2 s days)
        fund = c.new_order(symbol="FSIDX", side="1", cash_qty="5000", ord_type="1", account="ACC1")
        reps = await reports_for(c, fund, {"2"}, timeout=30)
        fill = reps[-1]
        shares, nav = fill.get_decimal(32), fill.get_decimal(31)
        assert shares is not None and nav is not None
        assert shares == (Decimal(5000) / nav).quantize(Decimal("0.001"), rounding="ROUND_DOWN") or \
            abs(shares * nav - Decimal(5000)) <= nav / 1000
        clids = {"buy": buy, "sell": sell, "rest": rep, "fund": fund}
        statuses_1 = {k: await status_of(c, v) for k, v in clids.items()}

    assert statuses_1["buy"][0] == "2" and statuses_1["rest"][0] == "4" and statuses_1["fund"][0] == "2"

    # the other customer utility answers the same statuses (its records are replicas)
    async with FixClient(cl.ports["cfu2"], "CLIENT1", "FIXGW") as c2:
        statuses_2 = {k: await status_of(c2, v) for k, v in clids.items()}
    assert statuses_2 == statuses_1

    # a customer sees only its own orders
    async with FixClient(cl.ports["cfu2"], "CLIENT2", "FIXGW") as other:
        other.status(buy, symbol="AAPL", side="1")
        m = await other.until(lambda m: m.msg_type == b"8")
        assert m.get_str(39) == "8" and m.get_str(103) == "5"

    # the firm's books match the fills
    deadline = time.monotonic() + 20
    while True:
        out = cl.fixgw("firm", "books", "--data", str(cl.data / "firm"), "--json")
        assert out.returncode == 0, out.stderr
        books = json.loads(out.stdout)["ACC1"]
        pos = {k: Decimal(v) for k, v in books["positions"].items()}
        if pos.get("AAPL") == Decimal(1100) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert pos["AAPL"] == Decimal(1100)
    assert pos["MSFT"] == Decimal(450)
    assert pos["FSIDX"] == shares
    assert "IBM" not in pos or pos["IBM"] == 0

    # and the operator sees the order's records behind its status
    out = cl.fixgw("log", "status", "--data", str(cl.data / "cfu2"), "--txn", order_id or "", "--json")
    assert out.returncode == 0, out.stderr
    st = json.loads(out.stdout)
    assert st["ord_status"] == "2" and {r["type"] for r in st["records"]} >= {"order", "sent", "venue_ack", "fill"}

    # every replica holds what the matrix says it must
    deadline = time.monotonic() + 20
    while True:
        v = cl.fixgw("log", "verify", *cl.node_dirs("cfu1", "cfu2", "ssu1", "ssu2", "firm"))
        if v.returncode == 0 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert v.returncode == 0, v.stdout + v.stderr
    assert "logs agree" in v.stdout


async def status_of(c: FixClient, cl: str) -> tuple[str, str, str]:
    c.status(cl, symbol="X", side="1")
    m = await c.until(lambda m: m.msg_type == b"8" and m.get_str(150) == "I" and m.get_str(11) is not None)
    return (m.get_str(39) or "", m.get_str(14) or "", m.get_str(6) or "")
