"""ExecutionReports and OrderCancelRejects for customers, correct for FIX 4.2 and 4.4.

FIX 4.2 reports fills as ExecType 1/2 and needs ExecTransType (20); FIX 4.4 reports them
as ExecType F (Trade) and has no ExecTransType. Everything else here is common.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from fixgw.message import Message

# ExecType (150) / OrdStatus (39) values we use
PENDING_NEW = "A"
NEW = "0"
PARTIAL = "1"
FILLED = "2"
CANCELED = "4"
REPLACED = "5"
PENDING_CANCEL = "6"
REJECTED = "8"
EXPIRED = "C"
PENDING_REPLACE = "E"
TRADE = "F"
ORDER_STATUS = "I"

# OrdRejReason (103)
REJ_BROKER_OPTION = 0
REJ_UNKNOWN_SYMBOL = 1
REJ_EXCEEDS_LIMIT = 3
REJ_UNKNOWN_ORDER = 5
REJ_DUPLICATE_ORDER = 6

# CxlRejReason (102) and CxlRejResponseTo (434)
CXL_TOO_LATE = 0
CXL_UNKNOWN_ORDER = 1
CXL_BROKER_OPTION = 2
CXL_ALREADY_PENDING = 3
RESPONSE_TO_CANCEL = "1"
RESPONSE_TO_REPLACE = "2"


def fmt(d: Decimal | None) -> str:
    """A Decimal as FIX wants it: plain notation, no exponent, no trailing '.'."""
    if d is None:
        return "0"
    s = format(d.normalize(), "f")
    return s if s not in ("-0",) else "0"


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
    fix42 = begin_string == "FIX.4.2"
    trans_type = "3" if exec_type == ORDER_STATUS else "0"
    if fix42 and exec_type == TRADE:
        exec_type = FILLED if view.ord_status == FILLED else PARTIAL
    elif fix42 and exec_type == ORDER_STATUS:
        # 4.2 has no ExecType I: a status answer is ExecTransType 3 with the current OrdStatus
        exec_type = view.ord_status
    f: list[tuple[int, object]] = [
        (37, view.order_id or "NONE"),
        (11, view.cl_ord_id or "NONE"),
    ]
    if view.orig_cl_ord_id and exec_type in (CANCELED, REPLACED, PENDING_CANCEL, PENDING_REPLACE):
        f.append((41, view.orig_cl_ord_id))
    f.append((17, exec_id))
    if fix42:
        f.append((20, trans_type))
    f.append((150, exec_type))
    f.append((39, view.ord_status))
    if ord_rej_reason is not None and (exec_type == REJECTED or view.ord_status == REJECTED):
        f.append((103, ord_rej_reason))
    if view.account:
        f.append((1, view.account))
    f.append((55, view.symbol or "[N/A]"))
    f.append((54, view.side or "1"))
    if view.order_qty is not None:
        f.append((38, fmt(view.order_qty)))
    if view.cash_order_qty is not None:
        f.append((152, fmt(view.cash_order_qty)))
    if view.ord_type:
        f.append((40, view.ord_type))
    if view.price is not None:
        f.append((44, fmt(view.price)))
    if view.tif:
        f.append((59, view.tif))
    if last_qty is not None:
        f.append((32, fmt(last_qty)))
        f.append((31, fmt(last_px)))
    f.append((151, fmt(view.leaves_qty)))
    f.append((14, fmt(view.cum_qty)))
    f.append((6, fmt(view.avg_px)))
    if status_request_id and not fix42:
        f.append((790, status_request_id))
    if text:
        f.append((58, text))
    return Message.new("8", f)


def cancel_reject(
    *,
    order_id: str,
    cl_ord_id: str,
    orig_cl_ord_id: str,
    ord_status: str,
    response_to: str,
    reason: int,
    text: str,
    account: str = "",
) -> Message:
    f: list[tuple[int, object]] = [
        (37, order_id or "NONE"),
        (11, cl_ord_id or "NONE"),
        (41, orig_cl_ord_id or "NONE"),
        (39, ord_status),
    ]
    if account:
        f.append((1, account))
    f += [(434, response_to), (102, reason), (58, text)]
    return Message.new("9", f)
