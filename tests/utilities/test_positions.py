"""Positions and balances of one account (utilities/positions.py) and the customer utility's
answers built from them (utilities/account_inquiries.py), in-process with frozen dates."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import itertools
import pickle
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixgw.config import SessionID
from fixgw.message import Message
from replication.hlc import Hlc
from replication.log import KeyFilter
from replication.record import Record
from replication.record import RecordType as T
from tests.utilities.support_orderrecs import SECOND, T0, fill, rec
from tests.utilities.test_books_ledger import firm_records
from utilities.account_inquiries import AccountInquiries
from utilities.books import Books, account_record, settled_record, settlements_due
from utilities.firm import books_summary
from utilities.positions import (
    AccountLedger,
    AddedRecords,
    TxnRecords,
    account_view,
    account_view_of,
)
from utilities.snapshot import CustomerState, decode, encode

D = Decimal
DAY = dt.date(2024, 3, 5)
_seq = itertools.count(5000)


def opening(account: str, cash: str, **positions: str) -> Record:
    return account_record(origin="firm", seq=next(_seq), hlc=Hlc(T0 - 3600 * SECOND, 0, "firm"), account=account,
                          cash=D(cash), positions={k: D(v) for k, v in positions.items()})


def records() -> list[Record]:
    """ACC1: opens with 50 AAPL, buys 60 AAPL @10 (settled), sells 20 MSFT short @12.5, has an open
    buy of 40 AAPL @11; ACC2 (another customer) buys 5 AAPL @ 11."""
    rs = [
        opening("ACC1", "100000", AAPL="50"), opening("ACC2", "5000"),
        rec(T.ORDER, 1, txn="c-0.1"), fill(2, 60, "10", "E1", txn="c-0.1", status="1"),
        rec(T.ORDER, 3, txn="c-0.2", side="2", symbol="MSFT", cl_ord_id="C2", order_qty=D(20)),
        fill(4, 20, "12.5", "E2", txn="c-0.2", side="2", symbol="MSFT", order_qty=D(20), status="2"),
        rec(T.ORDER, 5, txn="c-0.3", cl_ord_id="C3", order_qty=D(40), price=D(11)),
        rec(T.ORDER, 6, txn="c-0.4", account="ACC2", session="CLIENT2", cl_ord_id="K1", order_qty=D(5)),
        fill(7, 5, "11", "E3", txn="c-0.4", account="ACC2", session="CLIENT2", order_qty=D(5), status="2"),
    ]
    s = next(x for x in settlements_due(rs, DAY + dt.timedelta(days=1)) if x.exec_id == "E1")
    rs.append(settled_record(s, origin="firm", seq=next(_seq), hlc=Hlc(T0 + 10 * SECOND, 0, "firm")))
    return rs


def test_account_view_agrees_with_the_firm_books() -> None:
    rs = records()
    summary = books_summary(Books.from_records(rs))
    for acct in ("ACC1", "ACC2"):
        v = account_view_of(rs, acct)
        s = summary[acct]
        assert {p.symbol: format(p.traded, "f") for p in v.positions} == s["positions"]
        assert (format(v.balance.cash, "f"), format(v.balance.settled, "f"), format(v.balance.buying_power, "f")) == \
            (s["cash"], s["cash_settled"], s["buying_power"])
    v = account_view_of(rs, "ACC1")
    by = {p.symbol: p for p in v.positions}
    assert (by["AAPL"].opening, by["AAPL"].traded, by["AAPL"].settled) == (D(50), D(110), D(110))
    assert (by["AAPL"].long_qty, by["AAPL"].short_qty) == (D(110), D(0))
    assert (by["MSFT"].traded, by["MSFT"].long_qty, by["MSFT"].short_qty, by["MSFT"].settled) == (D(-20), D(0), D(20), D(0))
    # AAPL's last trade is ACC2's at 11; MSFT's ACC1's own at 12.5
    assert (by["AAPL"].price, by["MSFT"].price) == (D(11), D("12.5"))
    assert v.balance.cash == D(100000) - 600 + 250
    assert v.balance.settled == D(100000) - 600
    assert v.balance.buying_power == v.balance.cash - 40 * 10 - 40 * 11   # c-0.1 leaves 40 @ 10, c-0.3 40 @ 11
    assert account_view_of(rs, "NOBODY").positions == ()


@settings(max_examples=40, deadline=None)
@given(st.permutations(range(len(records()))), st.lists(st.integers(0, len(records()) - 1), max_size=5))
def test_account_view_does_not_depend_on_record_order_or_duplicates(order: list[int], dups: list[int]) -> None:
    rs = records()
    shuffled = [rs[i] for i in order] + [rs[i] for i in dups]
    assert account_view_of(shuffled, "ACC1") == account_view_of(rs, "ACC1")


def with_open_market_buy() -> list[Record]:
    """records() + an open market buy of ACC1 (reserved at AAPL's last trade, ACC2's) and an
    AAPL fill without the account named (booked on its order's account by the fold)."""
    return [*records(), rec(T.ORDER, 8, txn="c-0.5", cl_ord_id="C5", ord_type="1", price=None, order_qty=D(7)),
            rec(T.ORDER, 9, txn="c-0.6", account="ACC2", session="CLIENT2", cl_ord_id="K2", order_qty=D(3)),
            fill(10, 3, "11.5", "E4", txn="c-0.6", terms=False, status="2")]


def by_txn_of(rs: list[Record]) -> TxnRecords:
    """records_for_txn over ``rs`` (as the log reads them: only the keys ``want`` accepts)."""
    def read(txn_id: str, want: KeyFilter | None = None) -> list[Record]:
        return [r for r in rs if r.txn == txn_id and (want is None or want(r.origin, r.seq))]
    return read


def ledger_of(rs: list[Record]) -> AccountLedger:
    led = AccountLedger()
    led.source = by_txn_of(rs)
    return led


@settings(max_examples=40, deadline=None)
@given(st.permutations(range(len(with_open_market_buy()))), st.sampled_from(["ACC1", "ACC2", "NOBODY"]))
def test_the_ledger_agrees_with_the_whole_fold(order: list[int], account: str) -> None:
    rs = with_open_market_buy()
    led = ledger_of(rs)
    for i in order:
        led.add(rs[i])
    assert led.view(account) == account_view_of(rs, account)


def test_reference_price_prices_only_an_untraded_symbol() -> None:
    rs = [opening("ACC1", "10", IBM="3")]
    books = Books.from_records(rs)
    assert account_view(books, "ACC1", reference_prices={"IBM": D(150)}).positions[0].price == D(150)
    assert account_view(books, "ACC1").positions[0].price == D(0)


# ---------------------------------------------------------------- the customer utility's answers

SID = SessionID("FIX.4.4", "CFU", "CLIENT1")


def inquiries(rs: list[Record]) -> tuple[AccountInquiries, list[tuple[SessionID, Message]]]:
    sent: list[tuple[SessionID, Message]] = []
    by_txn = by_txn_of(rs)
    inq = AccountInquiries(name="cfu1", customers={"CLIENT1": ("ACC1",), "CLIENT2": ("ACC2",)},
                           records_for_txn=by_txn, send=lambda sid, m: sent.append((sid, m)), today=lambda: DAY)
    for r in rs:
        inq.index(r)
    return inq, sent


def an(account: str = "ACC1", sub: str = "0", req: str = "R1", pos_type: str = "0") -> Message:
    return Message.new("AN", [(710, req), (724, pos_type), (263, sub), (1, account), (581, "1"),
                              (715, "20240305"), (60, "20240305-15:00:00.000")])


def test_positions_ack_and_one_report_per_instrument() -> None:
    rs = records()
    inq, sent = inquiries(rs)
    inq.on_request_for_positions(an(), SID)
    ack, *aps = [m for _, m in sent]
    assert ack.msg_type == b"AO" and ack.get_str(728) == "0" and ack.get_str(729) == "0" and ack.get_str(727) == "2"
    assert [(m.msg_type, m.get_str(55), m.get_str(710), m.get_str(325)) for m in aps] == \
        [(b"AP", "AAPL", "R1", "N"), (b"AP", "MSFT", "R1", "N")]
    aapl, msft = aps
    # PositionQty: SOD (opening) then FIN (now), LongQty/ShortQty
    assert list(zip(aapl.get_all(703), aapl.get_all(704), aapl.get_all(705), strict=True)) == \
        [(b"SOD", b"50", b"0"), (b"FIN", b"110", b"0")]
    assert list(zip(msft.get_all(703), msft.get_all(704), msft.get_all(705), strict=True)) == \
        [(b"SOD", b"0", b"0"), (b"FIN", b"0", b"20")]
    assert (aapl.get_str(730), aapl.get_str(715), aapl.get_str(708)) == ("11", "20240305", "1210")
    assert not inq.subscriptions


def test_refusals() -> None:
    inq, sent = inquiries(records())
    inq.on_request_for_positions(an(account="ACC2"), SID)           # another customer's
    inq.on_request_for_positions(an(pos_type="1"), SID)             # trades: not supported
    inq.on_request_for_positions(an(sub="2", req="NOPE"), SID)      # no such subscription
    inq.on_collateral_inquiry(Message.new("BB", [(909, "Q1"), (1, "ACC2")]), SID)
    got = [(m.msg_type, m.get_str(728) or m.get_str(946), m.get_str(729) or m.get_str(945)) for _, m in sent]
    assert got == [(b"AO", "3", "2"), (b"AO", "4", "2"), (b"AO", "1", "2"), (b"BG", "9", "4")]
    assert "may not use account ACC2" in (sent[0][1].get_str(58) or "")


def test_no_positions_and_balance() -> None:
    inq, sent = inquiries([opening("ACC1", "2500.50")])
    inq.on_request_for_positions(an(), SID)
    inq.on_collateral_inquiry(Message.new("BB", [(909, "Q1")]), SID)   # the session's one account
    (_, ack), (_, ba) = sent
    assert (ack.msg_type, ack.get_str(728), ack.get_str(729), ack.get_str(727)) == (b"AO", "2", "0", "0")
    assert ba.msg_type == b"BA"
    assert [ba.get_str(t) for t in (909, 1, 900, 901, 899, 921)] == ["Q1", "ACC1", "2500.5", "2500.5", "2500.5", "2500.5"]


def test_subscription_reports_a_fill_until_unsubscribed() -> None:
    rs = records()
    inq, sent = inquiries(rs)

    async def scenario() -> None:
        inq.on_request_for_positions(an(sub="1", req="S1"), SID)
        del sent[:]
        new = fill(20, 10, "10.5", "E9", txn="c-0.3", cl_ord_id="C3", order_qty=D(40), price=D(11), status="1")
        rs.append(new)
        inq.index(new)
        inq.on_record(new)
        inq.on_record(rec(T.ORDER, 21, txn="c-0.9", cl_ord_id="C9"))   # not a fill: nothing
        await asyncio.sleep(0)
        assert [(m.msg_type, m.get_str(55), m.get_str(710), m.get_str(325), m.get_all(704)[-1]) for _, m in sent] == \
            [(b"AP", "AAPL", "S1", "Y", b"120")]
        del sent[:]
        inq.on_request_for_positions(an(sub="2", req="S1"), SID)
        assert [(m.msg_type, m.get_str(728)) for _, m in sent] == [(b"AO", "0")]
        later = fill(30, 10, "10.5", "E10", txn="c-0.3", cl_ord_id="C3", order_qty=D(40), price=D(11), status="1")
        rs.append(later)
        inq.index(later)
        inq.on_record(later)
        await asyncio.sleep(0)
        assert len(sent) == 1

    asyncio.run(scenario())


# ---------------------------------------------------------------- the ledger against the whole fold

def _stray(s: Record, txn: str) -> Record:
    """``s`` (a SETTLED record) written again under another txn and key: it still names its fill."""
    return Record(origin="firm", seq=s.seq + 500_000, txn=txn, type=T.SETTLED, status=s.status,
                  hlc=Hlc(s.hlc.wall_ns + SECOND, 0, "firm"), account=s.account, symbol=s.symbol, side=s.side,
                  exec_id=s.exec_id, last_qty=s.last_qty, last_px=s.last_px, extra=dict(s.extra))


@st.composite
def ledger_histories(draw: st.DrawFn, market: bool = True) -> list[Record]:
    """The books' random histories (orders of two accounts, fills recorded by one street or
    both, cancels, some trades settled) and what else a customer utility meets: a corrected
    opening, a SETTLED record filed under another txn, a fill that names no terms, an open
    market buy priced by the last trade."""
    rs = list(draw(firm_records()))
    if draw(st.booleans()):
        rs.append(opening("ACC1", "90000", MSFT="7"))
    settled = [r for r in rs if r.type is T.SETTLED]
    if draw(st.booleans()) and settled:
        rs.append(_stray(draw(st.sampled_from(settled)), txn="p-0.0"))
    fills = [r for r in rs if r.type is T.FILL]
    if draw(st.booleans()) and fills:
        f = draw(st.sampled_from(fills))
        rs.append(fill(f.hlc.wall_ns / SECOND - T0 / SECOND + 0.5, 1, "10.02", "E9", origin="ssu2", txn=f.txn,
                       terms=False))
    if market and draw(st.booleans()):
        rs.append(rec(T.ORDER, 7 * 86400, txn="p-0.9", account="ACC2", ord_type="1", price=None, order_qty=D(3)))
    return rs


def _without_prices(v: Any) -> Any:
    return dataclasses.replace(v, positions=tuple(dataclasses.replace(p, price=D(0)) for p in v.positions))


def _snapshotted(led: AccountLedger) -> AccountLedger:
    """``led`` written into a customer snapshot and read back, as a restart reads it."""
    state = CustomerState.empty("cfu1", {})
    state.accounts = led
    back = decode(encode(state, {}, 0, {}), node="cfu1", reference_prices={}).state.accounts
    back.PENDING_TXNS = led.PENDING_TXNS
    return back


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=ledger_histories(market=False), data=st.data())
def test_the_ledger_books_records_in_any_order_as_the_whole_fold(records: list[Record], data: st.DataObject) -> None:
    """In any order, with duplicates, booking at any point (a small PENDING_TXNS), records
    committed to the log before the ledger is given them (another thread commits), and through
    snapshots: every account's quantities, cash, settlement and buying power are the whole fold's.
    Not the last trade prices (nor so a market order's reservation): see AccountLedger."""
    arrival = data.draw(st.permutations(records)) + data.draw(st.lists(st.sampled_from(records), max_size=4))
    visible: list[Record] = []
    led = AccountLedger()
    led.PENDING_TXNS = data.draw(st.integers(0, 3))
    source = by_txn_of(visible)
    led.source = source
    bulk = data.draw(st.booleans())    # as a start-up gives them: by key, read again when booked
    if bulk:
        led.BULK_PENDING_TXNS = data.draw(st.integers(0, 3))
    with led.bulk() if bulk else contextlib.nullcontext():
        i = 0
        while i < len(arrival):
            batch = arrival[i:i + data.draw(st.integers(1, 3))]
            visible.extend(batch)       # in the log before they reach add()
            for r in batch:
                led.add(r)
            if not bulk and data.draw(st.integers(0, 9)) == 0:
                led = _snapshotted(led)
                led.source = source
            i += len(batch)
    for account in ("ACC1", "ACC2", "NOBODY"):
        assert _without_prices(led.view(account)) == _without_prices(account_view_of(records, account))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=ledger_histories(), pending=st.integers(0, 3))
