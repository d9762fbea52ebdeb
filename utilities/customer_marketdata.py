"""The customer side of market data: a customer's MarketDataRequest (V) at a customer utility,
served from the quotes the street utilities publish (:mod:`utilities.quote_feed`).

A customer utility holds one book per symbol any of its sessions subscribes to
(:class:`utilities.md_book.Book`), fed from the bus, and says which symbols it wants on its
``mdwant`` topic (at once when that changes, and every heartbeat, so that a street that starts
or takes over learns it). Per subscription it keeps what the customer was last sent (the view
at its MarketDepth, its entry types): a W snapshot first (at once when the book is here,
otherwise when the street's first full book arrives), then each X is the difference between
that and the book now, plus the trades since. A book replaced by another street's full book
(a takeover, a venue restart, a gap repaired) therefore reaches customers as the X of what
changed, never as a second snapshot.

Bounded for a slow customer: before an X goes out the session's unread bytes are looked at
(:attr:`fixgw.engine.SessionRuntime.write_backlog`); above ``BACKLOG_LIMIT`` the subscription
is only marked changed and retried every ``RETRY_S``: the customer then gets ONE X carrying the
net change (conflation per subscription and symbol), and at most ``TRADES_KEPT`` trades per
symbol (older ones are dropped and counted). Memory per subscription is its book view, whatever
the rate of quotes.

Rejects (MarketDataRequestReject Y, as the venue gives them): an unknown symbol (0; also one
the venue refused: the fund company has no books), an MDReqID already subscribed on the
session (1), an MDEntryType other than bid/offer/trade (8), a subscription asking for full
refreshes (6), an unsubscribe of an unknown MDReqID (no reason), and no book from any street
within ``snapshot_timeout_s`` (no reason, Text says so). Subscriptions end at logout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from decimal import Decimal

from fixgw.config import SessionID
from fixgw.mdcodes import (
    MDEntryType,
    MDReqRejReason,
    MDUpdateAction,
    MDUpdateType,
    SubscriptionRequestType,
)
from fixgw.mdmessages import (
    MdEntry,
    MdRequest,
    incremental_refresh,
    md_reject,
    parse_md_request,
    snapshot,
)
from fixgw.message import Message
from replication.wire import Topics
from utilities.md_book import Book, View, book_entries
from utilities.quote_wire import Interest, QuoteKind, decode_quotes, encode_interest

log = logging.getLogger(__name__)

BACKLOG_LIMIT = 256 << 10   # unread bytes on a session above which its refreshes are conflated
RETRY_S = 0.05              # how soon a conflated subscription is tried again
TRADES_KEPT = 64            # trades kept per subscription and symbol while it is conflated
_ZERO = Decimal(0)
_TYPES = frozenset(t.value for t in MDEntryType)


@dataclass(eq=False, slots=True)
class _Sub:
    sid: SessionID
    req_id: str
    symbols: tuple[str, ...]
    depth: int
    types: frozenset[MDEntryType]
    updates: bool                                   # 263=1 (else a snapshot only)
    asked_at: float
    awaiting: set[str] = field(default_factory=set)  # symbols whose W has not gone out yet
    sent: dict[str, View] = field(default_factory=dict)
    trades: dict[str, deque[MdEntry]] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)


class CustomerMarketData:
    def __init__(self, *, name: str, cluster: str, symbols: Collection[str], streets: Collection[str],
                 send: Callable[[SessionID, Message], None], backlog: Callable[[SessionID], int],
                 publish: Callable[[str, bytes], Awaitable[None]], snapshot_timeout_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.topics = Topics(cluster)
        self.symbols = frozenset(symbols)
        self.streets = frozenset(streets)
        self.send = send
        self.backlog = backlog
        self.publish = publish
        self.snapshot_timeout_s = snapshot_timeout_s
        self.clock = clock
        self.books: dict[str, Book] = {}
        self.source: dict[str, str] = {}            # symbol -> the street whose quotes it follows
        self.last_seq: dict[str, int] = {}          # street -> sequence number of its last quotes
        self.refresh: set[str] = set()              # symbols a full book is asked for
        self.refused: dict[str, str] = {}           # symbol -> why the venue refused it
        self.subs: dict[SessionID, dict[str, _Sub]] = {}
        self.by_symbol: dict[str, list[_Sub]] = {}
        self._dirty: dict[int, _Sub] = {}
        self._flush_scheduled = False
        self._retry: asyncio.TimerHandle | None = None
        self._interest_sent: frozenset[str] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.counters = {"md_requests": 0, "md_rejects": 0, "md_snapshots": 0, "md_refreshes": 0,
                         "md_conflated": 0, "md_trades_dropped": 0, "md_gaps": 0}

    # ------------------------------------------------------------------ customers' requests
    def on_request(self, msg: Message, sid: SessionID) -> None:
        req = parse_md_request(msg)
        self.counters["md_requests"] += 1
        subs = self.subs.setdefault(sid, {})
        if req.kind is SubscriptionRequestType.UNSUBSCRIBE:
            sub = subs.pop(req.req_id, None)
            if sub is None:
                self._reject(sid, req.req_id, None, f"no subscription with MDReqID {req.req_id}")
            else:
                self._detach(sub)
            return
        problem = self._problem(subs, req)
        if problem is not None:
            self._reject(sid, req.req_id, *problem)
            return
        sub = _Sub(sid, req.req_id, req.symbols, req.depth, frozenset(MDEntryType(t) for t in req.entry_types),
                   req.kind is SubscriptionRequestType.SNAPSHOT_AND_UPDATES, self.clock(), set(req.symbols))
        subs[req.req_id] = sub
        for s in req.symbols:
            self.by_symbol.setdefault(s, []).append(sub)
            if s in self.books:
                self._snapshot(sub, s)
        if sub.awaiting:
            self.refresh.update(s for s in sub.awaiting if s not in self.books)
        self._interest_changed()

    def _problem(self, subs: dict[str, _Sub], req: MdRequest) -> tuple[MDReqRejReason, str] | None:
        if req.req_id in subs:
            return MDReqRejReason.DUPLICATE_MD_REQ_ID, f"MDReqID {req.req_id} is already subscribed"
        unknown = [s for s in req.symbols if s not in self.symbols]
        if unknown or not req.symbols:
            return MDReqRejReason.UNKNOWN_SYMBOL, f"unknown symbol {', '.join(unknown) or '(none)'}"
        refused = [s for s in req.symbols if s in self.refused]
        if refused:
            return (MDReqRejReason.UNKNOWN_SYMBOL,
                    "; ".join(f"no market data for {s} at its venue ({self.refused[s]})" for s in refused))
        bad = [t for t in req.entry_types if t not in _TYPES]
        if bad or not req.entry_types:
            return (MDReqRejReason.UNSUPPORTED_MD_ENTRY_TYPE,
                    f"unsupported MDEntryType {', '.join(bad) or '(none)'}: served are 0 (bid), 1 (offer), 2 (trade)")
        if req.kind is SubscriptionRequestType.SNAPSHOT_AND_UPDATES and req.update_type == MDUpdateType.FULL_REFRESH:
            return MDReqRejReason.UNSUPPORTED_MD_UPDATE_TYPE, "only incremental refresh (MDUpdateType 1) is served"
        return None

    def _reject(self, sid: SessionID, req_id: str, reason: MDReqRejReason | None, text: str) -> None:
        self.counters["md_rejects"] += 1
        self.send(sid, md_reject(req_id, reason, text))

    def on_logout(self, sid: SessionID) -> None:
        for sub in list(self.subs.pop(sid, {}).values()):
            self._detach(sub)

    def _end(self, sub: _Sub) -> None:
        subs = self.subs.get(sub.sid)
        if subs is not None and subs.get(sub.req_id) is sub:
            del subs[sub.req_id]
        self._detach(sub)

    def _detach(self, sub: _Sub) -> None:
        self._dirty.pop(id(sub), None)
        for s in sub.symbols:
            watchers = self.by_symbol.get(s)
            if watchers is None:
                continue
            if sub in watchers:
                watchers.remove(sub)
            if not watchers:
                del self.by_symbol[s]
                self.books.pop(s, None)
                self.source.pop(s, None)
                self.refresh.discard(s)
        self._interest_changed()

    # ------------------------------------------------------------------ what customers are sent
    def _view(self, sub: _Sub, symbol: str) -> View:
        return {k: v for k, v in self.books[symbol].view(sub.depth).items() if k[0] in sub.types}

    def _snapshot(self, sub: _Sub, symbol: str) -> None:
        book = self.books[symbol]
        view = self._view(sub, symbol)
        trade = book.trade if MDEntryType.TRADE in sub.types else None
        self.send(sub.sid, snapshot(sub.req_id, symbol, book_entries(symbol, view, trade)))
        self.counters["md_snapshots"] += 1
        sub.awaiting.discard(symbol)
        sub.sent[symbol] = view
        if not sub.updates and not sub.awaiting:
            self._end(sub)

    def _changed(self, symbol: str, trades: list[MdEntry]) -> None:
        for sub in list(self.by_symbol.get(symbol, ())):
            if symbol in sub.awaiting:
                self._snapshot(sub, symbol)
                continue
            if not sub.updates:
                continue
            if trades and MDEntryType.TRADE in sub.types:
                kept = sub.trades.setdefault(symbol, deque(maxlen=TRADES_KEPT))
                dropped = max(0, len(kept) + len(trades) - TRADES_KEPT)
                self.counters["md_trades_dropped"] += dropped
                kept.extend(trades)
            sub.dirty.add(symbol)
            self._dirty[id(sub)] = sub
        if self._dirty and not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        held = 0
        for key, sub in list(self._dirty.items()):
            if self.backlog(sub.sid) > BACKLOG_LIMIT:
                held += 1
                continue
            del self._dirty[key]
            for symbol in sorted(sub.dirty):
                if symbol in self.books:
                    self._refresh(sub, symbol)
            sub.dirty.clear()
        if held:
            self.counters["md_conflated"] += held
            if self._retry is None:
                self._retry = asyncio.get_running_loop().call_later(RETRY_S, self._retry_flush)

    def _retry_flush(self) -> None:
        self._retry = None
        self._flush()

    def _refresh(self, sub: _Sub, symbol: str) -> None:
        old = sub.sent.get(symbol, {})
        new = self._view(sub, symbol)
        entries = [MdEntry(k[0], k[1], _ZERO, symbol, MDUpdateAction.DELETE) for k in old.keys() - new.keys()]
        for k, size in new.items():
            was = old.get(k)
            if was is None:
                entries.append(MdEntry(k[0], k[1], size, symbol, MDUpdateAction.NEW))
            elif was != size:
                entries.append(MdEntry(k[0], k[1], size, symbol, MDUpdateAction.CHANGE))
        trades = sub.trades.pop(symbol, None)
        if trades:
            entries += trades
        sub.sent[symbol] = new
        if entries:
            self.counters["md_refreshes"] += 1
            self.send(sub.sid, incremental_refresh(sub.req_id, entries))

    # ------------------------------------------------------------------ quotes from the streets
    def on_quotes(self, topic: str, payload: bytes) -> None:
        try:
            q = decode_quotes(payload)
        except ValueError as exc:
            log.warning("%s: malformed quotes on %s set aside: %s", self.name, topic, exc)
            return
        if topic != self.topics.quotes(q.street) or q.street not in self.streets:
            log.warning("%s: quotes of %s on %s set aside", self.name, q.street, topic)
            return
        last = self.last_seq.get(q.street)
        self.last_seq[q.street] = q.seq
        if last is not None and q.seq != last + 1:
            # lost quotes (QoS 0) or a restarted street: a full book of what it serves us
            self.counters["md_gaps"] += 1
            self.refresh.update(s for s, st in self.source.items() if st == q.street)
            self._interest_changed(force=True)
        for item in q.items:
            symbol = item.symbol
            if symbol not in self.by_symbol:
                continue
            if item.kind is QuoteKind.SNAPSHOT:
                book = self.books.setdefault(symbol, Book())
                book.replace(item.entries)
                self.source[symbol] = q.street
                self.refresh.discard(symbol)
                self._changed(symbol, [])
            elif item.kind is QuoteKind.INCREMENTAL:
                book_ = self.books.get(symbol)
                if book_ is None or self.source.get(symbol) != q.street:
                    continue    # another street's, or before our full book: the full book comes
                self._changed(symbol, book_.apply(item.entries))
            else:
                self.refused[symbol] = item.text
                for sub in list(self.by_symbol.get(symbol, ())):
                    self._reject(sub.sid, sub.req_id, MDReqRejReason.UNKNOWN_SYMBOL,
                                 f"no market data for {symbol} at its venue ({item.text})")
                    self._end(sub)

    # ------------------------------------------------------------------ interest out
    def interest(self) -> Interest:
        wanted = frozenset(self.by_symbol)
        return Interest(self.name, wanted, frozenset(s for s in wanted if s in self.refresh or s not in self.books))

    def _interest_changed(self, *, force: bool = False) -> None:
        wanted = frozenset(self.by_symbol)
        if force or wanted != self._interest_sent:
            self._interest_sent = wanted
            self._publish_interest()

    def _publish_interest(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._send_interest(encode_interest(self.interest())))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_interest(self, payload: bytes) -> None:
        try:
            await self.publish(self.topics.md_interest(self.name), payload)
        except Exception as exc:  # noqa: BLE001 - the broker away: the next period says it again
            log.debug("%s: market-data interest not published: %s", self.name, exc)

    def expire(self) -> None:
        """Requests still without a book after ``snapshot_timeout_s``: refused."""
        now = self.clock()
        for sub in [s for subs in self.subs.values() for s in subs.values()]:
            if sub.awaiting and now - sub.asked_at > self.snapshot_timeout_s:
                missing = ", ".join(sorted(sub.awaiting))
                self._reject(sub.sid, sub.req_id, None,
                             f"no market data for {missing}: no street utility serves it now")
                self._end(sub)

    async def run(self, interval: float) -> None:
        """Say what is wanted every ``interval`` (a street that starts or takes over learns it)."""
        while True:
            self.expire()
            if self.by_symbol:
                self._interest_sent = frozenset(self.by_symbol)
                self._publish_interest()
            await asyncio.sleep(interval)


__all__ = ["BACKLOG_LIMIT", "CustomerMarketData"]
