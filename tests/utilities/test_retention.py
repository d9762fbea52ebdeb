"""Balances carried forward and the retention rule (utilities/books.py, utilities/retention.py).

The property that lets a node remove old orders from its live log: with the firm's carry
records, the books, a customer utility's ledger and its risk view of every record equal those
of the records left once the orders :func:`utilities.retention.removable` picks are gone, in
any order the records come.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replication.archive import archive_files
from replication.codec import encode_record
from replication.hlc import Hlc
from replication.log import RecordLog
from replication.record import Record, Role
from replication.record import RecordType as T
from tests.utilities.support_orderrecs import SECOND, T0, fill, rec
from utilities.books import (
    Books,
    account_opening,
    account_record,
    carry_extra,
    settled_record,
    settlements_due,
)
from utilities.positions import AccountLedger, last_prices
from utilities.retention import Retention, carried_to, cutoff_day, plan, removable
from utilities.risk import RiskView

D = Decimal
TUE = dt.date(2024, 3, 5)      # T0 is Tuesday 2024-03-05 10:00 New York
DAY_S = 86400
_firm_seq = itertools.count(1)


def at_day(day: dt.date, hour_ny: int = 12) -> Hlc:
    """A firm clock reading at ``hour_ny`` o'clock New York (EST, UTC-5) on ``day``."""
    wall = T0 + ((day - TUE).days * DAY_S + (hour_ny - 10) * 3600) * SECOND
    return Hlc(wall, 0, "firm")


def opening_record(account: str, cash: str, **positions: str) -> Record:
    return account_record(origin="firm", seq=next(_firm_seq), hlc=Hlc(T0 - 3600 * SECOND, 0, "firm"),
                          account=account, cash=D(cash), positions={k: D(v) for k, v in positions.items()},
                          extra={"max_notional": D("500000")})


def settle_all(records: list[Record], on: dt.date) -> list[Record]:
    """The firm's SETTLED records of every trade due by ``on``, stamped that day."""
    return [settled_record(s, origin="firm", seq=next(_firm_seq), hlc=at_day(on, 9))
            for s in settlements_due(records, on)]


def carries(records: list[Record], as_of: dt.date, stamp: Hlc) -> list[Record]:
    """What the firm writes to carry every account's balances to the end of ``as_of``."""
    books = Books.from_records(records)
    out = []
    for acct in books.accounts():
        if books.opening(acct) is None:
            continue
        extra: dict[str, Any] = {"max_notional": D("500000"), **carry_extra(books, acct, as_of)}
        out.append(Record(origin="firm", seq=next(_firm_seq), txn=f"account:{acct}", type=T.ACCOUNT, status="open",
                          hlc=stamp, account=acct, extra=extra))
    return out


def figures(b: Books) -> Any:
    """What a carry must not change: every account's traded and settled amounts, reservations,
    buying power and what it may sell, and the symbols' last prices (not the opening fields)."""
    out = []
    for a in b.accounts():
        c = b.cash(a)
        out.append((a, c.traded, c.settled, b.reserved(a), b.buying_power(a),
                    {p.symbol: (p.traded, p.settled) for p in b.positions(a) if p.traded or p.settled},
                    b.sellable(a, "AAPL"), b.sellable(a, "MSFT")))
    return out, last_prices(b)


def ledger_figures(led: AccountLedger, account: str) -> Any:
    v = led.view(account)
    bal = v.balance
    return ({p.symbol: (p.traded, p.settled, p.price) for p in v.positions if p.traded or p.settled},
            bal.cash, bal.settled, bal.reserved, bal.buying_power)


def books_view_figures(b: Books, account: str) -> Any:
    prices = last_prices(b)
    c = b.cash(account)
    return ({p.symbol: (p.traded, p.settled, prices.get(p.symbol, D(0))) for p in b.positions(account)
             if p.traded or p.settled},
            c.traded, c.settled, b.reserved(account), b.buying_power(account))


def ledger_over(records: list[Record]) -> AccountLedger:
    led = AccountLedger()
    led.source = lambda txn, want=None: [r for r in records if r.txn == txn and (want is None or want(r.origin, r.seq))]
    for r in records:
        led.add(r)
    return led


def risk_over(records: list[Record]) -> RiskView:
    view = RiskView()
    for r in records:
        view.apply(r)
    return view


