"""The firm's books and records as a pure fold over the records the firm holds.

Input: any collection of records, in any order, with duplicates — the firm's own ACCOUNT and
SETTLED records, the customer utilities' order records and the street utilities' fills.
Output: per account, positions, cash, reserved cash, buying power, trades and what is due
for settlement. Like the status fold (:mod:`utilities.status`), the result depends only on
the SET of records: no I/O, no wall clock, no dependence on arrival order.

Rules

Opening balances
    An ACCOUNT record (written by the firm, see :func:`account_record`) carries the account's
    opening cash in ``extra["cash"]`` and opening positions in ``extra["position.<SYMBOL>"]``
    (Decimal, or a str/int that parses as one). If several ACCOUNT records exist for an
    account, the latest by clock (then record key) is the opening state: a correction
    replaces, it does not add. Other ``extra`` keys (limits, ...) are left to their readers.

Balances carried forward (retention)
    A node's log may not keep every order for ever (issue 18: the records of orders final
    before the last closed trading days are archived and removed), so the firm carries each
    account's balances forward: an ACCOUNT record with ``extra["as_of"]`` (an ISO date, see
    :func:`carry_extra`) whose ``cash`` / ``position.<SYMBOL>`` are the traded amounts and
    ``settled_cash`` / ``settled_position.<SYMBOL>`` the settled amounts with every trade
    of trade date ``<= as_of`` in them. With such an opening, a trade adds to ``traded`` only
    if its trade date is after ``as_of``, and to ``settled`` only if it is settled with a
    settlement date after ``as_of``: the trades the carry holds count once whether their
    orders are still in the log or not, which is what lets a node remove them. An opening
    with an ``as_of`` outranks one without, and a later ``as_of`` an earlier one (then the
    clock): a carry is never undone by an older record that arrives late. Its
    ``last_px.<SYMBOL>`` / ``last_at.<SYMBOL>`` give each symbol's last trade price as of
    then and that trade's clock (``wall_ns:logical:node``), so the last price of a symbol whose
    trades were removed stays what it was (:attr:`Books.last_px`: the latest of the trades held
    and the carried prices).

Trades
    The records of each order are folded with :func:`utilities.status.fold`; each distinct
    fill of an order (de-duplicated by ``exec_id`` within the order, exactly as the fold does) is
    one trade, identified by ``ref = "<txn>|<fill key>"``. Account, symbol and side are the
    order's (from the fold, so a fill with no order record still books). Side '1'/'3' is a buy,
    '2'/'4'/'5'/'6' a sell. Notional = qty x price, exact. A fund order (CashOrderQty) fills in
    shares at the NAV: same math. Trade date = the fill's clock (its earliest copy) as a date in
    America/New_York; settlement date = T+1 business days (weekends, and optional holidays,
    skipped).

Settlement
    A SETTLED record (written by the firm, see :func:`settled_record`) names a trade by
    ``extra["fill_ref"]``. A trade is settled when such a record exists. A SETTLED record whose
    fill the firm does not hold (yet) still books, from its own denormalised fields.

Positions and cash (per account)
    ``traded`` = opening + every trade; ``settled`` = opening + settled trades;
    ``pending`` = traded - settled. Buys add shares and cost cash, sells the reverse.

Buying power
    ``cash.traded - reserved``: cash after every executed trade, settled or not (unsettled sale
    proceeds count, as in a cash account's "cash available to trade"), minus what open buy
    orders may still spend: leaves qty x limit price, or x a reference price for market orders
    (``reference_prices[symbol]``, else the symbol's last trade price in the books, else the
    order's own price; with none, nothing is reserved and an anomaly is noted). A buy by cash
    amount (fund) reserves CashOrderQty minus the filled notional. ``sellable`` = traded
    position minus open sell orders' leaves qty.

Parts and merge
    :meth:`Books.from_records` is :meth:`Books.merge` of one :class:`BooksPart`: a part folds the
    orders of its records and books their fills (nearly all of the cost, and it splits by
    order); the merge does what spans orders (openings, settlement marks from any part, last
    prices, reservations). ``fixgw log replay`` builds parts in two processes over disjoint txn
    ranges and merges them: the same books (``tests/utilities/test_replay_parallel.py``).

Anomalies
    Records that cannot be booked (no account, unknown side, unparsable opening balance, fill
    without a price, ...) never raise: they are skipped or booked as far as possible and
    described in :attr:`Books.anomalies`, because one bad record from another node must not stop
    the firm's books.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from fixgw.fastinit import fast_constructor
from replication.hlc import Hlc
from replication.record import Record, RecordType, Scalar
from utilities.errors import InvalidValue, WrongType
from utilities.status import Executions, Fill, OrderStatus, executions, fold_all

NEW_YORK = ZoneInfo("America/New_York")
BUY_SIDES = frozenset({"1", "3"})
SELL_SIDES = frozenset({"2", "4", "5", "6"})
CASH_KEY = "cash"
POSITION_PREFIX = "position."
AS_OF_KEY = "as_of"
SETTLED_CASH_KEY = "settled_cash"
SETTLED_POSITION_PREFIX = "settled_position."
LAST_PX_PREFIX = "last_px."
LAST_AT_PREFIX = "last_at."
SETTLED_STATUS = "settled"

_EXACT = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_EVEN)
_ZERO = Decimal(0)


def _key(r: Record) -> tuple[int, int, str, str, int]:
    # the clock's fields spread out: compared in C, not by Hlc.__lt__ (see status._order_key)
    h = r.hlc
    return (h.wall_ns, h.logical, h.node, r.origin, r.seq)


def new_york_today() -> dt.date:
    """Today's New York calendar date: the trading day (the firm's, and the one ClOrdIDs are unique within)."""
    return dt.datetime.now(NEW_YORK).date()


def trade_date_of(hlc: Hlc) -> dt.date:
    """The New York calendar date of a clock reading (the trade date of a fill).

    Memoised per UTC hour (New York's offsets and its DST changes are whole hours, so one UTC
    hour has one New York date): a customer utility's start-up asks it for most records, and the
    time-zone conversion was 8% of its fold (py-spy, ``fixgw bench scale --records 200000``)."""
    hour = hlc.wall_ns // 3_600_000_000_000
    day = _DATE_OF_HOUR.get(hour)
    if day is None:
        if len(_DATE_OF_HOUR) > 100_000:
            _DATE_OF_HOUR.clear()
        day = _DATE_OF_HOUR[hour] = _ny_time(hlc).date()
    return day


_DATE_OF_HOUR: dict[int, dt.date] = {}


def _ny_time(hlc: Hlc) -> dt.datetime:
    # whole seconds from integer division: no float rounding across midnight
    return dt.datetime.fromtimestamp(hlc.wall_ns // 1_000_000_000, tz=dt.UTC).astimezone(NEW_YORK)


def settlement_date(trade_date: dt.date, holidays: Collection[dt.date] = ()) -> dt.date:
    """T+1: the next business day after ``trade_date`` (Saturdays, Sundays, holidays skipped)."""
    d = trade_date + dt.timedelta(days=1)
    while d.weekday() >= 5 or d in holidays:
        d += dt.timedelta(days=1)
    return d


def fill_ref(txn: str, fill: Fill) -> str:
    """The firm's identifier of a trade: ``"<txn>|<fill key>"`` (unique across venues)."""
    return f"{txn}|{fill.key}"


