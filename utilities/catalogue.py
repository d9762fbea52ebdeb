"""Which venue lists which symbol, and at what reference price: what a node needs to know of
the venues.

The utilities route an order by its symbol and check limits against a reference price,
but they do not read the venues' configuration themselves (``utilities`` does not import
``venues``): the CLI reads each venue's listing (symbol -> reference price) and hands them
here, in the order of the cluster config. A symbol listed by two venues goes to the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class VenueCatalogue:
    symbol_venue: Mapping[str, str] = field(default_factory=dict)   # symbol -> venue name
    prices: Mapping[str, Decimal] = field(default_factory=dict)     # symbol -> reference price

    @classmethod
    def of(cls, listings: Mapping[str, Mapping[str, Decimal]]) -> VenueCatalogue:
        """From each venue's listing (venue name -> symbol -> reference price), in config order."""
        symbol_venue: dict[str, str] = {}
        prices: dict[str, Decimal] = {}
        for venue, listing in listings.items():
            for symbol, price in listing.items():
                symbol_venue.setdefault(symbol, venue)
                prices.setdefault(symbol, price)
        return cls(symbol_venue, prices)
