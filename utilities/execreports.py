"""The customer utility's ExecutionReports and OrderCancelRejects: a record or a folded
status (:class:`OrderView`) handed to the one builder, :mod:`fixgw.execreport`, which
writes FIX 4.2 or 4.4 as the session speaks (and TransactTime, and the reason codes 4.2
lacks mapped to broker option).

What is the customer utility's own: an order it cannot name still gets an OrderID and
ClOrdID ("NONE") and a Symbol ("[N/A]"); OrigClOrdID goes only on cancels, replaces and
their pending states; OrdRejReason only on a rejection; decimals lose their trailing zeros
(the fold's arithmetic leaves them); TransactTime is when the report is written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal

from fixgw.execreport import cancel_reject as build_cancel_reject
from fixgw.execreport import execution_report as build_execution_report
from fixgw.message import Message
from fixgw.orders import ExecType, OrdStatus
from fixgw.session import utc_timestamp

_ZERO = Decimal(0)
# the exec types that answer a cancel or a replace: they name the ClOrdID they replace
_WITH_ORIG = frozenset({ExecType.CANCELED, ExecType.REPLACED, ExecType.PENDING_CANCEL, ExecType.PENDING_REPLACE})


def fmt(d: Decimal | None) -> str:
    """A Decimal as FIX wants it: plain notation, no exponent, no trailing '.'."""
    if d is None:
        return "0"
    s = format(d.normalize(), "f")
    return s if s not in ("-0",) else "0"


def _plain(d: Decimal | None) -> Decimal | None:
    """``d`` without trailing zeros (and -0 as 0), for the builder to write."""
    if d is None:
        return None
    d = d.normalize()
    return d if d else _ZERO


@dataclass(frozen=True, slots=True)
class OrderView:
    """What an ExecutionReport says about the order (from a record or a status fold)."""

    order_id: str
    cl_ord_id: str
    orig_cl_ord_id: str
    account: str
    symbol: str
    side: str
    order_qty: Decimal | None
    cash_order_qty: Decimal | None
    price: Decimal | None
    ord_type: str
    tif: str
    ord_status: str
    cum_qty: Decimal
    leaves_qty: Decimal
    avg_px: Decimal


def execution_report(
    begin_string: str,
    view: OrderView,
    *,
    exec_id: str,
    exec_type: str,
    last_qty: Decimal | None = None,
    last_px: Decimal | None = None,
    text: str = "",
    ord_rej_reason: int | None = None,
    status_request_id: str = "",
) -> Message:
    status = view.ord_status
    rejected = exec_type == ExecType.REJECTED or status == OrdStatus.REJECTED
    return build_execution_report(
        begin_string == "FIX.4.2",
        view.order_id or "NONE",
        view.cl_ord_id or "NONE",
        view.orig_cl_ord_id if exec_type in _WITH_ORIG else None,
        exec_id,
        exec_type,
        status,
        ord_rej_reason if rejected else None,
        view.account,
        view.symbol or "[N/A]",
        view.side or "1",
        _plain(view.order_qty),
        _plain(view.cash_order_qty),
        view.ord_type,
        _plain(view.price),
        view.tif,
        _plain(last_qty),
        _plain(last_px) if last_qty is not None else None,
        _plain(view.leaves_qty) or _ZERO,
        _plain(view.cum_qty) or _ZERO,
        _plain(view.avg_px) or _ZERO,
        utc_timestamp(time.time()),
        text,
        None,
        status_request_id.encode() if status_request_id else None,
    )


def cancel_reject(
    *,
    begin_string: str,
    order_id: str,
    cl_ord_id: str,
    orig_cl_ord_id: str,
    ord_status: str,
    response_to: str,
    reason: int,
    text: str,
    account: str = "",
) -> Message:
    return build_cancel_reject(
        begin_string == "FIX.4.2", order_id or "NONE", cl_ord_id or "NONE", orig_cl_ord_id or "NONE",
        ord_status, response_to, reason, text, utc_timestamp(time.time()), account,
    )
