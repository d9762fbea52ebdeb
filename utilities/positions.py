"""Positions and balances of one account as this node holds them: what a customer's
RequestForPositions (AN) and CollateralInquiry (BB) are answered from.

Why a view over :class:`utilities.books.Books` and not a fold of its own: ``fixgw firm books``
prints the books folded by :mod:`utilities.books`; a customer asking a customer utility must
see the same numbers for the same records, so the amounts here are the books' own (positions
traded / settled / opening, cash traded / settled, buying power). Like the books, the result
depends only on the SET of records (any order, duplicates), tested with hypothesis in
``tests/utilities/test_positions.py`` against :func:`account_view_of` over every record.

How a customer utility keeps them: an :class:`AccountLedger`
    The books are a sum over orders: an order's trades (its distinct fills, settled or not,
    and trades booked from a SETTLED record alone) add to its account's quantities and cash,
    and only open orders reserve buying power. The ledger keeps that sum, per account and
    symbol, and the status of the orders still open, and nothing else of history: when records
    of an order come, the order is booked again (:meth:`Books.from_records` over that order's
    records, read from the node's log by txn) and the ledger adds what it adds now less what it
    added before. An answer reads the sums: no fold, whatever the history.

    Booking waits: the records given to :meth:`AccountLedger.add` wait per order until more than
    :attr:`AccountLedger.PENDING_TXNS` orders wait, then the oldest is booked, so an order is
    usually booked once, complete; an answer (and a snapshot) books every waiting order first.
    "What it added before" is the booking of the records the ledger had been given
    (:class:`AddedRecords`, per origin a gap-free run and the seqs above it): a record already
    committed to the log by the writer thread but not yet given is left to its own add().

    Before (an index of every account's txns, folding the account's whole history for every
    answer, on the event loop): ``fixgw bench scale --records 1000000`` (250,250 orders of one
    account) answered one RequestForPositions in 21.9 s (p50 of 6, max 22.6 s), and the index
    was what grew with history in a customer utility's memory and snapshot (at 10,000,000
    records 2,500,250 txns and every SETTLED record: most of 1.2 GiB).

Last prices
    A symbol's last trade price (any account) prices its position lines and the reservation of
    an open market buy. The ledger keeps per symbol the latest trade it booked (by its clock,
    then ref): the whole fold's answer when records come in their clocks' order. A trade's clock
    moves earlier when an earlier copy of the same execution comes after a later one was
    booked (two street utilities recorded it); the ledger keeps the later reading then, where the
    whole fold would take the earlier one. The settlement price reported for a symbol is its last
    trade price, else the utility's reference price, else zero.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from replication.log import KeyFilter
from replication.record import Record, RecordType
from utilities.books import (
    AccountOpening,
    Books,
    Trade,
    account_opening,
    opening_rank,
    order_trades,
    reservations,
    settled_ref,
)
from utilities.errors import UtilitiesError
from utilities.status import ORDER_FLOW_TYPES, OrderStatus, fold

_ZERO = Decimal(0)
_EXACT = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_EVEN)   # sums never round (as in the books)


@dataclass(frozen=True, slots=True)
class PositionLine:
    """One instrument of an account: quantities (negative = short) and a settlement price."""

    symbol: str
    opening: Decimal      # start of day (the firm's ACCOUNT record)
    traded: Decimal       # opening + every trade (FIX PosType FIN)
    settled: Decimal      # opening + settled trades
    price: Decimal        # last trade price of the symbol, else the reference price, else 0

    @property
    def long_qty(self) -> Decimal:
        return self.traded if self.traded > 0 else _ZERO

    @property
    def short_qty(self) -> Decimal:
        return -self.traded if self.traded < 0 else _ZERO

    @property
    def market_value(self) -> Decimal:
        return self.traded * self.price


@dataclass(frozen=True, slots=True)
class Balance:
    """An account's cash: opening, traded (after every executed trade), settled, and buying power."""

    account: str
    opening: Decimal
    cash: Decimal
    settled: Decimal
    reserved: Decimal
    buying_power: Decimal


@dataclass(frozen=True, slots=True)
class AccountView:
    account: str
    positions: tuple[PositionLine, ...]    # by symbol; instruments with a zero position and no opening are left out
    balance: Balance