def dec_str(d: Decimal) -> str:
    """A Decimal as plain digits (never exponent notation), for reports and JSON."""
    s = format(d, "f")
    return "0" if s in ("-0", "") else s


@dataclass(frozen=True, slots=True)
class Trade:
    """One booked execution of an account."""

    ref: str
    txn: str
    exec_id: str
    account: str
    symbol: str
    side: str                  # FIX Side
    qty: Decimal
    price: Decimal | None
    hlc: Hlc
    trade_date: dt.date
    settle_date: dt.date
    settled: bool
    cl_ord_id: str = ""

    def __post_init__(self) -> None:
        if not self.ref or not self.account or not self.symbol:
            raise InvalidValue(f"Trade needs ref, account and symbol, got {self.ref!r} {self.account!r} {self.symbol!r}")
        if self.side not in BUY_SIDES | SELL_SIDES:
            raise InvalidValue(f"Trade.side must be a buy or sell FIX Side, got {self.side!r}")
        if not isinstance(self.qty, Decimal) or self.qty <= 0:
            raise InvalidValue(f"Trade.qty must be a Decimal > 0, got {self.qty!r}")

    @property
    def is_buy(self) -> bool:
        return self.side in BUY_SIDES

    @property
    def notional(self) -> Decimal:
        with decimal.localcontext(_EXACT):
            return self.qty * self.price if self.price is not None else _ZERO

    @property
    def qty_delta(self) -> Decimal:
        return self.qty if self.is_buy else -self.qty

    @property
    def cash_delta(self) -> Decimal:
        return -self.notional if self.is_buy else self.notional


@dataclass(frozen=True, slots=True)
class Settlement:
    """A trade due for settlement: what the firm settles and records with a SETTLED record."""

    ref: str
    txn: str
    exec_id: str
    account: str
    symbol: str
    side: str
    qty: Decimal
    price: Decimal | None
    notional: Decimal
    trade_date: dt.date
    settle_date: dt.date

    @classmethod
    def of(cls, t: Trade) -> Settlement:
        return cls(ref=t.ref, txn=t.txn, exec_id=t.exec_id, account=t.account, symbol=t.symbol,
                   side=t.side, qty=t.qty, price=t.price, notional=t.notional,
                   trade_date=t.trade_date, settle_date=t.settle_date)


@dataclass(frozen=True, slots=True)
class Position:
    account: str
    symbol: str
    opening: Decimal
    settled: Decimal
    traded: Decimal

    @property
    def pending(self) -> Decimal:
        return self.traded - self.settled


@dataclass(frozen=True, slots=True)
class Cash:
    account: str
    opening: Decimal
    settled: Decimal
    traded: Decimal

    @property
    def pending(self) -> Decimal:
        """Net cash of trades not settled yet (negative when unsettled buys dominate)."""
        return self.traded - self.settled


@dataclass(frozen=True, slots=True)
class AccountOpening:
    """An account's opening state (an ACCOUNT record): see Opening balances and Balances
    carried forward in the module doc. ``cash`` and ``positions`` are traded amounts; the settled
    ones are the same unless the record carries its own (a carry)."""

    account: str
    cash: Decimal
    positions: Mapping[str, Decimal] = field(default_factory=dict)
    as_of: dt.date | None = None                    # trades of trade date <= as_of are in it
    settled_cash: Decimal | None = None             # None: ``cash``
    settled_positions: Mapping[str, Decimal] = field(default_factory=dict)   # missing: ``positions``'s
    last_px: Mapping[str, tuple[Hlc, Decimal]] = field(default_factory=dict)  # symbol -> (trade clock, price)

    @property
    def cash_settled(self) -> Decimal:
        return self.cash if self.settled_cash is None else self.settled_cash

    def position_settled(self, symbol: str) -> Decimal:
        got = self.settled_positions.get(symbol)
        return self.positions.get(symbol, _ZERO) if got is None else got

    def symbols(self) -> list[str]:
        return sorted(set(self.positions) | set(self.settled_positions))


