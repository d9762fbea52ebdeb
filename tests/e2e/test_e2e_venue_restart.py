"""The exchange SIGKILLed with resting orders and started again on its ``--data`` while the
street utility ssu1 is SIGKILLed too (issue 16, "must show"): ssu2 takes ssu1's orders over
across the venue's restart, the orders are still at the venue (it answers their status), a
cancel and a later fill work, and nothing reached the venue twice: the venue's own journal
(every NewOrderSingle it ever received, written before it acts) holds exactly one per order.

The same kill takes the market-data subscriber with it (ssu1 is the lowest-named street, so the
one subscribed at the venue): a customer subscribed at cfu2 keeps getting refreshes, now
through ssu2, and the venue holds one subscription for the symbol again."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import lmdb
import msgpack
import pytest

from fixgw.mdcodes import SubscriptionRequestType
from fixgw.mdmessages import md_request, read_entries
from fixgw.message import Message
from tests.e2e.test_e2e_failover import wait_reports
from tests.e2e.test_e2e_marketdata import venue_subscriptions
from tests.support.cluster import ROOT, Cluster
from tests.support.fixclient import FixClient

pytestmark = pytest.mark.timeout(240)
RESTING_PX = "150.00"   # far below the market maker's quotes (~190): these bids rest


def records(cl: Cluster, node: str) -> list[dict[str, object]]:
    """Every record ``node`` holds (one ``fixgw log dump`` for all orders: a process per order is slow)."""
    out = cl.fixgw("log", "dump", "--data", str(cl.data / node), "--json")
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def by_street(cl: Cluster, kind: str, txns: set[str]) -> dict[str, str]:
    """txn -> the street that wrote its record of ``kind`` ("sent", "takeover"), as cfu1 holds them."""
    return {str(r["txn"]): str(r["origin"]) for r in records(cl, "cfu1") if r["type"] == kind and r["txn"] in txns}


def venue_orders_received(journal: Path) -> Counter[str]:
    """NewOrderSingles the venue received (journal records "D"), per ClOrdID."""
    env = lmdb.open(str(journal), readonly=True, lock=True, subdir=True)
    try:
        with env.begin(buffers=False) as txn:
            return Counter(rec[5]["cl_ord_id"] for _k, v in txn.cursor()
                           if (rec := msgpack.unpackb(v, raw=False))[0] == "D")
    finally:
        env.close()


def exchange_process(cl: Cluster) -> tuple[int, list[str]]:
    """The exchange's pid (``fixgw up``'s processes.json) and the command line it runs."""
    procs = json.loads((cl.data / "processes.json").read_text())
    pid = next(c["pid"] for c in procs["children"] if c["name"] == "exchange")
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    return pid, [a.decode() for a in argv]


def start_again(cl: Cluster, argv: list[str]) -> None:
    """The exchange started by hand with the command line ``fixgw up`` gave it (stopped with the cluster)."""
    log = open(cl.base / "exchange.restart.log", "wb")  # noqa: SIM115 (the venue writes it)
    cl.extra.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))


def test_street_takeover_across_a_venue_restart_sends_nothing_twice(own_cluster: Cluster) -> None:
    asyncio.run(_scenario(own_cluster))


async def _scenario(cl: Cluster) -> None:
    async with FixClient(cl.ports["cfu1"], "CLIENT1", "FIXGW") as c, \
            FixClient(cl.ports["cfu2"], "CLIENT2", "FIXGW") as md:
        md.send(md_request("MD1", SubscriptionRequestType.SNAPSHOT_AND_UPDATES, ["AAPL"]))
        await md.until(lambda m: m.msg_type == b"W" and m.get_str(262) == "MD1")
        resting = [c.new_order(symbol="AAPL", side="1", qty="10", price=RESTING_PX, account="ACC1") for _ in range(12)]
        news = await wait_reports(c, {x: {"0"} for x in resting})
        txns = {x: news[x].get_str(37) or "" for x in resting}
        sent_by = by_street(cl, "sent", set(txns.values()))
        assert set(sent_by.values()) == {"ssu1", "ssu2"}, f"orders are spread over both streets: {sent_by}"
        of_ssu1 = {t for t, st in sent_by.items() if st == "ssu1"}

        # SIGKILL the exchange (resting orders in its book) and ssu1 (half of them, and the
        # market-data subscription); the exchange starts again on its data directory
        pid, argv = exchange_process(cl)
        assert "--data" in argv, argv
        os.kill(pid, signal.SIGKILL)
        cl.kill("ssu1")
        await asyncio.sleep(0.5)
        start_again(cl, argv)

        # ssu2 logs on again and takes ssu1's orders over (it asks the venue, sends nothing)
        deadline = time.monotonic() + 30
        taken: dict[str, str] = {}
        while time.monotonic() < deadline:
            taken = by_street(cl, "takeover", of_ssu1)
            if set(taken) == of_ssu1:
                break
            await asyncio.sleep(0.5)
        assert taken == dict.fromkeys(of_ssu1, "ssu2"), taken
        assert "journal replayed" in (cl.base / "exchange.restart.log").read_text()

        # a cancel of half of them works through ssu2 (the venue knows them: an unknown order's
        # cancel would be rejected) ...
        cancels = {x: c.cancel(x, symbol="AAPL", side="1", qty="10") for x in resting[:6]}
        await wait_reports(c, {k: {"4"} for k in cancels.values()}, timeout=30)
        # ... and a later fill of the others: a sell sweeping every bid down to their price
        async with FixClient(cl.ports["cfu2"], "BENCH1", "FIXGW") as seller:
            sweep = seller.new_order(symbol="AAPL", side="2", qty="100000", price=RESTING_PX, tif="3",
                                     account="BENCH")
            await wait_reports(seller, {sweep: {"2", "4", "C"}}, timeout=30)  # IOC: the rest expires
        fills = await wait_reports(c, {x: {"2"} for x in resting[6:]}, timeout=30)
        assert all(fills[x].get_decimal(14) == Decimal(10) for x in resting[6:])

        # market data went on through ssu2: the trades at the resting price reached the subscriber
        def traded_at_resting(m: Message) -> bool:
            return m.msg_type == b"X" and any(e.entry_type.value == "2" and e.price == Decimal(RESTING_PX)
                                              for e in read_entries(m))
        await md.until(traded_at_resting, timeout=15)
        assert venue_subscriptions(cl, "AAPL") == 1

        # the venue's own answers, last (a status request moves an order's reports to the
        # session that asks: a session of the same firm)
        async with FixClient(cl.ports["exchange"], "FIXGW-AUDIT", "EXCH") as audit:
            for x in resting:
                txn = txns[x]
                audit.status(txn, symbol="AAPL", side="1")
                m = await audit.until(lambda m: m.msg_type == b"8" and txn in (m.get_str(11) or "") + (m.get_str(41) or ""))  # noqa: B023 (awaited here)
                want = ("4", Decimal(0)) if x in cancels else ("2", Decimal(10))
                assert (m.get_str(39), m.get_decimal(14)) == want, m

    # nothing reached the venue twice: one NewOrderSingle per order in its journal, across the
    # restart and the takeover
    received = venue_orders_received(cl.data / "exchange" / "journal")
    assert {txns[x]: received[txns[x]] for x in resting} == {txns[x]: 1 for x in resting}
