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
OrderCancelReject (35=9), in the dialect of the session's FIX version:

- FIX 4.4: ExecType F (trade) for fills, I for status answers; LastLiquidityInd (851);
  OrdStatusReqID (790) echoed on status answers.
- FIX 4.2: ExecTransType (20) 0 (new) on every report and 3 (status) on status answers;
  a fill is ExecType 1 (partial) or 2 (fill) by LeavesQty; a status answer's ExecType is
  the current OrdStatus. Reason codes that 4.2 does not have (OrdRejReason above 8,
  CxlRejReason above 3) are sent as 0 / 2 (broker option), with the reason in Text (58).

Every report passes the FIX data dictionary of its version (tests check it with
:func:`fixgw.validation.validate`). TrdMatchID (880) is not in either dictionary's
ExecutionReport, so the trade id is not sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import TypeVar

from fixgw.message import IncorrectDataFormat, IncorrectTagValue, Message
from venues.commands import CancelOrder, CommandError, QueryStatus, ReplaceOrder, SubmitOrder
from venues.enums import ExecType, OrdRejReason, OrdStatus, OrdType, Side, TimeInForce
from venues.events import (
    NO_ORDER_ID,
    CancelRejected,
    ExecutionEvent,
    OrderFilled,
    OrderRejected,
    OrderStatusReport,
    VenueEvent,
    fast_constructor,
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

_FIX42_ORD_REJ = frozenset(range(9))  # OrdRejReason values FIX 4.2 defines
_FIX42_CXL_REJ = frozenset(range(4))  # CxlRejReason values FIX 4.2 defines


def _dec(d: Decimal) -> bytes:
    return format(d, "f").encode()


class ReportWriter:
    """Builds the reports for one FIX version (``FIX.4.2`` or ``FIX.4.4``; any other
    version is written as 4.4)."""

    __slots__ = ("_ts_key", "_ts_val", "begin_string", "fix42")

    def __init__(self, begin_string: str) -> None:
        self.begin_string = begin_string
        self.fix42 = begin_string == "FIX.4.2"
        self._ts_key: datetime | None = None
        self._ts_val = b""

    def transact_time(self, ts: datetime) -> bytes:
        """UTCTimestamp with milliseconds; events of one batch share ``ts``, so cache it."""
        if ts is not self._ts_key:
            self._ts_key = ts
            if ts.tzinfo is not UTC and ts.utcoffset():  # the venues' clocks give UTC
                ts = ts.astimezone(UTC)
            self._ts_val = b"%04d%02d%02d-%02d:%02d:%02d.%03d" % (
                ts.year, ts.month, ts.day, ts.hour, ts.minute, ts.second, ts.microsecond // 1000)
        return self._ts_val

    def report(self, event: VenueEvent, *, account: str = "", status_req_id: bytes | None = None) -> Message:
        """The FIX message for any venue event."""
        if isinstance(event, CancelRejected):
            return self.cancel_reject(event, account=account)
        return self.execution_report(event, account=account, status_req_id=status_req_id)

    def execution_report(
        self, e: ExecutionEvent, *, account: str = "", status_req_id: bytes | None = None
    ) -> Message:
        fix42 = self.fix42
        exec_type = e.exec_type
        status = e.ord_status
        f: list[tuple[int, bytes]] = [
            (35, b"8"), (37, e.order_id.encode()), (11, e.cl_ord_id.encode()),
        ]
        if e.orig_cl_ord_id is not None:
            f.append((41, e.orig_cl_ord_id.encode()))
        f.append((17, e.exec_id.encode()))
        if fix42:
            if exec_type is ExecType.ORDER_STATUS:
                f.append((20, b"3"))
                f.append((150, status._value_.encode()))
            else:
                f.append((20, b"0"))
                if exec_type is ExecType.TRADE:
                    f.append((150, b"1" if e.leaves_qty else b"2"))
                else:
                    f.append((150, exec_type._value_.encode()))
        else:
            f.append((150, exec_type._value_.encode()))
        f.append((39, status._value_.encode()))
        reason: int | None = None
        text = ""
        cls = type(e)
        if cls is OrderRejected:
            reason = int(e.reason_code)  # type: ignore[attr-defined]
            text = e.reason  # type: ignore[attr-defined]
        elif cls is OrderStatusReport:
            text = e.text  # type: ignore[attr-defined]
            if status is OrdStatus.REJECTED and e.order_id == NO_ORDER_ID:
                reason = int(OrdRejReason.UNKNOWN_ORDER)
        else:
            text = getattr(e, "reason", "")
        if reason is not None:
            if fix42 and reason not in _FIX42_ORD_REJ:
                reason = int(OrdRejReason.BROKER_OPTION)
            f.append((103, b"%d" % reason))
        if account:
            f.append((1, account.encode()))
        if e.symbol:
            f.append((55, e.symbol.encode()))
        f.append((54, e.side._value_.encode()))
        if e.order_qty is not None:
            f.append((38, _dec(e.order_qty)))
        elif e.cash_order_qty is not None:
            f.append((152, _dec(e.cash_order_qty)))
        f.append((40, e.order_type._value_.encode()))
        if e.price is not None:
            f.append((44, _dec(e.price)))
        f.append((59, e.time_in_force._value_.encode()))
        if cls is OrderFilled:
            f.append((32, _dec(e.last_qty)))  # type: ignore[attr-defined]
            f.append((31, _dec(e.last_px)))  # type: ignore[attr-defined]
        f.append((151, _dec(e.leaves_qty)))
        f.append((14, _dec(e.cum_qty)))
        f.append((6, _dec(e.avg_px)))
        f.append((60, self.transact_time(e.ts)))
        if text:
            f.append((58, text.encode("latin-1", "replace")))
        if not fix42:
            if cls is OrderFilled:
                # LastLiquidityInd: 1 added liquidity (rested), 2 removed it (aggressor)
                f.append((851, b"2" if e.aggressor else b"1"))  # type: ignore[attr-defined]
            if status_req_id and cls is OrderStatusReport:
                f.append((790, status_req_id))
        return Message(f)

    def cancel_reject(self, e: CancelRejected, *, account: str = "") -> Message:
        code = int(e.reason_code)
        if self.fix42 and code not in _FIX42_CXL_REJ:
            code = 2  # broker option: the reason is in Text
        f: list[tuple[int, bytes]] = [
            (35, b"9"), (37, e.order_id.encode()), (11, e.cl_ord_id.encode()),
            (41, e.orig_cl_ord_id.encode()), (39, e.ord_status.value.encode()),
        ]
        if account:
            f.append((1, account.encode()))
        f += [
            (60, self.transact_time(e.ts)),
            (434, e.response_to.value.encode()),
            (102, b"%d" % code),
            (58, e.reason.encode("latin-1", "replace")),
        ]
        return Message(f)
