"""Market data of the simulated exchange: subscriptions in, snapshots / refreshes / rejects
out, no I/O (the FIX layer, :mod:`venues.fix_acceptor`, turns the outputs into W, X and Y).

The books are read, never copied on the hot path: after a command or a tick the FIX layer
calls :meth:`MarketData.after` with the events and the symbols whose book may have moved;
for each subscribed (symbol, depth) pair the current top-``depth`` levels are compared with
what was last published and only the differences go out, once per pair, addressed to every
subscription on it. A level is keyed by (side, price): New when it appears in the view,
Change when its size changes, Delete when it leaves (filled, canceled, or pushed below the
depth). Trades come from the venue's fill events, one per trade id (both sides of a trade
share it), so a trade with the market maker, whose own fills are never reported, counts once.

Rejects (MarketDataRequestReject, MDReqRejReason): an unknown symbol (0), an MDReqID the
session already subscribes with (1), an MDEntryType other than bid/offer/trade (8), and a
subscription asking for full refreshes (6: only incremental is served).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from fixgw.mdcodes import (
    MDEntryType,
    MDReqRejReason,
    MDUpdateAction,
    MDUpdateType,
    SubscriptionRequestType,
)
from fixgw.mdmessages import MdEntry, MdRequest
from venues.book import OrderBook
from venues.events import OrderFilled, VenueEvent

__all__ = ["MarketData", "MdOutput", "MdRefresh", "MdRejected", "MdSnapshot"]

_BID, _OFFER, _TRADE = MDEntryType.BID, MDEntryType.OFFER, MDEntryType.TRADE
_NEW, _CHANGE, _DELETE = MDUpdateAction.NEW, MDUpdateAction.CHANGE, MDUpdateAction.DELETE
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class MdSnapshot:
    """A full refresh of ``symbol`` for ``owner``'s request ``req_id``."""

    owner: str
    req_id: str
    symbol: str
    entries: tuple[MdEntry, ...]


@dataclass(frozen=True, slots=True)
class MdRefresh:
    """An incremental refresh for ``owner``'s subscription ``req_id``."""

    owner: str
    req_id: str
    entries: tuple[MdEntry, ...]


@dataclass(frozen=True, slots=True)
class MdRejected:
    owner: str
    req_id: str
    reason: MDReqRejReason | None
    text: str


MdOutput = MdSnapshot | MdRefresh | MdRejected


@dataclass(slots=True)
class _Sub:
    owner: str
    req_id: str
    symbols: tuple[str, ...]
    depth: int
    types: frozenset[MDEntryType]


View = dict[tuple[MDEntryType, int], Decimal]  # (side, price in ticks) -> size