def removed(records: list[Record], cutoff: dt.date) -> tuple[list[Record], set[str]]:
    """The records left once every order the rule picks at ``cutoff`` is gone, and those orders."""
    by_txn: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_txn[r.txn].append(r)
    carried = {acct: carried_to(rs) for acct, rs in _accounts(records).items()}
    gone = {txn for txn, rs in by_txn.items() if removable(txn, rs, cutoff, carried)}
    return [r for r in records if r.txn not in gone], gone


def _accounts(records: list[Record]) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        if r.type is T.ACCOUNT:
            out[r.account].append(r)
    return out


@st.composite
def history(draw: st.DrawFn) -> tuple[list[Record], dt.date, list[dt.date]]:
    """Orders over two weeks of two accounts (some filled by two street utilities, some
    canceled, some left open), settled through a day; the cutoffs to carry to, in order."""
    out: list[Record] = [opening_record("ACC1", "100000", AAPL="100"), opening_record("ACC2", "5000")]
    for i in range(draw(st.integers(1, 8))):
        txn = f"p-0.{i}"
        account = draw(st.sampled_from(["ACC1", "ACC2"]))
        side = draw(st.sampled_from(["1", "2"]))
        symbol = draw(st.sampled_from(["AAPL", "MSFT"]))
        qty = draw(st.integers(1, 50))
        base_t = draw(st.integers(0, 9)) * DAY_S + draw(st.integers(0, 5 * 3600))
        terms: dict[str, Any] = {"txn": txn, "account": account, "side": side, "symbol": symbol, "order_qty": D(qty)}
        out.append(rec(T.ORDER, base_t, **terms))
        left = qty
        for j in range(draw(st.integers(0, 3))):
            q = min(left, draw(st.integers(1, 30)))
            if q == 0:
                break
            left -= q
            px = draw(st.sampled_from(["9.99", "10", "10.01"]))
            for node in draw(st.sampled_from([["ssu1"], ["ssu2"], ["ssu1", "ssu2"]])):
                out.append(fill(base_t + j + 1 + (node == "ssu2"), q, px, f"{txn}-E{j}", origin=node,
                                status="2" if left == 0 else "1", **terms))
        if left and draw(st.booleans()):
            out.append(rec(T.CANCELED, base_t + 10, status="4", **terms))
    settled_through = TUE + dt.timedelta(days=draw(st.integers(0, 14)))
    day = TUE
    while day <= settled_through:       # the firm settles each day what is due that day
        out += settle_all(out, day)
        day += dt.timedelta(days=1)
    first = TUE + dt.timedelta(days=draw(st.integers(-1, 13)))
    cutoffs = [min(first, settled_through)]
    if draw(st.booleans()):
        cutoffs.append(min(cutoffs[0] + dt.timedelta(days=draw(st.integers(1, 4))), settled_through))
    return out, settled_through, cutoffs


def carried(records: list[Record], settled_through: dt.date, cutoffs: list[dt.date]) -> list[Record]:
    """``records`` with the firm's carries to each cutoff, written after everything."""
    out = list(records)
    for k, c in enumerate(cutoffs):
        out += carries(out, c, at_day(settled_through + dt.timedelta(days=1), 9 + k))
    return out


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=history(), seed=st.integers(0, 2**32 - 1))
def test_removing_what_the_rule_picks_changes_no_balance(h: tuple[list[Record], dt.date, list[dt.date]],
                                                        seed: int) -> None:
    records, settled_through, cutoffs = h
    expected = Books.from_records(records)
    full = carried(records, settled_through, cutoffs)
    left, _gone = removed(full, cutoffs[-1])
    assert figures(Books.from_records(full)) == figures(expected)
    assert figures(Books.from_records(left)) == figures(expected)
    rng = random.Random(seed)
    for rs in (full, left):
        shuffled = rs[:]
        rng.shuffle(shuffled)
        led = ledger_over(shuffled)
        for a in ("ACC1", "ACC2"):
            assert ledger_figures(led, a) == books_view_figures(expected, a)
    # the risk view: records in clock order, as a customer utility mostly hears them
    def clock(r: Record) -> tuple[int, int, str, str, int]:
        return (r.hlc.wall_ns, r.hlc.logical, r.hlc.node, r.origin, r.seq)
    whole = risk_over(sorted(records, key=clock))
    for rs in (full, left):
        view = risk_over(sorted(rs, key=clock))
        for a in ("ACC1", "ACC2"):
            assert view.buying_power(a) == whole.buying_power(a)
            for sym in ("AAPL", "MSFT"):
                assert view.sellable(a, sym) == whole.sellable(a, sym)