def opening_rank(r: Record) -> tuple[str, int, int, str, str, int]:
    """How ACCOUNT records of one account rank (the highest opens it): a carry's ``as_of``
    first (none ranks lowest), then the clock, then the record key."""
    as_of = r.extra.get(AS_OF_KEY)
    h = r.hlc
    return (as_of if isinstance(as_of, str) else "", h.wall_ns, h.logical, h.node, r.origin, r.seq)


def account_record(*, origin: str, seq: int, hlc: Hlc, account: str, cash: Decimal,
                   positions: Mapping[str, Decimal], extra: Mapping[str, Scalar] | None = None,
                   txn: str = "") -> Record:
    """The ACCOUNT record the firm writes to open (or correct) an account's opening balances."""
    if not account:
        raise InvalidValue("account_record needs a non-empty account")
    body: dict[str, Scalar] = dict(extra or {})
    body[CASH_KEY] = cash
    for sym, qty in sorted(positions.items()):
        if not sym:
            raise InvalidValue(f"account_record {account!r}: empty symbol in positions")
        body[POSITION_PREFIX + sym] = qty
    return Record(origin=origin, seq=seq, txn=txn or f"account:{account}", type=RecordType.ACCOUNT,
                  status="open", hlc=hlc, account=account, extra=body)


def _as_decimal(v: Scalar) -> Decimal:
    # ValueError for every bad value: a wrong type in a replicated record is bad data, and the
    # caller turns ValueError into an anomaly rather than a crash
    if isinstance(v, bool):
        raise InvalidValue(f"expected a decimal number, got {v!r}")
    if isinstance(v, Decimal):
        d = v
    elif isinstance(v, int | str):
        try:
            d = Decimal(v)
        except InvalidOperation:
            raise InvalidValue(f"expected a decimal number, got {v!r}") from None
    else:
        raise InvalidValue(f"expected a decimal number, got {v!r}")
    if not d.is_finite():
        raise InvalidValue(f"expected a finite decimal number, got {v!r}")
    return d


def account_opening(r: Record) -> AccountOpening:
    """Parse an ACCOUNT record; ValueError names the record and the bad key."""
    if r.type is not RecordType.ACCOUNT or not r.account:
        raise InvalidValue(f"record {r.origin}:{r.seq} is not an ACCOUNT record with an account")

    def bad(key: str, e: ValueError) -> InvalidValue:
        return InvalidValue(f"ACCOUNT record {r.origin}:{r.seq} extra[{key!r}]: {e}")

    try:
        cash = _as_decimal(r.extra.get(CASH_KEY, 0))
    except ValueError as e:
        raise bad(CASH_KEY, e) from None
    as_of: dt.date | None = None
    settled_cash: Decimal | None = None
    if AS_OF_KEY in r.extra:
        as_of = _iso_date(r.extra[AS_OF_KEY])
        if as_of is None:
            raise bad(AS_OF_KEY, InvalidValue(f"expected an ISO date, got {r.extra[AS_OF_KEY]!r}"))
    if SETTLED_CASH_KEY in r.extra:
        try:
            settled_cash = _as_decimal(r.extra[SETTLED_CASH_KEY])
        except ValueError as e:
            raise bad(SETTLED_CASH_KEY, e) from None
    positions: dict[str, Decimal] = {}
    settled: dict[str, Decimal] = {}
    prices: dict[str, Decimal] = {}
    stamps: dict[str, Hlc] = {}
    for k, v in r.extra.items():
        for prefix, into in ((POSITION_PREFIX, positions), (SETTLED_POSITION_PREFIX, settled), (LAST_PX_PREFIX, prices)):
            if k.startswith(prefix) and len(k) > len(prefix):
                try:
                    into[k[len(prefix):]] = _as_decimal(v)
                except ValueError as e:
                    raise bad(k, e) from None
        if k.startswith(LAST_AT_PREFIX) and len(k) > len(LAST_AT_PREFIX):
            stamp = _parse_stamp(v)
            if stamp is None:
                raise bad(k, InvalidValue(f"expected 'wall_ns:logical:node', got {v!r}"))
            stamps[k[len(LAST_AT_PREFIX):]] = stamp
    last_px = {sym: (stamps[sym], px) for sym, px in sorted(prices.items()) if sym in stamps}
    return AccountOpening(account=r.account, cash=cash, positions=dict(sorted(positions.items())), as_of=as_of,
                          settled_cash=settled_cash, settled_positions=dict(sorted(settled.items())), last_px=last_px)


def _parse_stamp(v: object) -> Hlc | None:
    if not isinstance(v, str):
        return None
    wall, _, rest = v.partition(":")
    logical, _, node = rest.partition(":")
    try:
        return Hlc(int(wall), int(logical), node)
    except ValueError:
        return None


