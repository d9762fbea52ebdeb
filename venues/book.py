"""An order book for one symbol with price-time priority.

Prices are held as integer ticks (price / tick size) for ordering, because int
comparisons are several times faster than Decimal ones; quantities stay Decimal. Each
side keeps its price levels in a dict (level by key) and a sorted list of keys with the
best at the end (bids: key = ticks; asks: key = -ticks), so the best level is ``keys[-1]``
and a new level costs one ``insort``.

A level is a FIFO deque. Cancelling removes lazily: the order's ``token`` changes and
the stale queue entry is skipped when it reaches the front; a level whose last live
order goes is dropped whole, and a level with many stale entries is compacted, so the
garbage stays bounded.

Market orders that find nothing to trade against and whose time in force lets them wait
rest in a per-side market queue, ahead of every price; they trade at the price of the
next order that arrives against them.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import NamedTuple

_ZERO = Decimal(0)


class BookOrder:
    """What the book needs of an order; a venue subclasses it with its own fields.

    ``ticks``/``price`` are None for a market order. ``leaves`` is kept up to date by the
    book as the order trades.
    """

    __slots__ = ("is_buy", "leaves", "price", "resting", "ticks", "token")

    def __init__(self, is_buy: bool, ticks: int | None, price: Decimal | None, leaves: Decimal) -> None:
        self.is_buy = is_buy
        self.ticks = ticks
        self.price = price
        self.leaves = leaves
        self.token = 0  # changes whenever the order leaves a queue: stale entries skip
        self.resting = False


class Trade(NamedTuple):
    """One match: ``resting`` traded ``qty`` at ``price`` with the incoming order."""

    resting: BookOrder
    qty: Decimal
    price: Decimal


_NO_TRADES: tuple[Trade, ...] = ()


class _Level:
    __slots__ = ("live", "qty", "queue")

    def __init__(self) -> None:
        self.queue: deque[tuple[BookOrder, int]] = deque()
        self.live = 0
        self.qty = _ZERO

    def compact(self) -> None:
        self.queue = deque(e for e in self.queue if e[0].token == e[1])


class _Side:
    __slots__ = ("keys", "levels", "market", "sign")

    def __init__(self, sign: int) -> None:
        self.sign = sign  # key = ticks * sign, so that the best level has the largest key
        self.levels: dict[int, _Level] = {}
        self.keys: list[int] = []
        self.market = _Level()


class OrderBook:
    def __init__(self, symbol: str = "") -> None:
        self.symbol = symbol
        self._bids = _Side(1)
        self._asks = _Side(-1)

    # -- queries ---------------------------------------------------------------------

    def best_bid(self) -> int | None:
        keys = self._bids.keys
        return keys[-1] if keys else None

    def best_ask(self) -> int | None:
        keys = self._asks.keys
        return -keys[-1] if keys else None

    def is_crossed(self) -> bool:
        """True if the book is in a state matching should have prevented."""
        bid, ask = self.best_bid(), self.best_ask()
        if bid is not None and ask is not None and bid >= ask:
            return True
        # a waiting market order means nothing was there to trade against it
        if self._bids.market.live and self._asks.keys:
            return True
        return bool(self._asks.market.live and self._bids.keys)

    def depth(self, is_buy: bool) -> list[tuple[int, Decimal, int]]:
        """(ticks, quantity, order count) per level, best first (market queue excluded)."""
        side = self._bids if is_buy else self._asks
        return [
            (key * side.sign, side.levels[key].qty, side.levels[key].live) for key in reversed(side.keys)
        ]

    def resting_quantity(self, is_buy: bool) -> Decimal:
        side = self._bids if is_buy else self._asks
        total = side.market.qty
        for level in side.levels.values():
            total += level.qty
        return total

    def resting_orders(self, is_buy: bool) -> Iterator[BookOrder]:
        """Live resting orders of a side in priority order (market queue first)."""
        side = self._bids if is_buy else self._asks
        for level in [side.market] + [side.levels[k] for k in reversed(side.keys)]:
            for order, token in level.queue:
                if order.token == token:
                    yield order

    def available(self, incoming: BookOrder, up_to: Decimal) -> Decimal:
        """Quantity the incoming order could trade now, counted up to ``up_to`` (FOK)."""
        contra = self._asks if incoming.is_buy else self._bids
        total = _ZERO
        if incoming.ticks is not None:
            total += contra.market.qty
            threshold = -incoming.ticks if incoming.is_buy else incoming.ticks
        levels = contra.levels
        for key in reversed(contra.keys):
            if total >= up_to:
                break
            if incoming.ticks is not None and key < threshold:
                break
            total += levels[key].qty
        return total

    # -- changes ---------------------------------------------------------------------

    def add(self, order: BookOrder) -> None:
        """Rest ``order`` at the back of its price level (or of the market queue)."""
        side = self._bids if order.is_buy else self._asks
        if order.ticks is None:
            level = side.market
        else:
            key = order.ticks * side.sign
            level = side.levels.get(key)  # type: ignore[assignment]
            if level is None:
                level = side.levels[key] = _Level()
                insort(side.keys, key)
        order.token += 1
        order.resting = True
        level.queue.append((order, order.token))
        level.live += 1
        level.qty += order.leaves

    def remove(self, order: BookOrder) -> None:
        """Take a resting order out of the book (cancel, or before a re-queue)."""
        if not order.resting:
            return
        side = self._bids if order.is_buy else self._asks
        order.token += 1
        order.resting = False
        if order.ticks is None:
            level = side.market
            level.live -= 1
            level.qty -= order.leaves
            if level.live == 0:
                level.queue.clear()
            elif len(level.queue) > 2 * level.live + 32:
                level.compact()
            return
        key = order.ticks * side.sign
        level = side.levels[key]
        level.live -= 1
        level.qty -= order.leaves
        if level.live == 0:
            del side.levels[key]
            keys = side.keys
            del keys[bisect_left(keys, key)]
        elif len(level.queue) > 2 * level.live + 32:
            level.compact()

    def reduce(self, order: BookOrder, leaves: Decimal) -> None:
        """Lower a resting order's open quantity in place: it keeps its priority."""
        if not 0 < leaves <= order.leaves:
            raise ValueError(f"reduce needs 0 < leaves <= {order.leaves}, got {leaves}")
        if order.resting:
            side = self._bids if order.is_buy else self._asks
            level = side.market if order.ticks is None else side.levels[order.ticks * side.sign]
            level.qty -= order.leaves - leaves
        order.leaves = leaves

    def match(self, incoming: BookOrder) -> Sequence[Trade]:
        """Trade ``incoming`` against the other side as far as its price allows.

        Updates ``leaves`` of both sides, drops filled resting orders, and returns the
        trades in the order they happened. ``incoming`` is not added to the book.
        """
        contra = self._asks if incoming.is_buy else self._bids
        price = incoming.price
        ticks = incoming.ticks
        keys = contra.keys
        # most orders do not cross: leave before allocating anything
        if (price is None or not contra.market.live) and (
            not keys or (ticks is not None and keys[-1] < (-ticks if incoming.is_buy else ticks))
        ):
            return _NO_TRADES
        trades: list[Trade] = []
        leaves = incoming.leaves
        if not leaves > _ZERO:
            return trades
        if price is not None and contra.market.live:
            leaves = self._sweep(contra.market, leaves, price, trades)
            if contra.market.live == 0:
                contra.market.queue.clear()
        if leaves:
            levels = contra.levels
            threshold = None if ticks is None else (-ticks if incoming.is_buy else ticks)
            while leaves and keys:
                key = keys[-1]
                if threshold is not None and key < threshold:
                    break
                level = levels[key]
                leaves = self._sweep(level, leaves, None, trades)
                if level.live == 0:
                    del levels[key]
                    keys.pop()
        incoming.leaves = leaves
        return trades

    @staticmethod
    def _sweep(level: _Level, leaves: Decimal, price: Decimal | None, trades: list[Trade]) -> Decimal:
        """Fill from the front of ``level`` until ``leaves`` is used up or the level is."""
        queue = level.queue
        append = trades.append
        while leaves and queue:
            resting, token = queue[0]
            if resting.token != token:
                queue.popleft()
                continue
            have = resting.leaves
            px = resting.price if price is None else price
            if have <= leaves:
                queue.popleft()
                resting.token += 1
                resting.resting = False
                resting.leaves = _ZERO
                level.live -= 1
                level.qty -= have
                leaves -= have
                append(Trade(resting, have, px))  # type: ignore[arg-type]
            else:
                resting.leaves = have - leaves
                level.qty -= leaves
                append(Trade(resting, leaves, px))  # type: ignore[arg-type]
                leaves = _ZERO
        return leaves
