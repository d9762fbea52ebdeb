"""The order vocabulary shared by the venues, coded with the FIX 4.4 values.

The values are the FIX ones so that a FIX layer maps a field with ``Side(value)`` and
writes ``side.value`` back, with no translation table to keep in step.
"""

from __future__ import annotations

from enum import Enum, IntEnum


class Side(str, Enum):
    BUY = "1"
    SELL = "2"


class OrdType(str, Enum):
    MARKET = "1"
    LIMIT = "2"


class TimeInForce(str, Enum):
    DAY = "0"
    GTC = "1"
    IOC = "3"
    FOK = "4"


class OrdStatus(str, Enum):
    """OrdStatus (39): the state of the order after the event."""

    NEW = "0"
    PARTIALLY_FILLED = "1"
    FILLED = "2"
    CANCELED = "4"
    REJECTED = "8"
    EXPIRED = "C"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({OrdStatus.FILLED, OrdStatus.CANCELED, OrdStatus.REJECTED, OrdStatus.EXPIRED})


class ExecType(str, Enum):
    """ExecType (150) in FIX 4.4 terms. A FIX 4.2 layer writes TRADE as 1 or 2 (partial/fill)
    and ORDER_STATUS as the current OrdStatus."""

    NEW = "0"
    CANCELED = "4"
    REPLACED = "5"
    REJECTED = "8"
    EXPIRED = "C"
    TRADE = "F"
    ORDER_STATUS = "I"


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


class CxlRejResponseTo(str, Enum):
    """CxlRejResponseTo (434): which request the OrderCancelReject answers."""

    CANCEL = "1"
    REPLACE = "2"
