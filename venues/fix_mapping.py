"""FIX <-> venue mapping: inbound messages to venue commands, venue events to FIX reports.

Pure functions and small writer objects, no I/O, so they are tested without sockets.

Inbound (both FIX 4.2 and 4.4, the same tags):

- NewOrderSingle (D) -> :class:`~venues.commands.SubmitOrder` (11, 55, 54, 38 or 152, 40,
  44, 59 (default DAY), 1);
- OrderCancelRequest (F) -> :class:`~venues.commands.CancelOrder` (11, 41, 55, 54, 37);
- OrderCancelReplaceRequest (G) -> :class:`~venues.commands.ReplaceOrder` (11, 41, 55, 54,
  38, 44, 152, 40, 59, 37);
- OrderStatusRequest (H) -> :class:`~venues.commands.QueryStatus` (11, 55, 54, 37).

A value the venue vocabulary does not have (a stop order, Side 5) raises
``IncorrectTagValue(tag)`` (the session answers Reject 373=5); a malformed one
``IncorrectDataFormat(tag)`` (373=6). The command's ``owner`` is the *firm*
(:func:`firm_of`), so ClOrdIDs are unique per firm and any session of the firm may query,
cancel or replace the firm's orders.

Outbound: :class:`ReportWriter` turns an :class:`~venues.events.ExecutionEvent` into an
ExecutionReport (35=8) and a :class:`~venues.events.CancelRejected` into an
OrderCancelReject (35=9), in the dialect of the session's FIX version, with the one builder
of :mod:`fixgw.execreport` (which says what differs between FIX 4.2 and 4.4). A fill
carries LastLiquidityInd (851, 4.4); a status answer echoes OrdStatusReqID (790, 4.4) and an
unknown order's status answer has OrdRejReason 5; an order by amount shows CashOrderQty
(152) only when it has no OrderQty.

Every report passes the FIX data dictionary of its version (tests check it with
:func:`fixgw.validation.validate`). TrdMatchID (880) is not in either dictionary's
ExecutionReport, so the trade id is not sent.
"""

from __future__ import annotations

from decimal import Decimal
from enum import Enum
from typing import TypeVar

from fixgw.errors import IncorrectDataFormat, IncorrectTagValue
from fixgw.execreport import TransactTimes, cancel_reject, execution_report
from fixgw.fastinit import fast_constructor
from fixgw.message import Message
from fixgw.orders import OrdRejReason, OrdStatus, OrdType, Side, TimeInForce
from venues.commands import CancelOrder, QueryStatus, ReplaceOrder, SubmitOrder
from venues.errors import CommandError
from venues.events import (
    NO_ORDER_ID,
    CancelRejected,
    ExecutionEvent,
    OrderFilled,
    OrderRejected,
    OrderStatusReport,
    VenueEvent,
)

__all__ = [
    "FIRM_SEPARATOR",
    "ReportWriter",
    "cancel_from_fix",
    "firm_of",
    "is_possible_resend",
    "replace_from_fix",
    "status_from_fix",
    "submit_from_fix",
]

FIRM_SEPARATOR = "-"

_E = TypeVar("_E", bound=Enum)

# wire value -> enum member, for the tags whose values the venues know
_SIDES: dict[bytes, Side] = {s.value.encode(): s for s in Side}
_ORD_TYPES: dict[bytes, OrdType] = {t.value.encode(): t for t in OrdType}
_TIFS: dict[bytes, TimeInForce] = {t.value.encode(): t for t in TimeInForce}

# CommandError names the field first ("quantity must be ..."): the tag to reject
_FIELD_TAGS = {
    "cl_ord_id": 11, "orig_cl_ord_id": 41, "symbol": 55, "side": 54, "quantity": 38,
    "price": 44, "cash_quantity": 152, "order_type": 40, "time_in_force": 59,
    "order_id": 37, "account": 1, "owner": 49,
}


def firm_of(comp_id: str) -> str:
    """The firm a client CompID belongs to: the part before the first '-'
    (``FIXGW-SSU1`` -> ``FIXGW``); a CompID without '-' (or starting with one) is its own firm."""
    head, sep, _ = comp_id.partition(FIRM_SEPARATOR)
    return head if sep and head else comp_id


def is_possible_resend(msg: Message) -> bool:
    """PossDupFlag (43) or PossResend (97) is Y: the sender may have sent this before."""
    return msg.get(43) == b"Y" or msg.get(97) == b"Y"


def _enum(msg: Message, tag: int, table: dict[bytes, _E], what: str) -> _E:
    raw = msg[tag]  # FieldNotFound when absent
    value = table.get(raw)
    if value is None:
        allowed = ", ".join(k.decode() for k in table)
        raise IncorrectTagValue(tag, f"{what} {raw.decode('latin-1')!r} is not supported here (one of {allowed})")
    return value


def _opt_enum(msg: Message, tag: int, table: dict[bytes, _E], what: str) -> _E | None:
    return _enum(msg, tag, table, what) if tag in msg else None


def _text(msg: Message, tag: int) -> str:
    return msg[tag].decode("latin-1")


def _opt_text(msg: Message, tag: int) -> str | None:
    v = msg.get(tag)
    return None if v is None or not v else v.decode("latin-1")


def _opt_number(msg: Message, tag: int) -> Decimal | None:
    d = msg.get_decimal(tag)  # IncorrectDataFormat when not a number
    if d is not None and not d.is_finite():
        raise IncorrectDataFormat(tag, f"not a finite number: {d}")
    return d


def _command_error(exc: CommandError) -> IncorrectDataFormat:
    name = str(exc).split(" ", 1)[0]
    return IncorrectDataFormat(_FIELD_TAGS.get(name, 0), str(exc))