def carry_extra(books: Books, account: str, as_of: dt.date) -> dict[str, Scalar]:
    """The amounts of the ACCOUNT record that carries ``account``'s balances forward to the end
    of ``as_of`` (see Balances carried forward): its opening in ``books`` plus every trade of trade
    date ``<= as_of`` (traded) and every trade settled with a settlement date ``<= as_of``
    (settled), and the last price of every symbol as of then. ``books`` must hold every trade of
    those dates and have settled every one due by ``as_of``; the caller adds the account's
    limits. An ``as_of`` before the opening's own is refused."""
    o = books.opening(account)
    prev = o.as_of if o is not None else None
    if prev is not None and as_of < prev:
        raise InvalidValue(f"carry of {account} as of {as_of}: its balances are carried to {prev} already")
    cash_t = o.cash if o is not None else _ZERO
    cash_s = o.cash_settled if o is not None else _ZERO
    pos_t: dict[str, Decimal] = dict(o.positions) if o is not None else {}
    pos_s: dict[str, Decimal] = {sym: o.position_settled(sym) for sym in o.symbols()} if o is not None else {}
    last = {sym: seen for sym, seen in books.carried_last_px().items()}
    with decimal.localcontext(_EXACT):
        for t in books.trades():
            if t.price is not None and t.trade_date <= as_of:
                seen = last.get(t.symbol)
                if seen is None or seen[0] < t.hlc:
                    last[t.symbol] = (t.hlc, t.price)
            if t.account != account:
                continue
            dq, dc = t.qty_delta, t.cash_delta
            if (prev is None or t.trade_date > prev) and t.trade_date <= as_of:
                cash_t += dc
                pos_t[t.symbol] = pos_t.get(t.symbol, _ZERO) + dq
            if t.settled and (prev is None or t.settle_date > prev) and t.settle_date <= as_of:
                cash_s += dc
                pos_s[t.symbol] = pos_s.get(t.symbol, _ZERO) + dq
    out: dict[str, Scalar] = {AS_OF_KEY: as_of.isoformat(), CASH_KEY: cash_t, SETTLED_CASH_KEY: cash_s}
    for sym in sorted(set(pos_t) | set(pos_s)):
        out[POSITION_PREFIX + sym] = pos_t.get(sym, _ZERO)
        out[SETTLED_POSITION_PREFIX + sym] = pos_s.get(sym, _ZERO)
    for sym, (h, px) in sorted(last.items()):
        out[LAST_PX_PREFIX + sym] = px
        out[LAST_AT_PREFIX + sym] = f"{h.wall_ns}:{h.logical}:{h.node}"
    return out


def settled_record(s: Settlement, *, origin: str, seq: int, hlc: Hlc) -> Record:
    """The SETTLED record the firm writes once it has settled ``s``."""
    return Record(origin=origin, seq=seq, txn=s.txn, type=RecordType.SETTLED, status=SETTLED_STATUS,
                  hlc=hlc, account=s.account, symbol=s.symbol, side=s.side, exec_id=s.exec_id,
                  last_qty=s.qty, last_px=s.price,
                  extra={"fill_ref": s.ref, "trade_date": s.trade_date.isoformat(),
                         "settle_date": s.settle_date.isoformat()})


def settled_ref(r: Record) -> str:
    """The trade a SETTLED record names: ``extra["fill_ref"]``, else ``<txn>|<exec_id>`` ("": none)."""
    ref = r.extra.get("fill_ref")
    if isinstance(ref, str) and ref:
        return ref
    return f"{r.txn}|{r.exec_id}" if r.exec_id else ""


_TRADE_UNCHECKED = fast_constructor(Trade, checks=False)   # fixgw.fastinit; see BooksPart.of


@dataclass(frozen=True, slots=True)
class BooksPart:
    """What the orders of one set of records contribute to the books, before the merge.

    :meth:`of` folds the orders (:func:`utilities.status.fold_all`) and books their fills as
    trades: that is the cost of the books (~90% of ``Books.from_records``), and it splits by
    order, so a replay can build parts in separate processes over disjoint txn ranges and
    :meth:`Books.merge` them. What depends on every order (openings, settlement across parts,
    last prices, reservations) is left to the merge; the parts keep their firm records for it.
    """

    orders: Mapping[str, OrderStatus]
    fill_trades: Mapping[str, Trade]               # by ref; settled when this part's SETTLED names it
    last_px: Mapping[str, tuple[Hlc, Decimal]]     # latest priced fill per symbol
    firm_records: tuple[Record, ...]               # ACCOUNT and SETTLED records, de-duplicated
    anomalies: tuple[str, ...]
    holidays: frozenset[dt.date]

    @classmethod
    def of(cls, records: Iterable[Record], *, holidays: Collection[dt.date] = ()) -> BooksPart:
        """Fold and book ``records`` (any order, duplicates allowed)."""
        anomalies: list[str] = []
        unique: dict[tuple[str, int], Record] = {}
        for r in records:
            if not isinstance(r, Record):
                raise WrongType(f"Books.from_records takes Record values, got {type(r).__name__}")
            prev = unique.get((r.origin, r.seq))
            if prev is None or repr(r) < repr(prev):
                unique[(r.origin, r.seq)] = r
        recs = unique.values()
        firm = tuple(r for r in recs if r.type is RecordType.ACCOUNT or r.type is RecordType.SETTLED)
        settled_refs: set[str] = set()
        for r in firm:
            if r.type is RecordType.SETTLED:
                ref = settled_ref(r)
                if ref:
                    settled_refs.add(ref)
        orders = fold_all(recs)
        trades: dict[str, Trade] = {}
        last_px: dict[str, tuple[Hlc, Decimal]] = {}
        days = TradeDays(frozenset(holidays))
        for txn, o in orders.items():
            if o.fills:
                _book_fills(txn, o.account, o.symbol, o.side, o.cl_ord_id, o.fills, settled_refs, days, last_px,
                            anomalies, trades)
        return cls(orders=orders, fill_trades=trades, last_px=last_px, firm_records=firm,
                   anomalies=tuple(anomalies), holidays=frozenset(holidays))