def last_prices(books: Books) -> dict[str, Decimal]:
    """Each symbol's last trade price in ``books``: its latest trade (trades are in clock order),
    or the price the account openings carry when that is later (a carry, see :mod:`utilities.books`)."""
    seen = books.carried_last_px()
    for t in books.trades():
        if t.price is not None:
            prev = seen.get(t.symbol)
            if prev is None or not t.hlc < prev[0]:
                seen[t.symbol] = (t.hlc, t.price)
    return {sym: px for sym, (_, px) in seen.items()}


def account_view(books: Books, account: str, *,
                 reference_prices: Mapping[str, Decimal] | None = None) -> AccountView:
    """Positions and balance of ``account`` as ``books`` hold them."""
    prices = {**dict(reference_prices or {}), **last_prices(books)}
    lines = tuple(
        PositionLine(symbol=p.symbol, opening=p.opening, traded=p.traded, settled=p.settled,
                     price=prices.get(p.symbol, _ZERO))
        for p in books.positions(account)
        if p.traded != 0 or p.opening != 0 or p.settled != 0
    )
    c = books.cash(account)
    balance = Balance(account=account, opening=c.opening, cash=c.traded, settled=c.settled,
                      reserved=books.reserved(account), buying_power=books.buying_power(account))
    return AccountView(account=account, positions=lines, balance=balance)


def account_view_of(records: Iterable[Record], account: str, *,
                    reference_prices: Mapping[str, Decimal] | None = None) -> AccountView:
    """Positions and balance of ``account`` from ``records`` (any order, duplicates allowed),
    folded exactly as ``fixgw firm books`` folds them (no reference prices into the books, so
    buying power agrees; ``reference_prices`` only price a symbol nobody traded yet)."""
    return account_view(Books.from_records(records), account, reference_prices=reference_prices)


class AddedRecords:
    """Which records (by key) were given to a ledger: per origin the run from seq 1 with no
    gap, and the seqs given above it (records that came out of order). Bounded by the records
    out of order, not by history."""

    __slots__ = ("above", "upto")

    def __init__(self) -> None:
        self.upto: dict[str, int] = {}
        self.above: dict[str, set[int]] = {}

    def add(self, origin: str, seq: int) -> None:
        upto = self.upto.get(origin, 0)
        if seq <= upto:
            return
        if seq != upto + 1:
            self.above.setdefault(origin, set()).add(seq)
            return
        above = self.above.get(origin)
        upto = seq
        if above:
            while upto + 1 in above:
                upto += 1
                above.discard(upto)
            if not above:
                del self.above[origin]
        self.upto[origin] = upto

    def __contains__(self, key: tuple[str, int]) -> bool:
        origin, seq = key
        if seq <= self.upto.get(origin, 0):
            return True
        above = self.above.get(origin)
        return above is not None and seq in above

    def __getstate__(self) -> tuple[dict[str, int], dict[str, set[int]]]:
        return self.upto, self.above

    def __setstate__(self, state: tuple[dict[str, int], dict[str, set[int]]]) -> None:
        self.upto, self.above = state


Key = tuple[str, int]
Amounts = dict[tuple[str, str], dict[dt.date, tuple[Decimal, Decimal]]]
"""What one order adds to the books: per (account, symbol) the quantity and per (account, "")
the cash, by date: the traded amount under its trades' trade date, the settled amount under their
settlement date (a carry forward takes in whole dates: see :mod:`utilities.books`)."""

_CASH = ""


class TxnRecords(Protocol):
    """Reads one order's records from the node's log (:meth:`replication.log.RecordLog.records_for_txn`)."""

    def __call__(self, txn_id: str, want: KeyFilter | None = None) -> Iterable[Record]: ...


def _booked(txn: str, records: Iterable[Record]) -> tuple[OrderStatus | None, dict[str, Trade]]:
    """One order's trades by the books' rules (its records, SETTLED ones included) and, unless
    it is surely final, its status (the fold, for the reservations of an open order)."""
    recs = list(records)
    trades, ex = order_trades(txn, recs)
    return (None if ex is None or ex.final else fold(recs)), trades


def _amounts(trades: Iterable[Trade]) -> Amounts:
    out: dict[tuple[str, str], dict[dt.date, list[Decimal]]] = {}
    with decimal.localcontext(_EXACT):
        for t in trades:
            for line, d in (((t.account, t.symbol), t.qty_delta), ((t.account, _CASH), t.cash_delta)):
                days = out.get(line)
                if days is None:
                    days = out[line] = {}
                v = days.get(t.trade_date) or days.setdefault(t.trade_date, [_ZERO, _ZERO])
                v[0] += d
                if t.settled:
                    v = days.get(t.settle_date) or days.setdefault(t.settle_date, [_ZERO, _ZERO])
                    v[1] += d
    return {line: {day: (v[0], v[1]) for day, v in days.items()} for line, days in out.items()}


