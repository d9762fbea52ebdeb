"""The simulated exchange: one order book per symbol, price-time priority.

Limit and market orders; time in force DAY (expires at the session end), GTC, IOC
(fill what can be filled now, expire the rest) and FOK (all now or nothing). A market
order with nothing to trade against follows its time in force: IOC/FOK expire, DAY/GTC
wait in the book's market queue. Cancel/replace follow the usual exchange rules: a
quantity decrease at the same price keeps the order's place; a price change or a
quantity increase sends it to the back (and it may trade at once); a new quantity below
what is already filled is refused. See :mod:`venues.interface` for the calling contract.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from fixgw.fastinit import fast_constructor
from fixgw.orders import CxlRejResponseTo, OrdRejReason, OrdStatus, OrdType, Side, TimeInForce
from venues.book import BookOrder, OrderBook, Trade
from venues.business_days import next_local_instant
from venues.clock import Clock, SystemClock
from venues.commands import CancelOrder, QueryStatus, ReplaceOrder, SubmitOrder
from venues.events import (
    NO_ORDER_ID,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderStatusReport,
    VenueEvent,
)
from venues.limits import MAX_PRICE, MAX_QUANTITY, QUANTITY_QUANTUM
from venues.liquidity import LiquidityProvider
from venues.registry import OrderRegistry, fmt
from venues.venue_config import ExchangeConfig, SymbolSpec

_ZERO = Decimal(0)
# AvgPx keeps at most this many decimals (a long division would otherwise give 28 digits)
_AVG_PX_QUANTUM = Decimal("0.00000001")
_AVG_PX_EXP = -8
_TICK_CACHE_SIZE = 100_000  # distinct valid prices remembered per symbol
_LP_OWNER = "\x00liquidity"  # not a valid FIX session id: can never clash with a client


# positional builders in field order: see venues.events (common fields, then the extras)
_ACCEPTED = fast_constructor(OrderAccepted)
_FILLED = fast_constructor(OrderFilled)
_CANCELED = fast_constructor(OrderCanceled)
_REPLACED = fast_constructor(OrderReplaced)
_EXPIRED = fast_constructor(OrderExpired)
_STATUS = fast_constructor(OrderStatusReport)
_REJECTED = fast_constructor(OrderRejected)


class _Order(BookOrder):
    __slots__ = (
        "avg",
        "cl_ord_id",
        "cum",
        "lp",
        "notional",
        "order_id",
        "order_type",
        "owner",
        "qty",
        "seq",
        "side",
        "status",
        "symbol",
        "tif",
    )

    def __init__(
        self, owner: str, cl_ord_id: str, order_id: str, symbol: str, side: Side,
        order_type: OrdType, tif: TimeInForce, qty: Decimal, ticks: int | None,
        price: Decimal | None, lp: bool = False, seq: int = 0,
    ) -> None:
        # BookOrder's fields set here rather than through its __init__: one call less per order
        self.is_buy = side is Side.BUY
        self.ticks = ticks
        self.price = price
        self.leaves = qty
        self.token = 0
        self.resting = False
        self.owner = owner
        self.cl_ord_id = cl_ord_id
        self.order_id = order_id
        self.symbol = symbol
        self.side = side
        self.order_type = order_type
        self.tif = tif
        self.qty = qty
        self.cum = _ZERO
        self.notional = _ZERO
        self.avg = _ZERO  # AvgPx, recomputed at each fill only
        self.status = OrdStatus.NEW
        self.lp = lp
        self.seq = seq  # arrival order

    def fill(self, qty: Decimal, px: Decimal) -> None:
        self.cum += qty
        self.notional += qty * px
        avg = self.notional / self.cum
        exp = avg.as_tuple().exponent
        if isinstance(exp, int) and exp < _AVG_PX_EXP:
            avg = avg.quantize(_AVG_PX_QUANTUM)
        self.avg = avg


class Exchange:
    """A :class:`venues.interface.Venue` with order books, TIF rules and a market maker."""

    def __init__(self, config: ExchangeConfig | None = None, clock: Clock | None = None) -> None:
        self._cfg = config or ExchangeConfig()
        self._clock: Clock = clock or SystemClock()
        self._name = self._cfg.name
        self._specs: dict[str, SymbolSpec] = {s.symbol: s for s in self._cfg.symbols}
        # price -> ticks of every valid price seen, per symbol: a dict hit costs a tenth of
        # the Decimal remainder and division that check and convert a price
        self._tick_cache: dict[str, dict[Decimal, int]] = {s: {} for s in self._specs}
        self._books: dict[str, OrderBook] = {s: OrderBook(s) for s in self._specs}
        self._zone = ZoneInfo(self._cfg.timezone)
        self._reg: OrderRegistry[_Order] = OrderRegistry(self._name, self._clock)
        self._trade_seq = 0
        self._next_close = self._close_after(self._reg.last)
        self._lp: LiquidityProvider | None = None
        self._lp_orders: dict[str, list[_Order]] = {s: [] for s in self._specs}
        self._next_refresh: datetime | None = None
        if self._cfg.liquidity.enabled:
            self._lp = LiquidityProvider(self._cfg.liquidity, self._cfg.symbols)
            self._refresh_every = timedelta(seconds=self._cfg.liquidity.refresh_seconds)
            self._requote(self._reg.last, [])
            self._next_refresh = self._reg.last + self._refresh_every
        # the earliest time-driven event: commands check only this one comparison
        self._next_due = self._next_close if self._next_refresh is None else min(self._next_close, self._next_refresh)

    # -- the Venue interface ---------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    def submit(self, cmd: SubmitOrder) -> list[VenueEvent]:
        reg = self._reg
        now = self._clock.now()
        if now < reg.last:  # noqa: PLR1730 - max() costs 6x this on the hot path
            now = reg.last  # a venue's time never runs backwards (inlined reg.now())
        reg.last = now
        out = self._advance(now) if now >= self._next_due else []
        owner = cmd.owner
        key = (owner, cmd.cl_ord_id)
        spec = self._specs.get(cmd.symbol)
        qty = cmd.quantity
        price = cmd.price
        ticks: int | None = None
        problem: tuple[OrdRejReason, str] | None = None
        if key in reg.orders:
            problem = OrdRejReason.DUPLICATE_ORDER, f"duplicate ClOrdID {cmd.cl_ord_id}"
        elif spec is None:
            problem = OrdRejReason.UNKNOWN_SYMBOL, f"unknown symbol {cmd.symbol}"
        elif cmd.cash_quantity is not None:
            problem = (OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC,
                       "CashOrderQty is not supported by the exchange: send OrderQty")
        elif qty is None:
            problem = OrdRejReason.INCORRECT_QUANTITY, "OrderQty is required"
        elif not _ZERO < qty <= MAX_QUANTITY or qty % QUANTITY_QUANTUM:
            problem = OrdRejReason.INCORRECT_QUANTITY, self._quantity_problem(qty)
        elif cmd.order_type is OrdType.LIMIT:
            cache = self._tick_cache[cmd.symbol]
            ticks = cache.get(price)  # type: ignore[arg-type]
            if ticks is None:
                ticks, text = self._ticks(spec, price)
                if ticks is None:
                    problem = OrdRejReason.OTHER, text
                elif len(cache) < _TICK_CACHE_SIZE:
                    cache[price] = ticks  # type: ignore[index]
        else:
            price = None  # a market order trades at the other side's prices
        if problem is not None:
            out.append(self._rejected(cmd, now, *problem))
            return out
        assert qty is not None
        reg.order_seq += 1
        seq = reg.order_seq
        order = _Order(owner, cmd.cl_ord_id, f"{self._name}-O{seq}", cmd.symbol, cmd.side,
                       cmd.order_type, cmd.time_in_force, qty, ticks, price, False, seq)
        reg.orders[key] = order  # inlined reg.add
        reg.by_id[order.order_id] = order
        reg.exec_seq += 1
        name = self._name
        out.append(_ACCEPTED(  # inlined _report: every order pays for this one
            name, owner, cmd.cl_ord_id, None, order.order_id, f"{name}-{reg.exec_seq}", cmd.symbol, cmd.side,
            cmd.order_type, cmd.time_in_force, qty, None, price, OrdStatus.NEW, _ZERO, qty, _ZERO, now,
        ))
        self._enter(order, now, out)
        return out

    def cancel(self, cmd: CancelOrder) -> list[VenueEvent]:
        reg = self._reg
        now = reg.now()
        out = self._advance(now) if now >= self._next_due else []
        order = reg.lookup(cmd.owner, cmd.orig_cl_ord_id, cmd.order_id)
        refused = reg.refuse(cmd, order, now, CxlRejResponseTo.CANCEL)
        if refused is not None:
            out.append(refused)
            return out
        assert order is not None
        self._books[order.symbol].remove(order)
        order.leaves = _ZERO
        order.status = OrdStatus.CANCELED
        orig = reg.rename(order, cmd.owner, cmd.cl_ord_id)
        out.append(self._report(_CANCELED, order, now, orig))
        return out

    def replace(self, cmd: ReplaceOrder) -> list[VenueEvent]:
        reg = self._reg
        now = reg.now()
        out = self._advance(now) if now >= self._next_due else []
        order = reg.lookup(cmd.owner, cmd.orig_cl_ord_id, cmd.order_id)
        refused = reg.refuse(cmd, order, now, CxlRejResponseTo.REPLACE)
        if refused is None:
            assert order is not None
            problem, ticks, price = self._check_replace(cmd, order)
            if problem:
                refused = reg.replace_refused(cmd, order, now, problem)
        if refused is not None:
            out.append(refused)
            return out
        assert order is not None and cmd.quantity is not None
        book = self._books[order.symbol]
        qty = cmd.quantity
        leaves = qty - order.cum
        orig = reg.rename(order, cmd.owner, cmd.cl_ord_id)
        if not leaves:
            # the new quantity is exactly what is filled: the order is done
            book.remove(order)
            order.qty, order.leaves, order.status = qty, _ZERO, OrdStatus.FILLED
            out.append(self._report(_REPLACED, order, now, orig))
        elif ticks == order.ticks and qty <= order.qty:
            book.reduce(order, leaves)  # same price, not bigger: keeps its place in the queue
            order.qty = qty
            out.append(self._report(_REPLACED, order, now, orig))
        else:
            book.remove(order)  # a new price or more quantity goes to the back of the queue
            order.ticks, order.price, order.qty, order.leaves = ticks, price, qty, leaves
            out.append(self._report(_REPLACED, order, now, orig))
            self._enter(order, now, out)
        return out

    def status(self, cmd: QueryStatus) -> list[VenueEvent]:
        now = self._reg.now()
        out = self._advance(now) if now >= self._next_due else []
        order = self._reg.lookup(cmd.owner, cmd.cl_ord_id, cmd.order_id)
        if order is None:
            out.append(self._reg.unknown_order(cmd, now, OrdType.LIMIT))
        else:
            out.append(self._report(_STATUS, order, now, None, ""))
        return out

    def tick(self, now: datetime | None = None) -> list[VenueEvent]:
        if now is not None and (now.tzinfo is None or now.utcoffset() is None):
            raise ValueError(f"tick needs a timezone-aware datetime, got {now!r}")
        at = self._reg.now() if now is None else self._reg.now_at(now)
        return self._advance(at)

    def next_timer(self) -> datetime | None:
        return self._next_due

    # -- introspection (market data, tests) ------------------------------------------

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._specs)

    def book(self, symbol: str) -> OrderBook:
        return self._books[symbol]

    def tick_size(self, symbol: str) -> Decimal:
        return self._specs[symbol].tick_size

    def reference_price(self, symbol: str) -> Decimal | None:
        """The liquidity provider's reference price (None when it is off)."""
        return None if self._lp is None else self._lp.reference_price(symbol)

    def open_orders(self, owner: str | None = None) -> list[OrderStatusReport]:
        """Status of every live client order (of ``owner``, if given)."""
        now = self._reg.last
        return [self._report(_STATUS, o, now, None, "") for o in self._reg.open_orders(owner)]  # type: ignore[misc]

    # -- matching ----------------------------------------------------------------------

    def _enter(self, order: _Order, now: datetime, out: list[VenueEvent]) -> None:
        """Match an incoming (or re-priced) order, then rest or expire what is left."""
        book = self._books[order.symbol]
        tif = order.tif
        if tif is TimeInForce.FOK and book.available(order, order.leaves) < order.leaves:
            self._expire(order, now, out, "FOK: the full quantity is not available")
            return
        trades = book.match(order)
        if trades:
            self._fills(order, trades, now, out)
        if not order.leaves:
            return
        if tif is TimeInForce.IOC or tif is TimeInForce.FOK:
            why = "no liquidity" if not trades else "unfilled quantity"
            self._expire(order, now, out, f"{tif.name}: {why}")
            return
        book.add(order)

    def _fills(self, taker: _Order, trades: Sequence[Trade], now: datetime, out: list[VenueEvent]) -> None:
        name = self._name
        reg = self._reg
        for resting, qty, px in trades:
            assert isinstance(resting, _Order)
            self._trade_seq += 1
            trade_id = f"{name}-T{self._trade_seq}"
            for order, aggressor in ((taker, True), (resting, False)):
                order.fill(qty, px)
                leaves = order.qty - order.cum
                if leaves:
                    order.status = OrdStatus.PARTIALLY_FILLED
                else:
                    order.status = OrdStatus.FILLED
                if order.lp:
                    continue  # the market maker's own fills are nobody's business
                reg.exec_seq += 1
                out.append(_FILLED(
                    name, order.owner, order.cl_ord_id, None, order.order_id, f"{name}-{reg.exec_seq}",
                    order.symbol, order.side, order.order_type, order.tif, order.qty, None, order.price,
                    order.status, order.cum, leaves, order.avg, now, qty, px, trade_id, aggressor,
                ))

    def _expire(self, order: _Order, now: datetime, out: list[VenueEvent], reason: str) -> None:
        self._books[order.symbol].remove(order)
        order.leaves = _ZERO
        order.status = OrdStatus.EXPIRED
        if not order.lp:
            out.append(self._report(_EXPIRED, order, now, None, reason))

    # -- time ----------------------------------------------------------------------------

    def _advance(self, now: datetime) -> list[VenueEvent]:
        """Everything due by ``now``: the session end, the market maker's refresh."""
        out: list[VenueEvent] = []
        if now >= self._next_close:
            close = self._next_close
            # once a day, a walk over the resting orders costs less than tracking DAY
            # orders on every order entry and fill
            day_orders = [o for book in self._books.values() for side in (True, False)
                          for o in book.resting_orders(side) if isinstance(o, _Order) and o.tif is TimeInForce.DAY]
            for order in sorted(day_orders, key=lambda o: o.seq):  # in order of arrival
                self._expire(order, close, out, "DAY order expired at the session end")
            self._reg.forget_old_orders()
            self._next_close = self._close_after(now)
        if self._next_refresh is not None and now >= self._next_refresh:
            self._requote(now, out)
            self._next_refresh = now + self._refresh_every
        self._next_due = self._next_close if self._next_refresh is None else min(self._next_close, self._next_refresh)
        return out

    def _close_after(self, at: datetime) -> datetime:
        """The first session end strictly after ``at``."""
        return next_local_instant(at, self._cfg.session_close, self._zone)

    def _requote(self, now: datetime, out: list[VenueEvent]) -> None:
        """The market maker moves its reference prices and replaces all its quotes."""
        lp = self._lp
        assert lp is not None
        lp.step()
        size = lp.quote_size
        for symbol, spec in self._specs.items():
            book = self._books[symbol]
            for old in self._lp_orders[symbol]:
                book.remove(old)
            fresh: list[_Order] = []
            for is_buy, ticks in lp.quotes(symbol):
                side = Side.BUY if is_buy else Side.SELL
                quote = _Order(_LP_OWNER, "", "LP", symbol, side, OrdType.LIMIT, TimeInForce.GTC,
                               size, ticks, ticks * spec.tick_size, lp=True)
                self._enter(quote, now, out)
                if quote.resting:
                    fresh.append(quote)
            self._lp_orders[symbol] = fresh

    # -- checks and reports ------------------------------------------------------------

    @staticmethod
    def _quantity_problem(qty: Decimal) -> str:
        if not qty > 0:
            return f"OrderQty must be positive, got {fmt(qty)}"
        if qty > MAX_QUANTITY:
            return f"OrderQty must be at most {fmt(MAX_QUANTITY)}, got {fmt(qty)}"
        return f"OrderQty has at most 8 decimals, got {fmt(qty)}"

    @staticmethod
    def _ticks(spec: SymbolSpec, price: Decimal | None) -> tuple[int | None, str]:
        if price is None:
            return None, "a limit order needs a Price"
        if not 0 < price <= MAX_PRICE:
            return None, f"Price must be positive and at most {fmt(MAX_PRICE)}, got {fmt(price)}"
        if price % spec.tick_size:
            return None, f"Price {fmt(price)} is not a multiple of the tick size {fmt(spec.tick_size)}"
        return int(price / spec.tick_size), ""

    def _check_replace(self, cmd: ReplaceOrder, order: _Order) -> tuple[str, int | None, Decimal | None]:
        """(problem or "", new ticks, new price)."""
        if cmd.cash_quantity is not None:
            return "CashOrderQty is not supported by the exchange", None, None
        if cmd.order_type is not None and cmd.order_type is not order.order_type:
            return "the order type cannot be changed", None, None
        if cmd.time_in_force is not None and cmd.time_in_force is not order.tif:
            return "the time in force cannot be changed", None, None
        qty = cmd.quantity
        if qty is None:
            return "OrderQty is required", None, None
        if not _ZERO < qty <= MAX_QUANTITY or qty % QUANTITY_QUANTUM:
            return self._quantity_problem(qty), None, None
        if qty < order.cum:
            return f"OrderQty {fmt(qty)} is below the filled quantity {fmt(order.cum)}", None, None
        if order.order_type is OrdType.MARKET:
            return "", None, None
        price = order.price if cmd.price is None else cmd.price
        ticks, text = self._ticks(self._specs[order.symbol], price)
        if ticks is None:
            return text, None, None
        return "", ticks, price

    def _rejected(self, cmd: SubmitOrder, now: datetime, code: OrdRejReason, reason: str) -> OrderRejected:
        return _REJECTED(
            self._name, cmd.owner, cmd.cl_ord_id, None, NO_ORDER_ID, self._reg.next_exec_id(),
            cmd.symbol, cmd.side, cmd.order_type, cmd.time_in_force, cmd.quantity, cmd.cash_quantity,
            cmd.price, OrdStatus.REJECTED, _ZERO, _ZERO, _ZERO, now, reason, code,
        )

    def _report(self, make: Callable[..., VenueEvent], order: _Order, now: datetime,
                orig: str | None = None, *extra: object) -> VenueEvent:
        """An execution event (``make``: one of the builders above) showing ``order`` as it
        stands; ``extra`` are the event type's own fields, in order."""
        return make(
            self._name, order.owner, order.cl_ord_id, orig, order.order_id, self._reg.next_exec_id(),
            order.symbol, order.side, order.order_type, order.tif, order.qty, None, order.price,
            order.status, order.cum, order.leaves, order.avg, now, *extra,
        )
