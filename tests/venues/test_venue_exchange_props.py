"""Property tests of the exchange: whatever the sequence of orders, cancels, replaces and
passing time, the book is never crossed, quantity is conserved, and every live order has
CumQty + LeavesQty = OrderQty."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixgw.orders import OrdType, Side, TimeInForce
from tests.venues.venue_support import make_exchange
from venues.commands import CancelOrder, ReplaceOrder, SubmitOrder
from venues.events import CancelRejected, ExecutionEvent, OrderFilled, OrderRejected, VenueEvent
from venues.exchange import Exchange
from venues.venue_config import LiquiditySpec

OWNERS = ["c1", "c2", "c3"]
TICK = Decimal("0.01")

submit = st.tuples(
    st.just("submit"),
    st.sampled_from(OWNERS),
    st.sampled_from([Side.BUY, Side.SELL]),
    st.sampled_from([OrdType.LIMIT, OrdType.LIMIT, OrdType.LIMIT, OrdType.MARKET]),
    st.integers(-3, 3),  # price in ticks around 100.00
    st.integers(1, 30).map(lambda n: Decimal(n * 10)),
    st.sampled_from(list(TimeInForce)),
)
cancel = st.tuples(st.just("cancel"), st.integers(0, 200))
replace = st.tuples(st.just("replace"), st.integers(0, 200), st.integers(-40, 300), st.integers(-3, 3))
wait = st.tuples(st.just("wait"), st.sampled_from([1, 60, 3600, 6 * 3600]))
operations = st.lists(st.one_of(submit, submit, cancel, replace, wait), min_size=1, max_size=60)


def play(x: Exchange, ops: list[tuple[Any, ...]], advance: Callable[[timedelta], object],
         check: Callable[[Exchange], None]) -> list[VenueEvent]:
    """Send the operations; ``check`` the venue after each one. Cancels and replaces pick
    an earlier order by index (its latest ClOrdID), whatever state it is in."""
    orders: list[tuple[str, str, Side]] = []  # (owner, latest ClOrdID, side)
    out: list[VenueEvent] = []
    for n, op in enumerate(ops):
        kind = op[0]
        if kind == "submit":
            _, owner, side, otype, off, qty, tif = op
            price = Decimal(10000 + off) * TICK if otype is OrdType.LIMIT else None
            events = x.submit(SubmitOrder(owner, f"o{n}", "AAA", side, qty, otype, price, tif))
            if not isinstance(events[-1], OrderRejected):
                orders.append((owner, f"o{n}", side))
        elif kind in ("cancel", "replace"):
            if not orders:
                continue
            i = op[1] % len(orders)
            owner, cl, side = orders[i]
            new_cl = f"{kind[0]}{n}"
            if kind == "cancel":
                events = x.cancel(CancelOrder(owner, new_cl, cl, "AAA", side))
            else:
                price = Decimal(10000 + op[3]) * TICK
                events = x.replace(ReplaceOrder(owner, new_cl, cl, "AAA", side, Decimal(op[2]), price))
            if not any(isinstance(e, CancelRejected) for e in events):
                orders[i] = (owner, new_cl, side)
        else:
            advance(timedelta(seconds=op[1]))
            events = x.tick()
        out.extend(events)
        check(x)
    return out


def book_agrees_with_orders(x: Exchange) -> None:
    assert not x.book("AAA").is_crossed()
    live = x.open_orders()
    for r in live:
        assert r.order_qty is not None and r.cum_qty + r.leaves_qty == r.order_qty, r
        assert r.leaves_qty > 0
    # the book holds exactly the open quantity of the live orders: nothing lost or made up
    for side in (Side.BUY, Side.SELL):
        assert x.book("AAA").resting_quantity(side is Side.BUY) == sum(
            (r.leaves_qty for r in live if r.side is side), Decimal(0))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_invariants_hold_after_any_sequence(ops: list[tuple[Any, ...]]) -> None:
    x, clock = make_exchange()
    events = play(x, ops, clock.advance, book_agrees_with_orders)
    # conservation: each trade has one buyer and one seller, same quantity and price
    trades: dict[str, list[OrderFilled]] = defaultdict(list)
    for e in events:
        if isinstance(e, OrderFilled):
            trades[e.trade_id].append(e)
    for legs in trades.values():
        assert len(legs) == 2
        a, b = legs
        assert {a.side, b.side} == {Side.BUY, Side.SELL}
        assert (a.last_qty, a.last_px) == (b.last_qty, b.last_px)
        assert a.aggressor != b.aggressor
    # per order: CumQty is the sum of its fills, only grows, never passes OrderQty
    cum: dict[str, Decimal] = defaultdict(Decimal)
    for e in events:
        if isinstance(e, ExecutionEvent) and e.order_id != "NONE":
            if isinstance(e, OrderFilled):
                cum[e.order_id] += e.last_qty
                assert e.last_px % TICK == 0
            assert e.cum_qty == cum[e.order_id]
            assert e.order_qty is not None and e.cum_qty <= e.order_qty
            assert e.leaves_qty >= 0
    for r in x.open_orders():
        assert r.cum_qty == cum[r.order_id]


def live_orders_consistent(x: Exchange) -> None:
    assert not x.book("AAA").is_crossed()
    for r in x.open_orders():
        assert r.order_qty is not None and r.cum_qty + r.leaves_qty == r.order_qty, r


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_invariants_hold_with_the_market_maker(ops: list[tuple[Any, ...]]) -> None:
    x, clock = make_exchange(liquidity=LiquiditySpec(seed=3, levels=3, quote_size=Decimal(50),
                                                     volatility_ticks=2.0, refresh_seconds=1.0))
    events = play(x, ops, clock.advance, live_orders_consistent)
    # the market maker trades, but its own fills are never reported
    assert all(e.owner in OWNERS for e in events)


any_decimal = st.decimals(allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(qty=any_decimal, price=st.one_of(st.none(), any_decimal), rqty=any_decimal, rprice=any_decimal)
def test_any_numbers_give_events_never_a_crash(qty: Decimal, price: Decimal | None, rqty: Decimal,
                                                rprice: Decimal) -> None:
    x, _ = make_exchange()
    x.submit(SubmitOrder("m", "a", "AAA", Side.SELL, Decimal(50), OrdType.LIMIT, Decimal("100.00")))
    otype = OrdType.MARKET if price is None else OrdType.LIMIT
    events = x.submit(SubmitOrder("c", "b", "AAA", Side.BUY, qty, otype, price, TimeInForce.GTC))
    assert events
    events = x.replace(ReplaceOrder("c", "b2", "b", "AAA", Side.BUY, rqty, rprice))
    assert events
    book_agrees_with_orders(x)
