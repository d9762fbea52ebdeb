"""utilities/clordids.py's rules as first written (one dict of entries): the oracle its
nested-dict layout is checked against (tests/utilities/test_customer_clordids.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Entry:
    txn: str
    day: dt.date


class DictClOrdIds:
    """The map as it was until session 13: one dict of ``(client, id) -> entry``; the oracle of the new layout."""

    __slots__ = ("_entries", "_is_open", "_twice")

    def __init__(self, is_open: Callable[[str], bool]) -> None:
        """``is_open(txn)``: whether that order is still working (not filled, canceled, ...)."""
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._is_open = is_open
        # ids learnt under more than one txn on one day: (client, id) -> every txn (rare: a request
        # recorded by a paused customer utility and again, resent, by its successor)
        self._twice: dict[tuple[str, str], set[str]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def taken(self, client: str, cl_ord_id: str, today: dt.date) -> bool:
        """Whether a new request under this id would be a duplicate."""
        e = self._entries.get((client, cl_ord_id))
        # a later day than today (a peer's clock ahead across midnight) counts as today
        return e is not None and (e.day >= today or self._is_open(e.txn))

    def take(self, client: str, cl_ord_id: str, txn: str, today: dt.date) -> None:
        """A request accepted now under this id (checked with :meth:`taken` first)."""
        self._entries[(client, cl_ord_id)] = _Entry(txn, today)

    def forget(self, client: str, cl_ord_id: str, txn: str) -> None:
        """A request taken under this id was not stored after all (refused): the id is free."""
        e = self._entries.get((client, cl_ord_id))
        if e is not None and e.txn == txn:
            del self._entries[(client, cl_ord_id)]

    def learn(self, client: str, cl_ord_id: str, txn: str, day: dt.date) -> None:
        """An accepted request seen in a record (at start-up, or replicated from a peer).

        The id's latest day wins: it names the order it was last used for. Within one day
        the first one learnt stays (it is the one taken first; at start-up the log is read
        in commit order), and learning the same request again changes nothing.
        """
        key = (client, cl_ord_id)
        e = self._entries.get(key)
        if e is None or day > e.day:
            self._entries[key] = _Entry(txn, day)
        elif e.txn != txn and day == e.day:
            self._twice.setdefault(key, {e.txn}).add(txn)

    def learn_unknown(self, client: str, cl_ord_id: str, txn: str, day: dt.date) -> None:
        """An id seen in a record that is not the request itself (a street's report of it): learnt
        only if nothing is known under it (such records come days later too, and must not make
        an id of an earlier day today's)."""
        key = (client, cl_ord_id)
        if key not in self._entries:
            self._entries[key] = _Entry(txn, day)

    def others(self, client: str, cl_ord_id: str, txn: str) -> set[str]:
        """The other txns recorded today under the id ``txn`` was recorded under (usually none)."""
        return self._twice.get((client, cl_ord_id), set()) - {txn}

    def txn_of(self, client: str, cl_ord_id: str) -> str | None:
        """The order this id names (the latest use), if known."""
        e = self._entries.get((client, cl_ord_id))
        return None if e is None else e.txn

    def roll(self, today: dt.date) -> int:
        """A new trading day: forget ids of earlier days whose order is done. Returns how many."""
        is_open = self._is_open
        stale = [k for k, e in self._entries.items() if e.day < today and not is_open(e.txn)]
        for k in stale:
            del self._entries[k]
            self._twice.pop(k, None)
        return len(stale)
