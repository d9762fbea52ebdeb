"""The FIX market-data vocabulary (MDEntryType, SubscriptionRequestType, MDUpdateType,
MDUpdateAction, MDReqRejReason) as enums, one home for the venues and the utilities.

Like :mod:`fixgw.orders`, the members are their wire strings (:class:`enum.StrEnum`), so a FIX
layer maps a field with ``MDEntryType(value)`` and writes ``member.value`` back. Only the
values this project serves are members: an MDEntryType outside :class:`MDEntryType` is
refused with MDReqRejReason 8 rather than mapped.
"""

from __future__ import annotations

from enum import StrEnum

# SubscriptionRequestType (263) serves positions too: its one home is fixgw.orders
from fixgw.orders import SubscriptionRequestType

__all__ = ["MDEntryType", "MDReqRejReason", "MDUpdateAction", "MDUpdateType", "SubscriptionRequestType"]


class MDEntryType(StrEnum):
    """MDEntryType (269): what one market-data entry is."""

    BID = "0"
    OFFER = "1"
    TRADE = "2"


class MDUpdateType(StrEnum):
    """MDUpdateType (265): how a subscription is refreshed (only incremental is served)."""

    FULL_REFRESH = "0"
    INCREMENTAL = "1"


class MDUpdateAction(StrEnum):
    """MDUpdateAction (279) of an incremental-refresh entry."""

    NEW = "0"
    CHANGE = "1"
    DELETE = "2"


class MDReqRejReason(StrEnum):
    """MDReqRejReason (281) of a MarketDataRequestReject (the values both FIX 4.2 and 4.4 have)."""

    UNKNOWN_SYMBOL = "0"
    DUPLICATE_MD_REQ_ID = "1"
    UNSUPPORTED_SUBSCRIPTION_REQUEST_TYPE = "4"
    UNSUPPORTED_MARKET_DEPTH = "5"
    UNSUPPORTED_MD_UPDATE_TYPE = "6"
    UNSUPPORTED_MD_ENTRY_TYPE = "8"
