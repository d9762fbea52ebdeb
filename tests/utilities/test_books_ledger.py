"""Unit and property tests of the firm's books (utilities/books.py)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replication.hlc import Hlc
from replication.record import Record
from replication.record import RecordType as T
from tests.utilities.support_orderrecs import SECOND, T0, fill, rec
from utilities.books import (
    Books,
    account_opening,
    account_record,
    end_of_day_report,
    format_report_text,
    settled_record,
    settlement_date,
    settlements_due,
    trade_date_of,
)

D = Decimal
TUE = dt.date(2024, 3, 5)  # T0 is Tuesday 2024-03-05 10:00 New York


_firm_seq = itertools.count(1000)


def acct(account: str = "ACC1", cash: str = "100000", at: float = -3600, seq: int | None = None,
         **positions: str) -> Record:
    return account_record(origin="firm", seq=seq or next(_firm_seq), hlc=Hlc(T0 + int(at * SECOND), 0, "firm"),
                          account=account, cash=D(cash), positions={k: D(v) for k, v in positions.items()},
                          extra={"max_notional": D("50000")})


def order(at: float, txn: str, **kw: Any) -> Record:
    return rec(T.ORDER, at, txn=txn, **kw)


def test_trade_date_is_new_york_date() -> None:
    assert trade_date_of(Hlc(T0, 0, "n")) == TUE
    # 2024-03-09 03:30 UTC is Friday 22:30 in New York
    fri_night = int(dt.datetime(2024, 3, 9, 3, 30, tzinfo=dt.UTC).timestamp()) * SECOND
    assert trade_date_of(Hlc(fri_night, 0, "n")) == dt.date(2024, 3, 8)
    # summer time: 2024-07-01 03:59 UTC is 23:59 on June 30th in New York (EDT, UTC-4)
    summer = int(dt.datetime(2024, 7, 1, 3, 59, tzinfo=dt.UTC).timestamp()) * SECOND
    assert trade_date_of(Hlc(summer, 0, "n")) == dt.date(2024, 6, 30)


@pytest.mark.parametrize(("trade", "settle"), [
    (dt.date(2024, 3, 5), dt.date(2024, 3, 6)),   # Tue -> Wed
    (dt.date(2024, 3, 8), dt.date(2024, 3, 11)),  # Fri -> Mon
    (dt.date(2024, 3, 9), dt.date(2024, 3, 11)),  # Sat -> Mon
    (dt.date(2024, 3, 10), dt.date(2024, 3, 11)),  # Sun -> Mon
])
def test_settlement_is_t_plus_one_business_day(trade: dt.date, settle: dt.date) -> None:
    assert settlement_date(trade) == settle


def test_settlement_skips_holidays() -> None:
    assert settlement_date(dt.date(2024, 7, 3), holidays={dt.date(2024, 7, 4)}) == dt.date(2024, 7, 5)


def test_account_record_round_trip_and_latest_wins() -> None:
    r = acct(cash="1000.50", AAPL="10", MSFT="5")
    o = account_opening(r)
    assert (o.account, o.cash, dict(o.positions)) == ("ACC1", D("1000.50"), {"AAPL": D(10), "MSFT": D(5)})
    assert r.extra["max_notional"] == D("50000")
    books = Books.from_records([r, acct(cash="2000", at=-100, seq=2)])
    assert books.cash("ACC1").opening == D(2000) and books.position("ACC1", "AAPL").traded == 0


def test_bad_opening_balance_is_an_anomaly_not_a_crash() -> None:
    bad = Record(origin="firm", seq=9, txn="", type=T.ACCOUNT, status="open", hlc=Hlc(T0, 0, "firm"),
                 account="ACC9", extra={"cash": "lots"})
    books = Books.from_records([bad])
    assert any("ACC9" not in a and "cash" in a and "lots" in a for a in books.anomalies)
    assert books.cash("ACC9").opening == 0
    with pytest.raises(ValueError, match="extra\\['cash'\\]"):
        account_opening(bad)


def test_buy_and_sell_fills_move_traded_not_settled() -> None:
    records = [acct(AAPL="50"), order(1, "b-0.1"), fill(2, 60, "10", "E1", txn="b-0.1"),
               order(3, "b-0.2", side="2", cl_ord_id="C2"),
               fill(4, 20, "12.5", "E2", txn="b-0.2", side="2")]
    b = Books.from_records(records)
    p = b.position("ACC1", "AAPL")
    assert (p.opening, p.settled, p.traded, p.pending) == (D(50), D(50), D(90), D(40))
    c = b.cash("ACC1")
    assert (c.opening, c.settled, c.traded, c.pending) == (D(100000), D(100000), D(99650), D(-350))
    assert [(t.ref, t.is_buy, t.notional) for t in b.trades("ACC1")] == [
        ("b-0.1|E1", True, D(600)), ("b-0.2|E2", False, D(250))]
    assert b.accounts() == ("ACC1",)


def test_fill_recorded_twice_books_once_and_fill_without_order_books() -> None:
    records = [acct(), fill(2, 60, "10", "E1", txn="b-0.1", origin="ssu1"),
               fill(3, 60, "10", "E1", txn="b-0.1", origin="ssu2")]
    b = Books.from_records(records)
    assert b.position("ACC1", "AAPL").traded == D(60) and len(b.trades()) == 1


def test_same_exec_id_on_two_orders_is_two_trades() -> None:
    b = Books.from_records([fill(2, 1, "10", "E1", txn="b-0.1"), fill(2, 1, "10", "E1", txn="b-0.2")])
    assert len(b.trades()) == 2


def test_settlement_cycle() -> None:
    records = [acct(), order(1, "b-0.1"), fill(2, 60, "10", "E1", txn="b-0.1")]
    assert settlements_due(records, TUE) == []
    due = settlements_due(records, dt.date(2024, 3, 6))
    assert [(s.ref, s.qty, s.notional, s.trade_date, s.settle_date) for s in due] == [
        ("b-0.1|E1", D(60), D(600), TUE, dt.date(2024, 3, 6))]
    assert settlements_due(records, dt.date(2024, 3, 20)) == due  # overdue still due
    mark = settled_record(due[0], origin="firm", seq=50, hlc=Hlc(T0 + 86400 * SECOND, 0, "firm"))
    assert mark.type is T.SETTLED and mark.extra["fill_ref"] == "b-0.1|E1"
    b = Books.from_records([*records, mark])
    assert settlements_due(b, dt.date(2024, 3, 6)) == []
    assert b.position("ACC1", "AAPL").settled == D(60)
    assert (b.cash("ACC1").settled, b.cash("ACC1").pending) == (D(99400), D(0))
    # a SETTLED record whose fill has not reached the firm still books
    b2 = Books.from_records([acct(), mark])
    assert (b2.position("ACC1", "AAPL").settled, b2.cash("ACC1").traded) == (D(60), D(99400))


def test_settlements_sorted_and_weekend_trades_settle_monday() -> None:
    fri = T0 + 3 * 86400 * SECOND  # Friday 10:00
    f1 = Record(origin="ssu1", seq=90, txn="b-0.9", type=T.FILL, status="", hlc=Hlc(fri, 0, "ssu1"),
                account="ACC2", symbol="MSFT", side="1", order_qty=D(5), exec_id="X", last_qty=D(5),
                last_px=D(300))
    f2 = fill(2, 1, "10", "E1", txn="b-0.1")
    due = settlements_due([f1, f2], dt.date(2024, 3, 11))
    assert [(s.account, s.settle_date) for s in due] == [("ACC1", dt.date(2024, 3, 6)),
                                                          ("ACC2", dt.date(2024, 3, 11))]


def test_buying_power_reserves_open_buys() -> None:
    records = [
        acct(cash="10000"),
        order(1, "b-0.1", order_qty=D(100), price=D("20")),                      # limit: 100 x 20
        fill(2, 40, "19", "E1", txn="b-0.1", order_qty=D(100), price=D("20")),  # leaves 60 x 20
        order(3, "b-0.2", ord_type="1", price=None, order_qty=D(10), symbol="MSFT"),  # market
        order(4, "b-0.3", ord_type="1", price=None, order_qty=D(10)),            # market AAPL
        order(5, "b-0.4", order_qty=None, cash_order_qty=D(500), price=None, symbol="FUND"),
        order(6, "b-0.5", order_qty=D(7)), rec(T.CANCELED, 7, txn="b-0.5"),      # terminal: none
    ]
    b = Books.from_records(records, reference_prices={"MSFT": D("300")})
    # 60x20 + 10x300 (reference) + 10x19 (last AAPL trade) + 500 (cash order)
    assert b.reserved("ACC1") == D(1200 + 3000 + 190 + 500)
    assert b.cash("ACC1").traded == D(10000 - 760)
    assert b.buying_power("ACC1") == D(10000 - 760 - 4890)
    assert [o.txn for o in b.open_orders("ACC1")] == ["b-0.1", "b-0.2", "b-0.3", "b-0.4"]


def test_market_order_without_any_price_is_an_anomaly() -> None:
    b = Books.from_records([order(1, "b-0.1", ord_type="1", price=None, symbol="ZZZ")])
    assert b.reserved("ACC1") == 0 and any("b-0.1" in a for a in b.anomalies)


def test_sellable_subtracts_open_sells() -> None:
    records = [acct(AAPL="100"), order(1, "s-0.1", side="2", order_qty=D(30)),
               fill(2, 10, "10", "E1", txn="s-0.1", side="2", order_qty=D(30))]
    b = Books.from_records(records)
    assert (b.position("ACC1", "AAPL").traded, b.sellable("ACC1", "AAPL")) == (D(90), D(70))


def test_unbookable_fills_are_anomalies() -> None:
    b = Books.from_records([fill(2, 5, "10", "E1", txn="x-0.1", account=""),
                            fill(2, 5, "10", "E2", txn="x-0.2", side="8"),
                            fill(2, 5, "10", "E3", txn="x-0.3")])
    assert len(b.trades()) == 1
    assert len(b.anomalies) == 2 and all("not booked" in a for a in b.anomalies)


def test_end_of_day_report_is_deterministic_json_of_that_day() -> None:
    wed = 86400
    records = [acct(AAPL="10"), acct("ACC2", cash="500"),
               order(1, "b-0.1"), fill(2, 60, "10", "E1", txn="b-0.1"),
               order(3, "b-0.2", account="ACC2", side="2", order_qty=D(5)),
               fill(wed + 5, 1, "11", "E9", txn="b-0.1")]  # Wednesday: not in Tuesday's report
    rep = end_of_day_report(records, TUE)
    assert rep == end_of_day_report(list(reversed(records)) + records[:2], TUE)
    text = json.dumps(rep, sort_keys=True)
    assert json.loads(text) == rep
    a1, a2 = rep["accounts"]
    assert a1["account"] == "ACC1" and a2["account"] == "ACC2"
    assert a1["cash"] == {"opening": "100000", "settled": "100000", "traded": "99400",
                          "pending_settlement": "-600"}
    assert a1["positions"] == [{"symbol": "AAPL", "opening": "10", "settled": "10", "traded": "70",
                                "pending_settlement": "60"}]
    assert [(t["ref"], t["side"], t["qty"], t["notional"], t["settle_date"], t["time"]) for t in a1["trades"]] == [
        ("b-0.1|E1", "buy", "60", "600", "2024-03-06", "2024-03-05T10:00:02-05:00")]
    assert [(o["txn"], o["ord_status"], o["cum_qty"], o["leaves_qty"]) for o in a1["open_orders"]] == [
        ("b-0.1", "1", "60", "40")]
    assert (a1["reserved"], a1["buying_power"]) == ("400.00", "99000.00")
    assert rep["totals"] == {"trades": 1, "bought": "600", "sold": "0"}
    assert [s["ref"] for s in rep["settlements_due_next"]] == ["b-0.1|E1"]
    assert a2["open_orders"][0]["txn"] == "b-0.2" and a2["positions"] == []
    wed_rep = end_of_day_report(records, dt.date(2024, 3, 6))
    assert wed_rep["totals"]["trades"] == 1 and wed_rep["accounts"][0]["cash"]["traded"] == "99389"
    out = format_report_text(rep)
    assert "END OF DAY 2024-03-05" in out and "b-0.1" in out and "ACC2" in out


# ---- property: the books are a function of the set of records ------------------------------

@st.composite
def firm_records(draw: st.DrawFn) -> list[Record]:
    out: list[Record] = [acct("ACC1", AAPL="100"), acct("ACC2", cash="5000", at=-50, seq=2)]
    n = draw(st.integers(1, 6))
    for i in range(n):
        txn = f"p-0.{i}"
        account = draw(st.sampled_from(["ACC1", "ACC2"]))
        side = draw(st.sampled_from(["1", "2"]))
        qty = draw(st.integers(1, 50))
        base_t = draw(st.integers(0, 4 * 86400))
        terms: dict[str, Any] = {"txn": txn, "account": account, "side": side, "order_qty": D(qty)}
        if draw(st.booleans()):
            out.append(rec(T.ORDER, base_t, **terms))
        left = qty
        for j in range(draw(st.integers(0, 3))):
            q = min(left, draw(st.integers(1, 20)))
            if q == 0:
                break
            left -= q
            px = draw(st.sampled_from(["9.99", "10", "10.01"]))
            for node in draw(st.sampled_from([["ssu1"], ["ssu2"], ["ssu1", "ssu2"]])):
                out.append(fill(base_t + j + 1 + (node == "ssu2"), q, px, f"E{j}", origin=node, **terms))
        if draw(st.booleans()):
            out.append(rec(T.CANCELED, base_t + 2, **terms))
    # settle some of what is due by some date
    b = Books.from_records(out)
    when = TUE + dt.timedelta(days=draw(st.integers(0, 6)))
    for k, s in enumerate(settlements_due(b, when)):
        if draw(st.booleans()):
            out.append(settled_record(s, origin="firm", seq=1_000_000 + k,
                                      hlc=Hlc(T0 + (k + 1) * 86400 * SECOND, 0, "firm")))
    return out


def snapshot(b: Books) -> Any:
    return (b.accounts(), b.trades(), b.anomalies,
            [(a, b.cash(a), b.positions(a), b.reserved(a), b.buying_power(a), b.sellable(a, "AAPL"))
             for a in b.accounts()])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=firm_records(), data=st.data())
def test_books_do_not_depend_on_order_or_duplicates(records: list[Record], data: st.DataObject) -> None:
    expected = Books.from_records(records)
    again = data.draw(st.permutations(records)) + data.draw(st.lists(st.sampled_from(records), max_size=5))
    assert snapshot(Books.from_records(again)) == snapshot(expected)
    day = TUE + dt.timedelta(days=data.draw(st.integers(0, 5)))
    assert end_of_day_report(again, day) == end_of_day_report(records, day)
    # conservation: every trade moves cash and shares by the same notional / quantity
    for a in expected.accounts():
        trades = expected.trades(a)
        c = expected.cash(a)
        assert c.traded - c.opening == sum((t.cash_delta for t in trades), D(0))
        assert c.settled - c.opening == sum((t.cash_delta for t in trades if t.settled), D(0))
