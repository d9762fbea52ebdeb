"""A venue restarted empty with resting orders: every order ends canceled by the venue, everywhere.

Issue 14 item 4 (must show): the exchange is SIGKILLed with resting orders of a QuickFIX customer
and started again with no ``--data`` (it remembers nothing: no orders, no FIX sequence numbers).
The street utilities log on to it again and reconcile (an OrderStatusRequest per open order);
each order it no longer knows becomes canceled by the venue: at every customer utility (their
logs' fold says Canceled), reported to the customer (ExecutionReport Canceled with the reason in
Text), and its buying power is released (CollateralInquiry -> CollateralReport BuyingPower).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pytest

from replication.log import RecordLog
from tests.e2e.qf_customer import QfCustomer, fields
from tests.interop.quickfix_initiator import until
from tests.support.cluster import FIXGW, ROOT, Cluster
from utilities.status import fold

pytestmark = pytest.mark.timeout(180)

REST = "150.00"       # a buy at this price rests at the exchange
RESTING = [f"V{i}" for i in range(4)]


def exchange_pid(cl: Cluster) -> int:
    doc = json.loads((cl.data / "processes.json").read_text())
    return next(int(c["pid"]) for c in doc["children"] if c["name"] == "exchange")


def statuses(cl: Cluster, node: str, clids: list[str]) -> dict[str, str]:
    """ClOrdID -> OrdStatus as the node's log folds it."""
    out: dict[str, str] = {}
    with RecordLog(cl.data / node / "log", readonly=True) as lg:
        txns = {r.cl_ord_id: r.txn for r in lg.iter_all() if r.cl_ord_id in clids and r.session == "CLIENT1"}
        for cl_ord_id, txn in txns.items():
            st = fold(lg.records_for_txn(txn))
            if st is not None:
                out[cl_ord_id] = st.ord_status
    return out


def start_empty_exchange(cl: Cluster, log_path: Path) -> subprocess.Popen[bytes]:
    """The exchange again on its port, with no --data: no orders, no FIX sequence numbers."""
    log = open(log_path, "wb")  # noqa: SIM115 (the venue writes it until it stops)
    return subprocess.Popen(FIXGW + ["venue", "exchange", "--host", "127.0.0.1", "--port", str(cl.ports["exchange"]),
                                     "--comp-id", "EXCH"], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def test_venue_restarted_empty_cancels_its_orders_everywhere(own_cluster: Cluster, tmp_path: Path) -> None:
    asyncio.run(_venue_forgets(own_cluster, tmp_path))


async def _venue_forgets(cl: Cluster, tmp: Path) -> None:
    c = QfCustomer(cl, tmp / "qf", first="cfu1", then="cfu2")
    c.start()
    try:
        await until(c.qf.logged_on, 20, "logon to cfu1")
        n_ba = [0]

        async def buying_power() -> Decimal:
            c._send("BB", [(909, f"BP{n_ba[0]}"), (1, "ACC1")])
            n_ba[0] += 1
            want = n_ba[0]
            await until(lambda: len([r for r in c.qf.app.snapshot()[0] if r.msg_type == "BA"]) >= want, 20,
                        "collateral report")
            ba = [fields(r.raw) for r in c.qf.app.snapshot()[0] if r.msg_type == "BA"][-1]
            return Decimal(ba[899])

        before = await buying_power()
        for x in RESTING:
            c.order(x, "1", 10, REST)
        await until(lambda: all(c.seen().get(x) is not None and c.seen()[x].ord_status == "0" for x in RESTING), 20,
                    "orders resting at the exchange")
        reserved = await buying_power()
        assert reserved == before - len(RESTING) * 10 * Decimal(REST), (before, reserved)

        # the exchange dies and comes back empty (no --data: no orders, no sequence numbers)
        os.kill(exchange_pid(cl), signal.SIGKILL)
        killed = time.monotonic()
        cl.extra.append(start_empty_exchange(cl, tmp / "exchange.restart.log"))

        def canceled_by_venue(x: str) -> bool:
            return any(f.get(11) == x and f.get(150) == "4" and "Canceled by the venue" in f.get(58, "")
                       for f in c.reports())

        await until(lambda: all(canceled_by_venue(x) for x in RESTING), 30, "every order canceled by the venue")
        print(f"FIGURE venue restart to every Canceled at the customer: {time.monotonic() - killed:.1f} s")
        assert all(c.seen()[x].ord_status == "4" for x in RESTING)
        # at every customer utility
        for node in ("cfu1", "cfu2"):
            deadline = time.monotonic() + 10
            while (got := statuses(cl, node, RESTING)) != dict.fromkeys(RESTING, "4") and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert got == dict.fromkeys(RESTING, "4"), (node, got)
        # the reservation released
        assert await buying_power() == before
        # and the venue works again: a new order rests there
        c.order("AFTER", "1", 10, REST)
        await until(lambda: c.seen().get("AFTER") is not None and c.seen()["AFTER"].ord_status == "0", 20,
                    "a new order at the restarted exchange")
    finally:
        c.close()
