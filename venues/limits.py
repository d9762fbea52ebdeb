"""Bounds on the numbers a venue accepts, so that its Decimal arithmetic stays exact.

Decimal's default context keeps 28 significant digits: quantities up to 10^12 with at
most 8 decimals (20 digits) add and subtract exactly however many fills there are; a
number outside these bounds is refused with a reject, never rounded silently.
"""

from __future__ import annotations

from decimal import Decimal

MAX_QUANTITY = Decimal(10) ** 12
QUANTITY_QUANTUM = Decimal("1E-8")
MAX_PRICE = Decimal(10) ** 9
