"""Immutable, past-tense events a venue emits.

Every event names its ``owner`` (the client, e.g. a FIX session id) and the order ids
(``cl_ord_id``, ``order_id``), so that a FIX layer routes it to the right session without
keeping state of its own. :class:`ExecutionEvent` subclasses become ExecutionReports
(35=8): each carries the order as it stands after the event (status, CumQty, LeavesQty,
AvgPx) and its own ``exec_id``. :class:`CancelRejected` becomes an OrderCancelReject
(35=9).

Events are built only by the venues (trusted code, on the hot path), so they check just
the invariants a FIX report must never break instead of re-validating every field, and a
venue builds them with :func:`fixgw.fastinit.fast_constructor` (positional, ~10x cheaper than the frozen
dataclass ``__init__``, which sets each field through ``object.__setattr__``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from fixgw.orders import (
    CxlRejReason,
    CxlRejResponseTo,
    ExecType,
    OrdRejReason,
    OrdStatus,
    OrdType,
    Side,
    TimeInForce,
)

NO_ORDER_ID = "NONE"
"""OrderID (37) is required in FIX reports; this is the customary value for an order the
venue never accepted (a reject, or a request about an unknown order)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionEvent:
    """What every ExecutionReport needs. ``orig_cl_ord_id`` is set on answers to cancel
    and replace requests; ``order_qty`` is None for an order by amount (``cash_order_qty``),
    whose share quantity is known only when it is filled."""

    exec_type: ClassVar[ExecType]

    venue: str
    owner: str
    cl_ord_id: str
    orig_cl_ord_id: str | None
    order_id: str
    exec_id: str
    symbol: str
    side: Side
    order_type: OrdType
    time_in_force: TimeInForce
    order_qty: Decimal | None
    cash_order_qty: Decimal | None
    price: Decimal | None
    ord_status: OrdStatus
    cum_qty: Decimal
    leaves_qty: Decimal
    avg_px: Decimal
    ts: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAccepted(ExecutionEvent):
    exec_type: ClassVar[ExecType] = ExecType.NEW


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejected(ExecutionEvent):
    """The venue refused a new order; ``reason`` is the text for Text (58)."""

    exec_type: ClassVar[ExecType] = ExecType.REJECTED
    reason: str
    reason_code: OrdRejReason

    def __post_init__(self) -> None:
        if not self.reason:
            raise ValueError("OrderRejected needs a reason")


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilled(ExecutionEvent):
    """One fill: LastQty (32) at LastPx (31). ``trade_id`` is shared by both sides of a
    trade; ``aggressor`` is True for the side that took liquidity (LastLiquidityInd 2)."""

    exec_type: ClassVar[ExecType] = ExecType.TRADE
    last_qty: Decimal
    last_px: Decimal
    trade_id: str
    aggressor: bool

    def __post_init__(self) -> None:
        # the one report whose numbers a client books: never emit a nonsensical one
        if not self.last_qty > 0 or self.leaves_qty < 0:
            raise ValueError(f"OrderFilled with last_qty={self.last_qty} leaves_qty={self.leaves_qty}")


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCanceled(ExecutionEvent):
    """Canceled at the owner's request: ``cl_ord_id`` is the cancel request's id,
    ``orig_cl_ord_id`` the order's id before it."""

    exec_type: ClassVar[ExecType] = ExecType.CANCELED


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderReplaced(ExecutionEvent):
    """Replaced: ``cl_ord_id`` is the new id, ``orig_cl_ord_id`` the one replaced; the
    quantities and price are the new ones."""

    exec_type: ClassVar[ExecType] = ExecType.REPLACED


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderExpired(ExecutionEvent):
    """Ended by its time in force, not by a request: the unfilled part of an IOC or FOK
    order, a DAY order at the session end, a market order with nothing to trade."""

    exec_type: ClassVar[ExecType] = ExecType.EXPIRED
    reason: str

    def __post_init__(self) -> None:
        if not self.reason:
            raise ValueError("OrderExpired needs a reason")


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderStatusReport(ExecutionEvent):
    """Answer to a status request (ExecType I). For an unknown order ``ord_status`` is
    REJECTED and ``text`` says why."""

    exec_type: ClassVar[ExecType] = ExecType.ORDER_STATUS
    text: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelRejected:
    """A cancel or replace request was refused (OrderCancelReject, 35=9). ``ord_status``
    is the order's status now (REJECTED when the order is unknown)."""

    venue: str
    owner: str
    cl_ord_id: str
    orig_cl_ord_id: str
    order_id: str
    ord_status: OrdStatus
    response_to: CxlRejResponseTo
    reason_code: CxlRejReason
    reason: str
    ts: datetime

    def __post_init__(self) -> None:
        if not self.reason:
            raise ValueError("CancelRejected needs a reason")


VenueEvent = (
    OrderAccepted
    | OrderRejected
    | OrderFilled
    | OrderCanceled
    | OrderReplaced
    | OrderExpired
    | OrderStatusReport
    | CancelRejected
)