def _book_fills(txn: str, account: str, symbol: str, side: str, cl_ord_id: str, fills: Iterable[Fill],
                settled_refs: Collection[str], days: TradeDays, last_px: dict[str, tuple[Hlc, Decimal]],
                anomalies: list[str], trades: dict[str, Trade]) -> None:
    """One order's distinct fills as trades into ``trades`` (see Trades)."""
    problem = _unbookable(account, symbol, side)
    for f in fills:
        ref = f"{txn}|{f.key}"  # fill_ref(txn, f)
        if problem:
            anomalies.append(f"fill {ref}: {problem}; not booked")
            continue
        if f.px is None:
            anomalies.append(f"fill {ref}: no price; booked with zero cash")
        else:
            prev_px = last_px.get(symbol)
            if prev_px is None or prev_px[0] < f.hlc:
                last_px[symbol] = (f.hlc, f.px)
        td, sd = days.of(f.hlc)
        # what Trade.__post_init__ checks holds here (a ref, _unbookable passed, a fill's
        # qty > 0): built unchecked, as the fold builds its statuses (~1.5 us a trade less)
        trades[ref] = _TRADE_UNCHECKED(ref, txn, f.exec_id, account, symbol, side, f.qty, f.px, f.hlc, td, sd,
                                       ref in settled_refs, cl_ord_id)


def order_trades(txn: str, records: Iterable[Record], *,
                 holidays: Collection[dt.date] = ()) -> tuple[dict[str, Trade], Executions | None]:
    """The trades of ONE order's records (its own SETTLED records among them): what
    ``Books.from_records(records)`` books, without folding its whole status
    (:func:`utilities.status.executions`; the trades' ``cl_ord_id`` is left empty), and the
    executions they came from."""
    recs = list(records)
    firm = sorted((r for r in recs if r.type is RecordType.SETTLED), key=_key)
    settled_refs = {ref for r in firm if (ref := settled_ref(r))}
    ex = executions(recs)
    trades: dict[str, Trade] = {}
    if ex is not None and ex.fills:
        _book_fills(txn, ex.account, ex.symbol, ex.side, "", ex.fills, settled_refs, TradeDays(frozenset(holidays)),
                    {}, [], trades)
    return book_settlements(trades, firm, holidays, []), ex


class TradeDays:
    """Trade and settlement dates of clock readings: the trade date from :func:`trade_date_of`
    (memoised per UTC hour), the settlement date of the last trade date seen kept (fills come
    day by day, and ``settlement_date`` walks the calendar)."""

    __slots__ = ("_holidays", "_settle", "_trade")

    def __init__(self, holidays: frozenset[dt.date]) -> None:
        self._holidays = holidays
        self._trade = self._settle = dt.date.min

    def of(self, hlc: Hlc) -> tuple[dt.date, dt.date]:
        td = trade_date_of(hlc)
        if td != self._trade:
            self._trade, self._settle = td, settlement_date(td, self._holidays)
        return td, self._settle


