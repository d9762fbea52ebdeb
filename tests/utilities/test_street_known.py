"""The street utility's in-memory report context (`_Known`) agrees with a scan of the log,
whatever order the records arrive in."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from replication.record import Record, RecordType
from tests.utilities.support_orderrecs import fill, rec
from utilities.street import _Known
from utilities.street_state import SENT_TYPES

RECORDS: list[Record] = [
    rec(RecordType.ORDER, 0.0),
    rec(RecordType.SENT, 0.1, origin="ssu1", extra={"street": "ssu1", "venue_cl_ord_id": "cfu1-0.1"}),
    rec(RecordType.TAKEOVER, 5.0, origin="ssu2", extra={"street": "ssu2"}),
    rec(RecordType.VENUE_ACK, 0.2),
    rec(RecordType.REPLACED, 1.0, cl_ord_id="C2", extra={"venue_cl_ord_id": "cfu1-0.1~a"}),
    rec(RecordType.REPLACED, 2.0, cl_ord_id="C3", extra={"venue_cl_ord_id": "cfu1-0.1~b"}),
    fill(3.0, 10, "10.00", "X1"),
    rec(RecordType.REPLACED, 1.5, cl_ord_id="C2b", order_qty=Decimal(50)),
]


def _scan(held: list[Record]) -> tuple[Record | None, Record | None]:
    """What street.py computed from records_for_txn before the cache: the first SENT by the
    hybrid clock and the latest REPLACED."""
    sent = [h for h in held if h.type in SENT_TYPES]
    replaced = [h for h in held if h.type is RecordType.REPLACED]
    return (min(sent, key=lambda h: h.hlc) if sent else None,
            max(replaced, key=lambda h: h.hlc) if replaced else None)


@given(st.permutations(RECORDS), st.integers(min_value=0, max_value=len(RECORDS)))
def test_known_matches_a_scan_in_any_arrival_order(order: list[Record], upto: int) -> None:
    seen = order[:upto]
    known = _Known()
    for r in seen:
        known.see(r)
    base, replaced = _scan(seen)
    assert known.base is base
    assert known.replaced is replaced


def test_the_earliest_sent_and_the_latest_replace_win() -> None:
    known = _Known()
    for r in RECORDS:
        known.see(r)
    assert known.base is not None and known.base.type is RecordType.SENT
    assert known.replaced is not None and known.replaced.cl_ord_id == "C3"