class MarketData:
    """The subscription book of one venue. ``books``: symbol -> (its order book, tick size)."""

    def __init__(self, books: Mapping[str, tuple[OrderBook, Decimal]]) -> None:
        self._books = dict(books)
        self._subs: dict[tuple[str, str], _Sub] = {}  # (owner, req_id) -> subscription
        self._views: dict[tuple[str, int], View] = {}  # (symbol, depth) -> last published
        self._by_view: dict[tuple[str, int], list[_Sub]] = {}
        self._last_trade: dict[str, tuple[Decimal, Decimal]] = {}  # symbol -> (price, size)
        self._last_trade_id: dict[str, str] = {}
        self.messages_out = 0

    @property
    def subscribed_symbols(self) -> frozenset[str]:
        return frozenset(k[0] for k in self._views)

    @property
    def subscriptions(self) -> int:
        return len(self._subs)

    def subscriptions_by_symbol(self) -> dict[str, int]:
        """How many subscriptions watch each symbol (what the venue's metrics show)."""
        out: dict[str, int] = {}
        for sub in self._subs.values():
            for s in sub.symbols:
                out[s] = out.get(s, 0) + 1
        return out

    def last_trade(self, symbol: str) -> tuple[Decimal, Decimal] | None:
        return self._last_trade.get(symbol)

    # -- requests ---------------------------------------------------------------------------

    def request(self, owner: str, req: MdRequest) -> list[MdOutput]:
        key = (owner, req.req_id)
        if req.kind is SubscriptionRequestType.UNSUBSCRIBE:
            sub = self._subs.pop(key, None)
            if sub is None:
                return [MdRejected(owner, req.req_id, None, f"no subscription with MDReqID {req.req_id}")]
            self._detach(sub)
            return []
        problem = self._problem(key, req)
        if problem is not None:
            return [MdRejected(owner, req.req_id, *problem)]
        types = frozenset(MDEntryType(t) for t in req.entry_types)
        out: list[MdOutput] = [MdSnapshot(owner, req.req_id, s, self._snapshot(s, req.depth, types))
                               for s in req.symbols]
        if req.kind is SubscriptionRequestType.SNAPSHOT_AND_UPDATES:
            sub = self._subs[key] = _Sub(owner, req.req_id, req.symbols, req.depth, types)
            for s in req.symbols:
                vk = (s, req.depth)
                if vk not in self._views:
                    self._views[vk] = self._view(s, req.depth)
                self._by_view.setdefault(vk, []).append(sub)
        return out

    def _problem(self, key: tuple[str, str], req: MdRequest) -> tuple[MDReqRejReason, str] | None:
        if key in self._subs:
            return MDReqRejReason.DUPLICATE_MD_REQ_ID, f"MDReqID {req.req_id} is already subscribed"
        unknown = [s for s in req.symbols if s not in self._books]
        if unknown or not req.symbols:
            return MDReqRejReason.UNKNOWN_SYMBOL, f"unknown symbol {', '.join(unknown) or '(none)'}"
        served = {t.value for t in MDEntryType}
        bad = [t for t in req.entry_types if t not in served]
        if bad or not req.entry_types:
            return (MDReqRejReason.UNSUPPORTED_MD_ENTRY_TYPE,
                    f"unsupported MDEntryType {', '.join(bad) or '(none)'}: served are 0 (bid), 1 (offer), 2 (trade)")
        if req.kind is SubscriptionRequestType.SNAPSHOT_AND_UPDATES and req.update_type == MDUpdateType.FULL_REFRESH:
            return MDReqRejReason.UNSUPPORTED_MD_UPDATE_TYPE, "only incremental refresh (MDUpdateType 1) is served"
        return None

    def drop_owner(self, owner: str) -> int:
        """Forget every subscription of ``owner`` (its session logged out); returns how many."""
        gone = [s for k, s in self._subs.items() if k[0] == owner]
        for sub in gone:
            del self._subs[(sub.owner, sub.req_id)]
            self._detach(sub)
        return len(gone)

    def _detach(self, sub: _Sub) -> None:
        for s in sub.symbols:
            vk = (s, sub.depth)
            subs = self._by_view.get(vk)
            if subs is not None:
                subs.remove(sub)
                if not subs:
                    del self._by_view[vk]
                    del self._views[vk]

    # -- book state -------------------------------------------------------------------------

    def _view(self, symbol: str, depth: int) -> View:
        book = self._books[symbol][0]
        view: View = {}
        for is_buy, kind in ((True, _BID), (False, _OFFER)):
            levels = book.depth(is_buy)
            if depth:
                levels = levels[:depth]
            for ticks, qty, _n in levels:
                view[(kind, ticks)] = qty
        return view

    def _snapshot(self, symbol: str, depth: int, types: frozenset[MDEntryType]) -> tuple[MdEntry, ...]:
        tick = self._books[symbol][1]
        entries = [MdEntry(kind, ticks * tick, qty, symbol) for (kind, ticks), qty in self._view(symbol, depth).items()
                   if kind in types]
        trade = self._last_trade.get(symbol)
        if trade is not None and _TRADE in types:
            entries.append(MdEntry(_TRADE, trade[0], trade[1], symbol))
        return tuple(entries)

    # -- changes ------------------------------------------------------------------------------

    def after(self, events: Sequence[VenueEvent], symbols: Iterable[str]) -> list[MdOutput]:
        """The refreshes due after ``events`` with the books of ``symbols`` possibly moved."""
        trades: dict[str, list[MdEntry]] = {}
        for e in events:
            if type(e) is OrderFilled and self._last_trade_id.get(e.symbol) != e.trade_id:
                self._last_trade_id[e.symbol] = e.trade_id
                self._last_trade[e.symbol] = (e.last_px, e.last_qty)
                trades.setdefault(e.symbol, []).append(MdEntry(_TRADE, e.last_px, e.last_qty, e.symbol, _NEW))
        if not self._views:
            return []
        wanted = set(symbols) | trades.keys()
        per_sub: dict[int, tuple[_Sub, list[MdEntry]]] = {}
        shared: dict[tuple[tuple[int, ...], frozenset[MDEntryType]], tuple[MdEntry, ...]] = {}
        for vk, old in list(self._views.items()):
            symbol = vk[0]
            if symbol not in wanted:
                continue
            changes = self._diff(old, self._view(*vk), symbol, vk)
            new_trades = trades.get(symbol, ())
            if not changes and not new_trades:
                continue
            for sub in self._by_view[vk]:
                entries = per_sub.setdefault(id(sub), (sub, []))[1]
                entries.extend(c for c in changes if c.entry_type in sub.types)
                if _TRADE in sub.types:
                    entries.extend(new_trades)
        out: list[MdOutput] = []
        for sub, entries in per_sub.values():
            if entries:
                # subscribers with the same changes share one tuple (the FIX layer encodes it once)
                key = (tuple(id(e) for e in entries), sub.types)
                same = shared.get(key)
                if same is None:
                    same = shared[key] = tuple(entries)
                out.append(MdRefresh(sub.owner, sub.req_id, same))
        return out

    def _diff(self, old: View, new: View, symbol: str, vk: tuple[str, int]) -> list[MdEntry]:
        if old == new:
            return []
        tick = self._books[symbol][1]
        changes: list[MdEntry] = []
        for key in old.keys() - new.keys():
            changes.append(MdEntry(key[0], key[1] * tick, _ZERO, symbol, _DELETE))
        for key, qty in new.items():
            was = old.get(key)
            if was is None:
                changes.append(MdEntry(key[0], key[1] * tick, qty, symbol, _NEW))
            elif was != qty:
                changes.append(MdEntry(key[0], key[1] * tick, qty, symbol, _CHANGE))
        self._views[vk] = new
        return changes
