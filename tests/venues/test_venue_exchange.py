"""Matching rules of the exchange, table-driven, with frozen time and no market maker."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from fixgw.orders import CxlRejReason, ExecType, OrdRejReason, OrdStatus, TimeInForce
from tests.venues.venue_support import D, brief, cancel, make_exchange, order, replace, status
from venues.commands import Command, SubmitOrder
from venues.events import (
    CancelRejected,
    OrderAccepted,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderStatusReport,
)
from venues.exchange import Exchange
from venues.interface import Venue, dispatch

DAY, GTC, IOC, FOK = TimeInForce.DAY, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK


def run(x: Exchange, commands: list[Command]) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for c in commands:
        out.extend(brief(e) for e in dispatch(x, c))
    return out


# (case, resting orders entered first, the incoming order, the events it causes)
MATCHING = [
    (
        "limit that does not cross rests",
        [order("m", "a1", "S", "100", "100.05")],
        order("c", "b1", "B", "100", "100.00"),
        [("Accepted", "c", "b1", "NEW", "0", "100")],
    ),
    (
        "full fill at the resting order's price",
        [order("m", "a1", "S", "100", "100.00")],
        order("c", "b1", "B", "100", "100.10"),
        [
            ("Accepted", "c", "b1", "NEW", "0", "100"),
            ("Filled", "c", "b1", "FILLED", "100@100.00", "100", "0"),
            ("Filled", "m", "a1", "FILLED", "100@100.00", "100", "0"),
        ],
    ),
    (
        "partial fills across two levels, the rest rests",
        [order("m", "a1", "S", "100", "100.00"), order("m", "a2", "S", "100", "100.01"),
         order("m", "a3", "S", "100", "100.02")],
        order("c", "b1", "B", "300", "100.01"),
        [
            ("Accepted", "c", "b1", "NEW", "0", "300"),
            ("Filled", "c", "b1", "PARTIALLY_FILLED", "100@100.00", "100", "200"),
            ("Filled", "m", "a1", "FILLED", "100@100.00", "100", "0"),
            ("Filled", "c", "b1", "PARTIALLY_FILLED", "100@100.01", "200", "100"),
            ("Filled", "m", "a2", "FILLED", "100@100.01", "100", "0"),
        ],
    ),
    (
        "price priority: the better price first, whatever the arrival",
        [order("m", "a1", "S", "100", "100.02"), order("n", "a2", "S", "100", "100.01")],
        order("c", "b1", "B", "100", "100.02"),
        [
            ("Accepted", "c", "b1", "NEW", "0", "100"),
            ("Filled", "c", "b1", "FILLED", "100@100.01", "100", "0"),
            ("Filled", "n", "a2", "FILLED", "100@100.01", "100", "0"),
        ],
    ),
    (
        "time priority at one price: the first in is the first filled",
        [order("m", "a1", "S", "100", "100.00"), order("n", "a2", "S", "100", "100.00")],
        order("c", "b1", "B", "150", "100.00"),
        [
            ("Accepted", "c", "b1", "NEW", "0", "150"),
            ("Filled", "c", "b1", "PARTIALLY_FILLED", "100@100.00", "100", "50"),
            ("Filled", "m", "a1", "FILLED", "100@100.00", "100", "0"),
            ("Filled", "c", "b1", "FILLED", "50@100.00", "150", "0"),
            ("Filled", "n", "a2", "PARTIALLY_FILLED", "50@100.00", "50", "50"),
        ],
    ),
    (
        "IOC: fill what is there, expire the rest",
        [order("m", "a1", "S", "100", "100.00")],
        order("c", "b1", "B", "250", "100.00", tif=IOC),
        [
            ("Accepted", "c", "b1", "NEW", "0", "250"),
            ("Filled", "c", "b1", "PARTIALLY_FILLED", "100@100.00", "100", "150"),
            ("Filled", "m", "a1", "FILLED", "100@100.00", "100", "0"),
            ("Expired", "c", "b1", "EXPIRED", "100", "0"),
        ],
    ),
    (
        "IOC with nothing to trade expires whole",
        [order("m", "a1", "S", "100", "100.05")],
        order("c", "b1", "B", "100", "100.00", tif=IOC),
        [("Accepted", "c", "b1", "NEW", "0", "100"), ("Expired", "c", "b1", "EXPIRED", "0", "0")],
    ),
    (
        "FOK short of quantity: no trade at all",
        [order("m", "a1", "S", "100", "100.00"), order("m", "a2", "S", "100", "100.02")],
        order("c", "b1", "B", "200", "100.01", tif=FOK),
        [("Accepted", "c", "b1", "NEW", "0", "200"), ("Expired", "c", "b1", "EXPIRED", "0", "0")],
    ),
    (
        "FOK with enough across levels fills whole",
        [order("m", "a1", "S", "100", "100.00"), order("m", "a2", "S", "100", "100.01")],
        order("c", "b1", "B", "200", "100.01", tif=FOK),
        [
            ("Accepted", "c", "b1", "NEW", "0", "200"),
            ("Filled", "c", "b1", "PARTIALLY_FILLED", "100@100.00", "100", "100"),
            ("Filled", "m", "a1", "FILLED", "100@100.00", "100", "0"),
            ("Filled", "c", "b1", "FILLED", "100@100.01", "200", "0"),
            ("Filled", "m", "a2", "FILLED", "100@100.01", "100", "0"),
        ],
    ),
    (
        "market order sweeps the book at any price",
        [order("m", "a1", "S", "100", "100.00"), order("m", "a2", "S", "100", "105.00")],
        order("c", "b1", "B", "200", None, tif=IOC),
        [
            ("Accepted", "c", "b1", "NEW", "0", "200"),
            ("Filled", "c", "b1", "PARTIALLY_FILLED", "100@100.00", "100", "100"),
            ("Filled", "m", "a1", "FILLED", "100@100.00", "100", "0"),
            ("Filled", "c", "b1", "FILLED", "100@105.00", "200", "0"),
            ("Filled", "m", "a2", "FILLED", "100@105.00", "100", "0"),
        ],
    ),
    (
        "market IOC with nothing to trade against expires",
        [order("m", "b0", "B", "100", "99.00")],
        order("c", "b1", "B", "100", None, tif=IOC),
        [("Accepted", "c", "b1", "NEW", "0", "100"), ("Expired", "c", "b1", "EXPIRED", "0", "0")],
    ),
    (
        "market FOK with nothing to trade against expires",
        [],
        order("c", "s1", "S", "100", None, tif=FOK),
        [("Accepted", "c", "s1", "NEW", "0", "100"), ("Expired", "c", "s1", "EXPIRED", "0", "0")],
    ),
    (
        "market DAY with nothing to trade against waits",
        [],
        order("c", "b1", "B", "100", None, tif=DAY),
        [("Accepted", "c", "b1", "NEW", "0", "100")],
    ),
    (
        "a waiting market order trades at the next limit order's price",
        [order("c", "b1", "B", "100", None, tif=GTC)],
        order("m", "a1", "S", "60", "101.00"),
        [
            ("Accepted", "m", "a1", "NEW", "0", "60"),
            ("Filled", "m", "a1", "FILLED", "60@101.00", "60", "0"),
            ("Filled", "c", "b1", "PARTIALLY_FILLED", "60@101.00", "60", "40"),
        ],
    ),
    (
        "a waiting market order goes before resting limit orders",
        [order("c", "b0", "B", "100", "100.00"), order("c", "b1", "B", "100", None)],
        order("m", "a1", "S", "100", "99.00"),
        [
            ("Accepted", "m", "a1", "NEW", "0", "100"),
            ("Filled", "m", "a1", "FILLED", "100@99.00", "100", "0"),
            ("Filled", "c", "b1", "FILLED", "100@99.00", "100", "0"),
        ],
    ),
]


@pytest.mark.parametrize(("case", "resting", "incoming", "expected"), MATCHING, ids=[m[0] for m in MATCHING])
def test_matching(case: str, resting: list[Command], incoming: SubmitOrder, expected: list[tuple[object, ...]]) -> None:
    x, _ = make_exchange()
    run(x, resting)
    assert run(x, [incoming]) == expected
    assert not x.book("AAA").is_crossed()


REJECTS = [
    ("unknown symbol", order("c", "1", "B", "100", "1.00", symbol="ZZZ"), OrdRejReason.UNKNOWN_SYMBOL, "unknown symbol"),
    ("zero quantity", order("c", "1", "B", "0", "100.00"), OrdRejReason.INCORRECT_QUANTITY, "positive"),
    ("negative quantity", order("c", "1", "B", "-5", "100.00"), OrdRejReason.INCORRECT_QUANTITY, "positive"),
    ("no quantity", order("c", "1", "B", None, "100.00"), OrdRejReason.INCORRECT_QUANTITY, "required"),
    ("huge quantity", order("c", "1", "B", "1E+13", "100.00"), OrdRejReason.INCORRECT_QUANTITY, "at most"),
    ("quantity with 9 decimals", order("c", "1", "B", "1.000000001", "100.00"), OrdRejReason.INCORRECT_QUANTITY,
     "8 decimals"),
    ("huge price", order("c", "1", "B", "1", "1E+10"), OrdRejReason.OTHER, "at most"),
    ("price off the tick", order("c", "1", "B", "100", "100.005"), OrdRejReason.OTHER, "tick size 0.01"),
    ("price off a 0.05 tick", order("c", "1", "B", "100", "50.02", symbol="BBB"), OrdRejReason.OTHER, "tick size 0.05"),
    ("zero price", order("c", "1", "B", "100", "0"), OrdRejReason.OTHER, "positive"),
    ("limit without price", SubmitOrder("c", "1", "AAA", order("c", "1", "B", "1").side, D(100)),
     OrdRejReason.OTHER, "needs a Price"),
    ("amount instead of shares", SubmitOrder("c", "1", "AAA", order("c", "1", "B", "1").side, None,
                                             cash_quantity=D(1000)),
     OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC, "CashOrderQty"),
]


@pytest.mark.parametrize(("case", "cmd", "code", "text"), REJECTS, ids=[r[0] for r in REJECTS])
def test_rejects(case: str, cmd: SubmitOrder, code: OrdRejReason, text: str) -> None:
    x, _ = make_exchange()
    events = x.submit(cmd)
    assert len(events) == 1
    e = events[0]
    assert isinstance(e, OrderRejected)
    assert (e.reason_code, e.ord_status, e.order_id, e.exec_type) == (code, OrdStatus.REJECTED, "NONE", ExecType.REJECTED)
    assert text in e.reason
    assert (e.owner, e.cl_ord_id) == ("c", "1")
    assert all(x.book(s).depth(True) == [] for s in x.symbols)


def test_duplicate_cl_ord_id_is_rejected_per_owner() -> None:
    x, _ = make_exchange()
    assert isinstance(x.submit(order("c", "1", "B", "100", "99.00"))[0], OrderAccepted)
    dup = x.submit(order("c", "1", "B", "100", "99.00"))[0]
    assert isinstance(dup, OrderRejected) and dup.reason_code is OrdRejReason.DUPLICATE_ORDER
    # the same id from another owner is a different order
    assert isinstance(x.submit(order("d", "1", "B", "100", "99.00"))[0], OrderAccepted)


# (case, orders entered first, the replace (or cancel), then an order that shows the queue)
REPLACES = [
    (
        "a quantity decrease keeps the place in the queue",
        [order("m", "a1", "S", "200", "100.00"), order("n", "a2", "S", "100", "100.00")],
        replace("m", "a1r", "a1", "S", "150"),
        [("Replaced", "m", "a1r", "NEW", "0", "150")],
        [("Filled", "m", "a1r", "PARTIALLY_FILLED", "100@100.00", "100", "50")],
    ),
    (
        "a quantity increase goes to the back",
        [order("m", "a1", "S", "100", "100.00"), order("n", "a2", "S", "100", "100.00")],
        replace("m", "a1r", "a1", "S", "300"),
        [("Replaced", "m", "a1r", "NEW", "0", "300")],
        [("Filled", "n", "a2", "FILLED", "100@100.00", "100", "0")],
    ),
    (
        "a price change goes to the back, even back to the old price",
        [order("m", "a1", "S", "100", "100.00"), order("n", "a2", "S", "100", "100.00"),
         replace("m", "a1r", "a1", "S", "100", "100.01")],
        replace("m", "a1s", "a1r", "S", "100", "100.00"),
        [("Replaced", "m", "a1s", "NEW", "0", "100")],
        [("Filled", "n", "a2", "FILLED", "100@100.00", "100", "0")],
    ),
    (
        "a new price that crosses trades at once, under the new ClOrdID",
        [order("m", "a1", "S", "100", "100.05"), order("c", "b1", "B", "100", "100.00")],
        replace("m", "a1r", "a1", "S", "100", "99.99"),
        [
            ("Replaced", "m", "a1r", "NEW", "0", "100"),
            ("Filled", "m", "a1r", "FILLED", "100@100.00", "100", "0"),
            ("Filled", "c", "b1", "FILLED", "100@100.00", "100", "0"),
        ],
        [],
    ),
    (
        "a partly filled order replaced down to its filled quantity is done",
        [order("m", "a1", "S", "100", "100.00"), order("c", "b1", "B", "40", "100.00")],
        replace("m", "a1r", "a1", "S", "40"),
        [("Replaced", "m", "a1r", "FILLED", "40", "0")],
        [],
    ),
    (
        "a partly filled order keeps CumQty; LeavesQty is new quantity minus CumQty",
        [order("m", "a1", "S", "100", "100.00"), order("c", "b1", "B", "40", "100.00")],
        replace("m", "a1r", "a1", "S", "70"),
        [("Replaced", "m", "a1r", "PARTIALLY_FILLED", "40", "30")],
        [("Filled", "m", "a1r", "FILLED", "30@100.00", "70", "0")],
    ),
    (
        "a quantity below what is filled is refused",
        [order("m", "a1", "S", "100", "100.00"), order("c", "b1", "B", "40", "100.00")],
        replace("m", "a1r", "a1", "S", "30"),
        [("CancelRejected", "m", "a1r", "PARTIALLY_FILLED", "OTHER")],
        [("Filled", "m", "a1", "FILLED", "60@100.00", "100", "0")],
    ),
    (
        "a price off the tick is refused",
        [order("m", "a1", "S", "100", "100.00")],
        replace("m", "a1r", "a1", "S", "100", "100.001"),
        [("CancelRejected", "m", "a1r", "NEW", "OTHER")],
        [("Filled", "m", "a1", "FILLED", "100@100.00", "100", "0")],
    ),
    (
        "an unknown order cannot be replaced",
        [],
        replace("m", "a1r", "nope", "S", "100", "100.00"),
        [("CancelRejected", "m", "a1r", "REJECTED", "UNKNOWN_ORDER")],
        [],
    ),
    (
        "a filled order cannot be replaced",
        [order("m", "a1", "S", "100", "100.00"), order("c", "b1", "B", "100", "100.00")],
        replace("m", "a1r", "a1", "S", "200", "100.00"),
        [("CancelRejected", "m", "a1r", "FILLED", "TOO_LATE_TO_CANCEL")],
        [],
    ),
    (
        "another owner's order is unknown to you",
        [order("m", "a1", "S", "100", "100.00")],
        replace("x", "a1r", "a1", "S", "50", "100.00"),
        [("CancelRejected", "x", "a1r", "REJECTED", "UNKNOWN_ORDER")],
        [("Filled", "m", "a1", "FILLED", "100@100.00", "100", "0")],
    ),
    (
        "cancel takes the order out of the book",
        [order("m", "a1", "S", "100", "100.00"), order("n", "a2", "S", "100", "100.00")],
        cancel("m", "a1x", "a1", "S"),
        [("Canceled", "m", "a1x", "CANCELED", "0", "0")],
        [("Filled", "n", "a2", "FILLED", "100@100.00", "100", "0")],
    ),
    (
        "cancel of a canceled order is too late",
        [order("m", "a1", "S", "100", "100.00"), cancel("m", "a1x", "a1", "S")],
        cancel("m", "a1y", "a1x", "S"),
        [("CancelRejected", "m", "a1y", "CANCELED", "TOO_LATE_TO_CANCEL")],
        [],
    ),
    (
        "cancel with the wrong side is refused",
        [order("m", "a1", "S", "100", "100.00")],
        cancel("m", "a1x", "a1", "B"),
        [("CancelRejected", "m", "a1x", "NEW", "OTHER")],
        [("Filled", "m", "a1", "FILLED", "100@100.00", "100", "0")],
    ),
    (
        "cancel reusing a ClOrdID is refused",
        [order("m", "a1", "S", "100", "100.00"), order("m", "a2", "S", "100", "100.05")],
        cancel("m", "a2", "a1", "S"),
        [("CancelRejected", "m", "a2", "NEW", "DUPLICATE_CL_ORD_ID")],
        [("Filled", "m", "a1", "FILLED", "100@100.00", "100", "0")],
    ),
]


@pytest.mark.parametrize(("case", "setup", "request_", "expected", "then"), REPLACES, ids=[r[0] for r in REPLACES])
def test_cancel_replace(case: str, setup: list[Command], request_: Command,
                        expected: list[tuple[object, ...]], then: list[tuple[object, ...]]) -> None:
    x, _ = make_exchange()
    run(x, setup)
    assert run(x, [request_]) == expected
    # a probe buy of 100 at 100.00 shows who is first in the queue now (the probe's own
    # events are left out)
    probe = [e for e in run(x, [order("probe", "p", "B", "100", "100.00")]) if e[1] != "probe"]
    assert probe == then
    assert not x.book("AAA").is_crossed()


def test_cancel_reject_carries_response_to_and_ids() -> None:
    x, _ = make_exchange()
    x.submit(order("m", "a1", "S", "100", "100.00"))
    (rej,) = x.replace(replace("m", "a1r", "a1", "S", "0"))
    assert isinstance(rej, CancelRejected)
    assert (rej.orig_cl_ord_id, rej.response_to.value, rej.order_id) == ("a1", "2", "X-O1")
    (rej,) = x.cancel(cancel("m", "zz", "nope", "S"))
    assert isinstance(rej, CancelRejected)
    assert (rej.response_to.value, rej.reason_code, rej.order_id) == ("1", CxlRejReason.UNKNOWN_ORDER, "NONE")


def test_status_by_any_id_and_unknown() -> None:
    x, _ = make_exchange()
    x.submit(order("m", "a1", "S", "100", "100.00"))
    x.submit(order("c", "b1", "B", "30", "100.00"))
    x.replace(replace("m", "a2", "a1", "S", "80"))
    for cl in ("a1", "a2"):
        (rep,) = x.status(status("m", cl))
        assert isinstance(rep, OrderStatusReport)
        assert (rep.cl_ord_id, rep.ord_status, rep.cum_qty, rep.leaves_qty, rep.avg_px, rep.order_qty) == (
            "a2", OrdStatus.PARTIALLY_FILLED, D(30), D(50), D("100.00"), D(80))
        assert rep.exec_type is ExecType.ORDER_STATUS
    (rep,) = x.status(status("m", "nope"))
    assert isinstance(rep, OrderStatusReport)
    assert rep.ord_status is OrdStatus.REJECTED and "unknown order" in rep.text and rep.order_id == "NONE"


def test_avg_px_over_fills_and_ids_are_deterministic() -> None:
    def session() -> list[OrderFilled]:
        x, _ = make_exchange()
        x.submit(order("m", "a1", "S", "100", "100.00"))
        x.submit(order("m", "a2", "S", "200", "100.03"))
        return [e for e in x.submit(order("c", "b1", "B", "300", "100.03")) if isinstance(e, OrderFilled)]

    fills = session()
    mine = [f for f in fills if f.owner == "c"]
    assert [f.avg_px for f in mine] == [D("100.00"), D("100.02")]
    # both sides of a trade share its id; every report has its own exec id
    assert fills[0].trade_id == fills[1].trade_id != fills[2].trade_id
    assert fills[0].aggressor and not fills[1].aggressor
    assert len({f.exec_id for f in fills}) == len(fills)
    assert [(f.exec_id, f.trade_id) for f in session()] == [(f.exec_id, f.trade_id) for f in fills]


def test_avg_px_is_bounded_to_8_decimals() -> None:
    x, _ = make_exchange()
    x.submit(order("m", "a1", "S", "1", "100.00"))
    x.submit(order("m", "a2", "S", "2", "100.01"))
    fills = [e for e in x.submit(order("c", "b1", "B", "3", "100.01")) if isinstance(e, OrderFilled) and e.owner == "c"]
    assert fills[-1].avg_px == D("100.00666667")


SESSION = [
    # (time in force, expires at the session end?)
    (DAY, True),
    (GTC, False),
]


@pytest.mark.parametrize(("tif", "expires"), SESSION, ids=[t.name for t, _ in SESSION])
def test_session_end(tif: TimeInForce, expires: bool) -> None:
    x, clock = make_exchange()
    x.submit(order("c", "b1", "B", "100", "99.00", tif=tif))
    x.submit(order("c", "m1", "B", "100", None, tif=tif))  # a waiting market order too
    close = x.next_timer()
    assert close is not None and close.isoformat() == "2024-01-02T21:00:00+00:00"  # 16:00 New York
    clock.set(close - timedelta(microseconds=1))
    assert x.tick() == []
    clock.set(close)
    events = x.tick()
    if expires:
        assert [brief(e) for e in events] == [
            ("Expired", "c", "b1", "EXPIRED", "0", "0"), ("Expired", "c", "m1", "EXPIRED", "0", "0")]
        assert all(isinstance(e, OrderExpired) and "session end" in e.reason for e in events)
        assert x.book("AAA").resting_quantity(True) == 0
    else:
        assert events == []
        assert x.book("AAA").resting_quantity(True) == 200
    # the next session end is the next business day's
    nxt = x.next_timer()
    assert nxt is not None and nxt.isoformat() == "2024-01-03T21:00:00+00:00"


def test_session_end_is_applied_before_a_late_command() -> None:
    """A command that arrives after the close (no tick in between) must not trade with
    DAY orders that have expired: the venue catches up on time first."""
    x, clock = make_exchange()
    x.submit(order("m", "a1", "S", "100", "100.00"))
    clock.advance(timedelta(hours=7))  # 17:00 New York
    events = x.submit(order("c", "b1", "B", "100", "100.00"))
    assert [brief(e) for e in events] == [
        ("Expired", "m", "a1", "EXPIRED", "0", "0"),
        ("Accepted", "c", "b1", "NEW", "0", "100"),
    ]


def test_friday_day_orders_expire_friday_and_the_next_close_is_monday() -> None:
    from datetime import datetime
    x, clock = make_exchange(at=datetime(2024, 1, 5, 15, 0, tzinfo=UTC))  # Friday 10:00
    x.submit(order("c", "b1", "B", "100", "99.00"))
    clock.set(datetime(2024, 1, 6, 12, 0, tzinfo=UTC))  # Saturday
    assert [brief(e)[0] for e in x.tick()] == ["Expired"]
    nxt = x.next_timer()
    assert nxt is not None and nxt.isoformat() == "2024-01-08T21:00:00+00:00"


def test_time_never_runs_backwards() -> None:
    x, clock = make_exchange()
    clock.advance(60)
    (a,) = x.submit(order("c", "b1", "B", "1", "99.00"))
    clock.set(a.ts - timedelta(seconds=30))
    (b,) = x.submit(order("c", "b2", "B", "1", "99.00"))
    assert b.ts == a.ts


def test_open_orders_and_the_venue_protocol() -> None:
    x, _ = make_exchange()
    assert isinstance(x, Venue)
    x.submit(order("m", "a1", "S", "100", "100.00"))
    x.submit(order("n", "a2", "S", "100", "100.05"))
    x.submit(order("c", "b1", "B", "50", "100.00"))
    assert sorted((r.owner, r.cl_ord_id, str(r.leaves_qty)) for r in x.open_orders()) == [
        ("m", "a1", "50"), ("n", "a2", "100")]
    assert [r.cl_ord_id for r in x.open_orders("n")] == ["a2"]
    assert x.book("AAA").depth(False) == [(10000, D(50), 1), (10005, D(100), 1)]


def test_done_orders_are_kept_a_session_then_forgotten() -> None:
    x, clock = make_exchange()
    x.submit(order("m", "a1", "S", "100", "100.00"))
    x.submit(order("c", "b1", "B", "100", "100.00"))  # both filled on Tuesday
    x.submit(order("c", "g1", "B", "100", "99.00", tif=GTC))  # still live for days
    clock.advance(timedelta(days=1))  # Wednesday: after Tuesday's close
    x.tick()
    (rep,) = x.status(status("c", "b1"))
    assert isinstance(rep, OrderStatusReport) and rep.ord_status is OrdStatus.FILLED
    clock.advance(timedelta(days=1))  # Thursday: after Wednesday's close
    x.tick()
    (rep,) = x.status(status("c", "b1"))
    assert isinstance(rep, OrderStatusReport) and rep.ord_status is OrdStatus.REJECTED
    # the ClOrdID may be used again; the live GTC order is still known
    assert isinstance(x.submit(order("c", "b1", "B", "100", "98.00"))[0], OrderAccepted)
    (rep,) = x.status(status("c", "g1"))
    assert isinstance(rep, OrderStatusReport) and rep.ord_status is OrdStatus.NEW


def test_tick_refuses_a_naive_time() -> None:
    from datetime import datetime
    x, _ = make_exchange()
    with pytest.raises(ValueError, match="timezone-aware"):
        x.tick(datetime(2024, 1, 2, 12))