class Books:
    """Positions, cash, buying power and trades per account; build with :meth:`from_records`."""

    def __init__(self, *, openings: Mapping[str, AccountOpening], trades: Iterable[Trade],
                 orders: Mapping[str, OrderStatus], reserved: Mapping[str, Decimal],
                 sell_reserved: Mapping[tuple[str, str], Decimal], anomalies: Iterable[str],
                 last_px: Mapping[str, tuple[Hlc, Decimal]] | None = None) -> None:
        self._openings = dict(openings)
        self.last_px: Mapping[str, tuple[Hlc, Decimal]] = dict(last_px or {})
        """Per symbol, the clock and price of its last trade: of the fills held and the prices
        the openings carry (see Balances carried forward)."""
        # Hlc's order spread into its fields: compared in C, not by Hlc.__lt__ (a third of a merge)
        self._trades = tuple(sorted(trades, key=lambda t: (t.hlc.wall_ns, t.hlc.logical, t.hlc.node, t.ref)))
        self._orders = dict(orders)
        self._reserved = dict(reserved)
        self._sell_reserved = dict(sell_reserved)
        self.anomalies: tuple[str, ...] = tuple(sorted(set(anomalies)))
        pos: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [_ZERO, _ZERO, _ZERO])
        cash: dict[str, list[Decimal]] = defaultdict(lambda: [_ZERO, _ZERO, _ZERO])
        cut: dict[str, dt.date] = {}       # account -> its carry's as_of
        with decimal.localcontext(_EXACT):
            for acct, o in self._openings.items():
                cash[acct] = [o.cash, o.cash_settled, o.cash]
                for sym in o.symbols():
                    q = o.positions.get(sym, _ZERO)
                    pos[(acct, sym)] = [q, o.position_settled(sym), q]
                if o.as_of is not None:
                    cut[acct] = o.as_of
            for t in self._trades:
                # Trade.qty_delta / cash_delta inlined (cash_delta enters a decimal context of its
                # own a call; this loop is inside _EXACT already): the same values
                notional = t.qty * t.price if t.price is not None else _ZERO
                if t.side in BUY_SIDES:
                    dq, dc = t.qty, -notional
                else:
                    dq, dc = -t.qty, notional
                as_of = cut.get(t.account)
                if as_of is None:
                    p = pos[(t.account, t.symbol)]
                    c = cash[t.account]
                    p[2] += dq
                    c[2] += dc
                    if t.settled:
                        p[1] += dq
                        c[1] += dc
                    continue
                if t.trade_date > as_of:     # in the carry already otherwise
                    pos[(t.account, t.symbol)][2] += dq
                    cash[t.account][2] += dc
                if t.settled and t.settle_date > as_of:
                    pos[(t.account, t.symbol)][1] += dq
                    cash[t.account][1] += dc
        self._positions = {k: Position(k[0], k[1], v[0], v[1], v[2]) for k, v in sorted(pos.items())}
        self._cash = {k: Cash(k, v[0], v[1], v[2]) for k, v in sorted(cash.items())}
        accts = set(self._cash) | set(self._reserved) | {o.account for o in self._orders.values() if o.account}
        self._accounts = tuple(sorted(accts))

    # ---- construction ------------------------------------------------------------------

    @classmethod
    def from_records(cls, records: Iterable[Record], *,
                     reference_prices: Mapping[str, Decimal] | None = None,
                     holidays: Collection[dt.date] = ()) -> Books:
        """The books of ``records`` (any set, any order, duplicates allowed): one part, merged."""
        return cls.merge([BooksPart.of(records, holidays=holidays)], reference_prices=reference_prices)

    @classmethod
    def merge(cls, parts: Iterable[BooksPart], *,
              reference_prices: Mapping[str, Decimal] | None = None) -> Books:
        """The books of the union of the records of ``parts`` (see :class:`BooksPart`).

        The parts must hold disjoint sets of orders (each order's records all in one part):
        a txn folded in two parts raises ValueError. What spans orders is decided here, over
        every part: the opening balances (latest ACCOUNT record), which trades are settled,
        settled trades booked from their SETTLED record, the last trade price per symbol and
        the reservations of open orders. ``Books.merge([BooksPart.of(rs)])`` is
        ``Books.from_records(rs)``; so is the merge of the parts of any split of ``rs`` by txn.
        """
        parts = list(parts)
        holidays = parts[0].holidays if parts else frozenset()
        refs = dict(reference_prices or {})
        anomalies: list[str] = []
        orders: dict[str, OrderStatus] = {}
        fill_trades: dict[str, Trade] = {}
        last_px: dict[str, tuple[Hlc, Decimal]] = {}
        unique: dict[tuple[str, int], Record] = {}
        for part in parts:
            if part.holidays != holidays:
                raise InvalidValue("Books.merge: the parts were booked with different holidays")
            if len(orders) < len(part.orders):
                clash = orders.keys() & part.orders.keys()
            else:
                clash = part.orders.keys() & orders.keys()
            if clash:
                raise InvalidValue(f"Books.merge: txn(s) {sorted(clash)[:3]} folded in more than one part")
            orders.update(part.orders)
            fill_trades.update(part.fill_trades)
            anomalies.extend(part.anomalies)
            for sym, seen in part.last_px.items():
                prev_px = last_px.get(sym)
                if prev_px is None or prev_px[0] < seen[0]:
                    last_px[sym] = seen
            for r in part.firm_records:
                prev = unique.get((r.origin, r.seq))
                if prev is None or repr(r) < repr(prev):
                    unique[(r.origin, r.seq)] = r
        if len(parts) > 1:  # the fold orders by txn (fold_all): so does a merge of several
            orders = dict(sorted(orders.items()))
        # Only the firm's ACCOUNT and SETTLED records need the clock order here (the latest
        # ACCOUNT opens, the earliest SETTLED names a fill); the fold orders each order's records
        # itself, so the whole set is not sorted (that sort was ~5% of Books.from_records, cProfile, 50k records).
        firm_recs = sorted(unique.values(), key=_key)

        # opening balances: per account, the highest-ranked ACCOUNT record that parses
        openings: dict[str, AccountOpening] = {}
        ranks: dict[str, tuple[str, int, int, str, str, int]] = {}
        for r in firm_recs:
            if r.type is RecordType.ACCOUNT:
                try:
                    got = account_opening(r)
                except ValueError as e:
                    anomalies.append(str(e))
                    continue
                rank = opening_rank(r)
                if r.account not in ranks or ranks[r.account] < rank:
                    openings[r.account], ranks[r.account] = got, rank
        for o in openings.values():      # prices carried by the openings: a trade held later wins
            for sym, seen in o.last_px.items():
                prev_px = last_px.get(sym)
                if prev_px is None or prev_px[0] < seen[0]:
                    last_px[sym] = seen

        trades = book_settlements(fill_trades, firm_recs, holidays, anomalies)

        # reservations of open orders
        reserved, sell_reserved = reservations(orders.items(), refs, last_px, anomalies)
        return cls(openings=openings, trades=trades.values(), orders=orders, reserved=reserved,
                   sell_reserved=sell_reserved, anomalies=anomalies, last_px=last_px)

    # ---- queries -----------------------------------------------------------------------

    def accounts(self) -> tuple[str, ...]:
        """Every account with an opening record, a trade or an order, sorted."""
        return self._accounts

    def opening(self, account: str) -> AccountOpening | None:
        return self._openings.get(account)

    def carried_last_px(self) -> dict[str, tuple[Hlc, Decimal]]:
        """Per symbol, the latest last price the openings carry (see Balances carried forward)."""
        out: dict[str, tuple[Hlc, Decimal]] = {}
        for o in self._openings.values():
            for sym, seen in o.last_px.items():
                prev = out.get(sym)
                if prev is None or prev[0] < seen[0]:
                    out[sym] = seen
        return out

    def position(self, account: str, symbol: str) -> Position:
        return self._positions.get((account, symbol)) or Position(account, symbol, _ZERO, _ZERO, _ZERO)

    def positions(self, account: str) -> tuple[Position, ...]:
        return tuple(p for (a, _), p in self._positions.items() if a == account)

    def cash(self, account: str) -> Cash:
        return self._cash.get(account) or Cash(account, _ZERO, _ZERO, _ZERO)

    def reserved(self, account: str) -> Decimal:
        """Cash that open buy orders of the account may still spend."""
        return self._reserved.get(account, _ZERO)

    def buying_power(self, account: str) -> Decimal:
        return self.cash(account).traded - self.reserved(account)

    def sellable(self, account: str, symbol: str) -> Decimal:
        """Traded position minus what open sell orders may still sell."""
        return self.position(account, symbol).traded - self._sell_reserved.get((account, symbol), _ZERO)

    def orders(self) -> Mapping[str, OrderStatus]:
        """The status of every order the books saw, by txn."""
        return dict(self._orders)

    def open_orders(self, account: str) -> tuple[OrderStatus, ...]:
        return tuple(o for _, o in sorted(self._orders.items())
                     if o.account == account and not o.is_terminal)

    def trades(self, account: str | None = None) -> tuple[Trade, ...]:
        """Trades in clock order, all or of one account."""
        return tuple(t for t in self._trades if account is None or t.account == account)

    def unsettled(self) -> tuple[Trade, ...]:
        return tuple(t for t in self._trades if not t.settled)


