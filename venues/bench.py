"""``fixgw bench matching``: the exchange matching engine in process.

A seeded mix of commands against one symbol, as a busy client population sends them:
~60% passive limit orders around the mid, ~15% limit orders that cross the spread,
~5% IOC market orders, ~20% cancels of recent orders (some already filled: those give
cancel rejects, as in life). The commands are built before the clock starts, so the
figure is the venue's own cost per command: validation, matching, events. Each command
counts as one order message. The liquidity provider is off so that the run is the same
every time; time is frozen inside the session.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from fixgw.orders import OrdType, Side, TimeInForce
from venues.clock import FrozenClock
from venues.commands import CancelOrder, Command, SubmitOrder
from venues.exchange import Exchange
from venues.venue_config import ExchangeConfig, LiquiditySpec, SymbolSpec

DEFAULT_ORDERS = 200_000
DEFAULT_SECONDS = 20.0
_SYMBOL = "BENCH"
_TICK = Decimal("0.01")


def build_commands(count: int, seed: int = 42) -> list[Command]:
    rng = random.Random(seed)
    owners = [f"S{i}" for i in range(8)]
    prices = [Decimal(10000 + t) * _TICK for t in range(-60, 61)]
    qtys = [Decimal(100 * k) for k in range(1, 11)]
    recent: list[tuple[str, str, Side]] = []
    out: list[Command] = []
    for n in range(count):
        owner = owners[n % len(owners)]
        r = rng.random()
        if r < 0.20 and recent:
            o, cl, side = recent.pop(rng.randrange(len(recent)))
            out.append(CancelOrder(o, f"X{n}", cl, _SYMBOL, side))
            continue
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        cl = f"C{n}"
        qty = rng.choice(qtys)
        if r < 0.25:
            out.append(SubmitOrder(owner, cl, _SYMBOL, side, qty, OrdType.MARKET, None, TimeInForce.IOC))
            continue
        # passive orders sit 1..60 ticks away on their own side; crossing ones reach 1..5 over
        off = rng.randint(1, 60) if r < 0.85 else -rng.randint(1, 5)
        price = prices[60 - off] if side is Side.BUY else prices[60 + off]
        out.append(SubmitOrder(owner, cl, _SYMBOL, side, qty, OrdType.LIMIT, price, TimeInForce.DAY))
        recent.append((owner, cl, side))
        if len(recent) > 2000:
            recent.pop(0)
    return out


def run(orders: int, seconds: float) -> dict[str, float]:
    config = ExchangeConfig(
        name="BENCH",
        symbols=(SymbolSpec(_SYMBOL, _TICK, Decimal("100.00")),),
        liquidity=LiquiditySpec(enabled=False),
    )
    # 10:00 New York on a Tuesday: no session end during the run
    venue = Exchange(config, FrozenClock(datetime(2024, 1, 2, 15, 0, tzinfo=UTC)))
    commands = build_commands(orders)
    calls: list[tuple[Callable[[Command], object], Command]] = [
        (venue.submit if isinstance(c, SubmitOrder) else venue.cancel, c)  # type: ignore[misc]
        for c in commands
    ]
    lat: list[int] = [0] * len(calls)
    # the prepared commands are not the engine's: keep the collector from scanning them
    # (a long-running venue does the same with gc.freeze() after start-up)
    gc.collect()
    gc.freeze()
    events = 0
    clock = time.perf_counter_ns
    deadline = clock() + int(seconds * 1e9)
    start = clock()
    cpu0 = time.process_time()
    done = 0
    try:
        for fn, cmd in calls:
            t0 = clock()
            got = fn(cmd)
            t1 = clock()
            lat[done] = t1 - t0
            done += 1
            events += len(got)  # type: ignore[arg-type]
            if not done & 1023 and t1 > deadline:
                break
        wall = (clock() - start) / 1e9
        cpu = time.process_time() - cpu0
    finally:
        gc.unfreeze()
    lat = sorted(lat[:done])

    def pct(p: float) -> float:
        return lat[min(done - 1, int(p / 100 * done))] / 1000

    return {
        "orders": done,
        "seconds": round(wall, 3),
        "orders_per_s": round(done / wall),
        # the same per CPU second: steadier than wall time when other work shares the cores
        "orders_per_cpu_s": round(done / cpu) if cpu > 0 else 0,
        "events_per_s": round(events / wall),
        "p50_us": round(pct(50), 2),
        "p99_us": round(pct(99), 2),
        "p999_us": round(pct(99.9), 2),
        "max_us": round(lat[-1] / 1000, 2),
        "resting_orders": len(venue.open_orders()),
    }


def main(args: argparse.Namespace) -> int:
    orders = getattr(args, "orders", None)
    seconds = getattr(args, "seconds", None)
    orders = DEFAULT_ORDERS if orders is None else orders
    seconds = DEFAULT_SECONDS if seconds is None else seconds
    if orders < 1 or seconds <= 0:
        print("fixgw bench matching: --orders must be >= 1 and --seconds > 0", file=sys.stderr)
        return 2
    result = run(orders, seconds)
    if getattr(args, "json", False):
        print(json.dumps(result))
    else:
        print(
            f"matching engine: {result['orders']} orders in {result['seconds']} s = "
            f"{result['orders_per_s']:,} orders/s ({result['orders_per_cpu_s']:,} per CPU second, "
            f"{result['events_per_s']:,} events/s); "
            f"latency per order p50 {result['p50_us']} us, p99 {result['p99_us']} us, "
            f"p99.9 {result['p999_us']} us, max {result['max_us']} us"
        )
    return 0
