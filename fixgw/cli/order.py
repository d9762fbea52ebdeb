"""``fixgw order``: place one order through a customer utility and watch its reports.

    fixgw order --sender CLIENT1 --account ACC1 buy 100 AAPL --price 200
    fixgw order --sender CLIENT1 --account ACC1 buy 5000 FSIDX --cash     # a fund order by amount
    fixgw order --sender CLIENT1 --account ACC1 positions    # or balance: account information (fixgw.cli.order_account)
    fixgw order --sender CLIENT1 quote AAPL --follow 10      # market data (fixgw.cli.order_quote)

It logs on as the given customer CompID (a FIX client like any other, our engine as the
initiator), sends a NewOrderSingle and prints every ExecutionReport about it until the order
is final or ``--wait`` seconds have passed.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fixgw.cli import CliError

EXEC_TYPES = {"A": "PendingNew", "0": "New", "1": "PartialFill", "2": "Fill", "F": "Trade", "4": "Canceled",
              "5": "Replaced", "6": "PendingCancel", "8": "Rejected", "C": "Expired", "E": "PendingReplace",
              "I": "Status"}
FINAL = {"2", "4", "8", "C"}
ACCOUNT_QUERIES = ("positions", "balance")
MAX_FOLLOW_S = 3600.0


def register(sub: Any) -> None:
    p = sub.add_parser("order", help="place one order through a customer utility and print its reports")
    p.add_argument("side", choices=["buy", "sell", *ACCOUNT_QUERIES, "quote"],
                   help="buy or sell; or positions / balance of the account (FIX 4.4); or quote SYMBOL")
    p.add_argument("qty", nargs="?", help="shares (or, with --cash, an amount of money); for quote: the symbol")
    p.add_argument("symbol", nargs="?")
    p.add_argument("--price", help="limit price (default: a market order)")
    p.add_argument("--cash", action="store_true", help="QTY is an amount (CashOrderQty 152): fund orders")
    p.add_argument("--tif", default="0", help="TimeInForce: 0 DAY, 1 GTC, 3 IOC, 4 FOK (default 0)")
    p.add_argument("--sender", required=True, help="your customer CompID (SenderCompID)")
    p.add_argument("--account", default="", help="account (needed when the CompID trades several)")
    p.add_argument("--config", help="cluster config (default: configs/local.toml)")
    p.add_argument("--node", help="customer utility to connect to (default: the first one)")
    p.add_argument("--connect", metavar="HOST:PORT", help="connect here instead of a node from the config")
    p.add_argument("--target", default=None, help="the utility's CompID (default: from the config)")
    p.add_argument("--begin", default="FIX.4.4", choices=["FIX.4.2", "FIX.4.4"])
    p.add_argument("--wait", type=float, default=30.0, help="seconds to wait for a final report")
    p.add_argument("--follow", type=float, default=0.0, metavar="SECONDS",
                   help=f"quote: print the book's updates for this long (at most {MAX_FOLLOW_S:g}), then unsubscribe")
    p.add_argument("--depth", type=int, default=0, help="quote: price levels per side (default 0: the full book)")
    p.set_defaults(func=run)


def _decimal(value: str, what: str) -> Decimal:
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise CliError(f"{what} {value!r}: expected a number") from None
    if not d.is_finite() or d <= 0:
        raise CliError(f"{what} {value!r}: expected a positive number")
    return d


def run(args: argparse.Namespace) -> int:
    quote = args.side == "quote"
    if quote:
        if (args.qty is None) == (args.symbol is None) or args.price or args.cash:
            raise CliError("order quote: expected one SYMBOL (and no quantity, --price or --cash)")
        if not 0 <= args.follow <= MAX_FOLLOW_S:
            raise CliError(f"order quote: --follow {args.follow:g}: expected 0 to {MAX_FOLLOW_S:g} seconds")
        if args.depth < 0:
            raise CliError(f"order quote: --depth {args.depth}: expected 0 (full book) or more")
        args.symbol = args.qty or args.symbol
    elif args.side not in ACCOUNT_QUERIES and (args.qty is None or args.symbol is None):
        raise CliError(f"order {args.side}: expected QTY and SYMBOL")
    qty = _decimal(args.qty, "quantity") if args.side not in (*ACCOUNT_QUERIES, "quote") else Decimal(0)
    price = _decimal(args.price, "--price") if args.price else None
    if args.connect:
        host, _, port_s = args.connect.rpartition(":")
        if not host or not port_s.isdigit():
            raise CliError(f"--connect {args.connect!r}: expected HOST:PORT")
        port, target = int(port_s), args.target or "FIXGW"
    else:
        from fixgw.cli.cluster import load_config

        cfg = load_config(args.config)
        nodes = cfg.nodes_with_role("customer")
        node = cfg.node(args.node) if args.node else (nodes[0] if nodes else None)
        if node is None or node.role != "customer":
            raise CliError(f"{cfg.source}: no customer utility {args.node or ''} to connect to")
        host, port, target = node.host, int(node.port or 0), args.target or node.comp_id
    if args.side in ACCOUNT_QUERIES:
        from fixgw.cli.order_account import account_query

        return asyncio.run(account_query(host, port, target, args))
    if quote:
        from fixgw.cli.order_quote import quote_query

        return asyncio.run(quote_query(host, port, target, args))
    return asyncio.run(_order(host, port, target, args, qty, price))


async def _order(host: str, port: int, target: str, args: argparse.Namespace, qty: Decimal,
                 price: Decimal | None) -> int:
    from fixgw.cli.customer_session import customer_session
    from fixgw.message import Message

    async with customer_session(host, port, args.sender, target, args.begin) as session:
        cl = f"ORD-{time.time_ns()}"
        f: list[tuple[int, object]] = [(11, cl)]
        if args.account:
            f.append((1, args.account))
        f += [(21, "1"), (55, args.symbol), (54, "1" if args.side == "buy" else "2"),
              (60, datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3])]
        f.append((152 if args.cash else 38, str(qty)))
        f += [(40, "2" if price is not None else "1")]
        if price is not None:
            f.append((44, str(price)))
        f.append((59, args.tif))
        session.send(Message.new("D", f))
        print(f"sent {args.side} {qty}{' (amount)' if args.cash else ''} {args.symbol} "
              f"{'@ ' + str(price) if price is not None else 'at market'} ClOrdID {cl} to {host}:{port}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + args.wait
        while True:
            m = await session.next(deadline)
            if m is None:
                print(f"no final report within {args.wait:g}s (the order rests; ask its status later)")
                return 0
            if m.get_str(11) != cl:
                continue
            et, st = m.get_str(150) or "", m.get_str(39) or ""
            line = (f"  {EXEC_TYPES.get(et, et):<13} OrdStatus {st}  OrderID {m.get_str(37)}  CumQty {m.get_str(14)}"
                    f"  LeavesQty {m.get_str(151)}  AvgPx {m.get_str(6)}")
            if m.get(32) is not None:
                line += f"  LastQty {m.get_str(32)} @ {m.get_str(31)}"
            if m.get(58):
                line += f"  ({m.get_str(58)})"
            print(line)
            if st in FINAL:
                return 0 if st != "8" else 1
