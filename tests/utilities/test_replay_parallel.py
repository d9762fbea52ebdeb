"""A replay split over processes, and the books merged from parts, equal the one-process answer.

A day of varied orders (filled, partly filled and open, canceled, open at market, settled, one
settlement filed under another order's txn, a fill with no account) written to a real LMDB log:
``replay_log`` with 1, 2 and 3 processes gives the same JSON, trades and anomalies, whole and as
of a moment; ``Books.merge`` of any split by txn equals ``Books.from_records``; the cached trade
dates equal ``trade_date_of`` across both DST changes.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from pathlib import Path

import lmdb
import pytest

from replication.codec import encode_record
from replication.hlc import Hlc
from replication.log import RecordLog, record_key
from replication.record import Record, RecordType, Role
from utilities.books import (
    Books,
    BooksPart,
    TradeDays,
    account_record,
    settlement_date,
    trade_date_of,
)
from utilities.errors import InvalidValue
from utilities.replay import (
    PARALLEL_MIN_RECORDS,
    PARALLEL_WORKERS,
    PARENT_SHARE,
    ReplayError,
    default_workers,
    replay_log,
    to_json,
)

T0 = 1_796_400_000_000_000_000  # 2026-12-04, a trading day
SECOND = 1_000_000_000
ACCOUNTS = ("ACC1", "ACC2", "ACC3")
SYMBOLS = ("AAPL", "MSFT", "IBM")


def _day(orders: int, seed: int) -> list[Record]:
    rng = random.Random(seed)
    seqs: dict[str, int] = {}

    def r(origin: str, txn: str, type_: RecordType, at: int, **fields: object) -> Record:
        seqs[origin] = seqs.get(origin, 0) + 1
        return Record(origin=origin, seq=seqs[origin], txn=txn, type=type_, status=str(fields.pop("status", "0")),
                      hlc=Hlc(T0 + at * SECOND, 0, origin), **fields)  # type: ignore[arg-type]

    out = [account_record(origin="firm", seq=i + 1, hlc=Hlc(T0 - SECOND, 0, "firm"), account=a,
                          cash=Decimal(1_000_000), positions={"AAPL": Decimal(50)})
           for i, a in enumerate(ACCOUNTS)]
    seqs["firm"] = len(ACCOUNTS)
    fills: list[tuple[str, Record]] = []
    for i in range(orders):
        txn = f"cfu1-0.{i + 1}"
        at = 10 * i
        market = rng.random() < 0.1
        terms: dict[str, object] = {
            "account": "" if i == 7 else rng.choice(ACCOUNTS), "symbol": rng.choice(SYMBOLS),
            "side": rng.choice("12"), "order_qty": Decimal(100), "price": None if market else Decimal(rng.choice(["9.5", "10", "10.25"])),
            "ord_type": "1" if market else "2", "cl_ord_id": f"C{i}", "venue": "exchange", "session": "CLIENT1"}
        out.append(r("cfu1", txn, RecordType.ORDER, at, status="A", **terms))
        out.append(r("ssu1", txn, RecordType.VENUE_ACK, at + 1, venue_order_id=f"V{i}", **terms))
        shape = "filled" if i == 7 else rng.choice(["filled", "partial", "canceled", "open"])
        if shape in ("filled", "partial"):
            qty = Decimal(100 if shape == "filled" else 40)
            f = r("ssu1", txn, RecordType.FILL, at + 2, status="2" if shape == "filled" else "1", exec_id=f"E{i}",
                  last_qty=qty, last_px=Decimal("10.10"), cum_qty=qty, avg_px=Decimal("10.10"), **terms)
            out.append(f)
            fills.append((txn, f))
        if shape == "canceled":
            out.append(r("ssu1", txn, RecordType.CANCELED, at + 3, status="4", **terms))
    # settlements: most under their own txn, one filed under another order's txn
    for n, (txn, f) in enumerate(fills[: len(fills) // 2]):
        filed_under = fills[-1][0] if n == 0 else txn
        out.append(r("firm", filed_under, RecordType.SETTLED, 100_000 + n, status="settled", account=f.account,
                     symbol=f.symbol, side=f.side, exec_id=f.exec_id, last_qty=f.last_qty, last_px=f.last_px,
                     extra={"fill_ref": f"{txn}|{f.exec_id}"}))
    return out


def _same_books(a: Books, b: Books) -> None:
    assert a.orders() == b.orders()
    assert a.trades() == b.trades()
    assert a.accounts() == b.accounts()
    assert a.anomalies == b.anomalies
    for acct in a.accounts():
        assert a.cash(acct) == b.cash(acct)
        assert a.positions(acct) == b.positions(acct)
        assert a.reserved(acct) == b.reserved(acct)
        for sym in SYMBOLS:
            assert a.sellable(acct, sym) == b.sellable(acct, sym)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_books_merged_from_any_split_by_txn_equal_the_books_of_all_records(seed: int) -> None:
    records = _day(60, seed)
    whole = Books.from_records(records)
    assert any(t.settled for t in whole.trades()) and whole.anomalies  # the day has both
    rng = random.Random(seed)
    txns = sorted({r.txn for r in records})
    parts: list[list[Record]] = [[], [], []]
    where = {t: rng.randrange(len(parts)) for t in txns}
    for rec in records:
        parts[where[rec.txn]].append(rec)
    _same_books(Books.merge([BooksPart.of(p) for p in parts]), whole)


def test_a_txn_in_two_parts_is_refused() -> None:
    records = _day(4, 1)
    with pytest.raises(InvalidValue, match="more than one part"):
        Books.merge([BooksPart.of(records), BooksPart.of(records)])


@pytest.fixture(scope="module")
def day_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("replay_parallel") / "cfu1"
    records = _day(400, 7)
    by_role = {"cfu1": Role.CUSTOMER, "ssu1": Role.STREET, "firm": Role.FIRM}
    with RecordLog(path, node_id="cfu1", role=Role.CUSTOMER, sync=False) as log, log.write() as batch:
        for origin, role in by_role.items():
            out = batch.insert(role, [(r, encode_record(r)) for r in records if r.origin == origin])
            assert not out.rejected
    return path, T0 + 2000 * SECOND


def test_a_replay_over_two_or_three_processes_equals_the_replay_in_one(day_log: tuple[Path, int]) -> None:
    path, middle = day_log
    for until in (None, middle):
        one = replay_log(path, until_ns=until, workers=1)
        assert one.workers == 1 and one.records_read > 1000
        for n in (2, 3):
            split = replay_log(path, until_ns=until, workers=n)
            assert split.workers == n
            assert to_json(split) == to_json(one)
            _same_books(split.books, one.books)
    with RecordLog(path, readonly=True) as log:
        bounds = log.txn_bounds(3)
        held = {k for k, _ in log.iter_txn_range(None, None)}
        runs = [{k for k, _ in log.iter_txn_range(a, b)}
                for a, b in zip([None, *bounds], [*bounds, None], strict=True)]
        assert len(held) == log.count()
    assert len(bounds) == 2 and bounds == sorted(bounds)
    assert set().union(*runs) == held and sum(len(x) for x in runs) == len(held)  # a partition


def test_cached_trade_dates_equal_trade_date_of_across_dst_changes() -> None:
    days = TradeDays(frozenset({dt.date(2026, 11, 26)}))
    for start in (dt.datetime(2026, 3, 7, tzinfo=dt.UTC), dt.datetime(2026, 10, 30, tzinfo=dt.UTC),
                  dt.datetime(2026, 11, 24, tzinfo=dt.UTC)):
        base = int(start.timestamp())
        for minutes in range(0, 4 * 24 * 60, 17):
            hlc = Hlc((base + minutes * 60) * SECOND, 0, "ssu1")
            td = trade_date_of(hlc)
            assert days.of(hlc) == (td, settlement_date(td, {dt.date(2026, 11, 26)}))


def test_a_second_process_only_for_a_big_log_and_an_idle_core() -> None:
    assert default_workers(PARALLEL_MIN_RECORDS, cores=2, load=0.5) == 2
    assert default_workers(PARALLEL_MIN_RECORDS - 1, cores=2, load=0.5) == 1
    assert default_workers(PARALLEL_MIN_RECORDS, cores=2, load=1.5) == 1  # no idle core
    assert default_workers(PARALLEL_MIN_RECORDS, cores=1, load=0.0) == 1
    assert default_workers(10 * PARALLEL_MIN_RECORDS, cores=8, load=1.0) == PARALLEL_WORKERS


def test_a_record_that_does_not_decode_in_the_helpers_range_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "cfu1"
    records = _day(40, 5)
    with RecordLog(path, node_id="cfu1", role=Role.CUSTOMER, sync=False) as log, log.write() as batch:
        for origin, role in {"cfu1": Role.CUSTOMER, "ssu1": Role.STREET, "firm": Role.FIRM}.items():
            batch.insert(role, [(r, encode_record(r)) for r in records if r.origin == origin])
    with RecordLog(path, readonly=True) as log:
        bounds = log.txn_bounds(2, PARENT_SHARE)
    last = max((r for r in records if r.origin == "ssu1" and r.txn >= bounds[0]), key=lambda r: r.seq)
    # the helper's range (the second) holds a record whose bytes are not a record
    with lmdb.open(str(path), max_dbs=8, subdir=True) as env:
        db = env.open_db(b"ro", create=False)
        with env.begin(write=True, db=db) as txn:
            assert txn.put(record_key("ssu1", last.seq), b"\x00not msgpack")
    with pytest.raises(ReplayError, match="does not decode"):
        replay_log(path, workers=2)
