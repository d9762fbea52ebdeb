"""The simulated mutual-fund company: forward pricing at a daily NAV cut-off.

An order is acknowledged when it arrives and filled at the next valuation point, at that
day's NAV: received before the cut-off (default 16:00 America/New_York) on a business day,
it gets that day's NAV; after the cut-off or on a weekend, the next business day's.
Orders are by shares (OrderQty) or by amount (CashOrderQty, tag 152): an amount buys or
sells amount / NAV shares, rounded half-up to 3 decimals. Cancel and replace are accepted
until the cut-off of the order's valuation date; after it they get a cancel reject.
The company knows nothing of client holdings: a sell is filled like a buy.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from fixgw.orders import (
    CxlRejReason,
    CxlRejResponseTo,
    OrdRejReason,
    OrdStatus,
    OrdType,
    Side,
    TimeInForce,
)
from venues import events as ev
from venues.business_days import (
    is_business_day,
    local_instant,
    next_business_day,
    next_local_instant,
    previous_business_day,
)
from venues.clock import Clock, SystemClock
from venues.commands import CancelOrder, QueryStatus, ReplaceOrder, SubmitOrder
from venues.errors import VenueConfigError
from venues.limits import MAX_QUANTITY
from venues.navs import CsvNavs, NavSource, RandomWalkNavs
from venues.registry import OrderRegistry, fmt
from venues.venue_config import FundCompanyConfig, FundSpec

_ZERO = Decimal(0)
SHARE_QUANTUM = Decimal("0.001")
CASH_QUANTUM = Decimal("0.01")


class _FundOrder:
    __slots__ = (
        "avg",
        "cash",
        "cl_ord_id",
        "cum",
        "cutoff_at",
        "order_id",
        "owner",
        "qty",
        "side",
        "status",
        "symbol",
        "tif",
        "valuation_date",
        "value_at",
    )

    def __init__(self, owner: str, cl_ord_id: str, order_id: str, symbol: str, side: Side, tif: TimeInForce,
                 qty: Decimal | None, cash: Decimal | None, valuation_date: date,
                 cutoff_at: datetime, value_at: datetime) -> None:
        self.owner = owner
        self.cl_ord_id = cl_ord_id
        self.order_id = order_id
        self.symbol = symbol  # the fund
        self.side = side
        self.tif = tif
        self.qty = qty
        self.cash = cash
        self.valuation_date = valuation_date
        self.cutoff_at = cutoff_at
        self.value_at = value_at
        self.status = OrdStatus.NEW
        self.cum = _ZERO
        self.avg = _ZERO

    @property
    def leaves(self) -> Decimal:
        # an order by amount has no share quantity until it is priced: nothing "open" in shares
        if self.status.is_terminal or self.qty is None:
            return _ZERO
        return self.qty - self.cum


def _has_at_most(value: Decimal, quantum: Decimal) -> bool:
    return not value % quantum


class FundCompany:
    """A :class:`venues.interface.Venue` that values orders at the daily NAV."""

    def __init__(
        self, config: FundCompanyConfig | None = None, clock: Clock | None = None, navs: NavSource | None = None
    ) -> None:
        self._cfg = config or FundCompanyConfig()
        self._clock: Clock = clock or SystemClock()
        self._name = self._cfg.name
        self._zone = ZoneInfo(self._cfg.timezone)
        self._funds: dict[str, FundSpec] = {f.symbol: f for f in self._cfg.funds}
        self._navs = navs or self._default_navs()
        missing = set(self._funds) - self._navs.funds()
        if missing:
            where = self._cfg.nav_csv if self._cfg.nav_csv is not None else "the NAV source"
            raise VenueConfigError(f"{where}: no NAVs for fund(s) {sorted(missing)}; expected a row per fund")
        self._reg: OrderRegistry[_FundOrder] = OrderRegistry(self._name, self._clock, "fund")
        # valuation date -> orders to fill then, by order id (in arrival order)
        self._pending: dict[date, dict[str, _FundOrder]] = {}
        self._next_valuation = self._valuation_after(self._reg.last)

    def _default_navs(self) -> NavSource:
        cfg = self._cfg
        if cfg.nav_csv is not None:
            try:
                return CsvNavs(cfg.nav_csv)
            except LookupError as exc:
                raise VenueConfigError(str(exc)) from None
        return RandomWalkNavs(
            {f.symbol: f.nav for f in cfg.funds},
            seed=cfg.nav_seed,
            start_date=cfg.nav_start,
            volatility_bp={f.symbol: cfg.nav_volatility_bp if f.volatility_bp is None else f.volatility_bp
                           for f in cfg.funds},
        )

    # -- the Venue interface ---------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    def submit(self, cmd: SubmitOrder) -> list[ev.VenueEvent]:
        reg = self._reg
        now = reg.now()
        out = self._advance(now)
        problem = self._check_new(cmd, now)
        if problem is not None:
            code, reason = problem
            out.append(ev.OrderRejected(
                venue=self._name, owner=cmd.owner, cl_ord_id=cmd.cl_ord_id, orig_cl_ord_id=None,
                order_id=ev.NO_ORDER_ID, exec_id=reg.next_exec_id(), symbol=cmd.symbol, side=cmd.side,
                order_type=cmd.order_type, time_in_force=cmd.time_in_force, order_qty=cmd.quantity,
                cash_order_qty=cmd.cash_quantity, price=cmd.price, ord_status=OrdStatus.REJECTED,
                cum_qty=_ZERO, leaves_qty=_ZERO, avg_px=_ZERO, ts=now, reason=reason, reason_code=code,
            ))
            return out
        day = self.valuation_date(now)
        order = _FundOrder(
            cmd.owner, cmd.cl_ord_id, reg.next_order_id(), cmd.symbol, cmd.side,
            cmd.time_in_force, cmd.quantity, cmd.cash_quantity, day,
            local_instant(day, self._cfg.cutoff, self._zone),
            local_instant(day, self._cfg.valuation_at, self._zone),
        )
        reg.add(order)
        self._pending.setdefault(day, {})[order.order_id] = order
        out.append(self._report(ev.OrderAccepted, order, now))
        return out

    def cancel(self, cmd: CancelOrder) -> list[ev.VenueEvent]:
        now = self._reg.now()
        out = self._advance(now)
        order = self._reg.lookup(cmd.owner, cmd.orig_cl_ord_id, cmd.order_id)
        refused = self._refuse(cmd, order, now, CxlRejResponseTo.CANCEL)
        if refused is not None:
            out.append(refused)
            return out
        assert order is not None
        order.status = OrdStatus.CANCELED
        del self._pending[order.valuation_date][order.order_id]
        orig = self._reg.rename(order, cmd.owner, cmd.cl_ord_id)
        out.append(self._report(ev.OrderCanceled, order, now, orig))
        return out

    def replace(self, cmd: ReplaceOrder) -> list[ev.VenueEvent]:
        now = self._reg.now()
        out = self._advance(now)
        order = self._reg.lookup(cmd.owner, cmd.orig_cl_ord_id, cmd.order_id)
        refused = self._refuse(cmd, order, now, CxlRejResponseTo.REPLACE)
        if refused is None:
            assert order is not None
            problem = self._check_replace(cmd, order, now)
            if problem:
                refused = self._reg.replace_refused(cmd, order, now, problem)
        if refused is not None:
            out.append(refused)
            return out
        assert order is not None
        order.qty, order.cash = cmd.quantity, cmd.cash_quantity
        orig = self._reg.rename(order, cmd.owner, cmd.cl_ord_id)
        out.append(self._report(ev.OrderReplaced, order, now, orig))
        return out

    def status(self, cmd: QueryStatus) -> list[ev.VenueEvent]:
        now = self._reg.now()
        out = self._advance(now)
        order = self._reg.lookup(cmd.owner, cmd.cl_ord_id, cmd.order_id)
        if order is None:
            out.append(self._reg.unknown_order(cmd, now, OrdType.MARKET))
        else:
            out.append(self._report(ev.OrderStatusReport, order, now))
        return out

    def tick(self, now: datetime | None = None) -> list[ev.VenueEvent]:
        if now is not None and (now.tzinfo is None or now.utcoffset() is None):
            raise ValueError(f"tick needs a timezone-aware datetime, got {now!r}")
        return self._advance(self._reg.now() if now is None else self._reg.now_at(now))

    def next_timer(self) -> datetime | None:
        """The next valuation point with orders waiting for it."""
        for day in sorted(self._pending):
            if self._pending[day]:
                return local_instant(day, self._cfg.valuation_at, self._zone)
        return None

    # -- rules, public for callers that want to show them -----------------------------

    def valuation_date(self, at: datetime) -> date:
        """The date whose NAV an order received at ``at`` gets (forward pricing)."""
        local = at.astimezone(self._zone)
        day = local.date()
        if is_business_day(day) and local.time() < self._cfg.cutoff:
            return day
        return next_business_day(day)

    def latest_nav(self, fund: str, at: datetime | None = None) -> tuple[date, Decimal]:
        """The last NAV struck at or before ``at`` (default: now), with its date."""
        when = (self._reg.last if at is None else at).astimezone(self._zone)
        day = when.date()
        if not (is_business_day(day) and when.time() >= self._cfg.valuation_at):
            day = previous_business_day(day)
        return day, self._navs.nav(fund, day)

    @property
    def funds(self) -> tuple[str, ...]:
        return tuple(self._funds)

    def open_orders(self, owner: str | None = None) -> list[ev.OrderStatusReport]:
        now = self._reg.last
        reports: list[ev.OrderStatusReport] = []
        for o in self._reg.open_orders(owner):
            report = self._report(ev.OrderStatusReport, o, now)
            assert isinstance(report, ev.OrderStatusReport)
            reports.append(report)
        return reports

    # -- time ----------------------------------------------------------------------------

    def _advance(self, now: datetime) -> list[ev.VenueEvent]:
        """Fill every order whose valuation point has come, oldest date first."""
        out: list[ev.VenueEvent] = []
        if now < self._next_valuation:
            return out
        for day in sorted(self._pending):
            value_at = local_instant(day, self._cfg.valuation_at, self._zone)
            if value_at > now:
                break
            for order in self._pending.pop(day).values():
                self._value(order, self._navs.nav(order.symbol, day), value_at, out)
        self._reg.forget_old_orders()
        self._next_valuation = self._valuation_after(now)
        return out

    def _valuation_after(self, at: datetime) -> datetime:
        """The first valuation point strictly after ``at``."""
        return next_local_instant(at, self._cfg.valuation_at, self._zone)

    def _value(self, order: _FundOrder, nav: Decimal, at: datetime, out: list[ev.VenueEvent]) -> None:
        if order.qty is not None:
            shares = order.qty
        else:
            assert order.cash is not None
            shares = (order.cash / nav).quantize(SHARE_QUANTUM, ROUND_HALF_UP)
        if not shares:
            order.status = OrdStatus.EXPIRED
            out.append(self._report(ev.OrderExpired, order, at, None,
                                    reason=f"{fmt(order.cash or _ZERO)} is less than 0.001 share at NAV {fmt(nav)}"))
            return
        order.cum = shares
        order.avg = nav
        order.status = OrdStatus.FILLED
        exec_id = self._reg.next_exec_id()
        out.append(ev.OrderFilled(
            venue=self._name, owner=order.owner, cl_ord_id=order.cl_ord_id, orig_cl_ord_id=None,
            order_id=order.order_id, exec_id=exec_id, symbol=order.symbol, side=order.side,
            order_type=OrdType.MARKET, time_in_force=order.tif, order_qty=order.qty,
            cash_order_qty=order.cash, price=None, ord_status=OrdStatus.FILLED, cum_qty=shares,
            leaves_qty=_ZERO, avg_px=nav, ts=at, last_qty=shares, last_px=nav,
            trade_id=f"{self._name}-T{self._reg.exec_seq}", aggressor=True,
        ))

    # -- checks and reports ------------------------------------------------------------

    def _quantity_problem(self, qty: Decimal | None, cash: Decimal | None) -> str:
        if qty is not None and cash is not None:
            return "send OrderQty (shares) or CashOrderQty (amount), not both"
        if qty is None and cash is None:
            return "OrderQty (shares) or CashOrderQty (amount) is required"
        if qty is not None:
            if not 0 < qty <= MAX_QUANTITY:
                return f"OrderQty must be positive and at most {MAX_QUANTITY:f}, got {fmt(qty)}"
            if not _has_at_most(qty, SHARE_QUANTUM):
                return f"OrderQty has at most 3 decimals, got {fmt(qty)}"
        if cash is not None:
            if not 0 < cash <= MAX_QUANTITY:
                return f"CashOrderQty must be positive and at most {MAX_QUANTITY:f}, got {fmt(cash)}"
            if not _has_at_most(cash, CASH_QUANTUM):
                return f"CashOrderQty has at most 2 decimals, got {fmt(cash)}"
        return ""

    def _minimum_problem(self, fund: FundSpec, side: Side, qty: Decimal | None, cash: Decimal | None,
                         now: datetime) -> str:
        if side is not Side.BUY or not fund.min_investment:
            return ""
        if cash is not None:
            amount = cash
        else:
            assert qty is not None
            # a buy by shares is judged at the latest NAV: the one the client can know
            amount = qty * self.latest_nav(fund.symbol, now)[1]
        if amount < fund.min_investment:
            return (f"below the minimum investment of {fmt(fund.min_investment)} for {fund.symbol} "
                    f"(order worth {fmt(amount)})")
        return ""

    def _check_new(self, cmd: SubmitOrder, now: datetime) -> tuple[OrdRejReason, str] | None:
        if self._reg.is_duplicate(cmd.owner, cmd.cl_ord_id):
            return OrdRejReason.DUPLICATE_ORDER, f"duplicate ClOrdID {cmd.cl_ord_id}"
        fund = self._funds.get(cmd.symbol)
        if fund is None:
            return OrdRejReason.UNKNOWN_SYMBOL, f"unknown fund {cmd.symbol}"
        if cmd.order_type is not OrdType.MARKET:
            return (OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC,
                    "fund orders are priced at the next NAV: send a market order (OrdType 1) without a price")
        if cmd.time_in_force not in (TimeInForce.DAY, TimeInForce.GTC):
            return (OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC,
                    f"time in force {cmd.time_in_force.name} is not possible: fund orders wait for the NAV")
        problem = self._quantity_problem(cmd.quantity, cmd.cash_quantity)
        if problem:
            return OrdRejReason.INCORRECT_QUANTITY, problem
        problem = self._minimum_problem(fund, cmd.side, cmd.quantity, cmd.cash_quantity, now)
        if problem:
            return OrdRejReason.OTHER, problem
        return None

    def _check_replace(self, cmd: ReplaceOrder, order: _FundOrder, now: datetime) -> str:
        if cmd.order_type is not None and cmd.order_type is not OrdType.MARKET:
            return "fund orders are market orders: the order type cannot change"
        if cmd.time_in_force is not None and cmd.time_in_force is not order.tif:
            return "the time in force cannot be changed"
        problem = self._quantity_problem(cmd.quantity, cmd.cash_quantity)
        if problem:
            return problem
        return self._minimum_problem(self._funds[order.symbol], order.side, cmd.quantity, cmd.cash_quantity, now)

    def _refuse(self, cmd: CancelOrder | ReplaceOrder, order: _FundOrder | None, now: datetime,
                to: CxlRejResponseTo) -> ev.CancelRejected | None:
        """The registry's refusals, then the fund's own: too late once the cut-off of the
        order's valuation date has passed."""
        refused = self._reg.refuse(cmd, order, now, to)
        if refused is None and order is not None and now >= order.cutoff_at:
            cutoff = order.cutoff_at.astimezone(self._zone)
            return self._reg.cancel_rejected(
                cmd, order, now, to, CxlRejReason.TOO_LATE_TO_CANCEL,
                f"past the {cutoff:%H:%M} {self._cfg.timezone} cut-off for the {order.valuation_date} NAV",
            )
        return refused

    def _report(self, cls: type[ev.ExecutionEvent], order: _FundOrder, now: datetime, orig: str | None = None,
                **extra: str) -> ev.VenueEvent:
        event = cls(
            venue=self._name, owner=order.owner, cl_ord_id=order.cl_ord_id, orig_cl_ord_id=orig,
            order_id=order.order_id, exec_id=self._reg.next_exec_id(), symbol=order.symbol, side=order.side,
            order_type=OrdType.MARKET, time_in_force=order.tif, order_qty=order.qty,
            cash_order_qty=order.cash, price=None, ord_status=order.status, cum_qty=order.cum,
            leaves_qty=order.leaves, avg_px=order.avg, ts=now, **extra,
        )
        return event  # type: ignore[return-value]
