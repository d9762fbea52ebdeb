"""Rules of the mutual-fund company, table-driven, with frozen time and NAVs from a file."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixgw.orders import CxlRejReason, OrdRejReason, OrdStatus, OrdType, Side, TimeInForce
from venues.clock import FrozenClock, SimulatedDayClock
from venues.commands import CancelOrder, QueryStatus, ReplaceOrder, SubmitOrder
from venues.events import (
    CancelRejected,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderStatusReport,
)
from venues.fund import FundCompany
from venues.interface import Venue
from venues.navs import CsvNavs
from venues.venue_config import FundCompanyConfig, FundSpec

D = Decimal
NY = ZoneInfo("America/New_York")

NAVS = """date,fund,nav
2024-03-01,GROW,100.00
2024-03-04,GROW,101.00
2024-03-05,GROW,102.00
2024-03-06,GROW,103.00
2024-03-07,GROW,104.00
2024-03-08,GROW,105.00
2024-03-11,GROW,106.00
2024-03-01,CASH,20.00
"""
FUNDS = (FundSpec("GROW", "Growth", D("100.00"), D(1000)), FundSpec("CASH", "Cash", D("20.00"), D(0)))


def ny(day: int, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    """March 2024 in New York: the 4th is a Monday, the 9th/10th a weekend."""
    return datetime(2024, 3, day, hh, mm, ss, tzinfo=NY)


@pytest.fixture
def navs(tmp_path: Path) -> CsvNavs:
    p = tmp_path / "navs.csv"
    p.write_text(NAVS)
    return CsvNavs(p)


def company(navs: CsvNavs, at: datetime, **cfg: object) -> tuple[FundCompany, FrozenClock]:
    clock = FrozenClock(at)
    return FundCompany(FundCompanyConfig(name="F", funds=FUNDS, **cfg), clock, navs), clock  # type: ignore[arg-type]


def buy(cl: str, *, shares: str | None = None, amount: str | None = None, fund: str = "GROW",
        side: Side = Side.BUY, owner: str = "c") -> SubmitOrder:
    return SubmitOrder(owner, cl, fund, side, None if shares is None else D(shares), OrdType.MARKET,
                       cash_quantity=None if amount is None else D(amount))


# (received at, valuation date, the fill's NAV)
CUTOFF = [
    ("Monday before the cut-off", ny(4, 15, 59, 59), "2024-03-04", "101.00"),
    ("Monday at the cut-off", ny(4, 16, 0), "2024-03-05", "102.00"),
    ("Monday evening", ny(4, 20, 0), "2024-03-05", "102.00"),
    ("Tuesday early morning", ny(5, 0, 30), "2024-03-05", "102.00"),
    ("Friday after the cut-off", ny(8, 16, 30), "2024-03-11", "106.00"),
    ("Saturday", ny(9, 11, 0), "2024-03-11", "106.00"),
    ("Sunday", ny(10, 23, 0), "2024-03-11", "106.00"),
]


@pytest.mark.parametrize(("case", "received", "valued", "nav"), CUTOFF, ids=[c[0] for c in CUTOFF])
def test_cutoff_and_forward_pricing(navs: CsvNavs, case: str, received: datetime, valued: str, nav: str) -> None:
    f, clock = company(navs, received)
    (ack,) = f.submit(buy("1", shares="10"))
    assert isinstance(ack, OrderAccepted) and ack.ord_status is OrdStatus.NEW and ack.leaves_qty == 10
    value_at = f.next_timer()
    assert value_at is not None
    assert value_at.astimezone(NY).date().isoformat() == valued
    assert value_at.astimezone(NY).time() == time(16, 0)
    clock.set(value_at - timedelta(microseconds=1))
    assert f.tick() == []
    clock.set(value_at + timedelta(minutes=5))
    (fill,) = f.tick()
    assert isinstance(fill, OrderFilled)
    assert (fill.last_qty, fill.last_px, fill.cum_qty, fill.leaves_qty, fill.avg_px) == (
        D(10), D(nav), D(10), D(0), D(nav))
    assert fill.ord_status is OrdStatus.FILLED and fill.ts == value_at
    assert f.next_timer() is None


# (order, NAV, shares filled): amounts give shares rounded half-up to 3 decimals
AMOUNTS = [
    ("buy by amount", buy("1", amount="10000"), "101.00", "99.010"),
    ("buy by amount, rounding", buy("1", amount="1234.56"), "101.00", "12.223"),
    ("sell by amount", buy("1", amount="500", side=Side.SELL), "101.00", "4.950"),
    ("sell by shares", buy("1", shares="3.5", side=Side.SELL), "101.00", "3.5"),
    ("a half rounds up", buy("1", amount="0.01", fund="CASH", side=Side.SELL), "20.00", "0.001"),
]


@pytest.mark.parametrize(("case", "cmd", "nav", "shares"), AMOUNTS, ids=[a[0] for a in AMOUNTS])
def test_amount_orders(navs: CsvNavs, case: str, cmd: SubmitOrder, nav: str, shares: str) -> None:
    f, clock = company(navs, ny(4, 10))
    (ack,) = f.submit(cmd)
    assert isinstance(ack, OrderAccepted)
    assert (ack.order_qty, ack.cash_order_qty) == (cmd.quantity, cmd.cash_quantity)
    clock.set(ny(4, 16))
    (fill,) = f.tick()
    assert isinstance(fill, OrderFilled)
    assert (str(fill.last_qty), str(fill.last_px), fill.cash_order_qty) == (shares, nav, cmd.cash_quantity)


def test_an_amount_worth_less_than_a_thousandth_of_a_share_expires(navs: CsvNavs) -> None:
    f, clock = company(navs, ny(4, 10))
    f.submit(buy("1", amount="0.01", fund="GROW", side=Side.SELL))
    clock.set(ny(4, 16))
    (e,) = f.tick()
    assert isinstance(e, OrderExpired) and "0.001 share" in e.reason


REJECTS = [
    ("unknown fund", buy("1", shares="10", fund="NOPE"), OrdRejReason.UNKNOWN_SYMBOL, "unknown fund"),
    ("below the minimum, by amount", buy("1", amount="999.99"), OrdRejReason.OTHER, "minimum investment of 1000"),
    # judged at the latest NAV (Friday's 100.00 on Monday morning): 9 x 100 = 900
    ("below the minimum, by shares", buy("1", shares="9"), OrdRejReason.OTHER, "minimum investment"),
    ("both shares and amount", SubmitOrder("c", "1", "GROW", Side.BUY, D(10), OrdType.MARKET, cash_quantity=D(5000)),
     OrdRejReason.INCORRECT_QUANTITY, "not both"),
    ("neither shares nor amount", buy("1"), OrdRejReason.INCORRECT_QUANTITY, "required"),
    ("negative shares", buy("1", shares="-10"), OrdRejReason.INCORRECT_QUANTITY, "positive"),
    ("zero amount", buy("1", amount="0"), OrdRejReason.INCORRECT_QUANTITY, "positive"),
    ("shares with 4 decimals", buy("1", shares="20.0001"), OrdRejReason.INCORRECT_QUANTITY, "3 decimals"),
    ("amount with 3 decimals", buy("1", amount="2000.001"), OrdRejReason.INCORRECT_QUANTITY, "2 decimals"),
    ("huge amount", buy("1", amount="1E+20"), OrdRejReason.INCORRECT_QUANTITY, "at most"),
    ("limit order", SubmitOrder("c", "1", "GROW", Side.BUY, D(50), OrdType.LIMIT, D(100)),
     OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC, "market order"),
    ("IOC", SubmitOrder("c", "1", "GROW", Side.BUY, D(50), OrdType.MARKET, None, TimeInForce.IOC),
     OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC, "wait for the NAV"),
]


@pytest.mark.parametrize(("case", "cmd", "code", "text"), REJECTS, ids=[r[0] for r in REJECTS])
def test_rejects(navs: CsvNavs, case: str, cmd: SubmitOrder, code: OrdRejReason, text: str) -> None:
    f, _ = company(navs, ny(4, 10))
    (e,) = f.submit(cmd)
    assert isinstance(e, OrderRejected)
    assert e.reason_code is code and text in e.reason and e.order_id == "NONE"
    assert f.next_timer() is None


def test_sells_have_no_minimum_and_duplicates_are_rejected(navs: CsvNavs) -> None:
    f, _ = company(navs, ny(4, 10))
    assert isinstance(f.submit(buy("1", shares="1", side=Side.SELL))[0], OrderAccepted)
    (dup,) = f.submit(buy("1", shares="1", side=Side.SELL))
    assert isinstance(dup, OrderRejected) and dup.reason_code is OrdRejReason.DUPLICATE_ORDER


# (request time, request, expected event type, reject reason code or None)
CHANGES = [
    ("cancel before the cut-off", ny(4, 15, 59), "cancel", OrderCanceled, None),
    ("replace before the cut-off", ny(4, 15, 59), "replace", OrderReplaced, None),
    ("cancel after the cut-off, before valuation", ny(4, 16, 30), "cancel", CancelRejected,
     CxlRejReason.TOO_LATE_TO_CANCEL),
    ("replace after the cut-off, before valuation", ny(4, 16, 30), "replace", CancelRejected,
     CxlRejReason.TOO_LATE_TO_CANCEL),
    ("cancel after valuation", ny(4, 18, 30), "cancel", CancelRejected, CxlRejReason.TOO_LATE_TO_CANCEL),
]


@pytest.mark.parametrize(("case", "at", "what", "kind", "code"), CHANGES, ids=[c[0] for c in CHANGES])
def test_cancel_replace_only_before_the_cutoff(navs: CsvNavs, case: str, at: datetime, what: str,
                                                kind: type, code: CxlRejReason | None) -> None:
    # NAVs are struck at 18:00, two hours after the 16:00 cut-off
    f, clock = company(navs, ny(4, 10), valuation_time=time(18, 0))
    f.submit(buy("1", amount="5000"))
    clock.set(at)
    if what == "cancel":
        events = f.cancel(CancelOrder("c", "2", "1", "GROW", Side.BUY))
    else:
        events = f.replace(ReplaceOrder("c", "2", "1", "GROW", Side.BUY, cash_quantity=D("8000")))
    e = events[-1]
    assert isinstance(e, kind)
    if isinstance(e, CancelRejected):
        assert e.reason_code is code and e.response_to.name == what.upper()
        assert ("cut-off" in e.reason) == (at < ny(4, 18))
    else:
        assert e.cl_ord_id == "2" and e.orig_cl_ord_id == "1"
    clock.set(ny(4, 19))
    fills = [x for x in f.tick() + events if isinstance(x, OrderFilled)]
    if what == "cancel" and code is None:
        assert fills == []
    else:
        assert len(fills) == 1
        amount = D(8000) if what == "replace" and code is None else D(5000)
        assert fills[0].cash_order_qty == amount and fills[0].last_px == D("101.00")
        assert fills[0].cl_ord_id == ("2" if what == "replace" and code is None else "1")


def test_replace_rules(navs: CsvNavs) -> None:
    f, _ = company(navs, ny(4, 10))
    f.submit(buy("1", shares="50"))
    (e,) = f.replace(ReplaceOrder("c", "2", "1", "GROW", Side.BUY, D(5)))  # 500 < minimum
    assert isinstance(e, CancelRejected) and "minimum" in e.reason and e.ord_status is OrdStatus.NEW
    (e,) = f.replace(ReplaceOrder("c", "2", "1", "GROW", Side.SELL, D(50)))
    assert isinstance(e, CancelRejected) and "do not match" in e.reason
    (e,) = f.replace(ReplaceOrder("c", "2", "nope", "GROW", Side.BUY, D(50)))
    assert isinstance(e, CancelRejected) and e.reason_code is CxlRejReason.UNKNOWN_ORDER
    (e,) = f.replace(ReplaceOrder("c", "2", "1", "GROW", Side.BUY, D(60)))
    assert isinstance(e, OrderReplaced) and e.order_qty == 60 and e.leaves_qty == 60
    (e,) = f.status(QueryStatus("c", "1"))
    assert isinstance(e, OrderStatusReport) and e.cl_ord_id == "2" and e.order_qty == 60
    (e,) = f.status(QueryStatus("c", "nope", "GROW", Side.BUY))
    assert isinstance(e, OrderStatusReport) and e.ord_status is OrdStatus.REJECTED


def test_weekend_is_skipped_and_orders_of_a_day_fill_together(navs: CsvNavs) -> None:
    f, clock = company(navs, ny(8, 17))  # Friday after the cut-off
    f.submit(buy("1", shares="10"))
    clock.set(ny(9, 12))
    f.submit(buy("2", amount="2000"))
    clock.set(ny(10, 23, 59))
    assert f.tick() == []  # nothing on Saturday or Sunday
    clock.set(ny(11, 16))
    fills = f.tick()
    assert [(e.cl_ord_id, str(e.last_qty), str(e.last_px)) for e in fills if isinstance(e, OrderFilled)] == [
        ("1", "10", "106.00"), ("2", "18.868", "106.00")]
    assert f.latest_nav("GROW") == (ny(11, 0).date(), D("106.00"))


def test_a_late_command_first_sees_the_valuation(navs: CsvNavs) -> None:
    f, clock = company(navs, ny(4, 10))
    f.submit(buy("1", shares="10"))
    clock.set(ny(5, 9))
    events = f.submit(buy("2", shares="10"))
    assert [type(e).__name__ for e in events] == ["OrderFilled", "OrderAccepted"]


def test_random_walk_navs_by_default_and_the_protocol() -> None:
    clock = FrozenClock(ny(4, 10))
    f = FundCompany(clock=clock)
    assert isinstance(f, Venue)
    assert "FSIDX" in f.funds
    f.submit(buy("1", amount="5000", fund="FSIDX"))
    clock.set(ny(4, 16))
    (fill,) = f.tick()
    assert isinstance(fill, OrderFilled) and fill.last_px > 0 and fill.last_qty > 0
    # the same seed gives the same NAV
    g = FundCompany(clock=FrozenClock(ny(4, 10)))
    g.submit(buy("1", amount="5000", fund="FSIDX"))
    (again,) = g.tick(ny(4, 16))
    assert isinstance(again, OrderFilled) and again.last_px == fill.last_px


def test_simulated_day_values_every_day_seconds() -> None:
    """day_seconds=30: a business day passes in 30 (here: injected) real seconds."""
    real = [1000.0]
    clock = SimulatedDayClock(30, start=ny(4, 9), real=lambda: real[0])
    f = FundCompany(clock=clock)
    f.submit(buy("1", shares="10", fund="FSIDX"))
    value_at = f.next_timer()
    assert value_at is not None
    wait = clock.real_seconds_until(value_at)
    assert wait == pytest.approx(30 * 7 / 24)  # 09:00 -> 16:00 is 7/24 of a day
    real[0] += wait - 0.01
    assert f.tick() == []
    real[0] += 0.02
    assert [type(e).__name__ for e in f.tick()] == ["OrderFilled"]
    # the next order, in the evening, is valued the next simulated day, 30 s later
    f.submit(buy("2", shares="10", fund="FSIDX"))
    nxt = f.next_timer()
    assert nxt is not None and clock.real_seconds_until(nxt) == pytest.approx(30, abs=0.05)


def test_done_orders_are_kept_a_day_then_forgotten(navs: CsvNavs) -> None:
    f, clock = company(navs, ny(4, 10))
    f.submit(buy("1", shares="10"))
    f.submit(buy("2", shares="10"))
    clock.set(ny(4, 12))
    f.cancel(CancelOrder("c", "2x", "2", "GROW", Side.BUY))
    clock.set(ny(5, 15))  # Monday's valuation is past; both orders are done
    f.tick()
    f.submit(buy("3", shares="10"))
    for cl, want in (("1", OrdStatus.FILLED), ("2x", OrdStatus.CANCELED)):
        (rep,) = f.status(QueryStatus("c", cl))
        assert isinstance(rep, OrderStatusReport) and rep.ord_status is want
    clock.set(ny(5, 16))  # the next valuation point: they are forgotten
    f.tick()
    for cl in ("1", "2", "2x"):
        (rep,) = f.status(QueryStatus("c", cl))
        assert isinstance(rep, OrderStatusReport) and rep.ord_status is OrdStatus.REJECTED
    (rep,) = f.status(QueryStatus("c", "3"))
    assert isinstance(rep, OrderStatusReport) and rep.ord_status is OrdStatus.FILLED


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(qty=st.one_of(st.none(), st.decimals(allow_nan=False, allow_infinity=False)),
       cash=st.one_of(st.none(), st.decimals(allow_nan=False, allow_infinity=False)),
       rcash=st.decimals(allow_nan=False, allow_infinity=False))
def test_any_numbers_give_events_never_a_crash(navs: CsvNavs, qty: Decimal | None, cash: Decimal | None,
                                                rcash: Decimal) -> None:
    f, clock = company(navs, ny(4, 10))
    assert f.submit(SubmitOrder("c", "1", "GROW", Side.SELL, qty, OrdType.MARKET, cash_quantity=cash))
    assert f.replace(ReplaceOrder("c", "2", "1", "GROW", Side.SELL, cash_quantity=rcash))
    clock.set(ny(4, 17))
    for e in f.tick():
        assert isinstance(e, (OrderFilled, OrderExpired))


@pytest.mark.timeout(10)
def test_simulated_day_on_the_real_clock_values_every_half_second() -> None:
    import time as real_time
    clock = SimulatedDayClock(0.5, start=ny(4, 15, 59))  # a business day every 0.5 real seconds
    f = FundCompany(clock=clock)
    values: list[datetime] = []
    start = real_time.monotonic()
    for n in range(2):
        f.submit(buy(str(n), shares="10", fund="FSIDX"))
        deadline = real_time.monotonic() + 3
        while real_time.monotonic() < deadline:
            fills = [e for e in f.tick() if isinstance(e, OrderFilled)]
            if fills:
                values.append(fills[0].ts)
                break
            real_time.sleep(0.005)
    assert len(values) == 2
    assert values[1] - values[0] == timedelta(days=1)  # Monday's NAV, then Tuesday's
    assert real_time.monotonic() - start < 2.0