def test_a_week_of_orders_carried_and_removed() -> None:
    """Tuesday to the next Tuesday: by Friday's carry, Tuesday's and Wednesday's finished and
    settled orders go; an order still open and one filled Thursday (settles Friday) stay."""
    full, wed = week()
    fri = TUE + dt.timedelta(days=3)
    rs = [r for r in full if "as_of" not in r.extra]
    left, gone = removed(full, wed)
    assert gone == {"c-0.1", "c-0.2"}
    carry = account_opening(full[-1])
    assert (carry.as_of, carry.cash, carry.cash_settled, carry.positions) == (wed, D(99900), D(99900), {"AAPL": D(110)})
    assert carry.last_px["AAPL"][1] == D(10)
    for rs_ in (full, left):
        b = Books.from_records(rs_)
        assert (b.cash("ACC1").traded, b.position("ACC1", "AAPL").traded) == (D(99790), D(120))
        assert b.reserved("ACC1") == 10 * D("10.00")
        assert last_prices(b)["AAPL"] == D(11)
    # Thursday's fill settles Friday: carried to Friday, c-0.4 may go as well
    full2 = full + carries(full, fri, at_day(fri, 19))
    assert removed(full2, fri)[1] == {"c-0.1", "c-0.2", "c-0.4"}
    # not carried far enough: a filled order stays; one that never traded goes
    assert removed(rs, wed)[1] == {"c-0.2"}


def week() -> tuple[list[Record], dt.date]:
    """The records of :func:`test_a_week_of_orders_carried_and_removed`, carried to Wednesday."""
    terms: dict[str, Any] = {"account": "ACC1", "symbol": "AAPL", "side": "1", "order_qty": D(10)}
    rs = [opening_record("ACC1", "100000", AAPL="100"),
          rec(T.ORDER, 0, txn="c-0.1", **terms), fill(1, 10, "10", "E1", txn="c-0.1", status="2", **terms),
          rec(T.ORDER, DAY_S, txn="c-0.2", **terms), rec(T.CANCELED, DAY_S + 5, txn="c-0.2", status="4", **terms),
          rec(T.ORDER, DAY_S + 60, txn="c-0.3", **terms),
          rec(T.ORDER, 2 * DAY_S, txn="c-0.4", **terms), fill(2 * DAY_S + 1, 10, "11", "E2", txn="c-0.4",
                                                             status="2", **terms)]
    # the firm's end of day of Tuesday, written just after midnight (before Wednesday's settlements)
    rs.append(Record(origin="firm", seq=next(_firm_seq), txn="eod:2024-03-05", type=T.END_OF_DAY, status="done",
                     hlc=at_day(TUE + dt.timedelta(days=1), 1), extra={"accounts": 1}))
    for k in (1, 2, 3):
        rs += settle_all(rs, TUE + dt.timedelta(days=k))
    wed = TUE + dt.timedelta(days=1)
    return rs + carries(rs, wed, at_day(TUE + dt.timedelta(days=3), 18)), wed


def test_plan_reads_a_real_log_up_to_the_cutoff_and_picks_what_the_rule_picks(tmp_path: Path) -> None:
    rs, wed = week()
    roles = {"cfu1": Role.CUSTOMER, "ssu1": Role.STREET, "firm": Role.FIRM}
    with RecordLog(tmp_path, node_id="cfu2", role=Role.CUSTOMER) as log:
        with log.write() as batch:
            for origin, role in roles.items():
                mine = sorted((r for r in rs if r.origin == origin), key=lambda r: r.seq)
                batch.insert(role, [(r, encode_record(r)) for r in mine])
        got = plan(log, wed)
    assert got.by_day == {wed: ["c-0.1", "c-0.2"]} and got.orders == 2     # c-0.1 settled Wednesday
    # the firm's records the carry supersedes: the account's first opening, Tuesday's end of day
    opening = next(r for r in rs if r.type is T.ACCOUNT)
    eod = next(r for r in rs if r.type is T.END_OF_DAY)
    assert got.superseded == {TUE: [(opening.origin, opening.seq), (eod.origin, eod.seq)]}
    assert (got.candidates, got.kept) == (3, 1)            # c-0.3 is open; c-0.4 is Thursday's
    # each origin is read up to its first record stamped after the cutoff, not to its end
    assert got.scanned < len(rs)


