"""The record: the one thing every node stores and replicates.

Records are insert-only and denormalised: each carries enough of the order to be shown on
its own, because the records of one order reach a replica in any order, or not yet at all.
The key is ``(origin, seq)``; ``seq`` is contiguous per origin so a replica can see gaps.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from replication.hlc import Hlc


class Role(str, enum.Enum):
    CUSTOMER = "customer"
    STREET = "street"
    FIRM = "firm"


class RecordType(str, enum.Enum):
    # written by a customer utility
    ORDER = "order"                        # a NewOrderSingle accepted (acknowledged PendingNew)
    ORDER_REJECTED = "order_rejected"      # refused by the customer utility (limits, validation)
    CANCEL_REQUEST = "cancel_request"
    REPLACE_REQUEST = "replace_request"
    CANCEL_REJECTED_LOCAL = "cancel_rejected_local"  # refused by the customer utility itself
    ROUTED = "routed"                      # handed to a street utility (fields: street)
    SESSION = "session"                    # a customer's FIX session: taken, reserved, released, reset
    # written by a street utility
    SENT = "sent"                          # sent to the venue (NewOrderSingle out)
    CANCEL_SENT = "cancel_sent"
    REPLACE_SENT = "replace_sent"
    VENUE_ACK = "venue_ack"                # ExecutionReport New
    VENUE_REJECT = "venue_reject"          # ExecutionReport Rejected
    FILL = "fill"                          # partial or full fill (last_qty/last_px, cum_qty, avg_px)
    CANCELED = "canceled"
    REPLACED = "replaced"
    EXPIRED = "expired"
    CANCEL_REJECTED = "cancel_rejected"    # OrderCancelReject from the venue
    VENUE_STATUS = "venue_status"          # answer to an OrderStatusRequest
    TAKEOVER = "takeover"                  # a street utility took over a dead peer's order
    # written by the firm node
    ACCOUNT = "account"
    POSITION = "position"
    BUYING_POWER = "buying_power"
    SETTLED = "settled"
    END_OF_DAY = "end_of_day"
    # anything for tests and tools
    NOTE = "note"


Scalar = str | int | bool | Decimal | None


@dataclass(frozen=True, slots=True)
class RecordKey:
    origin: str
    seq: int


@dataclass(frozen=True, slots=True)
class Record:
    """One immutable, denormalised fact.

    The order fields are optional because not every record type is about an order; those
    that are carry all of them so a replica can show the order from this record alone.
    ``extra`` holds anything type-specific (str keys; str/int/bool/Decimal/None values).
    """

    origin: str
    seq: int
    txn: str
    type: RecordType
    status: str
    hlc: Hlc
    account: str = ""
    symbol: str = ""
    side: str = ""                 # FIX Side: "1" buy, "2" sell
    order_qty: Decimal | None = None
    cash_order_qty: Decimal | None = None
    price: Decimal | None = None
    ord_type: str = ""             # FIX OrdType
    tif: str = ""                  # FIX TimeInForce
    cl_ord_id: str = ""
    orig_cl_ord_id: str = ""
    venue: str = ""
    session: str = ""              # customer CompID that owns the order
    venue_order_id: str = ""
    exec_id: str = ""
    last_qty: Decimal | None = None
    last_px: Decimal | None = None
    cum_qty: Decimal | None = None
    avg_px: Decimal | None = None
    text: str = ""
    extra: Mapping[str, Scalar] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or "/" in self.origin:
            raise ValueError(f"Record.origin must be a non-empty str without '/', got {self.origin!r}")
        if not isinstance(self.seq, int) or isinstance(self.seq, bool) or self.seq < 1:
            raise ValueError(f"Record.seq must be an int >= 1, got {self.seq!r}")
        if not isinstance(self.txn, str):
            raise ValueError(f"Record.txn must be a str, got {self.txn!r}")  # noqa: TRY004 - callers catch ValueError for any malformed record
        if not isinstance(self.type, RecordType):
            object.__setattr__(self, "type", RecordType(self.type))
        if not isinstance(self.hlc, Hlc):
            raise ValueError(f"Record.hlc must be an Hlc, got {self.hlc!r}")  # noqa: TRY004 - likewise
        for name in ("order_qty", "cash_order_qty", "price", "last_qty", "last_px", "cum_qty", "avg_px"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, Decimal):
                raise ValueError(f"Record.{name} must be a Decimal or None, got {v!r}")

    @property
    def key(self) -> RecordKey:
        return RecordKey(self.origin, self.seq)

    def replace(self, **changes: Any) -> Record:
        import dataclasses

        return dataclasses.replace(self, **changes)