def test_records_in_clock_order_give_the_whole_folds_prices_too(records: list[Record], pending: int) -> None:
    """As records usually come (each in its clock's order), the price of every line too: the
    last trade of the symbol, any account's."""
    led = AccountLedger()
    led.PENDING_TXNS = pending
    led.source = by_txn_of(records)
    for r in sorted(records, key=lambda r: (r.hlc.wall_ns, r.hlc.logical, r.hlc.node, r.origin, r.seq)):
        led.add(r)
    for account in ("ACC1", "ACC2", "NOBODY"):
        assert led.view(account) == account_view_of(records, account)


def test_the_ledger_keeps_the_open_orders_and_not_the_history() -> None:
    """2,000 orders filled and settled: nothing of them stays but the totals; an open one does."""
    rs: list[Record] = [opening("ACC1", "1000000")]
    for i in range(2000):
        txn = f"h-0.{i}"
        rs += [rec(T.ORDER, i, txn=txn, cl_ord_id=f"H{i}", order_qty=D(10)),
               fill(i + 0.5, 10, "10", f"HE{i}", txn=txn, order_qty=D(10), status="2")]
    for k, s in enumerate(settlements_due(rs, DAY + dt.timedelta(days=1))):
        rs.append(settled_record(s, origin="firm", seq=900_000 + k, hlc=Hlc(T0 + 86400 * SECOND + k, 0, "firm")))
    rs.append(rec(T.ORDER, 3000, txn="h-0.open", cl_ord_id="HOPEN", order_qty=D(5), price=D(11)))
    led = ledger_of(rs)
    for r in rs:
        led.add(r)
    assert len(led.pending) <= led.PENDING_TXNS
    view = led.view("ACC1")
    assert view == account_view_of(rs, "ACC1")
    assert (view.positions[0].traded, view.positions[0].settled) == (D(20000), D(20000))
    assert list(led.live) == ["h-0.open"] and not led.pending and not led.strays
    assert view.balance.reserved == D(55)
    # what a snapshot holds of it: a few hundred bytes, not 6,001 records
    assert len(pickle.dumps(led.comparable()["totals"])) < 1000


