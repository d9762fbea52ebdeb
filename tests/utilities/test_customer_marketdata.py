"""Market data for customers without sockets: the customer utility's side
(utilities.customer_marketdata: snapshots, incrementals as differences, rejects, conflation for
a slow customer, a street takeover seen as a new full book), the street's side
(utilities.quote_feed: one venue subscription per symbol, the lowest live street serves),
and the bus messages between them (utilities.quote_wire)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from fixgw.config import SessionID
from fixgw.mdcodes import MDEntryType, MDReqRejReason, MDUpdateAction, SubscriptionRequestType
from fixgw.mdmessages import (
    MdEntry,
    incremental_refresh,
    md_reject,
    md_request,
    read_entries,
    snapshot,
)
from fixgw.message import Message
from utilities.customer_marketdata import BACKLOG_LIMIT, TRADES_KEPT, CustomerMarketData
from utilities.liveness import Heartbeat, Liveness
from utilities.md_book import Book
from utilities.quote_feed import QuoteFeed
from utilities.quote_wire import (
    Interest,
    QuoteItem,
    QuoteKind,
    Quotes,
    decode_interest,
    decode_quotes,
    encode_interest,
    encode_quotes,
)

BID, OFFER, TRADE = MDEntryType.BID, MDEntryType.OFFER, MDEntryType.TRADE
NEW, CHANGE, DELETE = MDUpdateAction.NEW, MDUpdateAction.CHANGE, MDUpdateAction.DELETE
SUB, SNAP, UNSUB = (SubscriptionRequestType.SNAPSHOT_AND_UPDATES, SubscriptionRequestType.SNAPSHOT,
                    SubscriptionRequestType.UNSUBSCRIBE)
S1 = SessionID("FIX.4.4", "FIXGW", "CLIENT1")
S2 = SessionID("FIX.4.2", "FIXGW", "CLIENT2")
D = Decimal


def e(kind: MDEntryType, px: str, size: str, action: MDUpdateAction | None = None, symbol: str = "AAPL") -> MdEntry:
    return MdEntry(kind, D(px), D(size), symbol, action)


BOOK = (e(BID, "99", "100"), e(BID, "98", "200"), e(OFFER, "101", "100"), e(OFFER, "102", "300"),
        e(TRADE, "100", "10"))


class Harness:
    def __init__(self) -> None:
        self.sent: list[tuple[SessionID, Message]] = []
        self.published: list[tuple[str, bytes]] = []
        self.backlog: dict[SessionID, int] = {}
        self.now = 0.0
        self.seq: dict[str, int] = {}
        self.md = CustomerMarketData(name="cfu1", cluster="c", symbols={"AAPL", "MSFT", "FUND1"},
                                     streets={"ssu1", "ssu2"}, send=lambda sid, m: self.sent.append((sid, m)),
                                     backlog=lambda sid: self.backlog.get(sid, 0), publish=self.publish,
                                     snapshot_timeout_s=5.0, clock=lambda: self.now)

    async def publish(self, topic: str, payload: bytes) -> None:
        self.published.append((topic, payload))

    def request(self, sid: SessionID, req_id: str, kind: SubscriptionRequestType = SUB,
                symbols: tuple[str, ...] = ("AAPL",), depth: int = 0,
                types: tuple[MDEntryType, ...] = tuple(MDEntryType)) -> None:
        self.md.on_request(md_request(req_id, kind, symbols, types, depth), sid)

    def quotes(self, street: str, *items: QuoteItem, seq: int | None = None) -> None:
        n = self.seq[street] = seq if seq is not None else self.seq.get(street, 0) + 1
        self.md.on_quotes(f"fixgw/c/quote/{street}", encode_quotes(Quotes(street, n, items)))

    def take(self, msg_type: bytes = b"") -> list[tuple[SessionID, Message]]:
        out = [(s, m) for s, m in self.sent if not msg_type or m.msg_type == msg_type]
        self.sent.clear()
        return out

    def interest(self) -> Interest:
        return decode_interest(self.published[-1][1])


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def entries(m: Message) -> list[tuple[str, str, str, str]]:
    return [(x.entry_type.value, str(x.price), str(x.size), x.action.value if x.action else "") for x in read_entries(m)]


async def test_snapshot_waits_for_the_book_then_incrementals_are_differences() -> None:
    h = Harness()
    h.request(S1, "R1")
    await settle()
    assert h.take() == []                       # no book yet: nothing to send
    assert h.interest() == Interest("cfu1", frozenset({"AAPL"}), frozenset({"AAPL"}))
    h.quotes("ssu1", QuoteItem("AAPL", QuoteKind.SNAPSHOT, BOOK))
    (sid, w), = h.take()
    assert sid == S1 and w.msg_type == b"W" and w.get_str(262) == "R1" and w.get_str(55) == "AAPL"
    assert entries(w) == [("0", "99", "100", ""), ("0", "98", "200", ""), ("1", "101", "100", ""),
                          ("1", "102", "300", ""), ("2", "100", "10", "")]
    # a second customer on another utility's FIX 4.2 session: its W at once from the book held
    h.request(S2, "Q1")
    (sid, w2), = h.take()
    assert sid == S2 and entries(w2) == entries(w)
    # the street's incremental: a level changes, one goes, a trade
    h.quotes("ssu1", QuoteItem("AAPL", QuoteKind.INCREMENTAL,
                               (e(BID, "99", "50", CHANGE), e(OFFER, "101", "0", DELETE), e(TRADE, "101", "50", NEW))))
    await settle()
    got = h.take(b"X")
    assert [s for s, _ in got] == [S1, S2]
    assert entries(got[0][1]) == [("1", "101", "0", "2"), ("0", "99", "50", "1"), ("2", "101", "50", "0")]
    assert got[0][1].get_str(262) == "R1" and got[1][1].get_str(262) == "Q1"
    # unsubscribe: no more refreshes for that one; the symbol is still wanted for the other
    h.request(S1, "R1", UNSUB)
    h.quotes("ssu1", QuoteItem("AAPL", QuoteKind.INCREMENTAL, (e(BID, "97", "10", NEW),)))
    await settle()
    assert [s for s, _ in h.take(b"X")] == [S2]
    # the last subscriber logs out: nothing wanted any more, and the streets are told
    h.md.on_logout(S2)
    await settle()
    assert h.interest().symbols == frozenset() and h.md.books == {}


async def test_depth_and_entry_types_limit_what_is_sent() -> None:
    h = Harness()
    h.quotes("ssu1", QuoteItem("AAPL", QuoteKind.SNAPSHOT, BOOK))   # nobody wants it yet: ignored
    h.request(S1, "TOP", depth=1, types=(BID, OFFER))
    await settle()
    h.quotes("ssu1", QuoteItem("AAPL", QuoteKind.SNAPSHOT, BOOK))
    (_, w), = h.take()
    assert entries(w) == [("0", "99", "100", ""), ("1", "101", "100", "")]
    # deeper than depth 1, and a trade this subscription did not ask for: nothing to say
    h.quotes("ssu1", QuoteItem("AAPL", QuoteKind.INCREMENTAL, (e(BID, "98", "1", CHANGE), e(TRADE, "99", "5", NEW))))
    await settle()
    assert h.take() == []
    # the best bid goes: 98 enters the top-1 view
    h.quotes("ssu1", QuoteItem("AAPL", QuoteKind.INCREMENTAL, (e(BID, "99", "0", DELETE),)))
    await settle()
    (_, x), = h.take()
    assert entries(x) == [("0", "99", "0", "2"), ("0", "98", "1", "0")]


@pytest.mark.parametrize(("kind", "symbols", "types", "reason"), [
    (SUB, ("NOPE",), tuple(MDEntryType), MDReqRejReason.UNKNOWN_SYMBOL),
    (SUB, ("AAPL",), (BID,), None),   # accepted: checked below as the duplicate
])
async def test_rejects(kind: SubscriptionRequestType, symbols: tuple[str, ...], types: tuple[MDEntryType, ...],
                       reason: MDReqRejReason | None) -> None:
    h = Harness()
    h.request(S1, "A", kind, symbols, types=types)
    got = h.take(b"Y")
    if reason is None:
        assert got == []
        h.request(S1, "A")
        (_, y), = h.take(b"Y")
        assert (y.get_str(262), y.get_str(281)) == ("A", MDReqRejReason.DUPLICATE_MD_REQ_ID.value)
    else:
        (_, y), = got
        assert (y.get_str(262), y.get_str(281)) == ("A", reason.value)
        assert "NOPE" in (y.get_str(58) or "")


async def test_entry_type_update_type_and_unknown_unsubscribe_are_refused() -> None:
    h = Harness()
    bad = Message.new("V", [(262, "B"), (263, "1"), (264, 0), (265, "1"), (267, 1), (269, "9"), (146, 1), (55, "AAPL")])
    h.md.on_request(bad, S1)
    full = Message.new("V", [(262, "F"), (263, "1"), (264, 0), (265, "0"), (267, 1), (269, "0"), (146, 1), (55, "AAPL")])
    h.md.on_request(full, S1)
    h.request(S1, "GONE", UNSUB)
    ys = [m for _, m in h.take(b"Y")]
    assert [(y.get_str(262), y.get_str(281)) for y in ys] == [
        ("B", MDReqRejReason.UNSUPPORTED_MD_ENTRY_TYPE.value), ("F", MDReqRejReason.UNSUPPORTED_MD_UPDATE_TYPE.value),
        ("GONE", None)]
    assert h.md.subs[S1] == {}


async def test_a_slow_customer_gets_one_conflated_refresh_and_bounded_trades() -> None:
    h = Harness()
    h.request(S1, "R")
    h.quotes("ssu1", QuoteItem("AAPL", QuoteKind.SNAPSHOT, BOOK))
    h.take()
    h.backlog[S1] = BACKLOG_LIMIT + 1            # the customer does not read
    for i in range(1, 201):
        h.quotes("ssu1", QuoteItem("AAPL", QuoteKind.INCREMENTAL,
                                   (e(BID, "99", str(100 + i), CHANGE), e(TRADE, "99", "1", NEW))))
        await settle()
    assert h.take() == []
    assert h.md.counters["md_conflated"] > 0 and h.md.counters["md_trades_dropped"] == 200 - TRADES_KEPT
    h.backlog[S1] = 0
    await asyncio.sleep(0.1)                      # the retry timer
    (_, x), = h.take()
    got = entries(x)
    assert got[0] == ("0", "99", "300", "1")      # the net change, once
    assert len(got) == 1 + TRADES_KEPT


async def test_another_street_full_book_after_a_takeover_is_sent_as_differences() -> None:
    h = Harness()
    h.request(S1, "R")
    h.quotes("ssu1", QuoteItem("AAPL", QuoteKind.SNAPSHOT, BOOK))
    h.take()
    moved = (e(BID, "99", "100"), e(BID, "97", "5"), e(OFFER, "101", "100"), e(OFFER, "102", "300"),
             e(TRADE, "100", "10"))
    h.quotes("ssu2", QuoteItem("AAPL", QuoteKind.SNAPSHOT, moved))
    await settle()
    (_, x), = h.take()
    assert x.msg_type == b"X" and entries(x) == [("0", "98", "0", "2"), ("0", "97", "5", "0")]
    # the old street's incrementals are not followed any more
    h.quotes("ssu1", QuoteItem("AAPL", QuoteKind.INCREMENTAL, (e(BID, "96", "1", NEW),)))
    await settle()
    assert h.take() == [] and h.md.source["AAPL"] == "ssu2"
    # a gap in ssu2's numbers: a full book is asked for
    h.published.clear()
    h.quotes("ssu2", QuoteItem("AAPL", QuoteKind.INCREMENTAL, (e(BID, "96", "1", NEW),)), seq=5)
    await settle()
    assert h.interest().refresh == frozenset({"AAPL"}) and h.md.counters["md_gaps"] == 1
    # quotes on another street's topic are not believed
    h.md.on_quotes("fixgw/c/quote/ssu1", encode_quotes(Quotes("ssu2", 6, (QuoteItem("AAPL", QuoteKind.SNAPSHOT, ()),))))
    assert h.md.books["AAPL"].levels


async def test_refused_symbol_and_no_book_in_time_are_rejected() -> None:
    h = Harness()
    h.request(S1, "F", symbols=("FUND1",))
    h.quotes("ssu1", QuoteItem("FUND1", QuoteKind.REFUSED, text="unknown symbol FUND1"))
    (_, y), = h.take()
    assert (y.msg_type, y.get_str(281)) == (b"Y", MDReqRejReason.UNKNOWN_SYMBOL.value)
    h.request(S1, "F2", symbols=("FUND1",))
    (_, y), = h.take()
    assert y.get_str(281) == MDReqRejReason.UNKNOWN_SYMBOL.value
    h.request(S1, "M", SNAP, symbols=("MSFT",))
    h.now = 6.0
    h.md.expire()
    (_, y), = h.take()
    assert (y.get_str(262), y.get_str(281)) == ("M", None) and "no street utility" in (y.get_str(58) or "")
    assert "MSFT" not in h.md.by_symbol


async def test_snapshot_only_request_ends_after_its_snapshot() -> None:
    h = Harness()
    h.request(S1, "S", SNAP)
    h.quotes("ssu1", QuoteItem("AAPL", QuoteKind.SNAPSHOT, BOOK))
    assert [m.msg_type for _, m in h.take()] == [b"W"]
    assert h.md.by_symbol == {} and h.md.subs[S1] == {}


# ---------------------------------------------------------------------- the street's side


class Street:
    def __init__(self, name: str = "ssu1", peers: tuple[str, ...] = ("ssu2",)) -> None:
        self.now = 0.0
        self.liveness = Liveness(2.0, monotonic=lambda: self.now)
        self.logged_on = {"exchange", "fund"}
        self.to_venue: list[tuple[str, Message]] = []
        self.published: list[bytes] = []
        self.feed = QuoteFeed(name=name, cluster="c", symbol_venues={"AAPL": "exchange", "MSFT": "exchange",
                                                                     "FUND1": "fund"},
                              peers=peers, liveness=self.liveness, logged_on=self.logged_on,
                              send=lambda v, m: self.to_venue.append((v, m)), publish=self.publish,
                              interest_ttl_s=2.0, clock=lambda: self.now)

    async def publish(self, topic: str, payload: bytes) -> None:
        assert topic == f"fixgw/c/quote/{self.feed.name}"
        self.published.append(payload)

    def want(self, customer: str, *symbols: str, refresh: tuple[str, ...] = ()) -> None:
        self.feed.on_interest(f"fixgw/c/mdwant/{customer}",
                              encode_interest(Interest(customer, frozenset(symbols), frozenset(refresh))))

    def requests(self) -> list[tuple[str, str, str]]:
        out = [(v, m.get_str(263) or "", m.get_str(55) or "") for v, m in self.to_venue]
        self.to_venue.clear()
        return out

    def items(self) -> list[QuoteItem]:
        out = [i for p in self.published for i in decode_quotes(p).items]
        self.published.clear()
        return out


async def test_one_venue_subscription_per_symbol_whatever_the_customers() -> None:
    s = Street()
    s.want("cfu1", "AAPL")
    s.want("cfu2", "AAPL", "MSFT")
    s.want("cfu1", "AAPL")
    assert s.requests() == [("exchange", "1", "AAPL"), ("exchange", "1", "MSFT")]
    req_id = s.feed.subscribed["AAPL"][1]
    s.feed.on_snapshot(snapshot(req_id, "AAPL", BOOK))
    s.feed.on_incremental(incremental_refresh(req_id, [e(BID, "99", "0", DELETE)]))
    await settle()
    items = s.items()
    assert [(i.symbol, i.kind) for i in items] == [("AAPL", QuoteKind.SNAPSHOT), ("AAPL", QuoteKind.INCREMENTAL)]
    assert items[0].entries == tuple(BOOK)
    # a resent X (PossDupFlag Y, after a reconnect) is stale: not passed on
    resent = incremental_refresh(req_id, [e(BID, "98", "0", DELETE)])
    resent.fields.insert(0, (43, b"Y"))
    s.feed.on_incremental(resent)
    await settle()
    assert s.items() == []
    # a refresh request is answered from the book the street keeps
    s.want("cfu1", "AAPL", refresh=("AAPL",))
    await settle()
    (it,) = s.items()
    assert it.kind is QuoteKind.SNAPSHOT and [x.price for x in it.entries if x.entry_type is BID] == [D(98)]
    # cfu2 goes silent: MSFT is unsubscribed once its interest expires; AAPL still wanted by cfu1
    s.now = 1.5
    s.want("cfu1", "AAPL")
    s.now = 3.0
    s.feed.reconcile()
    assert s.requests() == [("exchange", "2", "MSFT")]


async def test_only_the_lowest_live_street_serves_and_a_survivor_takes_over() -> None:
    s2 = Street("ssu2", peers=("ssu1",))
    s2.liveness.saw(Heartbeat("ssu1", "street", "ready", ("exchange",)))
    s2.want("cfu1", "AAPL")
    assert s2.requests() == []                 # ssu1 is alive and reaches the exchange: it serves
    s2.now = 2.5                               # ssu1 silent past dead_after_s
    s2.want("cfu1", "AAPL")
    assert s2.requests() == [("exchange", "1", "AAPL")]
    s2.liveness.saw(Heartbeat("ssu1", "street", "ready", ("exchange",)))   # back
    s2.feed.reconcile()
    assert s2.requests() == [("exchange", "2", "AAPL")]
    # the venue session lost: its subscriptions went with it; made again after logon
    s2.now = 5.0
    s2.want("cfu1", "AAPL")
    assert s2.requests() == [("exchange", "1", "AAPL")]
    s2.feed.on_logout("exchange")
    s2.logged_on.discard("exchange")
    assert s2.feed.subscribed == {}
    s2.logged_on.add("exchange")
    s2.feed.reconcile()
    assert s2.requests() == [("exchange", "1", "AAPL")]


async def test_a_symbol_the_venue_refuses_is_passed_on_and_not_asked_again_at_once() -> None:
    s = Street()
    s.want("cfu1", "FUND1")
    req_id = s.feed.subscribed["FUND1"][1]
    s.feed.on_reject(md_reject(req_id, MDReqRejReason.UNKNOWN_SYMBOL, "unknown symbol FUND1"))
    await settle()
    (it,) = s.items()
    assert (it.symbol, it.kind, it.text) == ("FUND1", QuoteKind.REFUSED, "unknown symbol FUND1")
    s.requests()
    s.want("cfu1", "FUND1")
    assert s.requests() == []


def test_wire_round_trip_and_malformed_payloads() -> None:
    q = Quotes("ssu1", 7, (QuoteItem("AAPL", QuoteKind.INCREMENTAL, (e(BID, "99.5", "10", NEW),)),
                           QuoteItem("X", QuoteKind.REFUSED, text="no")))
    assert decode_quotes(encode_quotes(q)) == q
    i = Interest("cfu1", frozenset({"A", "B"}), frozenset({"A"}))
    assert decode_interest(encode_interest(i)) == i
    for bad in (b"\xc1", encode_interest(i)):
        with pytest.raises(ValueError):
            decode_quotes(bad)
    with pytest.raises(ValueError):
        decode_interest(encode_quotes(q))


def test_book_applies_snapshots_and_incrementals() -> None:
    b = Book()
    b.replace(BOOK)
    assert b.view(1) == {(BID, D(99)): D(100), (OFFER, D(101)): D(100)}
    assert b.apply([e(BID, "99", "0", DELETE), e(TRADE, "98", "3", NEW)]) == [e(TRADE, "98", "3", NEW)]
    assert b.trade == (D(98), D(3)) and (BID, D(99)) not in b.levels