def _unbookable(account: str, symbol: str, side: str) -> str:
    if not account:
        return "no account"
    if not symbol:
        return "no symbol"
    if side not in BUY_SIDES | SELL_SIDES:
        return f"side {side!r} is neither a buy nor a sell"
    return ""


def book_settlements(fill_trades: Mapping[str, Trade], firm_records: Iterable[Record],
                     holidays: Collection[dt.date], anomalies: list[str]) -> dict[str, Trade]:
    """Every trade, by ref: the fills' trades, settled where a SETTLED record names them, and
    the trades of SETTLED records naming a fill not held (booked from the record itself);
    ``firm_records`` in clock order (the earliest SETTLED of a ref counts). What cannot be
    booked is described in ``anomalies`` (see the module doc)."""
    # settlement marks
    settled: dict[str, Record] = {}
    for r in firm_records:
        if r.type is RecordType.SETTLED:
            ref = settled_ref(r)
            if ref:
                settled.setdefault(ref, r)
            else:
                anomalies.append(f"SETTLED record {r.origin}:{r.seq} names no fill (extra['fill_ref'])")

    # a part marks settled the trades its own SETTLED records name; one named in another part
    # (a SETTLED record filed under another txn) is marked here
    trades: dict[str, Trade] = {}
    for ref, t in fill_trades.items():
        trades[ref] = t if t.settled or ref not in settled else dataclasses.replace(t, settled=True)
    # settled trades whose fill we do not hold: book them from the SETTLED record itself
    for ref, r in settled.items():
        if ref in trades:
            continue
        problem = _unbookable(r.account, r.symbol, r.side)
        if problem or r.last_qty is None or r.last_qty <= 0:
            anomalies.append(f"SETTLED record {r.origin}:{r.seq} ({ref}): {problem or 'no quantity'}; not booked")
            continue
        td = _iso_date(r.extra.get("trade_date")) or trade_date_of(r.hlc)
        sd = _iso_date(r.extra.get("settle_date")) or settlement_date(td, holidays)
        trades[ref] = Trade(ref=ref, txn=r.txn, exec_id=r.exec_id, account=r.account,
                            symbol=r.symbol, side=r.side, qty=r.last_qty, price=r.last_px,
                            hlc=r.hlc, trade_date=td, settle_date=sd, settled=True)
    return trades


def reservations(orders: Iterable[tuple[str, OrderStatus]], reference_prices: Mapping[str, Decimal],
                 last_px: Mapping[str, tuple[Hlc, Decimal]], anomalies: list[str]
                 ) -> tuple[dict[str, Decimal], dict[tuple[str, str], Decimal]]:
    """What open orders may still spend (cash per account) and sell (shares per account and
    symbol), by the rules of the module doc (Buying power); ``(txn, status)`` pairs, terminal
    ones skipped. An order priced by nothing is described in ``anomalies``."""
    reserved: dict[str, Decimal] = defaultdict(lambda: _ZERO)
    sell_reserved: dict[tuple[str, str], Decimal] = defaultdict(lambda: _ZERO)
    with decimal.localcontext(_EXACT):
        for txn, o in orders:
            if o.is_terminal or not o.account or o.side not in BUY_SIDES | SELL_SIDES:
                continue
            ref_px = reference_prices.get(o.symbol)
            if ref_px is None and o.symbol in last_px:
                ref_px = last_px[o.symbol][1]
            if ref_px is None:
                ref_px = o.price
            filled_notional = sum((f.qty * f.px for f in o.fills if f.px is not None), _ZERO)
            if o.side in BUY_SIDES:
                if o.order_qty is None and o.cash_order_qty is not None:
                    reserved[o.account] += max(o.cash_order_qty - filled_notional, _ZERO)
                    continue
                px = o.price if o.price is not None and o.ord_type != "1" else ref_px
                if px is None:
                    anomalies.append(f"open order {txn}: no limit or reference price for "
                                     f"{o.symbol!r}; nothing reserved")
                    continue
                reserved[o.account] += o.leaves_qty * px
            else:
                if o.order_qty is None and o.cash_order_qty is not None:
                    if ref_px is None or ref_px <= 0:
                        anomalies.append(f"open order {txn}: cash-amount sell without a reference "
                                         f"price for {o.symbol!r}; no shares reserved")
                        continue
                    sell_reserved[(o.account, o.symbol)] += max(
                        o.cash_order_qty - filled_notional, _ZERO) / ref_px
                else:
                    sell_reserved[(o.account, o.symbol)] += o.leaves_qty
    return reserved, sell_reserved


def _iso_date(v: object) -> dt.date | None:
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v)
        except ValueError:
            return None
    return None


def settlements_due(books_or_records: Books | Iterable[Record], on_date: dt.date, *,
                    holidays: Collection[dt.date] = ()) -> list[Settlement]:
    """Unsettled trades whose settlement date is ``on_date`` or earlier (overdue included),
    sorted by (settlement date, account, symbol, ref)."""
    books = books_or_records if isinstance(books_or_records, Books) else \
        Books.from_records(books_or_records, holidays=holidays)
    due = [Settlement.of(t) for t in books.unsettled() if t.settle_date <= on_date]
    due.sort(key=lambda s: (s.settle_date, s.account, s.symbol, s.ref))
    return due


