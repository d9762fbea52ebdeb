"""The orders a venue knows, shared by the exchange and the fund company: ids, lookup,
the refusals common to cancel and replace, cancel rejects, forgetting old orders, and the
venue's clock that never runs backwards.

What stays with each venue is what differs: how an order trades (a book, a NAV), what makes
a new order or a replace invalid, and when a venue's day ends (the exchange's session end,
the fund's valuation point: either calls :meth:`OrderRegistry.forget_old_orders` then).

Keys: an order is found by ``(owner, ClOrdID)`` under every ClOrdID it has had (the cancel
and replace requests' included, so that a ClOrdID is never used twice) or by its OrderID.
The exchange's hot path (``submit``) reads ``orders``, ``exec_seq`` and ``last`` directly
rather than through methods: a method call per order costs more than the check itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Generic, Protocol, TypeVar

from fixgw.fastinit import fast_constructor
from fixgw.orders import (
    CxlRejReason,
    CxlRejResponseTo,
    OrdStatus,
    OrdType,
    Side,
    TimeInForce,
)
from venues.clock import Clock
from venues.commands import CancelOrder, QueryStatus, ReplaceOrder
from venues.events import NO_ORDER_ID, CancelRejected, OrderStatusReport

__all__ = ["OrderRegistry", "RegisteredOrder", "fmt"]

_ZERO = Decimal(0)
_CANCEL_REJECTED = fast_constructor(CancelRejected)


def fmt(d: Decimal) -> str:
    """A Decimal in a venue's texts: plain notation, as given."""
    return format(d, "f")


class RegisteredOrder(Protocol):
    """What the registry needs of a venue's order."""

    owner: str
    cl_ord_id: str
    order_id: str
    symbol: str
    side: Side
    status: OrdStatus


O = TypeVar("O", bound=RegisteredOrder)


