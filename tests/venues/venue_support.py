"""Shared helpers for the venue tests: a small exchange with frozen time, and compact
views of events so that tables of expectations stay readable."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from fixgw.orders import OrdType, Side, TimeInForce
from venues.clock import FrozenClock
from venues.commands import CancelOrder, QueryStatus, ReplaceOrder, SubmitOrder
from venues.events import CancelRejected, ExecutionEvent, OrderFilled, VenueEvent
from venues.exchange import Exchange
from venues.venue_config import ExchangeConfig, LiquiditySpec, SymbolSpec

D = Decimal
# Tuesday 2 January 2024, 10:00 in New York: inside the session
T0 = datetime(2024, 1, 2, 15, 0, tzinfo=UTC)

SYMBOLS = (
    SymbolSpec("AAA", D("0.01"), D("100.00")),
    SymbolSpec("BBB", D("0.05"), D("50.00")),
)


def make_exchange(*, liquidity: LiquiditySpec | None = None, at: datetime = T0) -> tuple[Exchange, FrozenClock]:
    clock = FrozenClock(at)
    cfg = ExchangeConfig(name="X", symbols=SYMBOLS, liquidity=liquidity or LiquiditySpec(enabled=False))
    return Exchange(cfg, clock), clock


def order(owner: str, cl: str, side: str, qty: str | None, price: str | None = None, *,
          tif: TimeInForce = TimeInForce.DAY, symbol: str = "AAA") -> SubmitOrder:
    """A limit order when ``price`` is given, else a market order."""
    return SubmitOrder(
        owner, cl, symbol, Side.BUY if side == "B" else Side.SELL,
        None if qty is None else D(qty),
        OrdType.LIMIT if price is not None else OrdType.MARKET,
        None if price is None else D(price), tif,
    )


def cancel(owner: str, cl: str, orig: str, side: str, symbol: str = "AAA") -> CancelOrder:
    return CancelOrder(owner, cl, orig, symbol, Side.BUY if side == "B" else Side.SELL)


def replace(owner: str, cl: str, orig: str, side: str, qty: str, price: str | None = None,
            symbol: str = "AAA") -> ReplaceOrder:
    return ReplaceOrder(owner, cl, orig, symbol, Side.BUY if side == "B" else Side.SELL, D(qty),
                        None if price is None else D(price))


def status(owner: str, cl: str) -> QueryStatus:
    return QueryStatus(owner, cl, "AAA")


def brief(e: VenueEvent) -> tuple[object, ...]:
    """(kind, owner, ClOrdID, OrdStatus, LastQty, LastPx, CumQty, LeavesQty) as strings."""
    kind = type(e).__name__.removeprefix("Order")
    if isinstance(e, CancelRejected):
        return (kind, e.owner, e.cl_ord_id, e.ord_status.name, e.reason_code.name)
    assert isinstance(e, ExecutionEvent)
    last = (f"{e.last_qty}@{e.last_px}",) if isinstance(e, OrderFilled) else ()
    return (kind, e.owner, e.cl_ord_id, e.ord_status.name, *last, str(e.cum_qty), str(e.leaves_qty))
