"""A seeded liquidity provider, so that one client alone trading with the exchange gets
realistic fills.

Each symbol has a reference price (in ticks) that takes one random step per refresh;
the provider quotes ``levels`` bids and asks around it. The exchange cancels the old
quotes and enters the new ones as ordinary orders at every refresh, so client orders
trade against them with price-time priority, and a resting client order fills when the
walk moves through it. The provider's own fills are never reported to clients.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from decimal import Decimal

from venues.venue_config import LiquiditySpec, SymbolSpec


class ReferenceWalk:
    """A random walk in whole ticks, kept high enough that every bid stays above zero."""

    def __init__(self, start_ticks: int, volatility_ticks: float, rng: random.Random, floor_ticks: int) -> None:
        if start_ticks < 1 or floor_ticks < 1:
            raise ValueError(f"ReferenceWalk needs positive ticks, got start={start_ticks} floor={floor_ticks}")
        self._ticks = max(start_ticks, floor_ticks)
        self._vol = volatility_ticks
        self._rng = rng
        self._floor = floor_ticks

    @property
    def ticks(self) -> int:
        return self._ticks

    def step(self) -> int:
        # the step is drawn as a float but applied in whole ticks: prices stay exact
        move = round(self._rng.gauss(0.0, self._vol)) if self._vol > 0 else 0
        self._ticks = max(self._floor, self._ticks + move)
        return self._ticks


class LiquidityProvider:
    def __init__(self, spec: LiquiditySpec, symbols: Iterable[SymbolSpec]) -> None:
        self._spec = spec
        # the lowest bid is reference - spread/2 - (levels-1)*level_ticks: keep it >= 1 tick
        floor = spec.spread_ticks // 2 + (spec.levels - 1) * spec.level_ticks + 1
        self._walks: dict[str, ReferenceWalk] = {}
        self._tick_size: dict[str, Decimal] = {}
        for s in symbols:
            # one generator per symbol, seeded by name: adding a symbol changes no other walk
            rng = random.Random(f"{spec.seed}:{s.symbol}")
            start = int(s.reference_price / s.tick_size)
            self._walks[s.symbol] = ReferenceWalk(start, spec.volatility_ticks, rng, floor)
            self._tick_size[s.symbol] = s.tick_size

    @property
    def quote_size(self) -> Decimal:
        return self._spec.quote_size

    def reference_ticks(self, symbol: str) -> int:
        return self._walks[symbol].ticks

    def reference_price(self, symbol: str) -> Decimal:
        return self._walks[symbol].ticks * self._tick_size[symbol]

    def step(self) -> None:
        """Move every reference price one step."""
        for walk in self._walks.values():
            walk.step()

    def quotes(self, symbol: str) -> list[tuple[bool, int]]:
        """(is_buy, ticks) of each quote to enter now, best first on each side."""
        spec = self._spec
        ref = self._walks[symbol].ticks
        bid = ref - spec.spread_ticks // 2
        ask = bid + spec.spread_ticks
        out: list[tuple[bool, int]] = []
        for i in range(spec.levels):
            out.append((True, bid - i * spec.level_ticks))
            out.append((False, ask + i * spec.level_ticks))
        return out
