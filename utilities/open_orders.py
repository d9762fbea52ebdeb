"""The street utility's open orders, kept from its records as they come instead of scanned for.

A street asks for its open orders after every logon to a venue (reconciliation) and at every
takeover pass. It used to find them by scanning its whole log, grouping every record by txn in
memory and folding each txn (:func:`utilities.status.fold`): minutes of CPU and gigabytes of
memory at millions of records, at every logon.

:class:`OpenOrders` gives the same answer from an index: per txn not final, its
:class:`utilities.status.OrderStatus` (the fold of every authoritative record of the txn held)
and its first record (the lowest key ``(origin, seq)``: the one the scan met first, in its order).
The rule that keeps it exact whatever order records arrive in, from whatever origin, duplicates
included: every authoritative record with a txn marks its txn *dirty*; a dirty txn is folded
again, from ``records_for_txn`` (every record of it held, authoritative ones only), when the
open orders are asked for. A txn whose fold is final is dropped (final stays final:
:mod:`utilities.status`); a record of it that arrives later marks it dirty again and the fold
drops it again. So between two questions a txn's entry is the fold of every record it had at the
last question, and any record since has made it dirty: the answer is the full fold's.

Why lazily and not a fold per record: marking is a set insertion on the street's hot path (its
record listener went from 0.9 to 1.4 us a record with it and the snapshot count, 200,000
records), where a fold of the txn per record would cost an LMDB read of the txn's records and
the fold (47-72 us a txn of 3 records, measured below), per record; the folds are done when
the question is asked, in a worker thread, once per txn however many of its records came in
between.

Measured on a street log of 1,016,600 records (340,000 orders, 1% open; /tmp bench, 2 shared
cores): the scan took 30-38 s a question at 1.6-1.8 GB peak RSS; the index answers in 3-13 ms
with nothing to fold, 1.6 s after a start-up that folded 100,000 records (33,334 txns dirty),
24 s once after a start-up from nothing (every txn dirty).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from replication.log import record_key
from replication.record import Record
from utilities.status import OrderStatus, fold

OpenOrder = tuple[str, OrderStatus, Record]   # (txn, its status, its first record)
Refolded = dict[str, tuple[OrderStatus, Record] | None]   # txn -> (status, first) or None: not open


class OpenOrders:
    """txn -> (status, first record) of the orders not final, and the txns to fold again."""

    __slots__ = ("dirty", "open")

    def __init__(self) -> None:
        self.open: dict[str, tuple[OrderStatus, Record]] = {}
        self.dirty: set[str] = set()

    def see(self, r: Record) -> None:
        """An authoritative record added to the log (the caller says which are)."""
        if r.txn:
            self.dirty.add(r.txn)

    def take_dirty(self) -> set[str]:
        """The txns to fold again, handed over (records coming meanwhile mark them anew)."""
        dirty, self.dirty = self.dirty, set()
        return dirty

    @staticmethod
    def refold(txns: Iterable[str], records_for_txn: Callable[[str], list[Record]]) -> Refolded:
        """Each txn's status and first record from its records (``records_for_txn``: the
        authoritative records of the txn held); None for a txn not open. Reads only: any thread."""
        out: Refolded = {}
        for txn in txns:
            recs = records_for_txn(txn)
            st = fold(recs) if recs else None
            if st is None or st.is_terminal:
                out[txn] = None
            else:
                out[txn] = (st, min(recs, key=lambda r: record_key(r.origin, r.seq)))
        return out

    def apply(self, refolded: Refolded) -> None:
        for txn, got in refolded.items():
            if got is None:
                self.open.pop(txn, None)
            else:
                self.open[txn] = got

    def settle(self, records_for_txn: Callable[[str], list[Record]]) -> int:
        """Fold every dirty txn now; how many."""
        dirty = self.take_dirty()
        self.apply(self.refold(dirty, records_for_txn))
        return len(dirty)

    def listing(self) -> list[OpenOrder]:
        """(txn, status, first record) of every open order, in the order of their first records'
        keys (the order a scan of the log meets them). Only meaningful with nothing dirty."""
        items = sorted(self.open.items(), key=lambda kv: record_key(kv[1][1].origin, kv[1][1].seq))
        return [(txn, st, first) for txn, (st, first) in items]
