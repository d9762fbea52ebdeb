"""``fixgw bench marketdata``: what the exchange simulator's market data costs, over FIX.

A real ``fixgw venue exchange`` process (market maker off, so every book change is the
bench's own) on 127.0.0.1; 10 subscriber sessions (fixgw initiators, FIX 4.4) each subscribe
to the full book and trades of one symbol; a driver session sends limit orders, 90% passive
(1..50 ticks off the mid: one level changes) and 10% crossing (a trade and a level change).
Every order therefore makes the venue send one incremental refresh (X) to each subscriber.

Two phases, each bounded in count and time:

- **throughput**: the driver keeps ``--inflight`` orders outstanding (counting its
  acknowledgements) until ``--orders`` are sent; the figure is the X messages the
  subscribers received divided by the time from the first order to the last X;
- **latency**: one order at a time (300, or ``--orders`` if fewer), from the driver's send to each subscriber's receipt of
  the X it caused (p50/p99 over the subscribers' receipts): the venue's book-change to
  subscriber latency, FIX parsing and TCP on both sides included.

The clients share this process (one event loop); the venue has its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from fixgw import eventloop
from fixgw.application import Application
from fixgw.config import SessionID, parse_settings
from fixgw.engine import Engine
from fixgw.mdcodes import SubscriptionRequestType
from fixgw.mdmessages import md_request
from fixgw.message import Message
from fixgw.ports import free_port
from fixgw.proccpu import cpu_seconds

DEFAULT_ORDERS = 5000
DEFAULT_SECONDS = 30.0
SUBSCRIBERS = 10
_SYMBOL, _MID, _TICK = "AAPL", Decimal("190.00"), Decimal("0.01")
_LATENCY_ORDERS = 300


class _Clients(Application):
    def __init__(self) -> None:
        self.x_count = 0
        self.last_x_ns = 0
        self.acks = 0
        self.snapshots = 0
        self.x_times: list[int] = []  # receipt times during the latency phase

    async def from_app(self, message: Message, session_id: SessionID) -> None:
        mt = message.msg_type
        if mt == b"X":
            self.x_count += 1
            self.last_x_ns = now = time.perf_counter_ns()
            self.x_times.append(now)
        elif mt == b"8":
            if message.get(150) == b"0":
                self.acks += 1
        elif mt == b"W":
            self.snapshots += 1


def _order(n: int) -> Message:
    buy = n % 2 == 0
    off = -(1 + n % 3) if n % 10 == 9 else 1 + n % 50  # every 10th crosses the spread
    px = _MID - off * _TICK if buy else _MID + off * _TICK
    return Message.new("D", [(11, f"B{n}"), (21, "1"), (55, _SYMBOL), (54, "1" if buy else "2"),
                             (60, time.strftime("%Y%m%d-%H:%M:%S", time.gmtime())), (38, 10), (40, "2"),
                             (44, f"{px:f}"), (59, "1")])


async def _wait(cond: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.001)
    return True


def _pct(values: list[int], p: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p / 100 * len(values)))] / 1000, 1) if values else 0.0


def run(orders: int, seconds: float, inflight: int = 50) -> dict[str, float]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="fixgw-mdbench-") as tmp:
        cfg = Path(tmp) / "venue.toml"
        cfg.write_text("[exchange.liquidity]\nenabled = false\n")
        venue = subprocess.Popen(
            [sys.executable, "-m", "fixgw", "venue", "exchange", "--port", str(port), "--comp-id", "EXCH",
             "--config", str(cfg)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            assert venue.stdout is not None
            banner = venue.stdout.readline()
            if "listening" not in banner:
                raise RuntimeError(f"the venue did not start: {banner}{venue.stderr.read() if venue.stderr else ''}")
            return eventloop.run(_measure(port, orders, seconds, inflight, venue.pid))
        finally:
            if venue.poll() is None:
                venue.send_signal(signal.SIGTERM)
                try:
                    venue.wait(15)
                except subprocess.TimeoutExpired:
                    venue.kill()
                    venue.wait(5)


async def _measure(port: int, orders: int, seconds: float, inflight: int, venue_pid: int) -> dict[str, float]:
    names = [f"MDSUB{i}" for i in range(SUBSCRIBERS)] + ["MDDRIVER"]
    text = ("[DEFAULT]\nConnectionType=initiator\nSocketConnectHost=127.0.0.1\n"
            f"SocketConnectPort={port}\nTargetCompID=EXCH\nBeginString=FIX.4.4\nHeartBtInt=30\n"
            "ReconnectInterval=1\nResetOnLogon=Y\n"
            + "".join(f"[SESSION]\nSenderCompID={n}\n" for n in names))
    app = _Clients()
    sids = [SessionID("FIX.4.4", n, "EXCH") for n in names]
    async with Engine(parse_settings(text, "<fixgw bench marketdata>"), app) as engine:
        for sid in sids:
            await engine.wait_logged_on(sid, 20)
        driver = sids[-1]
        for i, sid in enumerate(sids[:-1]):
            engine.send_to_target(md_request(f"S{i}", SubscriptionRequestType.SNAPSHOT_AND_UPDATES, [_SYMBOL]), sid)
        if not await _wait(lambda: app.snapshots == SUBSCRIBERS, 20):
            raise RuntimeError("the subscriptions were not answered")
        deadline = time.monotonic() + seconds
        # -- throughput
        start = time.perf_counter_ns()
        cpu0 = cpu_seconds(venue_pid) or 0.0
        sent = 0
        while sent < orders and time.monotonic() < deadline:
            while sent < orders and sent - app.acks < inflight:
                engine.send_to_target(_order(sent), driver)
                sent += 1
            await asyncio.sleep(0)
            if sent - app.acks >= inflight:
                await _wait(lambda s=sent: s - app.acks < inflight, max(0.0, deadline - time.monotonic()))
        await _wait(lambda: app.x_count >= sent * SUBSCRIBERS, max(1.0, deadline - time.monotonic()))
        x_total = app.x_count
        venue_cpu = (cpu_seconds(venue_pid) or 0.0) - cpu0
        wall = (app.last_x_ns - start) / 1e9
        # -- latency: one order at a time
        lats: list[int] = []
        n = sent
        for _ in range(min(_LATENCY_ORDERS, orders)):
            if time.monotonic() > deadline + 10:
                break
            app.x_times = []
            t0 = time.perf_counter_ns()
            engine.send_to_target(_order(n), driver)
            n += 1
            if not await _wait(lambda: len(app.x_times) >= SUBSCRIBERS, 5):
                break
            lats += [t - t0 for t in app.x_times]
    return {
        "subscribers": SUBSCRIBERS,
        "orders": sent,
        "md_messages": x_total,
        "seconds": round(wall, 3),
        "md_messages_per_s": round(x_total / wall) if wall > 0 else 0,
        # the venue's CPU per order (its ack, and the X to every subscriber): steadier than
        # wall time when other work shares the cores
        "venue_cpu_us_per_order": round(venue_cpu / sent * 1e6, 1) if sent else 0.0,
        "md_messages_per_venue_cpu_s": round(x_total / venue_cpu) if venue_cpu > 0 else 0,
        "latency_orders": len(lats) // SUBSCRIBERS,
        "p50_us": _pct(lats, 50),
        "p99_us": _pct(lats, 99),
    }


def main(args: argparse.Namespace) -> int:
    orders = getattr(args, "orders", None) or DEFAULT_ORDERS
    seconds = getattr(args, "seconds", None) or DEFAULT_SECONDS
    if orders < 1 or seconds <= 0:
        print("fixgw bench marketdata: --orders must be >= 1 and --seconds > 0", file=sys.stderr)
        return 2
    res = run(orders, seconds, getattr(args, "inflight", 50) or 50)
    if getattr(args, "json", False):
        print(json.dumps(res))
    else:
        print(f"market data: {res['md_messages']} incremental refreshes to {res['subscribers']} subscribers for "
              f"{res['orders']} orders in {res['seconds']} s = {res['md_messages_per_s']:,} messages/s "
              f"({res['md_messages_per_venue_cpu_s']:,} per venue CPU second; venue CPU "
              f"{res['venue_cpu_us_per_order']} us per order); "
              f"order sent -> subscriber's refresh p50 {res['p50_us']} us, p99 {res['p99_us']} us "
              f"({res['latency_orders']} orders one at a time)")
    return 0 if res["md_messages"] else 1

