"""Which orders may leave a node's live log: the retention rule (issue 18, item 2).

Every node's log is insert-only and grew with history: restarts, memory and disk with it.
The firm's end-of-day books are the system of record for closed days, so the records of an
order that was over before the last :data:`DEFAULT_KEEP_DAYS` closed trading days may be
archived (written to a file per day, ``replication.archive``) and removed from the live log,
on every node by this same rule.

Why removing them leaves every view the same
    An order's records count in three places: its own status (asked for by OrderStatusRequest:
    an order closed days ago is answered from the archive by an operator, not by the utility),
    the pre-trade and ledger views of a customer utility, and the firm's books. The last two
    are sums over every trade ever made, so the firm first carries each account's balances
    forward to the end of the cutoff day: an ACCOUNT record with ``as_of`` (see Balances
    carried forward in :mod:`utilities.books`) that holds every trade of trade date up to then.
    With it, trades of those dates count through the opening and not one by one, so whether
    their orders are still in the log changes nothing. ``tests/utilities/test_retention.py``
    checks it over random histories: the books, a customer utility's ledger and its risk view
    of every record equal those of the records left after removing what this rule picks.

The rule (:func:`removable`), for one order's records as this node holds them
    * its status (the fold) is final: Filled, Canceled, Rejected or Expired; an order still open,
      however old (a GTC order), stays with all its records;
    * every record is stamped (trade date, New York) on or before the cutoff day;
    * every trade of it is settled, with a settlement date on or before the cutoff day (the
      SETTLED records are filed under the order's txn, and go with it);
    * the account's balances are carried forward to the cutoff day or later (the caller
      checks that once per account: :func:`carried_to`).

    A node that holds only part of an order (a street utility holds no customer records) applies
    the rule to what it holds. A record of a removed order that arrives later (a replica that was
    away) is stored as any record; its trade is in the carry already, so it adds nothing to the
    balances.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import sys
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from replication.archive import archive_keys, archive_txns
from replication.codec import decode_record
from replication.log import RecordLog
from replication.record import Record, RecordType, Role
from utilities.books import (
    AS_OF_KEY,
    account_opening,
    new_york_today,
    opening_rank,
    order_trades,
    trade_date_of,
)
from utilities.child_env import child_env
from utilities.errors import UtilitiesError
from utilities.status import ORDER_FLOW_TYPES, fold

log = logging.getLogger(__name__)

DEFAULT_KEEP_DAYS = 2
"""Closed trading days whose orders stay in the live log (``[cluster] retention_days``)."""


def cutoff_day(today: dt.date, keep_days: int = DEFAULT_KEEP_DAYS, holidays: Collection[dt.date] = ()) -> dt.date:
    """The last trading day whose finished orders may leave the live log on ``today`` (New York):
    the trading day before the last ``keep_days`` closed ones. On Wednesday with 2 days kept
    (Tuesday and Monday), Friday."""
    if keep_days < 0:
        raise ValueError(f"keep_days must be >= 0, got {keep_days}")
    d = today
    for _ in range(keep_days + 1):
        d -= dt.timedelta(days=1)
        while d.weekday() >= 5 or d in holidays:
            d -= dt.timedelta(days=1)
    return d


def carried_to(account_records: Iterable[Record]) -> dt.date | None:
    """The day an account's balances are carried forward to: the ``as_of`` of its
    highest-ranked ACCOUNT record that parses (None: never carried)."""
    best: tuple[tuple[str, int, int, str, str, int], dt.date | None] | None = None
    for r in account_records:
        if r.type is not RecordType.ACCOUNT:
            continue
        try:
            opening = account_opening(r)
        except ValueError:
            continue
        rank = opening_rank(r)
        if best is None or best[0] < rank:
            best = (rank, opening.as_of)
    return best[1] if best is not None else None


def removable(txn: str, records: Iterable[Record], cutoff: dt.date, carried: Mapping[str, dt.date | None],
              holidays: Collection[dt.date] = ()) -> bool:
    """Whether the order ``txn`` (its records as this node holds them) may leave the live log
    with balances carried to ``carried[account]`` (see the module doc)."""
    recs = list(records)
    if not recs or not any(r.type in ORDER_FLOW_TYPES for r in recs):
        return False
    for r in recs:
        if trade_date_of(r.hlc) > cutoff:
            return False
    status = fold(recs)
    if status is None or not status.is_terminal:
        return False
    carry = carried.get(status.account) if status.account else None
    trades, _ = order_trades(txn, recs, holidays=holidays)
    if trades and (carry is None or carry < cutoff):
        return False
    return all(t.settled and t.settle_date <= cutoff for t in trades.values())


@dataclass(slots=True)
class Plan:
    """What one retention pass over a log would remove: the orders by the day they closed
    (the last trade date among their records: the day of their archive file)."""

    cutoff: dt.date
    by_day: dict[dt.date, list[str]] = field(default_factory=dict)
    superseded: dict[dt.date, list[tuple[str, int]]] = field(default_factory=dict)   # the firm's, by key (see plan)
    scanned: int = 0          # records read to find the candidates
    candidates: int = 0       # orders with a record stamped on or before the cutoff
    kept: int = 0             # of those, the ones the rule keeps (open, not settled, not carried)

    @property
    def orders(self) -> int:
        return sum(len(txns) for txns in self.by_day.values())


_SNAPSHOT_TYPES = frozenset({RecordType.POSITION, RecordType.BUYING_POWER, RecordType.END_OF_DAY})


def _snapshot_day(r: Record) -> dt.date | None:
    """The trading day an end-of-day record of the firm is about."""
    v = r.extra.get("trade_date")
    text = v if isinstance(v, str) else r.txn.removeprefix("eod:")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def plan(log: RecordLog, cutoff: dt.date, *, holidays: Collection[dt.date] = ()) -> Plan:
    """The orders this log may remove at ``cutoff`` (see the module doc), found without reading
    the whole log: an origin's records come in its clock's order, so each origin is read from
    its oldest record held to its first one stamped after the cutoff. What a pass removed is no
    longer there to read, so a daily pass reads about one day of records plus the orders kept
    (still open)."""
    out = Plan(cutoff)
    accounts: dict[str, list[Record]] = {}
    for _, raw in log.iter_txn_range("account:", "account;"):
        r = decode_record(raw)
        if r.type is RecordType.ACCOUNT and r.account:
            accounts.setdefault(r.account, []).append(r)
    carried = {acct: carried_to(rs) for acct, rs in accounts.items()}
    # the firm's records a carry supersedes: its end-of-day snapshots (POSITION, BUYING_POWER,
    # END_OF_DAY) of carried days, and every ACCOUNT record of an account but its opening
    # (the highest-ranked, a carry), from days up to the cutoff
    closed = min((d for d in carried.values() if d is not None), default=None) \
        if carried and all(carried.values()) else None
    for rs in accounts.values():
        top = max(rs, key=opening_rank)
        if carried_to([top]) is not None:
            for r in rs:
                if r is not top and trade_date_of(r.hlc) <= cutoff:
                    out.superseded.setdefault(trade_date_of(r.hlc), []).append((r.origin, r.seq))
    states = log.origin_states()
    txns: dict[str, None] = {}
    for origin in sorted(states):
        firm = states[origin].role is Role.FIRM
        for _, raw in log.iter_raw(origin):
            out.scanned += 1
            r = decode_record(raw)
            if trade_date_of(r.hlc) > cutoff:
                break
            if r.type in ORDER_FLOW_TYPES or r.type is RecordType.SETTLED:
                txns.setdefault(r.txn)
            elif firm and closed is not None and r.type in _SNAPSHOT_TYPES:
                day = _snapshot_day(r)
                if day is not None and day <= min(cutoff, closed):
                    out.superseded.setdefault(day, []).append((r.origin, r.seq))
    out.candidates = len(txns)
    for txn in txns:
        recs = log.records_for_txn(txn)
        if removable(txn, recs, cutoff, carried, holidays):
            day = max(trade_date_of(r.hlc) for r in recs)
            out.by_day.setdefault(day, []).append(txn)
        else:
            out.kept += 1
    return out


def plan_main(argv: list[str]) -> int:
    """``python -m utilities.retention plan LOG_DIR CUTOFF``: :func:`plan` on a read-only open of
    the log, printed as JSON (what a node's pass runs in a child process)."""
    if len(argv) != 3 or argv[0] != "plan":
        print("usage: python -m utilities.retention plan LOG_DIR YYYY-MM-DD", file=sys.stderr)
        return 2
    with RecordLog(Path(argv[1]), readonly=True) as rl:
        got = plan(rl, dt.date.fromisoformat(argv[2]))
    print(json.dumps({"by_day": {d.isoformat(): txns for d, txns in got.by_day.items()}, "scanned": got.scanned,
                      "candidates": got.candidates, "kept": got.kept,
                      "superseded": {d.isoformat(): keys for d, keys in got.superseded.items()}}))
    return 0


def _plan_of(out: bytes, cutoff: dt.date) -> Plan:
    raw = json.loads(out)
    return Plan(cutoff, {dt.date.fromisoformat(d): list(t) for d, t in raw["by_day"].items()},
                {dt.date.fromisoformat(d): [(str(o), int(q)) for o, q in keys] for d, keys in raw["superseded"].items()},
                int(raw["scanned"]), int(raw["candidates"]), int(raw["kept"]))


class Retention:
    """A node's retention passes: once per New York date (and once soon after start), the orders
    :func:`plan` picks are archived, one file per day they closed, and removed from the live
    log (:func:`replication.archive.archive_txns`: the file is durable before a record goes).

    The pass runs in a worker thread: it reads about one day of records and folds the orders
    among them, which would hold the event loop for seconds; the removals are LMDB write
    transactions like the node's own, taken in turn under the log's write lock."""

    def __init__(self, record_log: RecordLog, *, keep_days: int = DEFAULT_KEEP_DAYS,
                 today: Callable[[], dt.date] | None = None, holidays: Collection[dt.date] = ()) -> None:
        self.record_log = record_log
        self.keep_days = keep_days
        self.today = today or new_york_today
        self.holidays = frozenset(holidays)
        self.counters = {"retention_passes": 0, "archived_orders": 0, "archived_records": 0}
        self.last: Plan | None = None
        self._done_for: dt.date | None = None
        self._carried = asyncio.Event()

    def run_once(self, got: Plan | None = None) -> Plan:
        """One pass now (blocking: call it in a worker thread from the event loop); ``got``: a
        plan made already (by :meth:`run`'s child process), else it is made here."""
        if got is None:
            got = plan(self.record_log, cutoff_day(self.today(), self.keep_days, self.holidays), holidays=self.holidays)
        rl = self.record_log
        for day, txns in sorted(got.by_day.items()):
            result = archive_txns(rl, rl.node_id, rl.role, day, txns)
            self.counters["archived_orders"] += len(txns)
            self.counters["archived_records"] += result.archived
            log.info("%s: %d order(s) closed on %s archived (%d records) to %s", rl.node_id, len(txns), day,
                     result.archived, result.path)
        for day, keys in sorted(got.superseded.items()):
            result = archive_keys(rl, rl.node_id, rl.role, day, keys)
            self.counters["archived_records"] += result.archived
            log.info("%s: %d superseded firm record(s) of %s archived to %s", rl.node_id, result.archived, day,
                     result.path)
        self.counters["retention_passes"] += 1
        self.last = got
        return got

    def anything_by(self, cutoff: dt.date) -> bool:
        """Whether any origin's oldest record held is stamped on or before ``cutoff``: else a pass
        has nothing to look at (a young cluster, or one whose pass today ran already), and no child
        process is started. One record read per origin."""
        for origin in self.record_log.origin_states():
            for _, raw in self.record_log.iter_raw(origin):
                if trade_date_of(decode_record(raw).hlc) <= cutoff:
                    return True
                break
        return False

    async def plan_in_child(self, cutoff: dt.date) -> Plan:
        """:func:`plan` in a child process on a read-only open of this log (``python -m
        utilities.retention plan``): it reads and folds about a day of records, ~26 us a record
        scanned (``python -m utilities.retentionbench`` on 1,000,000 records: 9.4 s for two days
        of 35,750 orders), which in a thread would hold the node's event loop through the GIL."""
        if self.holidays:      # the child knows no holidays: plan here
            return await asyncio.to_thread(plan, self.record_log, cutoff, holidays=self.holidays)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "utilities.retention", "plan", str(self.record_log.path), cutoff.isoformat(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=child_env())
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise UtilitiesError(f"retention plan exited {proc.returncode}: {err.decode(errors='replace')[-2000:]}")
        return _plan_of(out, cutoff)

    def heard(self, r: Record) -> None:
        """A record this node now holds (a listener of the node): a carry forward from the firm
        lets orders with trades go, so it calls a pass without waiting for the next date."""
        if r.type is RecordType.ACCOUNT and AS_OF_KEY in r.extra:
            self._carried.set()

    async def run(self, *, first_after: float = 5.0, every: float = 60.0) -> None:
        """Pass ``first_after`` seconds after start, then once per New York date and whenever a
        carry forward arrives (checked every ``every`` seconds). A pass that fails is logged and
        tried again at the next check."""
        await asyncio.sleep(first_after)
        while True:
            today = self.today()
            if today != self._done_for or self._carried.is_set():
                self._carried.clear()
                try:
                    cutoff = cutoff_day(today, self.keep_days, self.holidays)
                    if self.anything_by(cutoff):
                        got = await self.plan_in_child(cutoff)
                        await asyncio.to_thread(self.run_once, got)
                    self._done_for = today
                except Exception:
                    log.exception("%s: retention pass failed (tried again in %.0f s)", self.record_log.node_id, every)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._carried.wait(), every)


if __name__ == "__main__":
    sys.exit(plan_main(sys.argv[1:]))
