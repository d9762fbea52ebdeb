"""Unit tests of the status fold, one rule at a time (utilities/status.py docstring)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from replication.record import RecordType as T
from tests.utilities.support_orderrecs import fill, rec
from utilities import status as S
from utilities.status import fold, fold_all

D = Decimal


def st(*records: object) -> S.OrderStatus:
    out = fold(records)  # type: ignore[arg-type]
    assert out is not None
    return out


def test_no_records_and_non_order_records_give_none() -> None:
    assert fold([]) is None
    assert fold([rec(T.NOTE, 1), rec(T.ACCOUNT, 2)]) is None


def test_order_only_is_pending_new_with_its_terms() -> None:
    s = st(rec(T.ORDER, 1, status="A"))
    assert (s.ord_status, s.cum_qty, s.leaves_qty, s.avg_px) == ("A", D(0), D(100), D(0))
    assert (s.account, s.symbol, s.side, s.order_qty, s.price, s.cl_ord_id) == (
        "ACC1", "AAPL", "1", D(100), D("10.00"), "C1")
    assert (s.ord_type, s.tif, s.venue, s.session, s.txn) == ("2", "0", "exchange", "CLIENT1", "cfu1-0.1")
    assert not s.is_terminal and s.terminal_hlc is None and s.pending == () and s.fills == ()
    assert s.is_buy and s.record_count == 1


def test_routed_and_sent_stay_pending_new_and_name_the_street() -> None:
    s = st(rec(T.ORDER, 1), rec(T.ROUTED, 2, extra={"street": "ssu2"}))
    assert (s.ord_status, s.street) == ("A", "ssu2")
    s = st(rec(T.ORDER, 1), rec(T.ROUTED, 2, extra={"street": "ssu2"}), rec(T.SENT, 3, origin="ssu2"))
    assert (s.ord_status, s.street) == ("A", "ssu2")


def test_venue_ack_is_new() -> None:
    s = st(rec(T.ORDER, 1), rec(T.VENUE_ACK, 3, venue_order_id="V9"))
    assert (s.ord_status, s.venue_order_id, s.street) == ("0", "V9", "ssu1")


def test_partial_fill() -> None:
    s = st(rec(T.ORDER, 1), rec(T.VENUE_ACK, 2), fill(3, 40, "10.00", "E1"))
    assert (s.ord_status, s.cum_qty, s.leaves_qty, s.avg_px) == ("1", D(40), D(60), D("10.00"))
    assert (s.last_qty, s.last_px, s.exec_ids) == (D(40), D("10.00"), frozenset({"E1"}))


def test_avg_px_is_quantity_weighted_and_exact_when_possible() -> None:
    s = st(rec(T.ORDER, 1), fill(2, 100, "10", "E1", order_qty=D(200)),
           fill(3, 50, "10.3", "E2", order_qty=D(200)))
    assert s.avg_px == D("10.1") and s.last_px == D("10.3") and s.last_qty == D(50)


def test_avg_px_rounded_to_8_places_when_inexact() -> None:
    s = st(fill(2, 1, "1", "E1"), fill(3, 2, "2", "E2"))
    assert s.avg_px == D("1.66666667")


def test_complete_fill_is_filled_and_terminal() -> None:
    s = st(rec(T.ORDER, 1), fill(2, 60, "10", "E1"), fill(3, 40, "11", "E2"))
    assert (s.ord_status, s.cum_qty, s.leaves_qty, s.avg_px) == ("2", D(100), D(0), D("10.4"))
    assert s.is_terminal and s.terminal_hlc == s.fills[-1].hlc


def test_same_exec_id_recorded_by_two_street_utilities_counts_once() -> None:
    a = fill(2, 60, "10", "E1", origin="ssu1")
    b = fill(5, 60, "10", "E1", origin="ssu2")
    s = st(rec(T.ORDER, 1), a, b)
    assert (s.cum_qty, s.ord_status, len(s.fills)) == (D(60), "1", 1)
    assert s.fills[0].hlc == a.hlc  # the execution happened no later than its first record


def test_fills_without_exec_id_are_keyed_by_record() -> None:
    a = fill(2, 30, "10", "")
    b = fill(3, 30, "10", "")
    s = st(rec(T.ORDER, 1), a, b, a)  # a repeated: same key, counts once
    assert s.cum_qty == D(60)
    assert s.exec_ids == frozenset({f"@{a.origin}:{a.seq}", f"@{b.origin}:{b.seq}"})


def test_fill_with_no_order_record_still_shows_filled() -> None:
    assert st(fill(2, 40, "10", "E1")).ord_status == "1"
    s = st(fill(2, 100, "10", "E1"))
    assert (s.ord_status, s.account, s.order_qty, s.cl_ord_id) == ("2", "ACC1", D(100), "C1")


def test_reported_cum_qty_beyond_our_fills_is_taken() -> None:
    s = st(rec(T.ORDER, 1), fill(2, 20, "10", "E1"),
           rec(T.VENUE_STATUS, 4, status="1", cum_qty=D(80), avg_px=D("10.5")))
    assert (s.cum_qty, s.leaves_qty, s.avg_px, s.ord_status) == (D(80), D(20), D("10.5"), "1")
    # once our fills catch up, our own average is used
    s = st(rec(T.ORDER, 1), fill(2, 20, "10", "E1"), fill(3, 60, "11", "E2"),
           rec(T.VENUE_STATUS, 4, status="1", cum_qty=D(80), avg_px=D("10.5")))
    assert (s.cum_qty, s.avg_px) == (D(80), D("10.75"))


def test_cancel_earlier_than_completing_fill_wins_but_fill_counts() -> None:
    s = st(rec(T.ORDER, 1), fill(2, 40, "10", "E1"), rec(T.CANCELED, 3, text="user"),
           fill(4, 60, "10", "E2"))
    assert (s.ord_status, s.cum_qty, s.leaves_qty, s.text) == ("4", D(100), D(0), "user")


def test_completing_fill_earlier_than_cancel_wins() -> None:
    s = st(rec(T.ORDER, 1), fill(2, 40, "10", "E1"), fill(3, 60, "10", "E2"), rec(T.CANCELED, 4))
    assert (s.ord_status, s.cum_qty, s.leaves_qty) == ("2", D(100), D(0))


def test_partial_fill_then_cancel_is_canceled() -> None:
    s = st(rec(T.ORDER, 1), fill(2, 40, "10", "E1"), rec(T.CANCELED, 3))
    assert (s.ord_status, s.cum_qty, s.leaves_qty) == ("4", D(40), D(0))


def test_same_wall_time_is_decided_by_logical_then_node() -> None:
    s = st(rec(T.ORDER, 1), fill(5, 100, "10", "E1", logical=2), rec(T.CANCELED, 5, logical=1))
    assert s.ord_status == "4"
    s = st(rec(T.ORDER, 1), fill(5, 100, "10", "E1", origin="ssu1"),
           rec(T.CANCELED, 5, origin="ssu2"))
    assert s.ord_status == "2"  # ssu1 < ssu2


def test_fill_beats_reject_whatever_the_clocks() -> None:
    s = st(rec(T.ORDER, 1), rec(T.VENUE_REJECT, 2, text="bad"), fill(3, 10, "10", "E1"))
    assert (s.ord_status, s.cum_qty) == ("1", D(10))
    s = st(rec(T.ORDER_REJECTED, 1, text="limit"), fill(3, 100, "10", "E1"))
    assert s.ord_status == "2"


@pytest.mark.parametrize("t", [T.ORDER_REJECTED, T.VENUE_REJECT])
def test_reject_without_fills_is_rejected_with_reason(t: T) -> None:
    s = st(rec(T.ORDER, 1), rec(t, 2, text="exceeds limit"))
    assert (s.ord_status, s.leaves_qty, s.text, s.is_terminal) == ("8", D(0), "exceeds limit", True)


def test_expired() -> None:
    s = st(rec(T.ORDER, 1), rec(T.VENUE_ACK, 2), fill(3, 10, "10", "E1"), rec(T.EXPIRED, 4))
    assert (s.ord_status, s.cum_qty, s.leaves_qty) == ("C", D(10), D(0))


def test_venue_status_can_say_canceled() -> None:
    s = st(rec(T.ORDER, 1), rec(T.VENUE_STATUS, 3, status="4", cum_qty=D(0)))
    assert s.ord_status == "4"
    s = st(rec(T.ORDER, 1), rec(T.VENUE_STATUS, 3, status="0"))
    assert s.ord_status == "0"


def test_pending_cancel_then_cancel_reject_goes_back() -> None:
    base = [rec(T.ORDER, 1), rec(T.VENUE_ACK, 2)]
    req = rec(T.CANCEL_REQUEST, 3, cl_ord_id="X1", orig_cl_ord_id="C1")
    s = st(*base, req)
    assert s.ord_status == "6" and s.cl_ord_id == "C1"
    assert [(p.kind, p.cl_ord_id, p.orig_cl_ord_id) for p in s.pending] == [("cancel", "X1", "C1")]
    s = st(*base, req, rec(T.CANCEL_REJECTED, 4, cl_ord_id="X1", orig_cl_ord_id="C1"))
    assert (s.ord_status, s.pending) == ("0", ())
    s = st(*base, fill(2.5, 10, "10", "E1"), req,
           rec(T.CANCEL_REJECTED_LOCAL, 3.5, cl_ord_id="X1"))
    assert (s.ord_status, s.pending) == ("1", ())
    assert {"C1", "X1"} <= s.cl_ord_ids


def test_pending_cancel_answered_by_canceled() -> None:
    s = st(rec(T.ORDER, 1), rec(T.CANCEL_REQUEST, 3, cl_ord_id="X1", orig_cl_ord_id="C1"),
           rec(T.CANCELED, 4, cl_ord_id="X1", orig_cl_ord_id="C1"))
    assert (s.ord_status, s.pending, s.cl_ord_id) == ("4", (), "C1")


def test_answer_naming_no_request_answers_earlier_requests_of_its_kind() -> None:
    req = rec(T.CANCEL_REQUEST, 3, cl_ord_id="X1", orig_cl_ord_id="C1")
    rej = rec(T.CANCEL_REJECTED, 4, cl_ord_id="C1")  # writer put the order's own ClOrdID
    assert st(rec(T.ORDER, 1), req, rej).pending == ()
    late = rec(T.CANCEL_REJECTED, 2, cl_ord_id="C1")  # earlier than the request: not its answer
    assert st(rec(T.ORDER, 1), req, late).ord_status == "6"
    rep_req = rec(T.REPLACE_REQUEST, 3, cl_ord_id="R1", orig_cl_ord_id="C1", order_qty=D(50))
    canceled = rec(T.CANCELED, 4, cl_ord_id="C1")  # CANCELED answers cancels only
    s = st(rec(T.ORDER, 1), rep_req, canceled)
    assert s.ord_status == "4" and [p.kind for p in s.pending] == ["replace"]


def test_request_id_in_extra_is_honoured() -> None:
    req = rec(T.CANCEL_REQUEST, 3, cl_ord_id="X1", orig_cl_ord_id="C1")
    rej = rec(T.CANCEL_REJECTED, 4, cl_ord_id="C1", extra={"request_cl_ord_id": "X1"})
    assert st(rec(T.ORDER, 1), rec(T.VENUE_ACK, 2), req, rej).ord_status == "0"


def test_cancel_request_on_filled_order_stays_pending_for_the_cfu_to_answer() -> None:
    s = st(rec(T.ORDER, 1), fill(2, 100, "10", "E1"),
           rec(T.CANCEL_REQUEST, 3, cl_ord_id="X1", orig_cl_ord_id="C1"))
    assert s.ord_status == "2" and [p.cl_ord_id for p in s.pending] == ["X1"]


def test_replace_pending_then_replaced_changes_terms() -> None:
    base = [rec(T.ORDER, 1), rec(T.VENUE_ACK, 2), fill(3, 10, "10", "E1")]
    req = rec(T.REPLACE_REQUEST, 4, cl_ord_id="C2", orig_cl_ord_id="C1", order_qty=D(150),
              price=D("10.5"))
    s = st(*base, req)
    assert (s.ord_status, s.order_qty, s.cl_ord_id) == ("E", D(100), "C1")
    assert s.pending[0].kind == "replace" and s.pending[0].order_qty == D(150)
    s = st(*base, req, rec(T.REPLACED, 5, cl_ord_id="C2", orig_cl_ord_id="C1", order_qty=D(150),
                           price=D("10.5")))
    assert (s.ord_status, s.order_qty, s.price, s.cl_ord_id, s.orig_cl_ord_id) == (
        "1", D(150), D("10.5"), "C2", "C1")
    assert (s.cum_qty, s.leaves_qty, s.pending) == (D(10), D(140), ())


def test_replaced_without_terms_takes_them_from_its_request() -> None:
    req = rec(T.REPLACE_REQUEST, 4, cl_ord_id="C2", orig_cl_ord_id="C1", order_qty=D(70),
              price=D("9"))
    done = rec(T.REPLACED, 5, terms=False, cl_ord_id="C2", orig_cl_ord_id="C1")
    s = st(rec(T.ORDER, 1), req, done)
    assert (s.ord_status, s.order_qty, s.price, s.cl_ord_id) == ("0", D(70), D(9), "C2")


def test_latest_replace_wins_and_chain_answers_earlier_request() -> None:
    r1 = rec(T.REPLACE_REQUEST, 3, cl_ord_id="C2", orig_cl_ord_id="C1", order_qty=D(120))
    r2 = rec(T.REPLACE_REQUEST, 5, cl_ord_id="C3", orig_cl_ord_id="C2", order_qty=D(130))
    d2 = rec(T.REPLACED, 6, cl_ord_id="C3", orig_cl_ord_id="C2", order_qty=D(130))
    d1 = rec(T.REPLACED, 4, cl_ord_id="C2", orig_cl_ord_id="C1", order_qty=D(120))
    s = st(rec(T.ORDER, 1), r1, r2, d2, d1)
    assert (s.order_qty, s.cl_ord_id, s.orig_cl_ord_id, s.pending) == (D(130), "C3", "C2", ())
    s = st(rec(T.ORDER, 1), r1, r2, d2)  # d1 missing: r1 is answered by the chain through C2
    assert (s.order_qty, s.cl_ord_id, s.pending, s.ord_status) == (D(130), "C3", (), "0")


def test_replace_down_to_cum_qty_fills_the_order_at_the_replace() -> None:
    rep = rec(T.REPLACED, 5, cl_ord_id="C2", orig_cl_ord_id="C1", order_qty=D(40))
    s = st(rec(T.ORDER, 1), fill(2, 40, "10", "E1"), rep)
    assert (s.ord_status, s.leaves_qty, s.terminal_hlc) == ("2", D(0), rep.hlc)


def test_takeover_moves_responsibility() -> None:
    s = st(rec(T.ORDER, 1), rec(T.ROUTED, 2, extra={"street": "ssu1"}), rec(T.SENT, 3),
           rec(T.TAKEOVER, 9, origin="ssu2"), fill(10, 5, "10", "E1", origin="ssu1"))
    assert s.street == "ssu2"
    assert st(fill(2, 5, "10", "E1", origin="ssu7")).street == "ssu7"


def test_cash_order_fills_by_venue_status_or_notional() -> None:
    cash: dict[str, Any] = {"order_qty": None, "cash_order_qty": D(1000), "price": None,
                            "ord_type": "1", "symbol": "FUNDX"}
    order = rec(T.ORDER, 1, **cash)
    s = st(order)
    assert (s.ord_status, s.order_qty, s.cash_order_qty, s.leaves_qty) == ("A", None, D(1000), D(0))
    s = st(order, fill(5, "33.333", "30", "N1", status="2", **cash))
    assert (s.ord_status, s.cum_qty, s.avg_px) == ("2", D("33.333"), D(30))
    s = st(order, fill(5, "20", "30", "N1", status="1", **cash))
    assert (s.ord_status, s.cum_qty) == ("1", D(20))
    s = st(order, fill(5, "40", "25", "N1", **cash))  # notional 1000 reaches the cash amount
    assert s.ord_status == "2"


def test_latest_fill_is_the_last_fill() -> None:
    s = st(fill(7, 5, "11", "E2"), fill(3, 6, "10", "E1"))
    assert (s.last_qty, s.last_px, [f.key for f in s.fills]) == (D(5), D(11), ["E1", "E2"])


def test_duplicated_records_count_once() -> None:
    a = fill(2, 60, "10", "E1")
    s = st(rec(T.ORDER, 1), a, a, a)
    assert (s.cum_qty, s.record_count) == (D(60), 2)


def test_fold_rejects_mixed_orders_and_non_records() -> None:
    with pytest.raises(ValueError, match="several orders"):
        fold([rec(T.ORDER, 1, txn="a-0.1"), rec(T.ORDER, 1, txn="a-0.2")])
    with pytest.raises(TypeError, match="Record"):
        fold(["not a record"])  # type: ignore[list-item]


def test_fold_all_groups_by_txn_and_skips_empty_txn() -> None:
    out = fold_all([rec(T.ORDER, 1, txn="a-0.1"), fill(2, 100, "10", "E1", txn="a-0.2"),
                    rec(T.ORDER, 3, txn=""), rec(T.ACCOUNT, 1, txn="a-0.3")])
    assert list(out) == ["a-0.1", "a-0.2"]
    assert (out["a-0.1"].ord_status, out["a-0.2"].ord_status) == ("A", "2")


def test_order_status_validates() -> None:
    s = st(rec(T.ORDER, 1))
    with pytest.raises(ValueError, match="ord_status"):
        s.__class__(**{**{f: getattr(s, f) for f in s.__slots__}, "ord_status": "5"})
    with pytest.raises(ValueError, match="terminal_hlc"):
        s.__class__(**{**{f: getattr(s, f) for f in s.__slots__}, "ord_status": "2"})


def test_conflicting_copies_of_one_execution_count_the_larger_quantity() -> None:
    small = fill(2, 30, "10", "E1", origin="ssu1")
    large = fill(3, 40, "10.5", "E1", origin="ssu2")
    for records in ([small, large], [large, small], [large]):
        s = st(*records)
        assert (s.cum_qty, s.avg_px) == (D(40), D("10.5"))
    assert st(small).cum_qty == D(30)
