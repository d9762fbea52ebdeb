"""Market data at the exchange simulator, with QuickFIX clients (FIX 4.4 and FIX 4.2, data
dictionary on: QuickFIX validates every W, X and Y it receives and would reject an invalid
one instead of handing it over; our own dictionary checks them too, ``inbox.invalid``).

One venue (market maker on, frozen clock moved by the test), one QuickFIX initiator with a
session per FIX version; each version runs the whole scenario: snapshot of an uncrossed book
to a depth and in full, subscription (snapshot, then X after a new bid, a trade and a
requote), unsubscribe stops them, and the three rejects."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from fixgw.message import Message
from tests.venues.test_vfix_inprocess import MORNING
from tests.venues.vfix_support import SPEC_DIR, QuickfixClients, QuickfixSession, free_port, now_ts
from venues.clock import FrozenClock
from venues.exchange import Exchange
from venues.fix_acceptor import VenueServer, seconds_until_for, venue_settings
from venues.venue_config import ExchangeConfig


def send_v(s: QuickfixSession, req_id: str, kind: str, symbols: list[str], types: list[str], depth: int = 0) -> None:
    """A MarketDataRequest with its two repeating groups, built the QuickFIX way."""
    import quickfix as fix

    m = fix.Message()
    m.getHeader().setField(fix.BeginString(s.begin_string))
    m.getHeader().setField(fix.MsgType("V"))
    m.setField(fix.StringField(262, req_id))
    m.setField(fix.StringField(263, kind))
    m.setField(fix.StringField(264, str(depth)))
    if kind == "1":
        m.setField(fix.StringField(265, "1"))
    for t in types:
        g = fix.Group(267, 269)
        g.setField(fix.StringField(269, t))
        m.addGroup(g)
    for sym in symbols:
        g = fix.Group(146, 55)
        g.setField(fix.StringField(55, sym))
        m.addGroup(g)
    assert fix.Session.sendToTarget(m, s.session_id)


def entries(msg: Message) -> list[dict[int, str]]:
    """The NoMDEntries instances of a W or X, each as {tag: value}."""
    out: list[dict[int, str]] = []
    started = False
    for tag, value in msg.fields:
        if tag == 268:
            started = True
        elif started and tag in (279, 269) and (not out or tag in out[-1] or (tag == 269 and 279 not in out[-1])):
            out.append({tag: value.decode()})
        elif started and out and tag in (269, 55, 270, 271):
            out[-1][tag] = value.decode()
    return out


def is_(msg_type: bytes, req_id: str) -> Callable[[Message], bool]:
    return lambda m: m.msg_type == msg_type and m.get_str(262) == req_id


@contextlib.asynccontextmanager
async def venue_and_clients(tmp_path: Path) -> AsyncIterator[tuple[VenueServer, FrozenClock, QuickfixClients]]:
    clock = FrozenClock(MORNING)
    venue = Exchange(ExchangeConfig(), clock)  # market maker on: 5 levels a side around 190.00
    port = free_port()
    settings = venue_settings(comp_id="EXCH", host="127.0.0.1", port=port, data_dir=None)
    cfg = tmp_path / "qf.cfg"
    cfg.write_text(
        "[DEFAULT]\nConnectionType=initiator\nSocketConnectHost=127.0.0.1\n"
        f"SocketConnectPort={port}\nHeartBtInt=30\nReconnectInterval=1\nStartTime=00:00:00\nEndTime=00:00:00\n"
        f"FileStorePath={tmp_path / 'store'}\nFileLogPath={tmp_path / 'log'}\nUseDataDictionary=Y\nTargetCompID=EXCH\n"
        f"[SESSION]\nBeginString=FIX.4.4\nSenderCompID=MD44\nDataDictionary={SPEC_DIR / 'FIX44.xml'}\n"
        f"[SESSION]\nBeginString=FIX.4.2\nSenderCompID=MD42\nDataDictionary={SPEC_DIR / 'FIX42.xml'}\n"
    )
    async with VenueServer(venue, settings, seconds_until=seconds_until_for(clock), max_timer_sleep=0.02) as srv:
        clients = QuickfixClients(cfg)
        clients.start()
        try:
            for _ in range(400):  # bounded: 20 s
                if all(s.logged_on() for s in clients.by_sender.values()):
                    break
                await asyncio.sleep(0.05)
            else:
                raise TimeoutError("QuickFIX sessions did not log on")
            yield srv, clock, clients
        finally:
            clients.stop()


def order(s: QuickfixSession, cl: str, symbol: str, side: str, qty: str, price: str) -> None:
    s.send("D", [(11, cl), (21, "1"), (55, symbol), (54, side), (60, now_ts()), (38, qty), (40, "2"),
                 (44, price), (59, "1")])


async def scenario(s: QuickfixSession, clock: FrozenClock, tag: str, symbol: str, other: str) -> None:
    # -- snapshot to a depth: 2 levels a side, best first, uncrossed; full book: 5 a side
    send_v(s, f"{tag}-snap2", "0", [symbol], ["0", "1"], depth=2)
    w = await s.expect(is_(b"W", f"{tag}-snap2"), "snapshot")
    es = entries(w)
    bids = [Decimal(e[270]) for e in es if e[269] == "0"]
    offers = [Decimal(e[270]) for e in es if e[269] == "1"]
    assert w.get_str(55) == symbol and len(bids) == 2 and len(offers) == 2, es
    assert bids == sorted(bids, reverse=True) and offers == sorted(offers) and bids[0] < offers[0], es
    send_v(s, f"{tag}-full", "0", [symbol, other], ["0", "1", "2"])
    full = [await s.expect(is_(b"W", f"{tag}-full"), "full snapshot") for _ in range(2)]
    assert {m.get_str(55) for m in full} == {symbol, other}
    assert all(len([e for e in entries(m) if e[269] in "01"]) == 10 for m in full)
    best_bid, best_offer = bids[0], offers[0]

    # -- subscribe: snapshot, then X for a new best bid, a trade, a requote
    sub = f"{tag}-sub"
    send_v(s, sub, "1", [symbol], ["0", "1", "2"])
    await s.expect(is_(b"W", sub), "subscription snapshot")
    inside = best_bid + Decimal("0.01")
    assert inside < best_offer
    order(s, f"{tag}-B1", symbol, "1", "100", str(inside))
    x = await s.expect(is_(b"X", sub), "refresh after a new bid")
    assert any(e.get(279) == "0" and e[269] == "0" and Decimal(e[270]) == inside and Decimal(e[271]) == 100
               for e in entries(x)), entries(x)
    order(s, f"{tag}-S1", symbol, "2", "40", str(inside))  # trades 40 with our own bid
    x = await s.expect(lambda m: is_(b"X", sub)(m) and any(e[269] == "2" for e in entries(m)), "trade refresh")
    trade = next(e for e in entries(x) if e[269] == "2")
    assert Decimal(trade[270]) == inside and Decimal(trade[271]) == 40
    assert any(e[279] == "1" and e[269] == "0" and Decimal(e[271]) == 60 for e in entries(x)), entries(x)
    # the market maker requotes at its next tick; a random step of 0 ticks changes nothing,
    # so move on a refresh period at a time (bounded: 10 periods)
    for _ in range(10):
        clock.advance(timedelta(seconds=1.5))
        with contextlib.suppress(TimeoutError):
            x = await s.expect(lambda m: is_(b"X", sub)(m) and any(e[269] == "1" for e in entries(m)),
                               "requote refresh", timeout=1.0)
            break
    else:
        raise AssertionError("no refresh after 10 requotes")
    assert all(e[55] == symbol for e in entries(x))

    # -- duplicate MDReqID while subscribed; unknown symbol; unsupported entry type
    send_v(s, sub, "1", [symbol], ["0"])
    y = await s.expect(is_(b"Y", sub), "duplicate reject")
    assert y.get_str(281) == "1"
    send_v(s, f"{tag}-unk", "0", ["NOPE"], ["0"])
    assert (await s.expect(is_(b"Y", f"{tag}-unk"), "unknown symbol reject")).get_str(281) == "0"
    send_v(s, f"{tag}-typ", "1", [symbol], ["0", "4"])
    assert (await s.expect(is_(b"Y", f"{tag}-typ"), "entry type reject")).get_str(281) == "8"

    # -- unsubscribe: no X for the next book change (the W asked after it proves the order)
    send_v(s, sub, "2", [symbol], ["0", "1", "2"])
    order(s, f"{tag}-B2", symbol, "1", "10", str(inside - Decimal("0.05")))
    ack = await s.expect(lambda m: m.msg_type == b"8" and m.get_str(11) == f"{tag}-B2", "ack of B2")
    send_v(s, f"{tag}-after", "0", [symbol], ["0"])
    after = await s.expect(is_(b"W", f"{tag}-after"), "snapshot after unsubscribe")
    assert any(Decimal(e[270]) == inside - Decimal("0.05") for e in entries(after))  # the book did move
    got = s.inbox.messages
    later = got[next(i for i, m in enumerate(got) if m is ack):]  # the ack follows the unsubscribe
    assert [m for m in later if m.msg_type == b"X" and m.get_str(262) == sub] == []
    assert s.invalid == []


@pytest.mark.timeout(90)
async def test_market_data_with_quickfix_clients_fix44_and_fix42(tmp_path: Path) -> None:
    async with venue_and_clients(tmp_path) as (srv, clock, clients):
        await scenario(clients.by_sender["MD44"], clock, "44", "AAPL", "MSFT")
        await scenario(clients.by_sender["MD42"], clock, "42", "IBM", "INTC")
        assert srv.app.unrouted == 0 and srv.app.market_data.subscriptions == 0
