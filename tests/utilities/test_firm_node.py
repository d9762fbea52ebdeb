"""The firm node over a real LMDB log: accounts once, end of day per date, T+1 settlement."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

from replication.codec import encode_record
from replication.node import ReplicationNode
from replication.record import RecordType, Role
from tests.utilities.support_orderrecs import fill, rec
from utilities.cluster_config import AccountConfig
from utilities.firm import FirmNode, books_summary

TRADE_DAY = dt.date(2024, 3, 5)        # T0 is 10:00 New York on Tuesday 2024-03-05
NEXT_DAY = dt.date(2024, 3, 6)


async def test_firm_opens_accounts_once_and_runs_end_of_day(tmp_path: Path) -> None:
    today = [TRADE_DAY]
    accounts = {"ACC1": AccountConfig(id="ACC1", cash=Decimal(10000), positions={"AAPL": Decimal(5)},
                                      max_order_qty=Decimal(100))}
    async with ReplicationNode(node_id="firm", role=Role.FIRM, cluster="t", data_dir=tmp_path / "log",
                               mqtt=False) as node:
        firm = FirmNode(node=node, node_name="firm", accounts=accounts, eod_dir=tmp_path / "eod",
                        today=lambda: today[0])
        assert await firm.open_accounts() == 1
        assert await firm.open_accounts() == 0          # idempotent across restarts
        acct = next(node.log.iter_type(RecordType.ACCOUNT))
        assert acct.extra["cash"] == Decimal(10000) and acct.extra["max_order_qty"] == Decimal(100)

        # a customer order and its fill arrive from the other roles (read-only here)
        order = rec(RecordType.ORDER, 0, origin="cfu1", seq=1, txn="cfu1-0.1", account="ACC1", order_qty=Decimal(10),
                    price=Decimal("10.00"))
        trade = fill(1, 10, "9.50", "X1", origin="ssu1", seq=1, txn="cfu1-0.1", account="ACC1", status="2")
        with node.log.write() as batch:
            batch.insert(Role.CUSTOMER, [(order, encode_record(order))])
            batch.insert(Role.STREET, [(trade, encode_record(trade))])

        await firm.daily_once()                          # same day: nothing to close, nothing due
        assert not list(node.log.iter_type(RecordType.SETTLED))
        summary = books_summary(firm.books())["ACC1"]
        assert summary["positions"]["AAPL"] == "15" and Decimal(summary["cash"]) == Decimal(10000) - Decimal(95)

        today[0] = NEXT_DAY
        await firm.daily_once()
        report = json.loads((tmp_path / "eod" / f"{TRADE_DAY.isoformat()}.json").read_text())
        assert report and (tmp_path / "eod" / f"{TRADE_DAY.isoformat()}.txt").exists()
        settled = list(node.log.iter_type(RecordType.SETTLED))
        assert len(settled) == 1 and settled[0].exec_id == "X1" and settled[0].extra["settle_date"] == "2024-03-06"
        assert [r.txn for r in node.log.iter_type(RecordType.END_OF_DAY)] == ["eod:2024-03-05"]
        assert any(r.symbol == "AAPL" and r.extra["position"] == Decimal(15)
                   for r in node.log.iter_type(RecordType.POSITION))
        head = node.log.head
        await firm.daily_once()                          # once per date
        assert node.log.head == head
        assert books_summary(firm.books())["ACC1"]["cash_settled"] == summary["cash"]


async def test_firm_carries_balances_forward_to_the_retention_cutoff(tmp_path: Path) -> None:
    """With ``retention_days = 1``: on Thursday the cutoff is Tuesday (Wednesday is kept); the
    firm writes one carry per account, once, with the limits kept, only when caught up."""
    today = [NEXT_DAY]
    caught_up = [False]
    accounts = {"ACC1": AccountConfig(id="ACC1", cash=Decimal(10000), positions={"AAPL": Decimal(5)},
                                      max_order_qty=Decimal(100))}
    async with ReplicationNode(node_id="firm", role=Role.FIRM, cluster="t", data_dir=tmp_path / "log",
                               mqtt=False) as node:
        firm = FirmNode(node=node, node_name="firm", accounts=accounts, eod_dir=tmp_path / "eod",
                        today=lambda: today[0], retention_days=1, caught_up=lambda: caught_up[0])
        await firm.open_accounts()
        order = rec(RecordType.ORDER, 0, origin="cfu1", seq=1, txn="cfu1-0.1", account="ACC1", order_qty=Decimal(10),
                    price=Decimal("10.00"))
        trade = fill(1, 10, "9.50", "X1", origin="ssu1", seq=1, txn="cfu1-0.1", account="ACC1", status="2")
        with node.log.write() as batch:
            batch.insert(Role.CUSTOMER, [(order, encode_record(order))])
            batch.insert(Role.STREET, [(trade, encode_record(trade))])
        before = books_summary(firm.books())
        await firm.daily_once()                # Wednesday: settles Tuesday's fill; cutoff Monday: nothing traded
        today[0] = dt.date(2024, 3, 7)
        await firm.daily_once()                # Thursday: cutoff Tuesday, but not caught up
        assert firm.counters["carried"] == 0
        caught_up[0] = True
        await firm.daily_once()
        carries = [r for r in node.log.iter_type(RecordType.ACCOUNT) if "as_of" in r.extra]
        assert len(carries) == 1 and firm.counters["carried"] == 1
        carry = carries[0].extra
        assert carry["as_of"] == "2024-03-05" and carry["max_order_qty"] == Decimal(100)
        assert (carry["cash"], carry["settled_cash"], carry["position.AAPL"]) == (Decimal(9905), Decimal(10000),
                                                                                 Decimal(15))
        assert carry["last_px.AAPL"] == Decimal("9.50")
        assert books_summary(firm.books()) == before | {"ACC1": before["ACC1"] | {"cash_settled": "9905.00"}}
        head = node.log.head
        await firm.carry_forward(TRADE_DAY)    # carried that far already
        today[0] = dt.date(2024, 3, 8)
        await firm.daily_once()                # Friday: cutoff Wednesday; nothing traded then, carried all the same
        assert [r.extra["as_of"] for r in node.log.iter_type(RecordType.ACCOUNT) if "as_of" in r.extra] == \
            ["2024-03-05", "2024-03-06"]
        assert node.log.head == head + 1
        # Tuesday is carried: once retention archived its END_OF_DAY record, its report is not
        # written again from what is left (a later day's pass)
        eod = next(r for r in node.log.iter_type(RecordType.END_OF_DAY) if r.txn == "eod:2024-03-05")
        assert node.log.remove([(eod.origin, eod.seq)]) == 1
        report = tmp_path / "eod" / "2024-03-05.json"
        written = report.stat().st_mtime_ns
        today[0] = dt.date(2024, 3, 11)
        await firm.daily_once()
        assert report.stat().st_mtime_ns == written
        assert not [r for r in node.log.iter_type(RecordType.END_OF_DAY) if r.txn == "eod:2024-03-05"]
