"""venues.fix_mapping without sockets: firms, inbound field mapping and its rejects, and every
report the venues can produce passing the FIX 4.2 / 4.4 data dictionaries."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixgw.dictionary import DataDictionary
from fixgw.errors import FieldNotFound, IncorrectDataFormat, IncorrectTagValue
from fixgw.message import Message, encode
from fixgw.orders import (
    CxlRejReason,
    CxlRejResponseTo,
    OrdRejReason,
    OrdStatus,
    OrdType,
    Side,
    TimeInForce,
)
from fixgw.validation import validate
from venues.clock import FrozenClock
from venues.commands import CancelOrder, QueryStatus, ReplaceOrder, SubmitOrder
from venues.events import CancelRejected, OrderRejected, VenueEvent
from venues.exchange import Exchange
from venues.fix_mapping import (
    ReportWriter,
    cancel_from_fix,
    firm_of,
    is_possible_resend,
    replace_from_fix,
    status_from_fix,
    submit_from_fix,
)
from venues.fund import FundCompany
from venues.interface import dispatch

NY = ZoneInfo("America/New_York")
DICTS = {b: DataDictionary.builtin(b) for b in ("FIX.4.2", "FIX.4.4")}
WRITERS = {b: ReportWriter(b) for b in DICTS}


def wire(begin: str, msg: Message) -> Message:
    """``msg`` as a counterparty receives it: with a session header and trailer."""
    header = [(35, msg.msg_type), (49, b"EXCH"), (56, b"CLIENT"), (34, b"7"), (52, b"20240306-15:00:00.000")]
    return Message.from_wire(encode(begin.encode(), header, msg.body()))


def assert_valid(begin: str, event: VenueEvent) -> Message:
    msg = wire(begin, WRITERS[begin].report(event, account="ACC1", status_req_id=b"Q9"))
    reject = validate(DICTS[begin], msg.fields)
    assert reject is None, f"{begin}: {reject} in {msg!r} from {event!r}"
    return msg


@pytest.mark.parametrize(("comp_id", "firm"), [
    ("FIXGW-SSU1", "FIXGW"), ("FIXGW-SSU-2", "FIXGW"), ("CLIENT", "CLIENT"), ("-X", "-X"), ("A-", "A"),
])
def test_firm_is_the_comp_id_before_the_first_dash(comp_id: str, firm: str) -> None:
    assert firm_of(comp_id) == firm


def nos(*extra: tuple[int, str], drop: tuple[int, ...] = ()) -> Message:
    base = [(8, "FIX.4.4"), (35, "D"), (11, "O1"), (1, "ACC"), (55, "IBM"), (54, "1"), (38, "100"), (40, "2"),
            (44, "10.50"), (59, "3")]
    fields = [(t, v) for t, v in base if t not in drop] + list(extra)
    return Message([(t, v.encode()) for t, v in fields])


def test_inbound_messages_map_to_commands() -> None:
    cmd = submit_from_fix(nos(), "FIRM")
    assert cmd == SubmitOrder("FIRM", "O1", "IBM", Side.BUY, Decimal(100), OrdType.LIMIT, Decimal("10.50"),
                              TimeInForce.IOC, None, "ACC")
    assert submit_from_fix(nos(drop=(59,)), "F").time_in_force is TimeInForce.DAY
    amount = submit_from_fix(nos((152, "5000.00"), drop=(38, 44)), "F")
    assert amount.quantity is None and amount.cash_quantity == Decimal("5000.00")
    f = Message([(35, b"F"), (41, b"O1"), (11, b"C1"), (55, b"IBM"), (54, b"2"), (37, b"X-O1")])
    assert cancel_from_fix(f, "F") == CancelOrder("F", "C1", "O1", "IBM", Side.SELL, "X-O1")
    g = Message([(35, b"G"), (41, b"O1"), (11, b"R1"), (55, b"IBM"), (54, b"1"), (38, b"50"), (40, b"2"),
                 (44, b"11"), (59, b"0")])
    assert replace_from_fix(g, "F") == ReplaceOrder("F", "R1", "O1", "IBM", Side.BUY, Decimal(50), Decimal(11),
                                                    None, OrdType.LIMIT, TimeInForce.DAY, None)
    h = Message([(35, b"H"), (11, b"O1"), (55, b"IBM"), (54, b"1")])
    assert status_from_fix(h, "F") == QueryStatus("F", "O1", "IBM", Side.BUY, None)
    assert not is_possible_resend(nos()) and is_possible_resend(nos((97, "Y"))) and is_possible_resend(nos((43, "Y")))


@pytest.mark.parametrize(("msg", "error", "tag"), [
    (nos((54, "5"), drop=(54,)), IncorrectTagValue, 54),      # sell short: not here
    (nos((40, "3"), drop=(40,)), IncorrectTagValue, 40),      # stop order
    (nos((59, "6"), drop=(59,)), IncorrectTagValue, 59),      # GTD
    (nos((38, "lots"), drop=(38,)), IncorrectDataFormat, 38),
    (nos((44, "NaN"), drop=(44,)), IncorrectDataFormat, 44),
    (nos((152, "Infinity")), IncorrectDataFormat, 152),
    (nos(drop=(11,)), FieldNotFound, 11),
    (nos(drop=(54,)), FieldNotFound, 54),
])
def test_inbound_values_the_venues_cannot_take_are_rejected_by_tag(msg: Message, error: type, tag: int) -> None:
    with pytest.raises(error) as info:
        submit_from_fix(msg, "F")
    assert info.value.tag == tag  # type: ignore[attr-defined]


def test_reason_codes_fix_4_2_lacks_are_sent_as_broker_option() -> None:
    at = datetime(2024, 3, 6, 15, tzinfo=NY)
    rej = OrderRejected(venue="X", owner="F", cl_ord_id="O1", orig_cl_ord_id=None, order_id="NONE", exec_id="E1",
                        symbol="IBM", side=Side.BUY, order_type=OrdType.LIMIT, time_in_force=TimeInForce.DAY,
                        order_qty=Decimal(1), cash_order_qty=None, price=Decimal(1), ord_status=OrdStatus.REJECTED,
                        cum_qty=Decimal(0), leaves_qty=Decimal(0), avg_px=Decimal(0), ts=at,
                        reason="not on the tick", reason_code=OrdRejReason.OTHER)
    assert assert_valid("FIX.4.2", rej).get_str(103) == "0"
    assert assert_valid("FIX.4.4", rej).get_str(103) == "99"
    cxl = CancelRejected(venue="X", owner="F", cl_ord_id="C1", orig_cl_ord_id="O1", order_id="X-O1",
                         ord_status=OrdStatus.NEW, response_to=CxlRejResponseTo.REPLACE,
                         reason_code=CxlRejReason.DUPLICATE_CL_ORD_ID, reason="duplicate ClOrdID C1", ts=at)
    m42, m44 = assert_valid("FIX.4.2", cxl), assert_valid("FIX.4.4", cxl)
    assert (m42.get_str(102), m44.get_str(102)) == ("2", "6")
    assert m44.get_str(434) == "2" and m44.get_str(58) == "duplicate ClOrdID C1" and m44.get_str(1) == "ACC1"
    assert m44.get_str(60) == "20240306-20:00:00.000"


_SYMBOLS = ["IBM", "MSFT", "NOPE"]
_FUNDS = ["FSIDX", "FSMMX", "FSTBX", "NOPE"]


def random_commands(rng: random.Random, funds: bool, n: int) -> list[object]:
    """A mix of well-formed commands, many of them refusable, over a few ids."""
    cmds: list[object] = []
    ids = [f"O{i}" for i in range(12)]
    placed: dict[str, tuple[str, Side]] = {}  # ClOrdID -> symbol, side of a submitted order
    for i in range(n):
        kind = rng.choice("SSSCRQ")
        cl, other = rng.choice(ids), rng.choice(ids)
        side = rng.choice(list(Side))
        if funds:
            sym = rng.choice(_FUNDS)
            qty = rng.choice([None, Decimal(rng.randint(1, 500)), Decimal("0.0005")])
            cash = None if qty is not None else rng.choice([Decimal("5000.00"), Decimal("12.34"), Decimal("0.01")])
            ot, px, tif = OrdType.MARKET, None, rng.choice([TimeInForce.DAY, TimeInForce.GTC, TimeInForce.IOC])
        else:
            sym = rng.choice(_SYMBOLS)
            qty, cash = rng.choice([Decimal(rng.randint(1, 900)), Decimal(-5), Decimal("1.5")]), None
            ot = rng.choice(list(OrdType))
            px = Decimal(rng.randint(17500, 18500)) / 100 if ot is OrdType.LIMIT else None
            if sym == "MSFT" and px is not None:
                px += Decimal(240)
            if rng.random() < 0.05:
                px = Decimal("180.001")
            tif = rng.choice(list(TimeInForce))
        if kind in "CR" and other in placed and rng.random() < 0.8:
            sym, side = placed[other]  # mostly about an order that exists
        if kind == "S":
            placed.setdefault(cl, (sym, side))
            cmds.append(SubmitOrder("F", cl, sym, side, qty, ot, px, tif, cash))
        elif kind == "C":
            cmds.append(CancelOrder("F", f"{cl}-c{i}", other, sym, side))
        elif kind == "R":
            cmds.append(ReplaceOrder("F", f"{cl}-r{i}", other, sym, side, qty, px, cash))
        else:
            cmds.append(QueryStatus("F", rng.choice([cl, f"{cl}-c{i}"]), sym, side))
    return cmds


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), funds=st.booleans())
def test_every_report_a_venue_produces_passes_both_dictionaries(seed: int, funds: bool) -> None:
    rng = random.Random(seed)
    clock = FrozenClock(datetime(2024, 3, 6, 15, 59, 40, tzinfo=NY))  # a session end / cut-off comes by
    venue = FundCompany(clock=clock) if funds else Exchange(clock=clock)
    kinds: set[str] = set()
    for cmd in random_commands(rng, funds, 60):
        clock.advance(timedelta(seconds=rng.choice([0, 0.5, 2])))
        for event in dispatch(venue, cmd) + venue.tick():  # type: ignore[arg-type]
            kinds.add(type(event).__name__)
            for begin in DICTS:
                assert_valid(begin, event)
    assert {"OrderAccepted", "OrderRejected"} <= kinds
