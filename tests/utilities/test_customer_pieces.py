"""Pure pieces of the customer utility: ExecutionReports valid per dictionary, risk checks, routing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from fixgw.dictionary import DataDictionary
from fixgw.message import Message, encode
from fixgw.orders import CxlRejReason, CxlRejResponseTo, ExecType
from fixgw.validation import validate
from replication.record import RecordType, Scalar
from tests.utilities.support_orderrecs import fill, rec
from utilities import execreports as er
from utilities.books import CASH_KEY, POSITION_PREFIX
from utilities.risk import RiskView
from utilities.routing import Router, request_id

VIEW = er.OrderView(order_id="cfu1-0.1", cl_ord_id="C1", orig_cl_ord_id="C0", account="ACC1", symbol="AAPL",
                    side="1", order_qty=Decimal(100), cash_order_qty=None, price=Decimal("190.5"), ord_type="2",
                    tif="0", ord_status="1", cum_qty=Decimal(40), leaves_qty=Decimal(60), avg_px=Decimal("190.25"))


def wire(begin: str, msg: Message) -> list[tuple[int, bytes]]:
    header = [(35, msg.msg_type), (49, b"FIXGW"), (56, b"CLIENT1"), (34, b"2"), (52, b"20260102-10:00:00.000")]
    raw = encode(begin.encode(), header, [(t, v) for t, v in msg.fields if t != 35])
    return Message.from_wire(raw).fields


@pytest.mark.parametrize("begin", ["FIX.4.2", "FIX.4.4"])
@pytest.mark.parametrize(
    "exec_type, kw",
    [
        (ExecType.PENDING_NEW, {}),
        (ExecType.NEW, {}),
        (ExecType.TRADE, {"last_qty": Decimal(40), "last_px": Decimal("190.25")}),
        (ExecType.CANCELED, {}),
        (ExecType.REPLACED, {}),
        (ExecType.PENDING_CANCEL, {}),
        (ExecType.PENDING_REPLACE, {}),
        (ExecType.REJECTED, {"text": "Insufficient buying power", "ord_rej_reason": 3}),
        (ExecType.EXPIRED, {}),
        (ExecType.ORDER_STATUS, {"status_request_id": "S1"}),
    ],
)
def test_execution_reports_pass_our_dictionary(begin: str, exec_type: str, kw: dict[str, object]) -> None:
    msg = er.execution_report(begin, VIEW, exec_id="E1", exec_type=exec_type, **kw)  # type: ignore[arg-type]
    assert validate(DataDictionary.builtin(begin), wire(begin, msg)) is None
    if begin == "FIX.4.2":
        assert msg.get(20) in (b"0", b"3")
        if exec_type == ExecType.TRADE:
            assert msg.get(150) == b"1"          # partial fill in 4.2, not F
    else:
        assert 20 not in msg
        if exec_type == ExecType.TRADE:
            assert msg.get(150) == b"F"


@pytest.mark.parametrize("begin", ["FIX.4.2", "FIX.4.4"])
def test_cancel_reject_passes_our_dictionary(begin: str) -> None:
    msg = er.cancel_reject(begin_string=begin, order_id="cfu1-0.1", cl_ord_id="X1", orig_cl_ord_id="C1", ord_status="2",
                           response_to=CxlRejResponseTo.CANCEL, reason=CxlRejReason.TOO_LATE_TO_CANCEL, text="Too late")
    assert validate(DataDictionary.builtin(begin), wire(begin, msg)) is None


def test_decimal_formatting_has_no_exponent() -> None:
    assert er.fmt(Decimal("1E+2")) == "100"
    assert er.fmt(Decimal("190.500")) == "190.5"
    assert er.fmt(None) == "0"


def account(cash: str, **pos: str) -> object:
    extra: dict[str, Scalar] = {CASH_KEY: Decimal(cash), "max_order_qty": Decimal(1000)}
    for s, q in pos.items():
        extra[POSITION_PREFIX + s] = Decimal(q)
    return rec(RecordType.ACCOUNT, 0, origin="firm", txn="account:ACC1", terms=False, account="ACC1", extra=extra)


def test_risk_buying_power_position_and_limits() -> None:
    risk = RiskView({"AAPL": Decimal(10)})
    assert risk.check(account="ACC1", symbol="AAPL", side="1", qty=Decimal(1), cash_qty=None, price=None).text.startswith("Unknown account")  # type: ignore[union-attr]
    risk.apply(account("1000", AAPL="50"))   # type: ignore[arg-type]
    ok: dict[str, Any] = {"account": "ACC1", "symbol": "AAPL", "cash_qty": None}
    assert risk.check(side="1", qty=Decimal(100), price=Decimal(10), **ok) is None            # 1000 <= 1000
    assert risk.check(side="1", qty=Decimal(101), price=Decimal(10), **ok) is not None
    assert risk.check(side="2", qty=Decimal(51), price=None, **ok) is not None                 # position 50
    assert risk.check(side="1", qty=Decimal(1001), price=Decimal("0.01"), **ok).reason == 3    # type: ignore[union-attr]
    # an open buy of 60 @ 10 reserves 600; a fill of 20 @ 9 spends 180 and frees 200 of it
    risk.apply(rec(RecordType.ORDER, 1, txn="cfu1-0.1", order_qty=Decimal(60), price=Decimal(10)))
    assert risk.buying_power("ACC1") == Decimal(400)
    risk.apply(fill(2, 20, "9", "X1", txn="cfu1-0.1", status="1"))
    assert risk.buying_power("ACC1") == Decimal(1000) - Decimal(180) - Decimal(400)
    risk.apply(fill(2, 20, "9", "X1", txn="cfu1-0.1", status="1"))          # the same fill again: no change
    assert risk.buying_power("ACC1") == Decimal(420)
    assert risk.sellable("ACC1", "AAPL") == Decimal(70)
    risk.apply(rec(RecordType.CANCELED, 3, txn="cfu1-0.1"))
    assert risk.buying_power("ACC1") == Decimal(820)


def test_risk_forgets_finished_orders_and_fills_of_past_days_only() -> None:
    day = dt.date(2024, 3, 5)  # the New York date of support_orderrecs' T0
    risk = RiskView({"AAPL": Decimal(10)})
    risk.apply(account("100000"))  # type: ignore[arg-type]
    risk.apply(rec(RecordType.ORDER, 1, txn="A", order_qty=Decimal(10), price=Decimal(10)))
    risk.apply(fill(2, 10, "10", "XA", txn="A", status="2"))               # A filled: closed
    risk.apply(rec(RecordType.ORDER, 3, txn="B", order_qty=Decimal(20), price=Decimal(10)))   # B stays open
    risk.apply(rec(RecordType.CANCELED, 4, txn="C"))                        # C's cancel before its ORDER ...
    risk.apply(rec(RecordType.ORDER, 5, txn="C", order_qty=Decimal(30), price=Decimal(10)))   # ... which reserves nothing
    bp = risk.buying_power("ACC1")
    assert bp == Decimal(100000) - 100 - 200
    assert risk.forget_before(day) == 0                                     # all of it is of that day
    risk.apply(fill(2, 10, "10", "XA", txn="A", status="2"))               # the same fill from a peer street
    assert risk.buying_power("ACC1") == bp
    assert risk.forget_before(day + dt.timedelta(days=1)) == 3              # closed A and C, fill XA
    assert set(risk.open) == {"B"} and not risk.closed and not risk.fills
    assert risk.buying_power("ACC1") == bp and risk.sellable("ACC1", "AAPL") == Decimal(10)


def test_router_repeats_until_answered_and_moves_off_a_dead_street() -> None:
    now = [0.0]
    router = Router(retry_s=1.0, monotonic=lambda: now[0])
    order = rec(RecordType.ORDER, 0, txn="cfu1-0.1")
    router.add(order)
    alive = {"ssu1", "ssu2"}

    def choose(p: Any) -> str | None:
        cur = p.street
        return cur if cur in alive else min(alive)

    assert [s for _, s in router.due(choose)] == ["ssu1"]
    assert list(router.due(choose)) == []                 # not yet due again
    now[0] = 1.5
    alive.discard("ssu1")
    assert [s for _, s in router.due(choose)] == ["ssu2"]
    assert router.answered_by(rec(RecordType.SENT, 2, txn="cfu1-0.1")) == [request_id(order)]
    now[0] = 5
    assert list(router.due(choose)) == []


def test_router_matches_requests_by_clordid() -> None:
    router = Router()
    cxl = rec(RecordType.CANCEL_REQUEST, 0, txn="cfu1-0.1", cl_ord_id="X1", orig_cl_ord_id="C1")
    router.add(cxl)
    assert router.answered_by(rec(RecordType.CANCEL_SENT, 1, txn="cfu1-0.1", cl_ord_id="X2")) == []
    assert router.answered_by(rec(RecordType.CANCEL_SENT, 1, txn="cfu1-0.1", cl_ord_id="X1")) == ["cfu1-0.1|X1"]