def test_a_record_committed_before_it_is_added_is_booked_once() -> None:
    """The log's writer thread commits, then the event loop adds: an order booked in between
    (another order's add tipped the pending bound) must not count the fill it has not been given."""
    o = rec(T.ORDER, 1, txn="r-0.1", cl_ord_id="R1", order_qty=D(10))
    f = fill(2, 10, "10", "RE1", txn="r-0.1", order_qty=D(10), status="2")
    other = rec(T.ORDER, 3, txn="r-0.2", cl_ord_id="R2", order_qty=D(1))
    log = [o, f, other]                  # all three committed
    led = AccountLedger()
    led.PENDING_TXNS = 0
    led.source = by_txn_of(log)
    led.add(o)                           # booked at once: the fill is in the log, not added yet
    assert led.totals == {}
    led.add(other)
    led.add(f)
    assert led.view("ACC1").positions[0].traded == D(10)


def test_added_records_follow_gaps() -> None:
    seen = AddedRecords()
    for seq in (1, 2, 5, 3):
        seen.add("a", seq)
    assert [("a", s) in seen for s in range(1, 7)] == [True, True, True, False, True, False]
    seen.add("a", 4)
    assert seen.upto == {"a": 5} and seen.above == {}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=ledger_histories(), data=st.data())