@dataclass(slots=True)
class _Booked:
    """An order not final yet, as the ledger last booked it (its status prices the reservations)."""

    status: OrderStatus
    amounts: Amounts


class AccountLedger:
    """A customer utility's positions and balances of every account, kept up to date as records
    come (see the module docstring): fed every record the node holds (:meth:`add`), answers
    :meth:`view` without folding any history.

    ``source`` reads the records of one txn from the node's log (set by the owner: the live
    log, or the read transaction of a start-up or a snapshot); :meth:`add` books the oldest
    waiting orders once more than :attr:`PENDING_TXNS` wait, :meth:`settle` and :meth:`view`
    book them all. Inside :meth:`bulk` (records read from ``source``'s own log) the records
    are not kept while they wait, only their keys, and many more orders wait.
    """

    PENDING_TXNS = 1024
    """Orders with records not booked yet, at most (then the oldest is booked at each add): an
    order is usually complete (placed, acknowledged, filled) by the time it is booked, so it
    is folded about once; the records of this many orders stay in memory until then."""

    BULK_PENDING_TXNS = 200_000
    """The same inside :meth:`bulk`, where only keys wait: a start-up's tail (100,000 records,
    ~25,000 orders) books each order once, after all its records (they come origin by origin).
    Keeping the records in hand instead (not read again when booked) measured worse: ``fixgw
    bench scale --records 1000000``, restart 4.86 s and 262 MiB RSS after, against 4.64 s and
    172 MiB with keys only (the records' memory stays with the process)."""

    def __init__(self) -> None:
        self.source: TxnRecords | None = None
        self.added = AddedRecords()
        self.openings: dict[str, dict[Key, Record]] = {}   # account -> its ACCOUNT records (few)
        self.totals: dict[tuple[str, str], list[Decimal]] = {}  # (account, symbol or "") -> [traded, settled] of every booked order, past the carry
        self.by_day: dict[tuple[str, str], dict[dt.date, list[Decimal]]] = {}   # the same by date (traded by trade date, settled by settlement date)
        self.cuts: dict[str, dt.date] = {}                 # account -> the as_of of its carry (trades up to then are in its opening)
        self.live: dict[str, _Booked] = {}                 # txn -> the booking of an order not final
        self.pending: dict[str, dict[Key, Record | None]] = {}   # txn -> its records added, not booked yet (None: read it again), oldest txn first
        self.strays: dict[str, dict[Key, Record]] = {}     # txn -> SETTLED records naming its fill but filed under another txn
        self._last: dict[str, tuple[tuple[int, int, str, str], Decimal]] = {}   # symbol -> (trade clock and ref, its price)
        self._bulk = False

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("added", "openings", "totals", "by_day", "cuts", "live", "pending",
                                              "strays", "_last")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.source = None
        self._bulk = False
        for k, v in state.items():
            setattr(self, k, v)

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """Records read from ``source``'s log (a start-up, a snapshot): keep keys, book later."""
        self._bulk = True
        try:
            yield
        finally:
            self._bulk = False

    @property
    def backlog(self) -> int:
        """Orders waiting beyond :attr:`PENDING_TXNS` (a start-up's tail not booked yet)."""
        return max(0, len(self.pending) - self.PENDING_TXNS)

    def book_some(self, n: int) -> int:
        """Book up to ``n`` of the oldest orders beyond :attr:`PENDING_TXNS` (a start-up's tail,
        a slice at a time on the event loop); the backlog left."""
        while n > 0 and len(self.pending) > self.PENDING_TXNS:
            self._book(next(iter(self.pending)))
            n -= 1
        return self.backlog

    # -- records in -----------------------------------------------------------------------
    def add(self, r: Record) -> None:
        """One record this node holds (at start-up, in a snapshot, as it arrives)."""
        key = (r.origin, r.seq)
        if key in self.added:
            return
        self.added.add(r.origin, r.seq)
        rtype = r.type
        if rtype is RecordType.ACCOUNT:
            self._opened(key, r)
            return
        if rtype is RecordType.SETTLED:
            group = _settled_group(r)
            if group != r.txn:   # not in the log under the txn of the fill it names
                self.strays.setdefault(group, {})[key] = r
        elif rtype in ORDER_FLOW_TYPES and r.txn:
            group = r.txn
        else:
            return
        if not group:
            return
        waiting = self.pending.get(group)
        if waiting is None:
            waiting = self.pending[group] = {}
        waiting[key] = None if self._bulk else r
        if len(self.pending) > (self.BULK_PENDING_TXNS if self._bulk else self.PENDING_TXNS) and self.source is not None:
            self._book(next(iter(self.pending)))

    def settle(self) -> int:
        """Book every order with records not booked yet (before a view, a snapshot); how many."""
        n = 0
        while self.pending:
            self._book(next(iter(self.pending)))
            n += 1
        return n

    def _book(self, txn: str) -> None:
        """Book ``txn`` again with its new records: its amounts as now held, less what it added before."""
        source = self.source
        if source is None:
            raise UtilitiesError("AccountLedger: no source to read an order's records from")
        new = self.pending.pop(txn)
        added = self.added
        held: dict[Key, Record] = {}
        # from the log: what was given to add() (one committed but not given yet comes with its
        # add()) and is not in hand; a SETTLED record filed under this txn that names another's
        # fill is booked with that one (a stray)
        for r in source(txn, lambda origin, seq: (origin, seq) in added and new.get((origin, seq)) is None):
            if r.type in ORDER_FLOW_TYPES or (r.type is RecordType.SETTLED and _settled_group(r) == txn):
                held[(r.origin, r.seq)] = r
        held.update(self.strays.get(txn, ()))
        before = self.live.pop(txn, None)
        if before is not None:
            old = before.amounts
        else:
            prior = [r for k, r in held.items() if k not in new]
            old = _amounts(_booked(txn, prior)[1].values()) if prior else {}
        for k, got in new.items():
            if got is not None:
                held[k] = got
        self._apply(txn, old, held.values())

    def _opened(self, key: Key, r: Record) -> None:
        """An ACCOUNT record: kept; a carry forward past the account's last one takes the
        amounts of the dates it carries out of the totals (they are in the opening now)."""
        if not r.account:
            return
        self.openings.setdefault(r.account, {})[key] = r
        try:
            got = account_opening(r)
        except ValueError:
            return
        for sym, (h, px) in got.last_px.items():
            self._price(sym, (h.wall_ns, h.logical, h.node, ""), px)
        cut = got.as_of
        if cut is None or cut <= self.cuts.get(r.account, dt.date.min):
            return
        self.cuts[r.account] = cut
        with decimal.localcontext(_EXACT):
            for line, days in self.by_day.items():
                if line[0] != r.account:
                    continue
                t = self.totals[line]
                for day in [d for d in days if d <= cut]:
                    traded, settled = days.pop(day)
                    t[0] -= traded
                    t[1] -= settled

    def _apply(self, txn: str, old: Amounts, held: Iterable[Record]) -> None:
        """Book ``txn`` as ``held`` makes it, having added ``old`` before."""
        status, trades = _booked(txn, held)
        amounts = _amounts(trades.values())
        totals, by_day, cuts = self.totals, self.by_day, self.cuts
        with decimal.localcontext(_EXACT):
            for sign, what in ((-1, old), (1, amounts)):
                for line, days in what.items():
                    cut = cuts.get(line[0])
                    t = totals.get(line) or totals.setdefault(line, [_ZERO, _ZERO])
                    mine = by_day.get(line)
                    if mine is None:
                        mine = by_day[line] = {}
                    for day, (traded, settled) in days.items():
                        if cut is not None and day <= cut:
                            continue     # in the account's opening (a carry forward)
                        t[0] += sign * traded
                        t[1] += sign * settled
                        v = mine.get(day) or mine.setdefault(day, [_ZERO, _ZERO])
                        v[0] += sign * traded
                        v[1] += sign * settled
        if status is not None and not status.is_terminal:
            self.live[txn] = _Booked(status, amounts)
        for trade in trades.values():
            if trade.price is not None:
                h = trade.hlc
                self._price(trade.symbol, (h.wall_ns, h.logical, h.node, trade.ref), trade.price)

    def book_log(self, orders: Iterable[tuple[str, list[Record]]], upto: Mapping[str, int]) -> None:
        """From nothing: every order booked once, whole (``orders``: a read's
        :meth:`replication.log.LogReader.iter_by_txn` at or below ``upto``, in the txn index's
        order); then the ledger holds exactly the records at or below ``upto``. Given record by
        record in the log's order (origin by origin), an order's records would come apart and
        the order be booked three or four times."""
        if self.added.upto or self.added.above or self.pending or self.live:
            raise UtilitiesError("AccountLedger.book_log: the ledger has records already")
        strays = self.strays
        for txn, records in orders:
            own: dict[Key, Record] = {}
            for r in records:
                key = (r.origin, r.seq)
                rtype = r.type
                if rtype is RecordType.ACCOUNT:
                    self._opened(key, r)
                elif rtype is RecordType.SETTLED and (group := _settled_group(r)) != txn:
                    strays.setdefault(group, {})[key] = r
                    if group.encode() < txn.encode():    # booked already: again once the pass is over
                        self.pending.setdefault(group, {})[key] = r
                elif rtype in ORDER_FLOW_TYPES or rtype is RecordType.SETTLED:
                    own[key] = r
            if txn in strays:
                own.update(strays[txn])
            if own:
                self._apply(txn, {}, own.values())
        self.added.upto = {o: seq for o, seq in upto.items() if seq > 0}
        self.added.above = {}
        self.settle()

    def _price(self, symbol: str, key: tuple[int, int, str, str], px: Decimal) -> None:
        prev = self._last.get(symbol)
        if prev is None or prev[0] < key:
            self._last[symbol] = (key, px)

    # -- answers --------------------------------------------------------------------------
    def last_prices(self) -> dict[str, Decimal]:
        return {sym: px for sym, (_, px) in self._last.items()}

    def opening(self, account: str) -> AccountOpening | None:
        """The highest-ranked ACCOUNT record of ``account`` that parses (as :class:`Books` opens it)."""
        got: AccountOpening | None = None
        for r in sorted(self.openings.get(account, {}).values(), key=opening_rank):
            try:
                got = account_opening(r)
            except ValueError:
                continue
        return got

    def view(self, account: str, *, reference_prices: Mapping[str, Decimal] | None = None) -> AccountView:
        """``account``'s positions and balance (see the module docstring): what
        :func:`account_view_of` gives over every record added, the symbols priced by the last
        fill of any account."""
        self.settle()
        last = self.last_prices()
        refs = dict(reference_prices or {})
        opening = self.opening(account)
        open_symbols = opening.symbols() if opening is not None else []
        symbols = sorted({sym for (acct, sym) in self.totals if acct == account and sym != _CASH} | set(open_symbols))
        lines: list[PositionLine] = []
        with decimal.localcontext(_EXACT):
            for sym in symbols:
                q = opening.positions.get(sym, _ZERO) if opening is not None else _ZERO
                qs = opening.position_settled(sym) if opening is not None else _ZERO
                traded, settled = self.totals.get((account, sym), (_ZERO, _ZERO))
                line = PositionLine(symbol=sym, opening=q, traded=q + traded, settled=qs + settled,
                                    price=last[sym] if sym in last else refs.get(sym, _ZERO))
                if line.traded != 0 or line.opening != 0 or line.settled != 0:
                    lines.append(line)
            cash0 = opening.cash if opening is not None else _ZERO
            cash0_settled = opening.cash_settled if opening is not None else _ZERO
            traded, settled = self.totals.get((account, _CASH), (_ZERO, _ZERO))
            cash, cash_settled = cash0 + traded, cash0_settled + settled
            reserved, _ = reservations(((t, b.status) for t, b in self.live.items() if b.status.account == account),
                                       last, {}, [])
            held = reserved.get(account, _ZERO)
            balance = Balance(account=account, opening=cash0, cash=cash, settled=cash_settled, reserved=held,
                              buying_power=cash - held)
        return AccountView(account=account, positions=tuple(lines), balance=balance)

    def comparable(self) -> dict[str, Any]:
        """What two ledgers of the same records agree on (tests): every order booked first."""
        self.settle()
        return {"openings": self.openings, "totals": {k: v for k, v in self.totals.items() if v != [0, 0]},
                "live": {t: b.status for t, b in self.live.items()}, "last": self.last_prices()}


def _settled_group(r: Record) -> str:
    """The txn whose fill a SETTLED record names: the txn of its ref (``<txn>|<fill key>``; txns
    have no ``|``), which is the record's own txn unless a writer filed it elsewhere."""
    ref = settled_ref(r)
    if "|" in ref and not ref.startswith(r.txn + "|"):
        return ref.partition("|")[0]
    return r.txn