class OrderRegistry(Generic[O]):
    """The orders of one venue (named ``venue``, reading time from ``clock``).
    ``instrument`` names the symbol in texts ("symbol", "fund")."""

    __slots__ = ("_ended_before", "by_id", "clock", "exec_seq", "instrument", "last", "order_seq", "orders", "venue")

    def __init__(self, venue: str, clock: Clock, instrument: str = "symbol") -> None:
        self.venue = venue
        self.clock = clock
        self.instrument = instrument
        # (owner, any ClOrdID the order has had, cancel requests included) -> order
        self.orders: dict[tuple[str, str], O] = {}
        self.by_id: dict[str, O] = {}
        self._ended_before: set[str] = set()  # order ids already done at the last day's end
        self.order_seq = 0
        self.exec_seq = 0
        self.last = clock.now()

    # -- time ----------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.now_at(self.clock.now())

    def now_at(self, now: datetime) -> datetime:
        """``now``, or the latest time already seen: a venue's time never runs backwards,
        whatever the clock does."""
        if now < self.last:
            return self.last
        self.last = now
        return now

    # -- ids -----------------------------------------------------------------------------

    def next_order_id(self) -> str:
        self.order_seq += 1
        return f"{self.venue}-O{self.order_seq}"

    def next_exec_id(self) -> str:
        self.exec_seq += 1
        return f"{self.venue}-{self.exec_seq}"

    # -- the orders ----------------------------------------------------------------------

    def add(self, order: O) -> None:
        self.orders[(order.owner, order.cl_ord_id)] = order
        self.by_id[order.order_id] = order

    def is_duplicate(self, owner: str, cl_ord_id: str) -> bool:
        return (owner, cl_ord_id) in self.orders

    def rename(self, order: O, owner: str, cl_ord_id: str) -> str:
        """The order now goes by ``cl_ord_id`` (a cancel or a replace); returns the ClOrdID
        it had. The old one still finds it."""
        orig = order.cl_ord_id
        order.cl_ord_id = cl_ord_id
        self.orders[(owner, cl_ord_id)] = order
        return orig

    def lookup(self, owner: str, cl_ord_id: str, order_id: str | None) -> O | None:
        """By ClOrdID, else by OrderID (only among ``owner``'s orders)."""
        order = self.orders.get((owner, cl_ord_id))
        if order is None and order_id is not None:
            found = self.by_id.get(order_id)
            if found is not None and found.owner == owner:
                order = found
        return order

    def open_orders(self, owner: str | None = None) -> Iterator[O]:
        """The live orders (of ``owner``, if given), in arrival order."""
        return (o for o in self.by_id.values() if not o.status.is_terminal and (owner is None or o.owner == owner))

    def forget_old_orders(self) -> None:
        """At the end of each venue day, drop the orders that were already done at the end of
        the previous one: a client can ask about an order for a full day after it ends, and
        ClOrdIDs (unique per trading day in FIX) may be used again after that; memory stays
        bounded by what two days hold rather than growing for as long as the venue runs."""
        old = self._ended_before
        if old:
            self.orders = {k: o for k, o in self.orders.items() if o.order_id not in old}
            for order_id in old:
                del self.by_id[order_id]
        self._ended_before = {i for i, o in self.by_id.items() if o.status.is_terminal}

    # -- refusals ------------------------------------------------------------------------

    def refuse(
        self, cmd: CancelOrder | ReplaceOrder, order: O | None, now: datetime, to: CxlRejResponseTo
    ) -> CancelRejected | None:
        """The reasons common to every venue for turning a cancel or replace down."""
        if order is None:
            return self.cancel_rejected(cmd, None, now, to, CxlRejReason.UNKNOWN_ORDER,
                                        f"unknown order {cmd.orig_cl_ord_id}")
        if (cmd.owner, cmd.cl_ord_id) in self.orders:
            return self.cancel_rejected(cmd, order, now, to, CxlRejReason.DUPLICATE_CL_ORD_ID,
                                        f"duplicate ClOrdID {cmd.cl_ord_id}")
        if cmd.symbol != order.symbol or cmd.side is not order.side:
            return self.cancel_rejected(cmd, order, now, to, CxlRejReason.OTHER,
                                        f"{self.instrument}/side {cmd.symbol}/{cmd.side.name} do not match the order "
                                        f"({order.symbol}/{order.side.name})")
        if order.status.is_terminal:
            return self.cancel_rejected(cmd, order, now, to, CxlRejReason.TOO_LATE_TO_CANCEL,
                                        f"order is already {order.status.name.lower()}")
        return None

    def cancel_rejected(
        self, cmd: CancelOrder | ReplaceOrder, order: O | None, now: datetime,
        to: CxlRejResponseTo, code: CxlRejReason, reason: str,
    ) -> CancelRejected:
        return _CANCEL_REJECTED(
            self.venue, cmd.owner, cmd.cl_ord_id, cmd.orig_cl_ord_id,
            NO_ORDER_ID if order is None else order.order_id,
            OrdStatus.REJECTED if order is None else order.status, to, code, reason, now,
        )

    def replace_refused(self, cmd: ReplaceOrder, order: O, now: datetime, problem: str) -> CancelRejected:
        """A replace the venue's own rules turn down (``problem`` says why)."""
        return self.cancel_rejected(cmd, order, now, CxlRejResponseTo.REPLACE, CxlRejReason.OTHER, problem)

    def unknown_order(self, cmd: QueryStatus, now: datetime, order_type: OrdType) -> OrderStatusReport:
        """The status answer about an order the venue does not know (OrdStatus Rejected)."""
        return OrderStatusReport(
            venue=self.venue, owner=cmd.owner, cl_ord_id=cmd.cl_ord_id, orig_cl_ord_id=None,
            order_id=NO_ORDER_ID, exec_id=self.next_exec_id(), symbol=cmd.symbol,
            side=cmd.side or Side.BUY, order_type=order_type, time_in_force=TimeInForce.DAY,
            order_qty=_ZERO, cash_order_qty=None, price=None, ord_status=OrdStatus.REJECTED,
            cum_qty=_ZERO, leaves_qty=_ZERO, avg_px=_ZERO, ts=now, text=f"unknown order {cmd.cl_ord_id}",
        )