# SubmitOrder without the per-field object.__setattr__ of a frozen dataclass (its checks still run)
_SUBMIT = fast_constructor(SubmitOrder)


def submit_from_fix(msg: Message, owner: str) -> SubmitOrder:
    """NewOrderSingle -> SubmitOrder for ``owner`` (the firm)."""
    try:
        # positional, in field order (the hot path: every order pays for this)
        return _SUBMIT(
            owner,
            _text(msg, 11),
            _text(msg, 55),
            _enum(msg, 54, _SIDES, "Side"),
            _opt_number(msg, 38),
            _enum(msg, 40, _ORD_TYPES, "OrdType"),
            _opt_number(msg, 44),
            _opt_enum(msg, 59, _TIFS, "TimeInForce") or TimeInForce.DAY,
            _opt_number(msg, 152),
            _opt_text(msg, 1) or "",
        )
    except CommandError as exc:
        raise _command_error(exc) from None


def cancel_from_fix(msg: Message, owner: str) -> CancelOrder:
    """OrderCancelRequest -> CancelOrder."""
    try:
        return CancelOrder(
            owner=owner,
            cl_ord_id=_text(msg, 11),
            orig_cl_ord_id=_text(msg, 41),
            symbol=_text(msg, 55),
            side=_enum(msg, 54, _SIDES, "Side"),
            order_id=_opt_text(msg, 37),
        )
    except CommandError as exc:
        raise _command_error(exc) from None


def replace_from_fix(msg: Message, owner: str) -> ReplaceOrder:
    """OrderCancelReplaceRequest -> ReplaceOrder (OrdType and TimeInForce only checked
    to be unchanged when given)."""
    try:
        return ReplaceOrder(
            owner=owner,
            cl_ord_id=_text(msg, 11),
            orig_cl_ord_id=_text(msg, 41),
            symbol=_text(msg, 55),
            side=_enum(msg, 54, _SIDES, "Side"),
            quantity=_opt_number(msg, 38),
            price=_opt_number(msg, 44),
            cash_quantity=_opt_number(msg, 152),
            order_type=_opt_enum(msg, 40, _ORD_TYPES, "OrdType"),
            time_in_force=_opt_enum(msg, 59, _TIFS, "TimeInForce"),
            order_id=_opt_text(msg, 37),
        )
    except CommandError as exc:
        raise _command_error(exc) from None


def status_from_fix(msg: Message, owner: str) -> QueryStatus:
    """OrderStatusRequest -> QueryStatus."""
    try:
        return QueryStatus(
            owner=owner,
            cl_ord_id=_text(msg, 11),
            symbol=_opt_text(msg, 55) or "",
            side=_opt_enum(msg, 54, _SIDES, "Side"),
            order_id=_opt_text(msg, 37),
        )
    except CommandError as exc:
        raise _command_error(exc) from None


# -- outbound ----------------------------------------------------------------------------


class ReportWriter:
    """Builds the reports for one FIX version (``FIX.4.2`` or ``FIX.4.4``; any other
    version is written as 4.4) with :mod:`fixgw.execreport`."""

    __slots__ = ("begin_string", "fix42", "transact_time")

    def __init__(self, begin_string: str) -> None:
        self.begin_string = begin_string
        self.fix42 = begin_string == "FIX.4.2"
        # UTCTimestamp with milliseconds; events of one batch share their ts, so it is cached
        self.transact_time = TransactTimes()

    def report(self, event: VenueEvent, *, account: str = "", status_req_id: bytes | None = None) -> Message:
        """The FIX message for any venue event."""
        if isinstance(event, CancelRejected):
            return self.cancel_reject(event, account=account)
        return self.execution_report(event, account=account, status_req_id=status_req_id)

    def execution_report(
        self, e: ExecutionEvent, *, account: str = "", status_req_id: bytes | None = None
    ) -> Message:
        status = e.ord_status
        reason: int | None = None
        last_qty = last_px = None
        liquidity: bytes | None = None
        cls = type(e)
        if cls is OrderFilled:
            text = ""
            last_qty = e.last_qty  # type: ignore[attr-defined]
            last_px = e.last_px  # type: ignore[attr-defined]
            # LastLiquidityInd: 1 added liquidity (rested), 2 removed it (aggressor)
            liquidity = b"2" if e.aggressor else b"1"  # type: ignore[attr-defined]
        elif cls is OrderRejected:
            reason = e.reason_code  # type: ignore[attr-defined]
            text = e.reason  # type: ignore[attr-defined]
        elif cls is OrderStatusReport:
            text = e.text  # type: ignore[attr-defined]
            if status is OrdStatus.REJECTED and e.order_id == NO_ORDER_ID:
                reason = OrdRejReason.UNKNOWN_ORDER
        else:
            text = getattr(e, "reason", "")
        return execution_report(
            self.fix42, e.order_id, e.cl_ord_id, e.orig_cl_ord_id, e.exec_id, e.exec_type, status, reason,
            account, e.symbol, e.side, e.order_qty, None if e.order_qty is not None else e.cash_order_qty,
            e.order_type, e.price, e.time_in_force, last_qty, last_px, e.leaves_qty, e.cum_qty, e.avg_px,
            self.transact_time(e.ts), text, liquidity, status_req_id if cls is OrderStatusReport else None,
        )

    def cancel_reject(self, e: CancelRejected, *, account: str = "") -> Message:
        return cancel_reject(
            self.fix42, e.order_id, e.cl_ord_id, e.orig_cl_ord_id, e.ord_status, e.response_to, e.reason_code,
            e.reason, self.transact_time(e.ts), account,
        )