def end_of_day_report(records: Iterable[Record], trade_date: dt.date, *,
                      reference_prices: Mapping[str, Decimal] | None = None,
                      holidays: Collection[dt.date] = ()) -> dict[str, Any]:
    """The books as of the end of ``trade_date`` (New York): records stamped later are left out.

    JSON-serialisable (Decimals and dates as strings), deterministic: the same records give
    the same report, key for key, on every node.
    """
    books = Books.from_records((r for r in records if trade_date_of(r.hlc) <= trade_date),
                               reference_prices=reference_prices, holidays=holidays)
    accounts: list[dict[str, Any]] = []
    all_bought = all_sold = _ZERO
    n_trades = 0
    with decimal.localcontext(_EXACT):
        for acct in books.accounts():
            day = [t for t in books.trades(acct) if t.trade_date == trade_date]
            bought = sum((t.notional for t in day if t.is_buy), _ZERO)
            sold = sum((t.notional for t in day if not t.is_buy), _ZERO)
            all_bought += bought
            all_sold += sold
            n_trades += len(day)
            c = books.cash(acct)
            accounts.append({
                "account": acct,
                "cash": {"opening": dec_str(c.opening), "settled": dec_str(c.settled),
                         "traded": dec_str(c.traded), "pending_settlement": dec_str(c.pending)},
                "reserved": dec_str(books.reserved(acct)),
                "buying_power": dec_str(books.buying_power(acct)),
                "positions": [
                    {"symbol": p.symbol, "opening": dec_str(p.opening), "settled": dec_str(p.settled),
                     "traded": dec_str(p.traded), "pending_settlement": dec_str(p.pending)}
                    for p in books.positions(acct)
                ],
                "trades": [_trade_json(t) for t in sorted(day, key=lambda t: (t.hlc, t.ref))],
                "open_orders": [
                    {"txn": o.txn, "cl_ord_id": o.cl_ord_id, "symbol": o.symbol, "side": o.side,
                     "ord_status": o.ord_status,
                     "order_qty": dec_str(o.order_qty) if o.order_qty is not None else None,
                     "cash_order_qty": dec_str(o.cash_order_qty) if o.cash_order_qty is not None else None,
                     "cum_qty": dec_str(o.cum_qty), "leaves_qty": dec_str(o.leaves_qty),
                     "price": dec_str(o.price) if o.price is not None else None}
                    for o in books.open_orders(acct)
                ],
                "day": {"trades": len(day), "bought": dec_str(bought), "sold": dec_str(sold)},
            })
    return {
        "report": "end_of_day",
        "trade_date": trade_date.isoformat(),
        "timezone": "America/New_York",
        "accounts": accounts,
        "totals": {"trades": n_trades, "bought": dec_str(all_bought), "sold": dec_str(all_sold)},
        "settlements_due_next": [
            {"ref": s.ref, "account": s.account, "symbol": s.symbol, "side": s.side,
             "qty": dec_str(s.qty), "notional": dec_str(s.notional), "settle_date": s.settle_date.isoformat()}
            for s in settlements_due(books, settlement_date(trade_date, holidays))
        ],
        "anomalies": list(books.anomalies),
    }


def _trade_json(t: Trade) -> dict[str, Any]:
    at = _ny_time(t.hlc)
    return {"ref": t.ref, "txn": t.txn, "exec_id": t.exec_id, "cl_ord_id": t.cl_ord_id,
            "symbol": t.symbol, "side": "buy" if t.is_buy else "sell", "fix_side": t.side,
            "qty": dec_str(t.qty), "price": dec_str(t.price) if t.price is not None else None,
            "notional": dec_str(t.notional), "time": at.isoformat(),
            "settle_date": t.settle_date.isoformat(), "settled": t.settled}


def format_report_text(report: Mapping[str, Any]) -> str:
    """A plain-text rendering of :func:`end_of_day_report` for people (deterministic)."""
    lines = [f"END OF DAY {report['trade_date']} ({report['timezone']})", ""]
    for a in report["accounts"]:
        c = a["cash"]
        lines.append(f"Account {a['account']}")
        lines.append(f"  cash  opening {c['opening']:>16}  settled {c['settled']:>16}  "
                     f"traded {c['traded']:>16}  pending {c['pending_settlement']:>16}")
        lines.append(f"  reserved {a['reserved']}  buying power {a['buying_power']}")
        for p in a["positions"]:
            lines.append(f"  {p['symbol']:<10} opening {p['opening']:>12}  settled {p['settled']:>12}  "
                         f"traded {p['traded']:>12}")
        for t in a["trades"]:
            lines.append(f"  {t['time'][11:19]} {t['side']:<4} {t['qty']:>10} {t['symbol']:<10} @ "
                         f"{t['price'] or '?':>10} = {t['notional']:>14}  settles {t['settle_date']}"
                         f"{'  (settled)' if t['settled'] else ''}  {t['txn']} {t['exec_id']}")
        for o in a["open_orders"]:
            lines.append(f"  open {o['txn']} {o['cl_ord_id']} {o['side']} {o['symbol']} "
                         f"status {o['ord_status']} cum {o['cum_qty']} leaves {o['leaves_qty']}")
        d = a["day"]
        lines.append(f"  day: {d['trades']} trades, bought {d['bought']}, sold {d['sold']}")
        lines.append("")
    tot = report["totals"]
    lines.append(f"TOTAL {tot['trades']} trades, bought {tot['bought']}, sold {tot['sold']}")
    if report["anomalies"]:
        lines.append("ANOMALIES")
        lines.extend(f"  {x}" for x in report["anomalies"])
    return "\n".join(lines) + "\n"