def test_booking_a_whole_log_by_txn_gives_the_whole_fold(records: list[Record], data: st.DataObject) -> None:
    """From nothing (a first snapshot, a start-up without one) the ledger books each order once,
    whole, txn by txn in the index's order; the records after it come one by one as usual."""
    cut = data.draw(st.integers(0, len(records)))
    first, rest = records[:cut], records[cut:]
    upto: dict[str, int] = {}
    for r in first:
        upto[r.origin] = max(upto.get(r.origin, 0), r.seq)
    below = [r for r in records if r.seq <= upto.get(r.origin, 0)]
    groups: dict[str, list[Record]] = {}
    for r in sorted(below, key=lambda r: r.txn.encode()):
        groups.setdefault(r.txn, []).append(r)
    led = ledger_of(records)
    led.book_log(groups.items(), upto)
    assert not led.pending
    for r in rest:
        led.add(r)
    for account in ("ACC1", "ACC2", "NOBODY"):
        assert _without_prices(led.view(account)) == _without_prices(account_view_of(records, account))
    if not rest:   # each order booked once, whole: the prices too
        for account in ("ACC1", "ACC2"):
            assert led.view(account) == account_view_of(records, account)


def test_a_start_ups_tail_is_booked_a_slice_at_a_time() -> None:
    """A start-up leaves its tail's orders waiting by key (bulk); book_some books the oldest
    beyond PENDING_TXNS, a slice per call, until the backlog is gone; answers are right meanwhile."""
    rs: list[Record] = [opening("ACC1", "1000")]
    for i in range(6):
        rs += [rec(T.ORDER, i, txn=f"b-0.{i}", cl_ord_id=f"B{i}", order_qty=D(2)),
               fill(i + 0.5, 2, "10", f"BE{i}", txn=f"b-0.{i}", order_qty=D(2), status="2")]
    led = ledger_of(rs)
    led.PENDING_TXNS = 2
    with led.bulk():
        for r in rs:
            led.add(r)
    assert led.backlog == 4 and not led.totals
    assert led.book_some(3) == 1
    assert led.book_some(3) == 0 and len(led.pending) == 2
    assert led.view("ACC1") == account_view_of(rs, "ACC1") and not led.pending
