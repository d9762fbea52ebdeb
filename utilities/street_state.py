"""What a street utility rebuilds from its log at start-up, kept up to date by every record.

- the cancel/replace requests by venue ClOrdID (``requests``: a bounded cache of the log, the
  oldest dropped first; an older one is read back from the log when a report names it);
- the ExecIDs of recent venue fills (``seen_exec``: the duplicate check of fills; older ones can
  only come back resent, PossDupFlag=Y, and the order's records say then);
- the customer orders sent, today's and yesterday's: (client, ClOrdID) -> txn (``sent_ids``: an
  order sent again under another txn by a customer utility's successor is not sent twice);
- the open orders (:class:`utilities.open_orders.OpenOrders`: what reconciliation and takeover
  ask about).

One :class:`StreetState` is the live view (``StreetUtility``) and the content of the street's
snapshot (:mod:`utilities.street_snapshot`): the same code indexes a record live, at start-up
and in the snapshot process, so a snapshot plus its tail is the view a full fold gives
(tests/utilities/test_street_snapshot.py checks it over random histories).

Bounded whatever the uptime (issue 19): :data:`EXEC_LIMIT`, :data:`REQUEST_LIMIT`, two trading
days of sent ids; the open orders hold the orders not final (resting or in flight), and the
txns to fold again are folded by the street once there are ``utilities.street.SETTLE_DIRTY``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from replication.log import KeyFilter, LogReader
from replication.matrix import Holding
from replication.record import Record, RecordType
from utilities.books import trade_date_of
from utilities.open_orders import OpenOrders

SENT_TYPES = frozenset({RecordType.SENT, RecordType.TAKEOVER})
REQUEST_TYPES = frozenset({RecordType.CANCEL_SENT, RecordType.REPLACE_SENT})  # carry extra["venue_cl_ord_id"]

EXEC_LIMIT = 200_000    # venue ExecIDs of recent fills kept for the duplicate check (oldest dropped first)
REQUEST_LIMIT = 50_000  # cancel/replace requests kept in memory by venue ClOrdID (older ones are read from the log)


def put_bounded(d: dict[Any, Any], key: Any, value: Any, limit: int) -> None:
    """``d[key] = value``, dropping the oldest entry first when ``d`` already holds ``limit``."""
    if key not in d and len(d) >= limit:
        del d[next(iter(d))]
    d[key] = value


class RecentIds:
    """The last ``limit`` ids added, in a set that stays that size whatever the uptime."""

    __slots__ = ("_ids", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"RecentIds needs a positive limit, got {limit}")
        self.limit = limit
        self._ids: dict[str, None] = {}

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def add(self, item: str) -> None:
        if item not in self._ids:
            put_bounded(self._ids, item, None, self.limit)


@dataclass
class StreetState:
    """A street utility's views rebuilt from its log (see the module doc)."""

    requests: dict[str, Record] = field(default_factory=dict)
    seen_exec: RecentIds = field(default_factory=lambda: RecentIds(EXEC_LIMIT))
    sent_ids: dict[dt.date, dict[tuple[str, str], str]] = field(default_factory=dict)
    open_orders: OpenOrders = field(default_factory=OpenOrders)

    def index(self, r: Record, authoritative: bool) -> None:
        """One record into the views (live, at start-up, in the snapshot process).
        ``authoritative``: held as such (the open orders are the fold of those only)."""
        if authoritative:
            self.open_orders.see(r)
        rtype = r.type
        if rtype in REQUEST_TYPES:
            vid = str(r.extra.get("venue_cl_ord_id", ""))
            if vid:
                put_bounded(self.requests, vid, r, REQUEST_LIMIT)
        elif rtype is RecordType.FILL and r.exec_id:
            self.seen_exec.add(r.exec_id)
        elif rtype in SENT_TYPES and r.session and r.cl_ord_id:
            self.note_sent(r.session, r.cl_ord_id, r.txn, trade_date_of(r.hlc))

    def remember_request(self, vid: str, r: Record) -> None:
        put_bounded(self.requests, vid, r, REQUEST_LIMIT)

    def note_sent(self, session: str, cl_ord_id: str, txn: str, day: dt.date) -> None:
        ids = self.sent_ids.get(day)
        if ids is None:
            ids = self.sent_ids[day] = {}
            for old in sorted(self.sent_ids)[:-2]:   # today's and yesterday's are enough
                del self.sent_ids[old]
        ids.setdefault((session, cl_ord_id), txn)

    def sent_as(self, session: str, cl_ord_id: str, day: dt.date) -> str | None:
        return self.sent_ids.get(day, {}).get((session, cl_ord_id))

    def fold_from(self, rd: LogReader, after: Mapping[str, int], upto: Mapping[str, int] | None = None) -> int:
        """The records of ``rd`` above ``after`` (and at or below ``upto``) into the views; how many."""
        auth: dict[str, bool] = {}
        n = 0
        for r in rd.iter_after(after, upto):
            a = auth.get(r.origin)
            if a is None:
                a = auth[r.origin] = rd.holding_of(r.origin) is Holding.AUTHORITATIVE
            self.index(r, a)
            n += 1
        return n


def authoritative_only(holding_of: Callable[[str], Holding | None]) -> KeyFilter:
    """A key filter of the records held authoritative (``records_for_txn(txn, want)``), by origin."""
    memo: dict[str, bool] = {}

    def want(origin: str, seq: int) -> bool:
        a = memo.get(origin)
        if a is None:
            how = holding_of(origin)
            a = how is Holding.AUTHORITATIVE
            if how is not None:      # an origin not held yet is asked again
                memo[origin] = a
        return a
    return want
