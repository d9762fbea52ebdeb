"""The firm node: books and records.

It holds every customer and street record (read-only) and writes the firm's own records:
ACCOUNT records for the accounts in the cluster config (once, so that customer and street
utilities can check orders against them), SETTLED records as trades reach settlement
(T+1), and at the end of each trading day POSITION / BUYING_POWER snapshots, an
END_OF_DAY record and the day's books in ``<data>/eod/<date>.json`` and ``.txt``.

Carrying balances forward (retention, :mod:`utilities.retention`)
    Once a day, after settling, it carries every account's balances forward to the retention
    cutoff (the trading day before the last ``retention_days`` closed ones): one more ACCOUNT
    record per account, with ``as_of`` and the amounts of every trade up to then
    (:func:`utilities.books.carry_extra`) and the account's limits as they were. From then on,
    the orders finished and settled by that day may leave every node's live log without changing
    a balance anywhere. It does so only when it holds every record the other nodes announced
    (``caught_up``): a trade of the carried days that reached the firm after the carry would be
    left out of the balances.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from replication.record import Record, RecordType
from utilities.books import (
    AS_OF_KEY,
    CASH_KEY,
    LAST_AT_PREFIX,
    LAST_PX_PREFIX,
    POSITION_PREFIX,
    SETTLED_CASH_KEY,
    SETTLED_POSITION_PREFIX,
    Books,
    carry_extra,
    dec_str,
    end_of_day_report,
    format_report_text,
    new_york_today,
    opening_rank,
    settlements_due,
    trade_date_of,
)
from utilities.record_node import RecordNode
from utilities.retention import carried_to, cutoff_day

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
        retention_days: int | None = None,           # None: balances are never carried forward
        caught_up: Callable[[], bool] | None = None,  # holds every record the others announced
    ) -> None:
        self.node = node
        self.name = node_name
        self.accounts = dict(accounts)
        self.eod_dir = eod_dir
        self.reference_prices = dict(reference_prices or {})
        self.today = today or new_york_today
        self.retention_days = retention_days
        self.caught_up = caught_up or (lambda: True)
        self.counters = {"settled": 0, "eod_runs": 0, "carried": 0}
        self._last_day: dt.date | None = None
        self._carry_due: dt.date | None = None
        self._carry_waits = 0

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

    def carried_through(self) -> dt.date | None:
        """The last day every configured account's balances are carried forward to (None: an
        account has no carry yet)."""
        days = [carried_to(self.node.log.records_for_txn(account_txn(a))) for a in self.accounts]
        known = [d for d in days if d is not None]
        return min(known) if known and len(known) == len(days) else None

    async def carry_forward(self, as_of: dt.date) -> int:
        """Carry every account's balances forward to the end of ``as_of`` (see the module doc);
        accounts carried that far already are left alone. How many ACCOUNT records it wrote."""
        records = self.records()
        books = self.books(records)
        latest: dict[str, Record] = {}
        for r in records:
            if r.type is RecordType.ACCOUNT and r.account and r.origin == self.name and (
                    r.account not in latest or opening_rank(latest[r.account]) < opening_rank(r)):
                latest[r.account] = r
        written = 0
        for acct, rec in sorted(latest.items()):
            opening = books.opening(acct)
            if opening is None or (opening.as_of is not None and opening.as_of >= as_of):
                continue
            extra: dict[str, Any] = {k: v for k, v in rec.extra.items() if not _carried_key(k)}
            extra.update(carry_extra(books, acct, as_of))
            await self.node.append(type=RecordType.ACCOUNT, txn=account_txn(acct), status="open", account=acct,
                                   extra=extra)
            written += 1
        if written:
            self.counters["carried"] += written
            log.info("%s: balances of %d account(s) carried forward to %s", self.name, written, as_of)
        return written

    async def daily_once(self) -> None:
        """Once per New York date: end of day for the dates before it, settle what is due, then
        carry the balances forward to the retention cutoff."""
        today = self.today()
        if today != self._last_day:     # the books are folded over every record: once a day, not every pass
            done = self.eod_done()
            closed = self.carried_through()
            dates = sorted({trade_date_of(r.hlc) for r in self.node.log.iter_type(RecordType.FILL)})
            for d in dates:
                # a carried day is closed: its END_OF_DAY record may be archived, and what is left
                # of its fills (orders still open) is not its whole day: its report stays as written
                if d < today and d.isoformat() not in done and (closed is None or d > closed):
                    await self.end_of_day(d)
            await self.settle(today)
            self._last_day = today
            if self.retention_days is not None:
                self._carry_due = cutoff_day(today, self.retention_days)
        if self._carry_due is not None:
            if not self.caught_up():
                if self._carry_waits == 30:     # at start, digests are a few passes away: only a long wait is news
                    log.warning("%s: balances not carried forward to %s yet: records other nodes announced are "
                                "not all here (tried again every pass)", self.name, self._carry_due)
                self._carry_waits += 1
                return
            self._carry_waits = 0
            await self.carry_forward(self._carry_due)
            self._carry_due = None

    async def run_daily(self, interval: float = 30.0, retry: float = 1.0) -> None:
        """:meth:`daily_once` every ``interval`` seconds; every ``retry`` seconds while a carry
        forward waits for the other nodes' records (at start: their digests are seconds away)."""
        while True:
            try:
                await self.daily_once()
            except Exception:
                log.exception("%s: end-of-day pass failed", self.name)
            await asyncio.sleep(retry if self._carry_due is not None else interval)


def _carried_key(key: str) -> bool:
    """An ACCOUNT record's ``extra`` key that a carry forward sets (the rest are limits, kept)."""
    return key in (CASH_KEY, SETTLED_CASH_KEY, AS_OF_KEY) or key.startswith(
        (POSITION_PREFIX, SETTLED_POSITION_PREFIX, LAST_PX_PREFIX, LAST_AT_PREFIX))


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
