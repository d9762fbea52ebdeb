"""The ClOrdIDs a customer utility knows: which order each client's ClOrdID names, per trading day.

FIX asks a client to keep ClOrdID unique within one trading day, and many clients start
their ids again each day (``1``, ``2``, ... or a per-day counter). So an id is *taken* while
it was used today, or while the order it names is still open (a good-till-cancel order from
an earlier day: a second live order under the same id would make its cancels ambiguous).
Once its day is over and its order is done, the id is free again and its entry is dropped,
so the map holds one trading day of ids plus the open orders, whatever the uptime.

Only accepted requests take an id (an order, a cancel or replace request): a request refused
by the customer utility leaves the id to a corrected resend, as it does when it happens live.
Pure logic, no I/O, no clock: the caller says what day it is.

Layout: per day, per client, ``ClOrdID -> txn`` (plain nested dicts of strings), newest day
first in the lookups; an id lives under one day only (its latest use). Not one dict of
``(client, id) -> entry`` objects, as before: a customer utility restarting at 10,000,000
records (``fixgw bench scale --records 4000000 --days 2``: 975,000 ids in its snapshot) spent
1.6 s unpickling that dict and about as long again building its entries, where nested dicts of
strings load in a fraction (see utilities/snapshot.py); a lookup now reads at most a few
days' dicts (today, yesterday until the roll, a peer's tomorrow across midnight, and the days
of orders still open).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

# day -> client CompID -> ClOrdID -> txn
Days = dict[dt.date, dict[str, dict[str, str]]]


class ClOrdIds:
    """``(client CompID, ClOrdID) -> txn`` of the order it names, for the current trading day."""

    __slots__ = ("_days", "_is_open", "_newest_first", "_twice")

    def __init__(self, is_open: Callable[[str], bool]) -> None:
        """``is_open(txn)``: whether that order is still working (not filled, canceled, ...)."""
        self._days: Days = {}
        self._newest_first: list[dt.date] = []
        self._is_open = is_open
        # ids learnt under more than one txn on one day: (client, id) -> every txn (rare: a request
        # recorded by a paused customer utility and again, resent, by its successor)
        self._twice: dict[tuple[str, str], set[str]] = {}

    def __len__(self) -> int:
        return sum(len(ids) for clients in self._days.values() for ids in clients.values())

    def _find(self, client: str, cl_ord_id: str) -> tuple[str, dt.date] | None:
        days = self._days
        for day in self._newest_first:
            ids = days[day].get(client)
            if ids is not None:
                txn = ids.get(cl_ord_id)
                if txn is not None:
                    return txn, day
        return None

    def _put(self, client: str, cl_ord_id: str, txn: str, day: dt.date) -> None:
        clients = self._days.get(day)
        if clients is None:
            clients = self._days[day] = {}
            self._newest_first = sorted(self._days, reverse=True)
        ids = clients.get(client)
        if ids is None:
            ids = clients[client] = {}
        ids[cl_ord_id] = txn

    def _remove(self, client: str, cl_ord_id: str, day: dt.date) -> None:
        clients = self._days[day]
        ids = clients[client]
        del ids[cl_ord_id]
        if not ids:
            del clients[client]
            if not clients:
                del self._days[day]
                self._newest_first.remove(day)

    def taken(self, client: str, cl_ord_id: str, today: dt.date) -> bool:
        """Whether a new request under this id would be a duplicate."""
        e = self._find(client, cl_ord_id)
        # a later day than today (a peer's clock ahead across midnight) counts as today
        return e is not None and (e[1] >= today or self._is_open(e[0]))

    def take(self, client: str, cl_ord_id: str, txn: str, today: dt.date) -> None:
        """A request accepted now under this id (checked with :meth:`taken` first)."""
        e = self._find(client, cl_ord_id)
        if e is not None:
            self._remove(client, cl_ord_id, e[1])
        self._put(client, cl_ord_id, txn, today)

    def forget(self, client: str, cl_ord_id: str, txn: str) -> None:
        """A request taken under this id was not stored after all (refused): the id is free."""
        e = self._find(client, cl_ord_id)
        if e is not None and e[0] == txn:
            self._remove(client, cl_ord_id, e[1])

    def learn(self, client: str, cl_ord_id: str, txn: str, day: dt.date) -> None:
        """An accepted request seen in a record (at start-up, or replicated from a peer).

        The id's latest day wins: it names the order it was last used for. Within one day
        the first one learnt stays (it is the one taken first; at start-up the log is read
        in commit order), and learning the same request again changes nothing.
        """
        e = self._find(client, cl_ord_id)
        if e is None:
            self._put(client, cl_ord_id, txn, day)
        elif day > e[1]:
            self._remove(client, cl_ord_id, e[1])
            self._put(client, cl_ord_id, txn, day)
        elif e[0] != txn and day == e[1]:
            self._twice.setdefault((client, cl_ord_id), {e[0]}).add(txn)

    def learn_unknown(self, client: str, cl_ord_id: str, txn: str, day: dt.date) -> None:
        """An id seen in a record that is not the request itself (a street's report of it): learnt
        only if nothing is known under it (such records come days later too, and must not make
        an id of an earlier day today's)."""
        if self._find(client, cl_ord_id) is None:
            self._put(client, cl_ord_id, txn, day)

    def others(self, client: str, cl_ord_id: str, txn: str) -> set[str]:
        """The other txns recorded today under the id ``txn`` was recorded under (usually none)."""
        return self._twice.get((client, cl_ord_id), set()) - {txn}

    def txn_of(self, client: str, cl_ord_id: str) -> str | None:
        """The order this id names (the latest use), if known."""
        e = self._find(client, cl_ord_id)
        return None if e is None else e[0]

    def export(self) -> tuple[Days, dict[tuple[str, str], set[str]]]:
        """What it knows, as plain data (a snapshot: utilities.snapshot); :meth:`restore` takes it
        back. The nested dicts are its own: the caller does not change them."""
        return self._days, {k: set(v) for k, v in self._twice.items()}

    def restore(self, days: Days, twice: dict[tuple[str, str], set[str]]) -> None:
        self._days = days
        self._newest_first = sorted(days, reverse=True)
        self._twice = {k: set(v) for k, v in twice.items()}

    def roll(self, today: dt.date) -> int:
        """A new trading day: forget ids of earlier days whose order is done. Returns how many."""
        is_open, twice = self._is_open, self._twice
        dropped = 0
        for day in [d for d in self._days if d < today]:
            # a day's dicts are built again with the ids of open orders (usually none): deleting
            # 475,000 done ids one by one held the restart of fixgw bench scale --records 4000000
            # --days 2 about 0.4 s
            kept: dict[str, dict[str, str]] = {}
            for client, ids in self._days[day].items():
                still = {k: txn for k, txn in ids.items() if is_open(txn)}
                dropped += len(ids) - len(still)
                if twice:
                    for k in ids.keys() - still.keys():
                        twice.pop((client, k), None)
                if still:
                    kept[client] = still
            if kept:
                self._days[day] = kept
            else:
                del self._days[day]
        self._newest_first = sorted(self._days, reverse=True)
        return dropped
