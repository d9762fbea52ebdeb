"""Retention on a real cluster (issue 18, item 2): old finished orders leave every node's live
log, the books stay the same, ``fixgw log verify`` agrees, and a replica that lost its log
catches up over the archived holes.

The cluster's logs are filled before ``fixgw up`` with a week of orders of past trading days
(as a cluster that had run for a week holds them: each origin's records in its clock's order,
with contiguous seqs, copied to the nodes the replication matrix names). At start the firm
settles what is due, carries the balances forward to the retention cutoff (two closed trading
days kept), and each node archives the orders the rule picks.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import shutil
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from replication.codec import encode_record
from replication.hlc import Hlc
from replication.log import RecordLog
from replication.record import Record, RecordType, Role
from tests.support.cluster import Cluster
from tests.support.waiting import wait_for
from utilities.books import Books, account_record, new_york_today, settlement_date
from utilities.firm import books_summary
from utilities.retention import cutoff_day

pytestmark = pytest.mark.timeout(240)

NY = ZoneInfo("America/New_York")
ROLES = {"cfu1": Role.CUSTOMER, "cfu2": Role.CUSTOMER, "ssu1": Role.STREET, "ssu2": Role.STREET, "firm": Role.FIRM}
ACCOUNTS = {"ACC1": ("1000000", {"AAPL": "1000", "MSFT": "500"}), "ACC2": ("500000", {"IBM": "300"}),
            "SLOWACC": ("1000000", {}), "BENCH": ("1000000000", {"AAPL": "1000000", "MSFT": "1000000"})}


def ny_clock(day: dt.date, hour: int, minute: int, node: str) -> Hlc:
    at = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY)
    return Hlc(int(at.timestamp()) * 1_000_000_000, 0, node)


class History:
    """Records per origin, with contiguous seqs, appended in clock order."""

    def __init__(self) -> None:
        self.by_origin: dict[str, list[Record]] = defaultdict(list)

    def add(self, origin: str, hlc: Hlc, **fields: Any) -> Record:
        recs = self.by_origin[origin]
        r = Record(origin=origin, seq=len(recs) + 1, hlc=hlc, **fields)
        assert not recs or recs[-1].hlc < hlc, "an origin's records come in its clock's order"
        recs.append(r)
        return r

    def all(self) -> list[Record]:
        return [r for rs in self.by_origin.values() for r in rs]


def a_week(today: dt.date) -> tuple[History, dict[str, str]]:
    """Six past trading days of ACC1 orders through cfu1 and ssu1, each day: two filled, one
    canceled; and on the first day a GTC order that stays open. Returns the history and each
    order's txn -> the day it was placed (ISO). SETTLED records on settlement dates before today."""
    days: list[dt.date] = []
    d = today
    while len(days) < 6:
        d -= dt.timedelta(days=1)
        if d.weekday() < 5:
            days.append(d)
    days.reverse()
    h = History()
    for acct, (cash, positions) in ACCOUNTS.items():
        h.by_origin["firm"].append(account_record(
            origin="firm", seq=len(h.by_origin["firm"]) + 1, hlc=ny_clock(days[0], 8, 0, "firm"), account=acct,
            cash=Decimal(cash), positions={k: Decimal(v) for k, v in positions.items()}, txn=f"account:{acct}",
            extra={"active": True}))
    placed: dict[str, str] = {}
    settles: list[tuple[dt.date, dt.date, Record]] = []
    n = 0
    for day in days:
        kinds = ["fill", "fill", "cancel"] + (["open"] if day == days[0] else [])
        for k, kind in enumerate(kinds):
            n += 1
            txn = f"cfu1-0.{n}"
            placed[txn] = day.isoformat()
            side = "1" if k % 2 == 0 else "2"
            terms: dict[str, Any] = {
                "txn": txn, "account": "ACC1", "symbol": "AAPL", "side": side, "order_qty": Decimal(10),
                "price": Decimal("150.00"), "ord_type": "2", "tif": "1" if kind == "open" else "0",
                "cl_ord_id": f"W{n}", "venue": "exchange", "session": "CLIENT1"}
            minute = 10 * k
            h.add("cfu1", ny_clock(day, 10, minute, "cfu1"), type=RecordType.ORDER, status="A", **terms)
            h.add("cfu1", ny_clock(day, 10, minute + 1, "cfu1"), type=RecordType.ROUTED, status="A",
                  extra={"street": "ssu1"}, **terms)
            h.add("ssu1", ny_clock(day, 10, minute + 2, "ssu1"), type=RecordType.SENT, status="A", **terms)
            h.add("ssu1", ny_clock(day, 10, minute + 3, "ssu1"), type=RecordType.VENUE_ACK, status="0",
                  venue_order_id=f"V{n}", **terms)
            if kind == "fill":
                fill = h.add("ssu1", ny_clock(day, 10, minute + 4, "ssu1"), type=RecordType.FILL, status="2",
                             venue_order_id=f"V{n}", exec_id=f"X{n}", last_qty=Decimal(10),
                             last_px=Decimal("150.00"), cum_qty=Decimal(10), avg_px=Decimal("150.00"), **terms)
                settles.append((settlement_date(day), day, fill))
            elif kind == "cancel":
                h.add("ssu1", ny_clock(day, 10, minute + 5, "ssu1"), type=RecordType.CANCELED, status="4",
                      venue_order_id=f"V{n}", **terms)
        for j, (settle_day, trade_day, fill) in enumerate([s for s in settles if s[0] == day]):
            h.add("firm", ny_clock(day, 9, j, "firm"), type=RecordType.SETTLED, status="settled", txn=fill.txn,
                  account=fill.account, symbol=fill.symbol, side=fill.side, exec_id=fill.exec_id,
                  last_qty=fill.last_qty, last_px=fill.last_px,
                  extra={"fill_ref": f"{fill.txn}|{fill.exec_id}", "trade_date": trade_day.isoformat(),
                         "settle_date": settle_day.isoformat()})
    return h, placed


