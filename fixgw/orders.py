"""The FIX order vocabulary (OrdStatus, ExecType, Side, OrdType, TimeInForce and the reject
codes) as enums, one home for the venues and the utilities alike.

The values are the FIX ones so that a FIX layer maps a field with ``Side(value)`` and writes
``side.value`` back, with no translation table to keep in step. The string codes are
:class:`enum.StrEnum`: a member *is* its wire string (``OrdStatus.FILLED == "2"``, hashes as
``"2"``, formats as ``2``), so records and folds that hold plain strings compare with the
members directly; code that stores a value in a record writes ``member.value`` (a plain str).
ExecType is the FIX 4.4 set plus the two FIX 4.2 trade codes (1 partial, 2 fill) that a 4.2
session sends instead of F; OrdStatus includes the pending states the brokerage reports.
TimeInForce has only what the venues take (the customer utility also lets GTD (6) through).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

__all__ = [
    "TERMINAL_STATUSES",
    "CollInquiryResult",
    "CollInquiryStatus",
    "CxlRejReason",
    "CxlRejResponseTo",
    "ExecTransType",
    "ExecType",
    "OrdRejReason",
    "OrdStatus",
    "OrdType",
    "PosReqResult",
    "PosReqStatus",
    "PosReqType",
    "Side",
    "SubscriptionRequestType",
    "TimeInForce",
]


class Side(StrEnum):
    BUY = "1"
    SELL = "2"


class OrdType(StrEnum):
    MARKET = "1"
    LIMIT = "2"


class TimeInForce(StrEnum):
    DAY = "0"
    GTC = "1"
    IOC = "3"
    FOK = "4"


class OrdStatus(StrEnum):
    """OrdStatus (39): the state of the order after the event."""

    NEW = "0"
    PARTIALLY_FILLED = "1"
    FILLED = "2"
    CANCELED = "4"
    PENDING_CANCEL = "6"
    REJECTED = "8"
    PENDING_NEW = "A"
    EXPIRED = "C"
    PENDING_REPLACE = "E"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


# an order in one of these states is done: nothing more happens to it
TERMINAL_STATUSES = frozenset({OrdStatus.FILLED, OrdStatus.CANCELED, OrdStatus.REJECTED, OrdStatus.EXPIRED})


class ExecType(StrEnum):
    """ExecType (150) in FIX 4.4 terms. A FIX 4.2 layer writes TRADE as PARTIAL_FILL or FILL
    (by LeavesQty) and ORDER_STATUS as the current OrdStatus."""

    NEW = "0"
    PARTIAL_FILL = "1"  # FIX 4.2 only
    FILL = "2"  # FIX 4.2 only
    CANCELED = "4"
    REPLACED = "5"
    PENDING_CANCEL = "6"
    REJECTED = "8"
    PENDING_NEW = "A"
    EXPIRED = "C"
    PENDING_REPLACE = "E"
    TRADE = "F"
    ORDER_STATUS = "I"


class ExecTransType(StrEnum):
    """ExecTransType (20), FIX 4.2 only."""

    NEW = "0"
    STATUS = "3"


class OrdRejReason(IntEnum):
    """OrdRejReason (103)."""

    BROKER_OPTION = 0
    UNKNOWN_SYMBOL = 1
    EXCHANGE_CLOSED = 2
    ORDER_EXCEEDS_LIMIT = 3
    TOO_LATE_TO_ENTER = 4
    UNKNOWN_ORDER = 5
    DUPLICATE_ORDER = 6
    UNSUPPORTED_ORDER_CHARACTERISTIC = 11
    INCORRECT_QUANTITY = 13
    OTHER = 99


class CxlRejReason(IntEnum):
    """CxlRejReason (102)."""

    TOO_LATE_TO_CANCEL = 0
    UNKNOWN_ORDER = 1
    BROKER_OPTION = 2
    ALREADY_PENDING = 3
    DUPLICATE_CL_ORD_ID = 6
    OTHER = 99


class CxlRejResponseTo(StrEnum):
    """CxlRejResponseTo (434): which request the OrderCancelReject answers."""

    CANCEL = "1"
    REPLACE = "2"


class PosReqType(IntEnum):
    """PosReqType (724) of a RequestForPositions: only POSITIONS is answered."""

    POSITIONS = 0
    TRADES = 1
    EXERCISES = 2
    ASSIGNMENTS = 3


class PosReqResult(IntEnum):
    """PosReqResult (728) of a RequestForPositionsAck / PositionReport."""

    VALID = 0
    INVALID_OR_UNSUPPORTED = 1
    NO_POSITIONS = 2
    NOT_AUTHORIZED = 3
    NOT_SUPPORTED = 4
    OTHER = 99


class PosReqStatus(IntEnum):
    """PosReqStatus (729) of a RequestForPositionsAck."""

    COMPLETED = 0
    COMPLETED_WITH_WARNINGS = 1
    REJECTED = 2


class CollInquiryStatus(IntEnum):
    """CollInquiryStatus (945) of a CollateralInquiryAck."""

    ACCEPTED = 0
    ACCEPTED_WITH_WARNINGS = 1
    COMPLETED = 2
    COMPLETED_WITH_WARNINGS = 3
    REJECTED = 4


class CollInquiryResult(IntEnum):
    """CollInquiryResult (946) of a CollateralInquiryAck."""

    SUCCESSFUL = 0
    UNAUTHORIZED = 9
    OTHER = 99


class SubscriptionRequestType(StrEnum):
    """SubscriptionRequestType (263)."""

    SNAPSHOT = "0"
    SNAPSHOT_AND_UPDATES = "1"
    UNSUBSCRIBE = "2"
