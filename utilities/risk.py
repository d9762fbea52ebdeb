"""Pre-trade checks at a customer utility, kept incrementally from the records it holds.

The firm's ACCOUNT records (read-only here) give each account's opening cash, positions,
limits and whether it is active; customer ORDER records (own and peers') and street records
(read-only) move exposure. ``utilities.books`` folds the same facts for the firm's books,
but refolding everything on every order would cost milliseconds; this view is updated per
record in O(1) and answers a check in O(1).

What it remembers of finished orders (which ones are closed, which fills it has counted)
only guards against records that arrive late or twice: an order's ORDER record after its
cancel, the same venue fill recorded by two street utilities around a takeover. Those come
within minutes, so :meth:`RiskView.forget_before` drops them once their trading day is well
past, and the view stays the size of the open orders plus a day or two of activity.

A check of an order is a list of small functions (:data:`CHECKS`), each saying why it
refuses the order or None: a new rule is one more function, testable on its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from replication.record import Record, RecordType
from utilities.books import account_opening, opening_rank, trade_date_of
from utilities.status import fill_key

BUY = "1"
SELL_SIDES = ("2", "5", "6")   # sell, sell short, sell short exempt
TERMINAL_TYPES = frozenset({RecordType.CANCELED, RecordType.VENUE_REJECT, RecordType.ORDER_REJECTED,
                            RecordType.EXPIRED})


@dataclass
class _Account:
    cash: Decimal = Decimal(0)
    positions: dict[str, Decimal] = field(default_factory=dict)
    active: bool = True
    max_order_qty: Decimal | None = None
    max_notional: Decimal | None = None
    opened_at: tuple[str, int, int, str] = ("", 0, 0, "")   # the ACCOUNT record's rank: a carry's as_of, then its clock


@dataclass
class _Open:
    account: str
    symbol: str
    side: str
    qty: Decimal            # shares still reserved (or cash amount for a cash order)
    px: Decimal             # price used to reserve cash for buys
    is_cash: bool = False


@dataclass(frozen=True, slots=True)
class RiskRefusal:
    reason: int             # OrdRejReason
    text: str


def _dec(v: object) -> Decimal | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        d = Decimal(str(v))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


class DayKeys:
    """Keys remembered with the trading day they belong to, forgotten a day at a time.

    Why not a dict of ``key -> day``: the risk view remembers every order finished and every
    fill counted for a day past their own (975,000 of each at ``fixgw bench scale --records
    4000000 --days 2``). As dicts they took 0.40 s each to unpickle at a restart and a day roll
    went over every entry; a set per day unpickles in a fraction of that and a roll drops
    whole sets. A key added under two days (an order closed by two records stamped on either
    side of midnight) is remembered until the later one is forgotten, whatever order the
    records came in.
    """

    __slots__ = ("_days",)

    def __init__(self) -> None:
        self._days: dict[dt.date, set[str]] = {}

    def __contains__(self, key: object) -> bool:
        return any(key in keys for keys in self._days.values())

    def __len__(self) -> int:
        return sum(len(keys) for keys in self._days.values())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DayKeys) and self._days == other._days

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"DayKeys({ {d: len(k) for d, k in sorted(self._days.items())} })"

    def __iter__(self) -> Iterator[str]:
        """Each key once."""
        return iter(set().union(*self._days.values()))

    def days(self) -> list[dt.date]:
        """The days that hold keys, oldest first."""
        return sorted(self._days)

    def add(self, key: str, day: dt.date) -> None:
        keys = self._days.get(day)
        if keys is None:
            keys = self._days[day] = set()
        keys.add(key)

    def forget_before(self, day: dt.date) -> int:
        """Forget the keys of days before ``day``; how many (a key under a later day stays)."""
        old = [d for d in self._days if d < day]
        n = 0
        for d in old:
            n += len(self._days.pop(d))
        return n

    def __getstate__(self) -> dict[dt.date, set[str]]:
        return self._days

    def __setstate__(self, days: dict[dt.date, set[str]]) -> None:
        self._days = days


class RiskView:
    def __init__(self, reference_prices: dict[str, Decimal] | None = None) -> None:
        self.accounts: dict[str, _Account] = {}
        self.traded_cash: dict[str, Decimal] = {}
        self.traded_pos: dict[tuple[str, str], Decimal] = {}
        # the traded amounts by trade date, per (account, symbol or ""): a carry forward of the
        # account's balances (an ACCOUNT record with an as_of, utilities.books) takes the dates
        # it carries out of the totals; fills of those dates that come later are not added
        self.traded_days: dict[tuple[str, str], dict[dt.date, Decimal]] = {}
        self.cuts: dict[str, dt.date] = {}
        self.reserved_cash: dict[str, Decimal] = {}
        self.reserved_pos: dict[tuple[str, str], Decimal] = {}
        self.open: dict[str, _Open] = {}
        self.closed = DayKeys()                 # txns, by the trade date of the record that closed them
        self.fills = DayKeys()                  # fill keys, by the trade date of the fill
        # fills of orders whose ORDER record is not here yet (a peer's, replicated after the
        # street's records): txn -> (shares, amount, trade date); the ORDER reserves only the rest
        self.early: dict[str, tuple[Decimal, Decimal, dt.date]] = {}
        self.last_px: dict[str, Decimal] = dict(reference_prices or {})

    # ------------------------------------------------------------------ updates
    def apply(self, r: Record) -> None:
        t = r.type
        if t is RecordType.ACCOUNT:
            self._account(r)
        elif t is RecordType.ORDER:
            self._order(r)
        elif t is RecordType.FILL:
            self._fill(r)
        elif t in TERMINAL_TYPES:
            self._close(r)
        elif t is RecordType.REPLACED:
            self._replaced(r)
        elif t is RecordType.VENUE_STATUS and r.status in ("2", "4", "8", "C"):
            self._close(r)

    def _account(self, r: Record) -> None:
        try:
            opening = account_opening(r)
        except ValueError:
            return
        for sym, (_, px) in opening.last_px.items():
            self.last_px.setdefault(sym, px)
        rank = opening_rank(r)[:4]
        acct = self.accounts.get(r.account)
        if acct is not None and acct.opened_at > rank:
            return
        self.accounts[r.account] = _Account(
            cash=opening.cash,
            positions=dict(opening.positions),
            active=r.extra.get("active", True) is not False,
            max_order_qty=_dec(r.extra.get("max_order_qty")),
            max_notional=_dec(r.extra.get("max_notional")),
            opened_at=rank,
        )
        cut = opening.as_of
        if cut is None or cut <= self.cuts.get(r.account, dt.date.min):
            return
        self.cuts[r.account] = cut
        for line, days in self.traded_days.items():
            if line[0] != r.account:
                continue
            for day in [d for d in days if d <= cut]:
                self._traded(line, -days.pop(day))

    def _traded(self, line: tuple[str, str], amount: Decimal) -> None:
        if line[1]:
            self.traded_pos[line] = self.traded_pos.get(line, Decimal(0)) + amount
        else:
            self.traded_cash[line[0]] = self.traded_cash.get(line[0], Decimal(0)) + amount

    def _order(self, r: Record) -> None:
        if r.txn in self.open or r.txn in self.closed:
            return
        is_cash = r.order_qty is None and r.cash_order_qty is not None
        qty = (r.cash_order_qty if is_cash else r.order_qty) or Decimal(0)
        early = self.early.pop(r.txn, None)
        if early is not None:
            qty = max(Decimal(0), qty - (early[1] if is_cash else early[0]))
            if qty == 0:
                self.closed.add(r.txn, early[2])
                return
        px = r.price if r.price is not None else self.last_px.get(r.symbol, Decimal(0))
        o = _Open(r.account, r.symbol, r.side, qty, px, is_cash)
        self.open[r.txn] = o
        self._reserve(o, +1)

    def _reserve(self, o: _Open, sign: int) -> None:
        if o.side == BUY:
            amount = o.qty if o.is_cash else o.qty * o.px
            self.reserved_cash[o.account] = self.reserved_cash.get(o.account, Decimal(0)) + sign * amount
        elif o.side in SELL_SIDES and not o.is_cash:
            key = (o.account, o.symbol)
            self.reserved_pos[key] = self.reserved_pos.get(key, Decimal(0)) + sign * o.qty

    def _fill(self, r: Record) -> None:
        key = fill_key(r)
        qty, px = r.last_qty, r.last_px
        if key in self.fills or qty is None or px is None:
            return
        day = trade_date_of(r.hlc)
        self.fills.add(key, day)
        notional = qty * px
        cut = self.cuts.get(r.account)
        if cut is None or day > cut:      # else in the account's carried-forward opening
            dq, dc = (qty, -notional) if r.side == BUY else (-qty, notional)
            for line, amount in (((r.account, r.symbol), dq), ((r.account, ""), dc)):
                self._traded(line, amount)
                days = self.traded_days.get(line)
                if days is None:
                    days = self.traded_days[line] = {}
                days[day] = days.get(day, Decimal(0)) + amount
        self.last_px[r.symbol] = px
        o = self.open.get(r.txn)
        if o is not None:
            self._reserve(o, -1)
            o.qty = max(Decimal(0), o.qty - (notional if o.is_cash else qty))
            self._reserve(o, +1)
            if r.status == "2" or o.qty == 0:
                self._close(r)
        elif r.txn not in self.closed:
            # an order whose ORDER record is not here yet (a peer's, replicated after the street's):
            # its ORDER reserves what is left; after its last fill it must not open it at all
            if r.status == "2":
                self._close(r)
            else:
                shares, amount, _ = self.early.get(r.txn, (Decimal(0), Decimal(0), dt.date.min))
                self.early[r.txn] = (shares + qty, amount + notional, day)

    def _replaced(self, r: Record) -> None:
        o = self.open.get(r.txn)
        if o is None or o.is_cash:
            return
        self._reserve(o, -1)
        if r.order_qty is not None:
            o.qty = max(Decimal(0), r.order_qty - (r.cum_qty or Decimal(0)))
        if r.price is not None:
            o.px = r.price
        self._reserve(o, +1)

    def _close(self, r: Record) -> None:
        txn = r.txn
        self.closed.add(txn, trade_date_of(r.hlc))
        self.early.pop(txn, None)
        o = self.open.pop(txn, None)
        if o is not None:
            self._reserve(o, -1)

    def forget_before(self, day: dt.date) -> int:
        """Drop what is remembered of orders closed, and fills counted, before ``day``;
        returns how many entries went. Open orders and the totals are untouched."""
        n = self.closed.forget_before(day) + self.fills.forget_before(day)
        early = [k for k, (_, _, d) in self.early.items() if d < day]
        for k in early:
            del self.early[k]
        return n + len(early)

    # ------------------------------------------------------------------ queries
    def buying_power(self, account: str) -> Decimal:
        a = self.accounts.get(account)
        base = a.cash if a else Decimal(0)
        return base + self.traded_cash.get(account, Decimal(0)) - self.reserved_cash.get(account, Decimal(0))

    def sellable(self, account: str, symbol: str) -> Decimal:
        a = self.accounts.get(account)
        base = a.positions.get(symbol, Decimal(0)) if a else Decimal(0)
        key = (account, symbol)
        return base + self.traded_pos.get(key, Decimal(0)) - self.reserved_pos.get(key, Decimal(0))

    def check(
        self, *, account: str, symbol: str, side: str, qty: Decimal | None, cash_qty: Decimal | None,
        price: Decimal | None,
    ) -> RiskRefusal | None:
        """The first refusal of :data:`CHECKS` for this order, or None when it may go."""
        ref = price if price is not None else self.last_px.get(symbol)
        notional = cash_qty if qty is None else (qty * ref if ref is not None else None)
        order = RiskOrder(account, symbol, side, qty, cash_qty, ref, notional)
        for check in CHECKS:
            refusal = check(self, order)
            if refusal is not None:
                return refusal
        return None


@dataclass(frozen=True, slots=True)
class RiskOrder:
    """An order under check, with what the checks derive from it once."""

    account: str
    symbol: str
    side: str
    qty: Decimal | None        # OrderQty, or None for an order by amount
    cash_qty: Decimal | None   # CashOrderQty
    ref: Decimal | None        # the order's price, else the last known price of the symbol
    notional: Decimal | None   # the amount (by amount), or qty x ref; None without a ref


# Each check returns the reason it refuses the order, or None. They run in the order of
# CHECKS and the first refusal wins: the ones after known_account may take the account as there.

def known_account(view: RiskView, o: RiskOrder) -> RiskRefusal | None:
    return None if o.account in view.accounts else RiskRefusal(0, f"Unknown account {o.account}")


def active_account(view: RiskView, o: RiskOrder) -> RiskRefusal | None:
    return None if view.accounts[o.account].active else RiskRefusal(0, f"Account {o.account} is not active")


def positive_quantity(view: RiskView, o: RiskOrder) -> RiskRefusal | None:
    if o.qty is not None:
        return RiskRefusal(0, "OrderQty must be positive") if o.qty <= 0 else None
    if o.cash_qty is None or o.cash_qty <= 0:
        return RiskRefusal(0, "OrderQty or CashOrderQty must be positive")
    return None


def within_max_order_qty(view: RiskView, o: RiskOrder) -> RiskRefusal | None:
    limit = view.accounts[o.account].max_order_qty
    if o.qty is not None and limit is not None and o.qty > limit:
        return RiskRefusal(3, f"OrderQty {o.qty} exceeds the account's maximum {limit}")
    return None


def within_max_notional(view: RiskView, o: RiskOrder) -> RiskRefusal | None:
    limit = view.accounts[o.account].max_notional
    if o.notional is not None and limit is not None and o.notional > limit:
        return RiskRefusal(3, f"Notional {o.notional} exceeds the account's maximum {limit}")
    return None


def buying_power(view: RiskView, o: RiskOrder) -> RiskRefusal | None:
    if o.side != BUY:
        return None
    if o.notional is None:
        return RiskRefusal(0, f"No reference price for {o.symbol} to check buying power")
    bp = view.buying_power(o.account)
    if o.notional > bp:
        return RiskRefusal(3, f"Insufficient buying power: need {o.notional}, have {bp}")
    return None


def position(view: RiskView, o: RiskOrder) -> RiskRefusal | None:
    if o.side not in SELL_SIDES:
        return None
    if o.qty is None:
        # a sell by amount: check the shares it would take at the reference price
        if o.ref is None or o.ref <= 0:
            return RiskRefusal(0, f"No reference price for {o.symbol} to check the position")
        need = (o.cash_qty or Decimal(0)) / o.ref
    else:
        need = o.qty
    have = view.sellable(o.account, o.symbol)
    if need > have:
        return RiskRefusal(3, f"Insufficient position in {o.symbol}: need {need}, have {have}")
    return None


def known_side(view: RiskView, o: RiskOrder) -> RiskRefusal | None:
    if o.side == BUY or o.side in SELL_SIDES:
        return None
    return RiskRefusal(0, f"Unsupported Side {o.side}")


RiskCheck = Callable[[RiskView, RiskOrder], RiskRefusal | None]
CHECKS: tuple[RiskCheck, ...] = (
    known_account, active_account, positive_quantity, within_max_order_qty, within_max_notional,
    buying_power, position, known_side,
)
