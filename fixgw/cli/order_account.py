"""``fixgw order positions`` and ``fixgw order balance``: a customer's account information over FIX 4.4.

    fixgw order --sender CLIENT1 --account ACC1 positions   # RequestForPositions (AN) -> AO + APs
    fixgw order --sender CLIENT1 --account ACC1 balance     # CollateralInquiry (BB) -> BA

It logs on as the customer CompID (:mod:`fixgw.cli.customer_session`, as ``fixgw order`` does), asks
once, prints the answer and logs out. Exit status 1 when the utility refuses (another
customer's account, ...), with the utility's Text.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fixgw.cli import CliError


def _fin(m: Any) -> tuple[str, str]:
    """(opening, current) net quantities of a PositionReport's PositionQty group (SOD, FIN)."""
    out: dict[str, str] = {}
    kind = ""
    long_ = ""
    for tag, value in m:
        if tag == 703:
            kind = value.decode()
        elif tag == 704:
            long_ = value.decode()
        elif tag == 705 and kind:
            out[kind] = str(_num(long_) - _num(value.decode()))
    return out.get("SOD", "0"), out.get("FIN", "0")


def _num(s: str) -> Decimal:
    return Decimal(s or "0")


async def account_query(host: str, port: int, target: str, args: argparse.Namespace) -> int:
    from fixgw.cli.customer_session import customer_session
    from fixgw.message import Message

    if args.begin != "FIX.4.4":
        raise CliError(f"order {args.side}: account information needs FIX.4.4 (FIX 4.2 has no such messages)")
    if not args.account:
        raise CliError(f"order {args.side}: --account is required (RequestForPositions requires Account (1))")
    async with customer_session(host, port, args.sender, target, "FIX.4.4") as session:
        req = f"{args.side[:3].upper()}-{time.time_ns()}"
        now = datetime.now(UTC)
        acct = [(1, args.account)]
        if args.side == "positions":
            session.send(Message.new("AN", [(710, req), (724, "0"), (263, "0"), *acct, (581, "1"),
                                            (715, now.strftime("%Y%m%d")),
                                            (60, now.strftime("%Y%m%d-%H:%M:%S.%f")[:-3])]))
        else:
            session.send(Message.new("BB", [(909, req), *acct]))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + args.wait
        expected: int | None = None
        got = 0
        while True:
            m = await session.next(deadline)
            if m is None:
                print(f"no answer within {args.wait:g}s")
                return 1
            mt = m.msg_type
            if mt == b"3":
                print(f"rejected: {m.get_str(58)} (tag {m.get_str(371)})")
                return 1
            if mt == b"j":
                print(f"refused: {m.get_str(58)} (BusinessMessageReject {m.get_str(380)})")
                return 1
            if mt == b"AO" and m.get_str(710) == req:
                if m.get_str(729) == "2":
                    print(f"refused: {m.get_str(58)} (PosReqResult {m.get_str(728)})")
                    return 1
                expected = m.get_int(727) or 0
                if expected == 0:
                    print(f"{m.get_str(1)}: no positions")
                    return 0
            elif mt == b"AP" and m.get_str(710) == req:
                opening, current = _fin(m)
                print(f"{m.get_str(1)}  {m.get_str(55):<8} {current:>14}  (opening {opening})  "
                      f"last price {m.get_str(730)}  value {m.get_str(708)}")
                got += 1
            elif mt == b"BA" and m.get_str(909) == req:
                print(f"{m.get_str(1)}: cash {m.get_str(900)}  settled {m.get_str(901)}  "
                      f"buying power {m.get_str(899)}  (opening {m.get_str(921)} {m.get_str(15)})")
                return 0
            elif mt == b"BG" and m.get_str(909) == req:
                print(f"refused: {m.get_str(58)} (CollInquiryResult {m.get_str(946)})")
                return 1
            if expected is not None and got >= expected:
                return 0