def fill_logs(cl: Cluster, h: History, nodes: tuple[str, ...]) -> None:
    for node in nodes:
        with RecordLog(cl.data / node / "log", node_id=node, role=ROLES[node]) as log, log.write() as batch:
            for origin, recs in h.by_origin.items():
                batch.insert(ROLES[origin], [(r, encode_record(r)) for r in recs])


def removed_expected(placed: dict[str, str], h: History, cutoff: dt.date) -> set[str]:
    """The rule, as the test states it: canceled by the cutoff, or filled and settled by it."""
    out = set()
    kinds = {r.txn: r.type for r in h.by_origin["ssu1"] if r.type in (RecordType.FILL, RecordType.CANCELED)}
    for txn, day_s in placed.items():
        day = dt.date.fromisoformat(day_s)
        if (kinds.get(txn) is RecordType.CANCELED and day <= cutoff) or \
                (kinds.get(txn) is RecordType.FILL and settlement_date(day) <= cutoff):
            out.add(txn)
    return out


def held_txns(cl: Cluster, node: str, txns: set[str]) -> set[str]:
    with RecordLog(cl.data / node / "log", readonly=True) as log:
        return {t for t in txns if log.records_for_txn(t)}


def test_old_finished_orders_leave_every_log_and_the_books_stay(tmp_path: Path) -> None:
    today = new_york_today()
    h, placed = a_week(today)
    cutoff = cutoff_day(today, 2)
    gone = removed_expected(placed, h, cutoff)
    kept = set(placed) - gone
    assert gone and kept, (gone, kept)
    before = books_summary(Books.from_records(h.all()))

    cl = Cluster(tmp_path)
    fill_logs(cl, h, ("cfu1", "ssu1", "firm"))      # cfu2 and ssu2 catch up from the others at start
    cl.start()
    try:
        def archived_everywhere() -> bool:
            return all(not held_txns(cl, n, gone) for n in ROLES)
        wait_for("the old orders archived on every node", archived_everywhere, timeout=60)

        def counted(node: str) -> bool:
            return bool(cl.status(node)["counters"].get("archived_orders") == len(gone))
        for n in ROLES:
            assert held_txns(cl, n, kept) == kept, n
            wait_for(f"{n}'s status to count the archived orders", functools.partial(counted, n), timeout=15)
            files = sorted((cl.data / n / "log" / "archive").glob(f"{n}.*.fxar"))
            assert files, n
        assert cl.status("firm")["counters"]["carried"] == len(ACCOUNTS)

        # the books of what is left, with the carry, are the books of the whole week
        out = cl.fixgw("firm", "books", "--config", str(cl.config), "--json")
        assert out.returncode == 0, out.stderr
        after = json.loads(out.stdout)
        assert after["ACC1"]["positions"] == before["ACC1"]["positions"]
        assert after["ACC1"]["cash"] == before["ACC1"]["cash"]

        verify = cl.fixgw("log", "verify", *cl.node_dirs(*ROLES))
        assert verify.returncode == 0, verify.stdout + verify.stderr

        # a replica that lost its log catches up from origins whose logs have holes
        assert cl.status("cfu2")["own_seq"] == 0
        cl.kill("cfu2")
        shutil.rmtree(cl.data / "cfu2" / "log")
        cl.start_node("cfu2")
        heads = {o: cl.status(o)["own_seq"] for o in ("cfu1", "ssu1", "firm")}

        def caught_up() -> bool:
            hwm = cl.status("cfu2")["hwm"]
            return all(int(hwm.get(o, 0)) >= head for o, head in heads.items())
        wait_for("cfu2 caught up over the archived holes", caught_up, timeout=60)
        assert held_txns(cl, "cfu2", kept) == kept and not held_txns(cl, "cfu2", gone)
        verify = cl.fixgw("log", "verify", *cl.node_dirs(*ROLES))
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "cfu2 never held" in verify.stdout, verify.stdout
    finally:
        cl.stop()
