"""The firm node: books and records.

It holds every customer and street record (read-only) and writes the firm's own records:
ACCOUNT records for the accounts in the cluster config (once, so that customer and street
utilities can check orders against them), SETTLED records as trades reach settlement
(T+1), and at the end of each trading day POSITION / BUYING_POWER snapshots, an
END_OF_DAY record and the day's books in ``<data>/eod/<date>.json`` and ``.txt``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from replication.record import Record, RecordType
from utilities.books import (
    CASH_KEY,
    POSITION_PREFIX,
    Books,
    dec_str,
    end_of_day_report,
    format_report_text,
    new_york_today,
    settlements_due,
    trade_date_of,
)
from utilities.record_node import RecordNode

log = logging.getLogger(__name__)


def account_txn(account: str) -> str:
    return f"account:{account}"


class FirmNode:
    def __init__(
        self,
        *,
        node: RecordNode,
        node_name: str,
        accounts: Mapping[str, Any],                 # account id -> utilities.cluster_config.AccountConfig
        eod_dir: Path,
        reference_prices: Mapping[str, Decimal] | None = None,
        today: Any = None,                           # () -> date (New York); injectable for tests
    ) -> None:
        self.node = node
        self.name = node_name
        self.accounts = dict(accounts)
        self.eod_dir = eod_dir
        self.reference_prices = dict(reference_prices or {})
        self.today = today or new_york_today
        self.counters = {"settled": 0, "eod_runs": 0}
        self._last_day: dt.date | None = None

    async def open_accounts(self) -> int:
        """Write an ACCOUNT record for each configured account that has none yet from us."""
        have = {r.account for r in self.node.log.iter_type(RecordType.ACCOUNT) if r.origin == self.name}
        written = 0
        for acct in self.accounts.values():
            if acct.id in have:
                continue
            extra: dict[str, Any] = {CASH_KEY: acct.cash, "active": acct.active}
            for sym, qty in acct.positions.items():
                extra[POSITION_PREFIX + sym] = qty
            if acct.max_order_qty is not None:
                extra["max_order_qty"] = acct.max_order_qty
            if acct.max_notional is not None:
                extra["max_notional"] = acct.max_notional
            await self.node.append(type=RecordType.ACCOUNT, txn=account_txn(acct.id), status="open",
                                   account=acct.id, extra=extra)
            written += 1
        return written

    def records(self) -> list[Record]:
        return list(self.node.log.iter_all())

    def books(self, records: Iterable[Record] | None = None) -> Books:
        return Books.from_records(self.records() if records is None else records,
                                  reference_prices=self.reference_prices)

    async def settle(self, on_date: dt.date | None = None) -> int:
        books = self.books()
        done = 0
        for s in settlements_due(books, on_date or self.today()):
            await self.node.append(
                type=RecordType.SETTLED, txn=s.txn, status="settled", account=s.account, symbol=s.symbol,
                side=s.side, exec_id=s.exec_id, last_qty=s.qty, last_px=s.price,
                extra={"fill_ref": s.ref, "trade_date": s.trade_date.isoformat(), "settle_date": s.settle_date.isoformat()},
            )
            done += 1
        self.counters["settled"] += done
        return done

    def eod_done(self) -> set[str]:
        return {r.txn.removeprefix("eod:") for r in self.node.log.iter_type(RecordType.END_OF_DAY) if r.origin == self.name}

    async def end_of_day(self, trade_date: dt.date) -> Path:
        """Write the books and records of ``trade_date`` (a JSON and a text file) and the snapshots."""
        records = self.records()
        report = end_of_day_report(records, trade_date, reference_prices=self.reference_prices)
        self.eod_dir.mkdir(parents=True, exist_ok=True)
        path = self.eod_dir / f"{trade_date.isoformat()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(report, indent=2, sort_keys=True))
        tmp.replace(path)
        path.with_suffix(".txt").write_text(format_report_text(report))
        books = self.books(records)
        for acct in books.accounts():
            for pos in books.positions(acct):
                await self.node.append(type=RecordType.POSITION, txn=f"position:{acct}:{pos.symbol}", status="eod",
                                       account=acct, symbol=pos.symbol,
                                       extra={"trade_date": trade_date.isoformat(),
                                              "position": pos.traded, "settled": pos.settled})
            await self.node.append(type=RecordType.BUYING_POWER, txn=f"buying_power:{acct}", status="eod", account=acct,
                                   extra={"trade_date": trade_date.isoformat(), "buying_power": books.buying_power(acct)})
        await self.node.append(type=RecordType.END_OF_DAY, txn=f"eod:{trade_date.isoformat()}", status="done",
                               extra={"file": str(path), "accounts": len(books.accounts())})
        self.counters["eod_runs"] += 1
        log.info("%s: end of day %s written to %s", self.name, trade_date, path)
        return path

    async def daily_once(self) -> None:
        """Once per New York date: end of day for the dates before it, then settle what is due."""
        today = self.today()
        if today == self._last_day:
            return      # the books are folded over every record: once a day, not every pass
        done = self.eod_done()
        dates = sorted({trade_date_of(r.hlc) for r in self.node.log.iter_type(RecordType.FILL)})
        for d in dates:
            if d < today and d.isoformat() not in done:
                await self.end_of_day(d)
        await self.settle(today)
        self._last_day = today

    async def run_daily(self, interval: float = 30.0) -> None:
        while True:
            try:
                await self.daily_once()
            except Exception:
                log.exception("%s: end-of-day pass failed", self.name)
            await asyncio.sleep(interval)


def books_summary(books: Books) -> dict[str, Any]:
    """Positions and cash per account, JSON-ready (for ``fixgw firm books`` and tests)."""
    out: dict[str, Any] = {}
    for acct in books.accounts():
        cash = books.cash(acct)
        out[acct] = {
            # Position/Cash "traded" and "settled" already include the opening balance
            "cash": dec_str(cash.traded),
            "cash_settled": dec_str(cash.settled),
            "buying_power": dec_str(books.buying_power(acct)),
            "positions": {p.symbol: dec_str(p.traded) for p in books.positions(acct)},
        }
    return out
