"""The street side of customers' market data: one venue subscription per symbol, whatever the
number of customers, and the quotes published on the bus for the customer utilities.

Who subscribes: for a venue, the lowest-named live street utility logged on to it (the rule
:meth:`utilities.street.StreetUtility._i_take_over` uses for orders), judged from the
heartbeats, which say which venues each street reaches. Every street applies the rule on its
own, so no election is needed: when the subscriber dies its heartbeats stop, and after
``dead_after_s`` the next street finds itself first and subscribes (its first snapshot reaches
the customer utilities, which switch to it); when the first one is back it subscribes again
and the other, no longer first, unsubscribes. A street that lost its venue session has lost
its subscriptions with it (the venue ends them at logout) and makes them again at logon.

What: the union of the symbols the live customer utilities want (their ``mdwant`` messages,
repeated every heartbeat, forgotten after ``dead_after_s`` without one). Each symbol is one
MarketDataRequest (V, SubscriptionRequestType 1, full depth, bid/offer/trade) to its venue
under an MDReqID of its own; a symbol nobody wants any more is unsubscribed (263=2).

Quotes: the venue's W becomes a full book (:class:`utilities.quote_wire.QuoteKind` S), each X
an incremental; all of one event-loop turn go out in one publish. The street keeps each book
(:class:`utilities.md_book.Book`) to answer a customer utility's refresh (a new subscriber, or
a gap in the street's sequence numbers) with a full book. A symbol the venue refuses (Y: the
fund company has no books) is passed on as refused and not asked for again for
``REFUSED_RETRY_S``. A W or X the venue resends after a reconnect (PossDupFlag Y) is ignored:
it belongs to a subscription the disconnect ended, and the new one starts with its own W.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping

from fixgw.mdcodes import SubscriptionRequestType
from fixgw.mdmessages import md_request, read_entries
from fixgw.message import Message
from replication.wire import Topics
from utilities.liveness import Liveness
from utilities.md_book import Book
from utilities.quote_wire import QuoteItem, QuoteKind, Quotes, decode_interest, encode_quotes

log = logging.getLogger(__name__)

REFUSED_RETRY_S = 30.0


class QuoteFeed:
    def __init__(self, *, name: str, cluster: str, symbol_venues: Mapping[str, str], peers: Collection[str],
                 liveness: Liveness, logged_on: Collection[str], send: Callable[[str, Message], None],
                 publish: Callable[[str, bytes], Awaitable[None]], interest_ttl_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.topics = Topics(cluster)
        self.symbol_venues = dict(symbol_venues)
        self.peers = tuple(peers)
        self.liveness = liveness
        self.logged_on = logged_on            # the venues this street is logged on to (the street's own set)
        self.send = send
        self.publish = publish
        self.interest_ttl_s = interest_ttl_s
        self.clock = clock
        self.interest: dict[str, tuple[frozenset[str], float]] = {}   # customer -> (symbols, heard at)
        self.subscribed: dict[str, tuple[str, str]] = {}   # symbol -> (venue, MDReqID)
        self.req_symbol: dict[str, str] = {}               # MDReqID -> symbol
        self.books: dict[str, Book] = {}                    # symbols with a snapshot from the venue
        self.refused: dict[str, tuple[str, float]] = {}     # symbol -> (why, when)
        self._ids = itertools.count(1)
        self._seq = 0
        self._pending: list[QuoteItem] = []
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.counters = {"md_subscribes": 0, "md_unsubscribes": 0, "quote_messages": 0, "quote_items": 0}

    # ------------------------------------------------------------------ who subscribes
    def i_serve(self, venue: str) -> bool:
        """This street is the lowest-named live street logged on to ``venue``."""
        if venue not in self.logged_on:
            return False
        for p in self.peers:
            if p < self.name and self.liveness.alive(p):
                hb = self.liveness.heartbeat(p)
                if hb is not None and venue in hb.venues:
                    return False
        return True

    def wanted(self) -> set[str]:
        now = self.clock()
        out: set[str] = set()
        for customer, (symbols, heard) in list(self.interest.items()):
            if now - heard > self.interest_ttl_s:
                del self.interest[customer]
                continue
            out |= symbols
        return out

    def reconcile(self) -> None:
        """Subscribe what is wanted and served here; unsubscribe the rest."""
        now = self.clock()
        wanted = self.wanted()
        for symbol in sorted(wanted - self.subscribed.keys()):
            venue = self.symbol_venues.get(symbol)
            if venue is None or not self.i_serve(venue):
                continue
            refused = self.refused.get(symbol)
            if refused is not None and now - refused[1] < REFUSED_RETRY_S:
                continue
            req_id = f"{self.name}.md.{next(self._ids)}"
            self.subscribed[symbol] = (venue, req_id)
            self.req_symbol[req_id] = symbol
            self.counters["md_subscribes"] += 1
            self.send(venue, md_request(req_id, SubscriptionRequestType.SNAPSHOT_AND_UPDATES, [symbol]))
        for symbol, (venue, req_id) in list(self.subscribed.items()):
            if symbol in wanted and self.i_serve(venue):
                continue
            self._forget(symbol)
            if venue in self.logged_on:
                self.counters["md_unsubscribes"] += 1
                self.send(venue, md_request(req_id, SubscriptionRequestType.UNSUBSCRIBE, [symbol]))

    def _forget(self, symbol: str) -> None:
        _venue, req_id = self.subscribed.pop(symbol)
        self.req_symbol.pop(req_id, None)
        self.books.pop(symbol, None)

    def on_logout(self, venue: str) -> None:
        """The venue ended this session's subscriptions."""
        for symbol in [s for s, (v, _) in self.subscribed.items() if v == venue]:
            self._forget(symbol)

    # ------------------------------------------------------------------ customer utilities
    def on_interest(self, topic: str, payload: bytes) -> None:
        try:
            i = decode_interest(payload)
        except ValueError as exc:
            log.warning("%s: malformed market-data interest on %s set aside: %s", self.name, topic, exc)
            return
        if topic != self.topics.md_interest(i.customer):  # the topic names the sender (broker ACL)
            log.warning("%s: interest of %s on %s set aside", self.name, i.customer, topic)
            return
        self.interest[i.customer] = (i.symbols, self.clock())
        self.reconcile()   # set operations over tens of symbols: cheap at a few messages a second
        for symbol in sorted(i.refresh):
            book = self.books.get(symbol)
            if book is not None:
                self._queue(QuoteItem(symbol, QuoteKind.SNAPSHOT, book.entries(symbol)))
            elif symbol in self.refused and self.symbol_venues.get(symbol) is not None \
                    and self.i_serve(self.symbol_venues[symbol]):
                self._queue(QuoteItem(symbol, QuoteKind.REFUSED, text=self.refused[symbol][0]))

    # ------------------------------------------------------------------ the venue's market data
    def on_snapshot(self, msg: Message) -> None:
        if msg.get(43) == b"Y":
            return          # resent after a reconnect: an old subscription's, stale by now
        symbol = self.req_symbol.get(msg.get_str(262) or "")
        if symbol is None:
            return          # an old subscription's snapshot
        book = self.books.setdefault(symbol, Book())
        book.replace([e for e in read_entries(msg) if e.symbol in ("", symbol)])
        self._queue(QuoteItem(symbol, QuoteKind.SNAPSHOT, book.entries(symbol)))

    def on_incremental(self, msg: Message) -> None:
        if msg.get(43) == b"Y":
            return
        symbol = self.req_symbol.get(msg.get_str(262) or "")
        if symbol is None:
            return
        book = self.books.get(symbol)
        if book is None:
            return          # before the snapshot (the venue sends W first): nothing to change
        entries = tuple(e for e in read_entries(msg) if e.symbol in ("", symbol))
        if entries:
            book.apply(entries)
            self._queue(QuoteItem(symbol, QuoteKind.INCREMENTAL, entries))

    def on_reject(self, msg: Message) -> None:
        req_id = msg.get_str(262) or ""
        symbol = self.req_symbol.get(req_id)
        if symbol is None:
            return
        text = msg.get_str(58) or "refused by the venue"
        log.warning("%s: the venue refused market data for %s: %s", self.name, symbol, text)
        self._forget(symbol)
        self.refused[symbol] = (text, self.clock())
        self._queue(QuoteItem(symbol, QuoteKind.REFUSED, text=text))

    # ------------------------------------------------------------------ quotes out
    def _queue(self, item: QuoteItem) -> None:
        self._pending.append(item)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        items, self._pending = self._pending, []
        if not items:
            return
        self._seq += 1
        payload = encode_quotes(Quotes(self.name, self._seq, tuple(items)))
        self.counters["quote_messages"] += 1
        self.counters["quote_items"] += len(items)
        task = asyncio.get_running_loop().create_task(self._publish(payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, payload: bytes) -> None:
        try:
            await self.publish(self.topics.quotes(self.name), payload)
        except Exception as exc:  # noqa: BLE001 - the broker away: customers see the gap and ask again
            log.debug("%s: quotes not published: %s", self.name, exc)

    async def run(self, interval: float = 0.25) -> None:
        """Follow the customers' interest and the streets' liveness."""
        while True:
            try:
                self.reconcile()
            except Exception:
                log.exception("%s: market-data pass failed", self.name)
            await asyncio.sleep(interval)
