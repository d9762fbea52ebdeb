"""Requests to a venue: frozen and checked for shape when built.

A command checks what a well-formed request must have (types, non-empty ids, finite
numbers) and raises :class:`CommandError` if not: a FIX layer turns that into a session
reject for a malformed field. Business rules (a positive quantity, a price on the tick,
a known symbol, a cut-off) are the venue's to judge and come back as reject events.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from fixgw.orders import OrdType, Side, TimeInForce
from venues.errors import CommandError


def _text(value: object, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise CommandError(f"{what} must be a non-empty string, got {value!r}")


def _number(value: object, what: str) -> None:
    if value is None:
        return
    if not isinstance(value, Decimal) or not value.is_finite():
        raise CommandError(f"{what} must be a finite Decimal or None, got {value!r}")


def _enum(value: object, kind: type, what: str, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, kind):
        raise CommandError(f"{what} must be a {kind.__name__}, got {value!r}")


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    """NewOrderSingle. ``owner`` is who sent it (for a FIX layer: the session id);
    ``cl_ord_id`` is unique per owner. Exactly one of ``quantity`` (OrderQty, 38) and
    ``cash_quantity`` (CashOrderQty, 152; funds only) is expected."""

    owner: str
    cl_ord_id: str
    symbol: str
    side: Side
    quantity: Decimal | None = None
    order_type: OrdType = OrdType.LIMIT
    price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    cash_quantity: Decimal | None = None
    account: str = ""

    def __post_init__(self) -> None:
        _text(self.owner, "owner")
        _text(self.cl_ord_id, "cl_ord_id")
        _text(self.symbol, "symbol")
        _enum(self.side, Side, "side")
        _enum(self.order_type, OrdType, "order_type")
        _enum(self.time_in_force, TimeInForce, "time_in_force")
        _number(self.quantity, "quantity")
        _number(self.price, "price")
        _number(self.cash_quantity, "cash_quantity")
        if not isinstance(self.account, str):
            raise CommandError(f"account must be a string, got {self.account!r}")


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """OrderCancelRequest: cancel the order now named ``orig_cl_ord_id`` (or, failing
    that, ``order_id``); ``cl_ord_id`` names this request."""

    owner: str
    cl_ord_id: str
    orig_cl_ord_id: str
    symbol: str
    side: Side
    order_id: str | None = None

    def __post_init__(self) -> None:
        _text(self.owner, "owner")
        _text(self.cl_ord_id, "cl_ord_id")
        _text(self.orig_cl_ord_id, "orig_cl_ord_id")
        _text(self.symbol, "symbol")
        _enum(self.side, Side, "side")
        if self.order_id is not None:
            _text(self.order_id, "order_id")


@dataclass(frozen=True, slots=True)
class ReplaceOrder:
    """OrderCancelReplaceRequest: the order ``orig_cl_ord_id`` becomes ``cl_ord_id`` with
    the new ``quantity`` (total, including what is filled) or ``cash_quantity`` and
    ``price``. ``order_type`` and ``time_in_force``, when given, must be unchanged."""

    owner: str
    cl_ord_id: str
    orig_cl_ord_id: str
    symbol: str
    side: Side
    quantity: Decimal | None = None
    price: Decimal | None = None
    cash_quantity: Decimal | None = None
    order_type: OrdType | None = None
    time_in_force: TimeInForce | None = None
    order_id: str | None = None

    def __post_init__(self) -> None:
        _text(self.owner, "owner")
        _text(self.cl_ord_id, "cl_ord_id")
        _text(self.orig_cl_ord_id, "orig_cl_ord_id")
        _text(self.symbol, "symbol")
        _enum(self.side, Side, "side")
        _number(self.quantity, "quantity")
        _number(self.price, "price")
        _number(self.cash_quantity, "cash_quantity")
        _enum(self.order_type, OrdType, "order_type", optional=True)
        _enum(self.time_in_force, TimeInForce, "time_in_force", optional=True)
        if self.order_id is not None:
            _text(self.order_id, "order_id")


@dataclass(frozen=True, slots=True)
class QueryStatus:
    """OrderStatusRequest for the owner's order ``cl_ord_id`` (or ``order_id``)."""

    owner: str
    cl_ord_id: str
    symbol: str = ""
    side: Side | None = None
    order_id: str | None = None

    def __post_init__(self) -> None:
        _text(self.owner, "owner")
        _text(self.cl_ord_id, "cl_ord_id")
        if not isinstance(self.symbol, str):
            raise CommandError(f"symbol must be a string, got {self.symbol!r}")
        _enum(self.side, Side, "side", optional=True)
        if self.order_id is not None:
            _text(self.order_id, "order_id")


Command = SubmitOrder | CancelOrder | ReplaceOrder | QueryStatus
