"""``fixgw order quote SYMBOL``: a symbol's book from a customer utility (MarketDataRequest V).

    fixgw order --sender CLIENT1 quote AAPL                # a snapshot (263=0): the book, the last trade
    fixgw order --sender CLIENT1 quote AAPL --follow 10    # subscribe (263=1): the snapshot, then one line
                                                           # per update for 10 s, then unsubscribe (263=2)

It logs on as the customer CompID (:mod:`fixgw.cli.customer_session`), keeps the book the W
and X messages describe (:class:`utilities.md_book.Book`) and prints it. ``--follow`` is bounded
(at most an hour); exit status 1 when the utility refuses (Y: unknown symbol, ...) or sends
nothing within ``--wait`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from fixgw.mdcodes import MDEntryType, SubscriptionRequestType
from fixgw.mdmessages import md_request, read_entries
from fixgw.message import Message
from utilities.md_book import Book

LEVELS_SHOWN = 10   # price levels per side printed for a snapshot


def book_lines(symbol: str, book: Book, depth: int) -> list[str]:
    """The book as a two-column ladder (bids | offers, best first) and its last trade."""
    view = book.view(depth or LEVELS_SHOWN)
    bids = sorted(((p, q) for (k, p), q in view.items() if k is MDEntryType.BID), reverse=True)
    offers = sorted((p, q) for (k, p), q in view.items() if k is MDEntryType.OFFER)
    n_bids = len([k for k in book.levels if k[0] is MDEntryType.BID])
    n_offers = len(book.levels) - n_bids
    lines = [f"{symbol}: {n_bids} bid level(s), {n_offers} offer level(s)",
             f"  {'bid size':>12} {'bid':>10} | {'offer':<10} offer size"]
    for i in range(max(len(bids), len(offers))):
        b = f"{bids[i][1]:>12} {bids[i][0]:>10}" if i < len(bids) else " " * 23
        o = f"{offers[i][0]:<10} {offers[i][1]:<12}" if i < len(offers) else ""
        lines.append(f"  {b} | {o}".rstrip())
    if book.trade is not None:
        lines.append(f"  last trade {book.trade[1]} @ {book.trade[0]}")
    return lines


def top_line(book: Book) -> str:
    view = book.view(1)
    bid = next((f"{q} @ {p}" for (k, p), q in view.items() if k is MDEntryType.BID), "-")
    offer = next((f"{q} @ {p}" for (k, p), q in view.items() if k is MDEntryType.OFFER), "-")
    last = f"  last {book.trade[1]} @ {book.trade[0]}" if book.trade is not None else ""
    return f"bid {bid}  offer {offer}{last}"


async def quote_query(host: str, port: int, target: str, args: argparse.Namespace) -> int:
    from fixgw.cli.customer_session import customer_session

    symbol: str = args.symbol
    follow = float(args.follow)
    kind = SubscriptionRequestType.SNAPSHOT_AND_UPDATES if follow > 0 else SubscriptionRequestType.SNAPSHOT
    req = f"Q-{time.time_ns()}"
    async with customer_session(host, port, args.sender, target, args.begin) as session:
        session.send(md_request(req, kind, [symbol], depth=args.depth))
        loop = asyncio.get_running_loop()
        book = Book()
        first = await _answer(session.next, req, loop.time() + args.wait)
        if first is None:
            print(f"no market data within {args.wait:g}s")
            return 1
        if first.msg_type != b"W":
            print(f"refused: {first.get_str(58)} (MDReqRejReason {first.get_str(281) or 'none'})"
                  if first.msg_type == b"Y" else f"rejected: {first.get_str(58)} (tag {first.get_str(371)})")
            return 1
        book.replace(read_entries(first))
        print("\n".join(book_lines(symbol, book, args.depth)))
        if follow <= 0:
            return 0
        updates = 0
        end = loop.time() + follow
        while True:
            m = await _answer(session.next, req, end)
            if m is None:
                break
            if m.msg_type != b"X":
                print(f"ended by the utility: {m.get_str(58)}")
                return 1
            changes = read_entries(m)
            book.apply(changes)
            updates += 1
            stamp = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
            print(f"{stamp}  {len(changes)} change(s)  {top_line(book)}")
        session.send(md_request(req, SubscriptionRequestType.UNSUBSCRIBE, [symbol], depth=args.depth))
        print(f"{updates} update(s) in {follow:g}s; unsubscribed")
        return 0


async def _answer(next_: Callable[[float], Awaitable[Message | None]], req: str, deadline: float) -> Message | None:
    """The next message about ``req`` (W, X, Y) or a session Reject, before ``deadline``."""
    while True:
        m = await next_(deadline)
        if m is None:
            return None
        if m.msg_type == b"3" or (m.msg_type in (b"W", b"X", b"Y") and m.get_str(262) == req):
            return m
