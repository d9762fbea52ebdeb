"""The exchange's market-data subscription book in process, frozen time, no sockets: what a
subscriber is sent after each kind of book change (depth-limited views, levels pushed out,
both sides of a trade counted once), the rejects, and that every builder's output passes
the FIX 4.2 and 4.4 dictionaries (empty book included)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fixgw.mdcodes import MDEntryType, MDReqRejReason, MDUpdateAction, SubscriptionRequestType
from fixgw.mdmessages import (
    MdEntry,
    MdRequest,
    incremental_refresh,
    md_reject,
    md_request,
    parse_md_request,
    snapshot,
)
from fixgw.message import Message, encode
from tests.venues.venue_support import cancel, make_exchange, order
from tests.venues.vfix_support import now_ts, problems
from venues.exchange import Exchange
from venues.marketdata import MarketData, MdRefresh, MdRejected, MdSnapshot

D = Decimal
BID, OFFER, TRADE = MDEntryType.BID, MDEntryType.OFFER, MDEntryType.TRADE
NEW, CHANGE, DELETE = MDUpdateAction.NEW, MDUpdateAction.CHANGE, MDUpdateAction.DELETE
SUB, SNAP, UNSUB = SubscriptionRequestType.SNAPSHOT_AND_UPDATES, SubscriptionRequestType.SNAPSHOT, SubscriptionRequestType.UNSUBSCRIBE


def md_of(ex: Exchange) -> MarketData:
    return MarketData({s: (ex.book(s), ex.tick_size(s)) for s in ex.symbols})


def req(req_id: str, kind: SubscriptionRequestType = SUB, symbols: tuple[str, ...] = ("AAA",),
        types: tuple[str, ...] = ("0", "1", "2"), depth: int = 0, update: str | None = None) -> MdRequest:
    return MdRequest(req_id, kind, depth, types, symbols, update)


def brief(out: list) -> list[tuple[object, ...]]:  # type: ignore[type-arg]
    return [(o.owner, o.req_id, [(e.action, e.entry_type, e.price, e.size) for e in o.entries]) for o in out]


def test_depth_limited_subscription_sees_levels_enter_and_leave() -> None:
    ex, _ = make_exchange()
    md = md_of(ex)
    for i, px in enumerate(("99.00", "98.00")):
        ex.submit(order("F", f"b{i}", "B", "10", px))
    out = md.request("s1", req("top1", depth=1))
    assert brief(out) == [("s1", "top1", [(None, BID, D("99.00"), D(10))])]
    # a better bid pushes 99.00 out of the one-level view
    ev = ex.submit(order("F", "b9", "B", "5", "99.50"))
    assert brief(md.after(ev, {"AAA"})) == [("s1", "top1", [(DELETE, BID, D("99.00"), D(0)), (NEW, BID, D("99.50"), D(5))])]
    # a change below the view: nothing to send
    ev = ex.submit(order("F", "b8", "B", "5", "98.00"))
    assert md.after(ev, {"AAA"}) == []
    # a trade: one trade entry although both sides are client orders, and the level shrinks
    ev = ex.submit(order("G", "s1", "S", "2", "99.50"))
    assert brief(md.after(ev, {"AAA"})) == [("s1", "top1", [(CHANGE, BID, D("99.50"), D(3)), (NEW, TRADE, D("99.50"), D(2))])]
    assert md.last_trade("AAA") == (D("99.50"), D(2))
    # the snapshot of a new subscriber carries the last trade
    snap = md.request("s2", req("all", SNAP))
    assert isinstance(snap[0], MdSnapshot) and snap[0].entries[-1] == MdEntry(TRADE, D("99.50"), D(2), "AAA")
    # cancel the best bid: 99.00 comes back into the view
    ev = ex.cancel(cancel("F", "c9", "b9", "B"))
    assert brief(md.after(ev, {"AAA"})) == [("s1", "top1", [(DELETE, BID, D("99.50"), D(0)), (NEW, BID, D("99.00"), D(10))])]


def test_entry_type_filter_other_symbols_unsubscribe_and_logout() -> None:
    ex, _ = make_exchange()
    md = md_of(ex)
    md.request("s1", req("offers", types=("1",)))
    md.request("s2", req("bids", types=("0",)))
    md.request("s2", req("bbb", symbols=("BBB",)))
    ev = ex.submit(order("F", "a", "B", "1", "99.00"))
    assert brief(md.after(ev, {"AAA"})) == [("s2", "bids", [(NEW, BID, D("99.00"), D(1))])]
    assert md.request("s2", req("bids", UNSUB)) == []
    ev = ex.submit(order("F", "b", "B", "1", "98.00"))
    assert md.after(ev, {"AAA"}) == []
    assert md.drop_owner("s2") == 1 and md.drop_owner("s1") == 1 and md.subscriptions == 0
    assert md.subscribed_symbols == frozenset()


@pytest.mark.parametrize(("request_", "reason"), [
    (req("x", symbols=("AAA", "ZZZ")), MDReqRejReason.UNKNOWN_SYMBOL),
    (req("x", types=("0", "4")), MDReqRejReason.UNSUPPORTED_MD_ENTRY_TYPE),
    (req("x", update="0"), MDReqRejReason.UNSUPPORTED_MD_UPDATE_TYPE),
    (req("dup"), MDReqRejReason.DUPLICATE_MD_REQ_ID),
    (req("nope", UNSUB), None),
])
def test_rejects(request_: MdRequest, reason: MDReqRejReason | None) -> None:
    ex, _ = make_exchange()
    md = md_of(ex)
    md.request("s1", req("dup"))
    (out,) = md.request("s1", request_)
    assert isinstance(out, MdRejected) and out.reason == reason and out.text
    assert md.subscriptions == 1
    # another session may use the same MDReqID
    assert isinstance(md.request("s2", req("dup"))[0], MdSnapshot)


def test_no_books_means_every_symbol_is_unknown() -> None:
    (out,) = MarketData({}).request("s", req("r"))
    assert isinstance(out, MdRejected) and out.reason is MDReqRejReason.UNKNOWN_SYMBOL


def _wire(begin: str, msg: Message) -> bytes:
    header = [(35, msg.get(35) or b""), (49, b"EXCH"), (56, b"C"), (34, b"2"), (52, now_ts().encode())]
    return encode(begin.encode(), header, [f for f in msg.fields if f[0] != 35])


@pytest.mark.parametrize("begin", ["FIX.4.2", "FIX.4.4"])
def test_every_builder_passes_both_dictionaries(begin: str) -> None:
    entries = [MdEntry(BID, D("99.5"), D(10), "AAA"), MdEntry(OFFER, D("100"), D("0.5"), "AAA"),
               MdEntry(TRADE, D("99.75"), D(3), "AAA")]
    changes = [MdEntry(e.entry_type, e.price, e.size, e.symbol, a) for e, a in zip(entries, (NEW, DELETE, CHANGE), strict=True)]
    for msg in (snapshot("r1", "AAA", entries), snapshot("r1", "AAA", []), incremental_refresh("r1", changes),
                md_reject("r1", MDReqRejReason.UNSUPPORTED_MD_ENTRY_TYPE, "no"), md_reject("r1", None, "no"),
                md_request("r2", SUB, ["AAA", "BBB"]), md_request("r3", SNAP, ["AAA"], [BID], depth=5)):
        assert problems(_wire(begin, msg)) is None, msg
    parsed = parse_md_request(md_request("r2", SUB, ["AAA", "BBB"], depth=3))
    assert parsed == MdRequest("r2", SUB, 3, ("0", "1", "2"), ("AAA", "BBB"), "1")


def test_refresh_is_addressed_per_subscription() -> None:
    ex, _ = make_exchange()
    md = md_of(ex)
    for i in range(10):
        md.request(f"s{i}", req(f"r{i}"))
    ev = ex.submit(order("F", "a", "S", "7", "101.00"))
    out = md.after(ev, {"AAA"})
    assert len(out) == 10 and all(isinstance(o, MdRefresh) and len(o.entries) == 1 for o in out)
    assert {(o.owner, o.req_id) for o in out} == {(f"s{i}", f"r{i}") for i in range(10)}