async def test_a_pass_plans_in_a_child_process_and_archives(tmp_path: Path) -> None:
    """The node's pass: the plan made by ``python -m utilities.retention plan`` on a read-only
    open equals the plan made in process; then the orders go to their day's archive file."""
    rs, wed = week()
    roles = {"cfu1": Role.CUSTOMER, "ssu1": Role.STREET, "firm": Role.FIRM}
    with RecordLog(tmp_path, node_id="cfu2", role=Role.CUSTOMER) as log:
        with log.write() as batch:
            for origin, role in roles.items():   # contiguous seqs from 1, as an origin writes them
                mine = sorted((r for r in rs if r.origin == origin), key=lambda r: r.seq)
                batch.insert(role, [(r, encode_record(r)) for r in (x.replace(seq=i) for i, x in enumerate(mine, 1))])
        ret = Retention(log, keep_days=2, today=lambda: wed + dt.timedelta(days=5))   # Monday: cutoff Wednesday
        assert ret.anything_by(wed) and not ret.anything_by(TUE - dt.timedelta(days=1))
        got = await ret.plan_in_child(wed)
        assert got == plan(log, wed)
        ret.run_once(got)
        assert ret.counters == {"retention_passes": 1, "archived_orders": 2, "archived_records": len(
            [r for r in rs if r.txn in ("c-0.1", "c-0.2")]) + 2}     # and the two superseded firm records
        assert [r.extra.get("as_of") for r in log.records_for_txn("account:ACC1")] == ["2024-03-06"]
        assert not log.records_for_txn("c-0.1") and log.records_for_txn("c-0.3")
        assert [f.name for f in archive_files(tmp_path)] == ["cfu2.2024-03-05.fxar", "cfu2.2024-03-06.fxar"]
        assert ret.run_once().orders == 0      # nothing more to go


def test_a_carry_is_not_undone_by_an_older_account_record() -> None:
    rs = [opening_record("ACC1", "100000")]
    carry = carries(rs, TUE, at_day(TUE, 20))
    late = account_record(origin="firm", seq=next(_firm_seq), hlc=at_day(TUE + dt.timedelta(days=2)),
                          account="ACC1", cash=D(1), positions={})
    b = Books.from_records([*rs, *carry, late])
    assert b.opening("ACC1") == account_opening(carry[0])
    with pytest.raises(ValueError, match="carried to 2024-03-05 already"):
        carry_extra(b, "ACC1", TUE - dt.timedelta(days=1))


def test_a_bad_carry_field_is_an_anomaly_naming_the_key() -> None:
    bad = Record(origin="firm", seq=next(_firm_seq), txn="account:ACC1", type=T.ACCOUNT, status="open",
                 hlc=at_day(TUE), account="ACC1", extra={"cash": D(5), "as_of": "last tuesday"})
    b = Books.from_records([bad])
    assert any("extra['as_of']" in a and "ISO date" in a for a in b.anomalies)


@pytest.mark.parametrize(("today", "keep", "cutoff"), [
    (dt.date(2024, 3, 6), 2, dt.date(2024, 3, 1)),     # Wednesday: keep Tue, Mon -> Friday
    (dt.date(2024, 3, 4), 2, dt.date(2024, 2, 28)),    # Monday: keep Fri, Thu -> Wednesday
    (dt.date(2024, 3, 9), 0, dt.date(2024, 3, 8)),     # Saturday, keep none: Friday
    (dt.date(2024, 3, 6), 1, dt.date(2024, 3, 4)),
])
def test_cutoff_day_counts_trading_days(today: dt.date, keep: int, cutoff: dt.date) -> None:
    assert cutoff_day(today, keep) == cutoff
    assert cutoff_day(dt.date(2024, 3, 6), 2, holidays={dt.date(2024, 3, 4)}) == dt.date(2024, 2, 29)
