"""Property tests of the status fold: the answer is a function of the SET of records.

Two generators: arbitrary records of one order (any mix of types, clocks, exec ids and
ClOrdIDs, nothing consistent) for the invariants that must hold for ANY input, and a realistic
order flow (order, ack, fills, a cancel somewhere) whose full-set answer we know.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replication.hlc import Hlc
from replication.record import Record, RecordType
from tests.utilities.support_orderrecs import SECOND, T0
from utilities.status import ORDER_FLOW_TYPES, TERMINAL_STATUSES, executions, fold

D = Decimal
PROFILE = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ORIGINS = ("cfu1", "cfu2", "ssu1", "ssu2")
TYPES = sorted(ORDER_FLOW_TYPES, key=lambda t: t.value) + [RecordType.NOTE]


@st.composite
def arbitrary_record(draw: st.DrawFn) -> Record:
    origin = draw(st.sampled_from(ORIGINS))
    t = draw(st.sampled_from(TYPES))
    qty = st.none() | st.integers(0, 120).map(D)
    return Record(
        origin=origin, seq=1, txn="cfu1-0.1", type=t,
        status=draw(st.sampled_from(["", "0", "1", "2", "4", "8", "C"])),
        hlc=Hlc(T0 + draw(st.integers(0, 8)) * SECOND, draw(st.integers(0, 2)), origin),
        account=draw(st.sampled_from(["", "ACC1", "ACC2"])),
        symbol=draw(st.sampled_from(["", "AAPL"])),
        side=draw(st.sampled_from(["", "1", "2"])),
        order_qty=draw(st.none() | st.sampled_from([D(50), D(100)])),
        price=draw(st.none() | st.sampled_from([D("10"), D("10.5")])),
        cl_ord_id=draw(st.sampled_from(["", "C1", "C2", "X1"])),
        orig_cl_ord_id=draw(st.sampled_from(["", "C1", "C2"])),
        exec_id=draw(st.sampled_from(["", "E1", "E2", "E3"])),
        last_qty=draw(qty), last_px=draw(st.none() | st.sampled_from([D("9.5"), D("10"), D("10.25")])),
        cum_qty=draw(st.none() | st.integers(0, 120).map(D)),
        avg_px=draw(st.none() | st.sampled_from([D("10"), D("11")])),
        text=draw(st.sampled_from(["", "why"])),
        extra=draw(st.sampled_from([{}, {"street": "ssu2"}])),
    )


def keyed(records: list[Record]) -> list[Record]:
    """Give each record a unique key (origin, seq), as a log would."""
    seqs: dict[str, int] = {}
    out = []
    for r in records:
        seqs[r.origin] = seqs.get(r.origin, 0) + 1
        out.append(r.replace(seq=seqs[r.origin]))
    return out


records_sets = st.lists(arbitrary_record(), min_size=1, max_size=14).map(keyed)


@PROFILE
@given(records=records_sets, data=st.data())
def test_permutation_and_duplication_do_not_change_the_answer(records: list[Record], data: st.DataObject) -> None:
    expected = fold(records)
    shuffled = data.draw(st.permutations(records))
    dups = data.draw(st.lists(st.sampled_from(records), max_size=6))
    assert fold(list(shuffled) + dups) == expected
    assert fold(reversed(records)) == expected
    check_quantities(records)


@PROFILE
@given(records=records_sets, data=st.data())
def test_subsets_never_count_more_and_every_fill_held_is_counted(records: list[Record], data: st.DataObject) -> None:
    full = fold(records)
    subset = data.draw(st.lists(st.sampled_from(records), unique_by=lambda r: (r.origin, r.seq)))
    part = fold(subset)
    if part is None:
        assert all(r.type is RecordType.NOTE for r in subset)
        return
    assert full is not None
    assert part.cum_qty <= full.cum_qty
    assert part.exec_ids <= full.exec_ids
    for r in subset:
        if r.type is RecordType.FILL and r.last_qty is not None:
            assert part.cum_qty >= r.last_qty
        if r.type in ORDER_FLOW_TYPES and r.cum_qty is not None and r.type not in (
                RecordType.ORDER, RecordType.ORDER_REJECTED, RecordType.CANCEL_REQUEST,
                RecordType.REPLACE_REQUEST, RecordType.CANCEL_REJECTED_LOCAL, RecordType.ROUTED):
            assert part.cum_qty >= r.cum_qty  # a venue-reported CumQty is never forgotten


def check_quantities(records: list[Record]) -> None:
    """Invariants of any status: quantities add up, trading is never New or Rejected."""
    s = fold(records)
    if s is None:
        return
    assert s.cum_qty >= 0 and s.leaves_qty >= 0
    if s.is_terminal:
        assert s.leaves_qty == 0 and s.terminal_hlc is not None
    elif s.order_qty is not None:
        assert s.cum_qty + s.leaves_qty == s.order_qty
        assert s.cum_qty < s.order_qty
    if s.cum_qty > 0:
        assert s.ord_status not in ("A", "0", "8")  # something traded: never New or Rejected
    if s.ord_status == "2" and s.order_qty is not None:
        assert s.cum_qty >= s.order_qty
    assert s.last_hlc == max(r.hlc for r in records if r.type in ORDER_FLOW_TYPES)


# ---- realistic flow: ORDER, VENUE_ACK, fills (some recorded twice), maybe a CANCELED --------

@st.composite
def flow(draw: st.DrawFn) -> tuple[list[Record], str, D]:
    qty = draw(st.integers(1, 20))
    parts = draw(st.lists(st.integers(1, 10), min_size=0, max_size=5))
    fills: list[int] = []
    left = qty
    for p in parts:
        if left == 0:
            break
        fills.append(min(p, left))
        left -= fills[-1]
    n_events = 2 + len(fills) + 1
    times = draw(st.lists(st.integers(0, 10_000), min_size=n_events, max_size=n_events, unique=True))
    t_order, t_ack, t_cancel = sorted(times[:2]) + [times[2]]
    fill_times = sorted(times[3:])
    terms: dict[str, Any] = {"account": "ACC1", "symbol": "AAPL", "side": "1", "order_qty": D(qty),
                             "price": D(10), "cl_ord_id": "C1"}
    with_cancel = draw(st.booleans())

    def at(ms: int, node: str) -> Hlc:
        return Hlc(T0 + ms * 1_000_000, 0, node)

    recs = [Record(origin="cfu1", seq=1, txn="t-0.1", type=RecordType.ORDER, status="A",
                   hlc=at(t_order, "cfu1"), **terms),
            Record(origin="ssu1", seq=1, txn="t-0.1", type=RecordType.VENUE_ACK, status="0",
                   hlc=at(t_ack, "ssu1"), **terms)]
    seq = {"ssu1": 1, "ssu2": 1}
    first_copy: list[int] = []     # when each fill is first recorded (ssu2 records 7 ms later)
    for i, (q, ms) in enumerate(zip(fills, fill_times, strict=True)):
        copies = ["ssu1", "ssu2"] if draw(st.booleans()) else [draw(st.sampled_from(["ssu1", "ssu2"]))]
        first_copy.append(ms if "ssu1" in copies else ms + 7)
        for node in copies:
            seq[node] += 1
            recs.append(Record(origin=node, seq=seq[node], txn="t-0.1", type=RecordType.FILL, status="1",
                               hlc=at(ms + (7 if node == "ssu2" else 0), node), exec_id=f"E{i}",
                               last_qty=D(q), last_px=D(10), **terms))
    filled_at = max(first_copy) if sum(fills) == qty else None
    if with_cancel:
        seq["ssu1"] += 1
        recs.append(Record(origin="ssu1", seq=seq["ssu1"], txn="t-0.1", type=RecordType.CANCELED,
                           status="4", hlc=at(t_cancel, "ssu1"), **terms))
    if filled_at is not None and (not with_cancel or filled_at < t_cancel):
        expected = "2"
    elif with_cancel:
        expected = "4"
    else:
        expected = "1" if fills else "0"
    return recs, expected, D(sum(fills))


@PROFILE
@given(case=flow(), data=st.data())
def test_realistic_flow_gives_the_expected_status_on_every_node(
        case: tuple[list[Record], str, D], data: st.DataObject) -> None:
    recs, expected, cum = case
    for _ in range(3):  # three "nodes" receiving the records in different orders
        s = fold(data.draw(st.permutations(recs)))
        assert s is not None
        assert (s.ord_status, s.cum_qty) == (expected, cum)
        assert s.order_qty is not None
        if s.ord_status in TERMINAL_STATUSES:
            assert s.leaves_qty == 0
        else:
            assert s.leaves_qty == s.order_qty - s.cum_qty > 0


@PROFILE
@given(case=flow(), data=st.data())
def test_realistic_flow_subset_without_order_record_still_shows_fills(
        case: tuple[list[Record], str, D], data: st.DataObject) -> None:
    recs, _, _ = case
    fills = [r for r in recs if r.type is RecordType.FILL]
    subset = data.draw(st.lists(st.sampled_from(fills), min_size=1, unique_by=lambda r: (r.origin, r.seq))) \
        if fills else []
    s = fold(subset)
    if not fills:
        assert s is None
        return
    assert s is not None
    assert s.cum_qty > 0 and s.ord_status in ("1", "2")
    assert s.account == "ACC1" and s.order_qty is not None


# ---- executions(): what the books take of an order, without the whole fold ------------------

def _agrees_with_the_fold(records: list[Record]) -> bool:
    """executions() gives the fold's account, symbol, side and fills; final only when the fold
    is terminal. True when it says final (so the case counts)."""
    ex = executions(records)
    st_ = fold(records)
    if st_ is None:
        assert ex is None
        return False
    assert ex is not None
    assert (ex.account, ex.symbol, ex.side, ex.fills) == (st_.account, st_.symbol, st_.side, st_.fills)
    if ex.final:
        assert st_.is_terminal, (ex, st_)
    return ex.final


@PROFILE
@given(records=records_sets, data=st.data())
def test_executions_agree_with_the_fold_on_any_records(records: list[Record], data: st.DataObject) -> None:
    _agrees_with_the_fold(data.draw(st.permutations(records)) + data.draw(st.lists(st.sampled_from(records), max_size=3)))


@PROFILE
@given(case=flow())
def test_executions_know_a_filled_or_canceled_order_is_final(case: tuple[list[Record], str, D]) -> None:
    records, expected, _ = case
    final = _agrees_with_the_fold(records)
    if expected in ("2", "4"):    # filled without a replace, or canceled: known without the fold
        assert final


def test_a_replace_that_raised_the_quantity_is_not_taken_for_filled() -> None:
    terms: dict[str, Any] = {"txn": "t-0.2", "account": "ACC1", "symbol": "AAPL", "side": "1", "price": D(10)}
    recs = [Record(origin="cfu1", seq=1, type=RecordType.ORDER, status="A", hlc=Hlc(T0, 0, "cfu1"),
                   order_qty=D(50), cl_ord_id="C1", **terms),
            Record(origin="ssu1", seq=1, type=RecordType.REPLACED, status="0", hlc=Hlc(T0 + SECOND, 0, "ssu1"),
                   order_qty=D(100), cl_ord_id="C2", orig_cl_ord_id="C1", **terms),
            Record(origin="ssu1", seq=2, type=RecordType.FILL, status="1", hlc=Hlc(T0 + 2 * SECOND, 0, "ssu1"),
                   exec_id="E1", last_qty=D(60), last_px=D(10), order_qty=D(100), cl_ord_id="C2", **terms)]
    assert fold(recs) is not None and fold(recs).ord_status == "1"   # type: ignore[union-attr]
    assert not _agrees_with_the_fold(recs)
