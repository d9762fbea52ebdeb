"""A client's order or cancel/replace request as the customer utility records it.

A frozen value instead of a ``dict[str, Any]``: every field is named and typed once, a
replace derives a new request (``dataclasses.replace``) instead of editing a shared dict,
and the record's order fields come from one place (:meth:`OrderRequest.record_fields`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class OrderRequest:
    account: str
    symbol: str
    side: str                        # FIX Side (54)
    order_qty: Decimal | None        # OrderQty (38), or None for an order by amount
    cash_order_qty: Decimal | None   # CashOrderQty (152)
    price: Decimal | None            # Price (44)
    ord_type: str                    # FIX OrdType (40)
    tif: str                         # FIX TimeInForce (59)
    cl_ord_id: str                   # the client's ClOrdID (11) of this request
    venue: str
    session: str                     # the client's CompID: the order's owner
    orig_cl_ord_id: str = ""         # OrigClOrdID (41) of a cancel or replace
    begin: str = ""                  # the BeginString the client spoke (reports go back in it)
    in_seq: int = 0                  # the MsgSeqNum it arrived with (utilities.session_rule; 0: unknown)

    def record_fields(self) -> dict[str, Any]:
        """The order fields of this request's record (the caller adds type, txn, status)."""
        fields: dict[str, Any] = {
            "account": self.account, "symbol": self.symbol, "side": self.side, "order_qty": self.order_qty,
            "cash_order_qty": self.cash_order_qty, "price": self.price, "ord_type": self.ord_type, "tif": self.tif,
            "cl_ord_id": self.cl_ord_id, "venue": self.venue, "session": self.session,
        }
        if self.orig_cl_ord_id:
            fields["orig_cl_ord_id"] = self.orig_cl_ord_id
        extra: dict[str, Any] = {}
        if self.begin:
            extra["begin"] = self.begin
        if self.in_seq:
            extra["in_seq"] = self.in_seq
        if extra:
            fields["extra"] = extra
        return fields
