"""``fixgw bench marketdata --config F``: how long a book change at the venue takes to reach a
customer's refresh at a customer utility, against a running ``fixgw up``.

The path measured: venue -> (FIX) the street utility subscribed to the symbol -> (MQTT, QoS 0)
every customer utility -> (FIX) each subscribed customer. Subscribers: up to 10 of the
config's customers (one FIX 4.4 session each, alternating over the customer utilities), all on
the config's first exchange symbol, full depth; one more session subscribes straight at the
venue, for the venue's own part.

The book is changed by a driver session at the venue (SenderCompID ``MDBENCH-DRIVER``, a firm
of its own): one limit bid at a time, each at a price of its own well below the market maker's
quotes, so each makes one new level and nothing trades. A change's latency is from the
driver's send to a subscriber's receipt of the X carrying that level (p50/p99 over every
subscriber's receipt); one change at a time, ``--orders`` of them (default 200) within
``--seconds`` (default 60). The driver cancels its bids at the end. Every client runs in this
process on one event loop, so the figures include its FIX parsing (as ``fixgw bench
marketdata`` against a lone venue does).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fixgw.application import Application
from fixgw.config import SessionID, SessionSettings
from fixgw.engine import Engine
from fixgw.mdcodes import MDEntryType, MDUpdateAction, SubscriptionRequestType
from fixgw.mdmessages import md_request, read_entries
from fixgw.message import Message
from utilities.cluster_config import ClusterConfig
from utilities.errors import UtilitiesError

DRIVER = "MDBENCH-DRIVER"
DIRECT = "MDBENCH-DIRECT"
MAX_SUBSCRIBERS = 10
OFFSET = Decimal(20)      # the bench's bids rest this far below the reference price
STEP = Decimal("0.01")


class MarketDataBenchError(UtilitiesError):
    """The cluster cannot be benched (not running, no exchange symbol); says what to do."""


class _Clients(Application):
    def __init__(self) -> None:
        self.snapshots: set[SessionID] = set()
        self.rejects: list[str] = []
        self.waiting: dict[Decimal, int] = {}         # price of the pending change -> send time (ns)
        self.receipts: dict[SessionID, int] = {}      # who saw the pending change, when (ns)
        self.acks = 0

    async def from_app(self, message: Message, session_id: SessionID) -> None:
        mt = message.msg_type
        if mt == b"X":
            if not self.waiting:
                return
            now = time.perf_counter_ns()
            for e in read_entries(message):
                if (e.entry_type is MDEntryType.BID and e.action is MDUpdateAction.NEW and e.price in self.waiting
                        and session_id not in self.receipts):
                    self.receipts[session_id] = now
        elif mt == b"W":
            self.snapshots.add(session_id)
        elif mt == b"Y":
            self.rejects.append(f"{session_id.target_comp_id}->{session_id.sender_comp_id}: {message.get_str(58)}")
        elif mt == b"8" and message.get_str(150) in ("0", "4"):
            self.acks += 1


def _pct(values: list[int], p: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p / 100 * len(values)))] / 1000, 1) if values else 0.0


async def _until(cond: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.001)
    return True


def _initiator(sender: str, target: str, host: str, port: int, password: str = "") -> SessionSettings:
    return SessionSettings(begin_string="FIX.4.4", sender_comp_id=sender, target_comp_id=target,
                           connection_type="initiator", socket_connect_host=host, socket_connect_port=port,
                           heart_bt_int=30, reset_on_logon=True, reconnect_interval=1, password=password or None)


async def run(cfg: ClusterConfig, symbol: str, reference: Decimal, *, orders: int, seconds: float) -> dict[str, Any]:
    exchange = next((v for v in cfg.venues.values() if v.kind == "exchange"), None)
    utilities = cfg.nodes_with_role("customer")
    if exchange is None or not utilities:
        raise MarketDataBenchError(f"{cfg.source}: the bench needs an exchange venue and a customer utility")
    customers = list(cfg.customers.values())[:MAX_SUBSCRIBERS]
    subs = [_initiator(c.comp_id, u.comp_id, u.host, int(u.port or 0), c.password)
            for c, u in zip(customers, [utilities[i % len(utilities)] for i in range(len(customers))], strict=True)]
    direct = _initiator(DIRECT, exchange.comp_id, exchange.host, exchange.port)
    driver = _initiator(DRIVER, exchange.comp_id, exchange.host, exchange.port)
    app = _Clients()
    engine = Engine([*subs, direct, driver], app)
    await engine.start()
    try:
        for s in [*subs, direct, driver]:
            try:
                await engine.wait_logged_on(s.session_id, 20)
            except TimeoutError:
                raise MarketDataBenchError(f"no logon as {s.sender_comp_id} to {s.socket_connect_host}:"
                                           f"{s.socket_connect_port} (is 'fixgw up' running with {cfg.source}?)") from None
        watchers = [s.session_id for s in [*subs, direct]]
        for i, sid in enumerate(watchers):
            engine.send_to_target(md_request(f"MDB{i}", SubscriptionRequestType.SNAPSHOT_AND_UPDATES, [symbol]), sid)
        if not await _until(lambda: len(app.snapshots) == len(watchers) or bool(app.rejects), 20):
            raise MarketDataBenchError(f"no snapshot of {symbol} for {len(watchers) - len(app.snapshots)} subscriber(s)")
        if app.rejects:
            raise MarketDataBenchError(f"market data refused: {app.rejects[0]}")
        through: list[int] = []
        at_venue: list[int] = []
        complete = 0
        base = reference - OFFSET
        start = time.monotonic()
        ids = []
        for n in range(orders):
            if time.monotonic() - start > seconds:
                break
            px = base - n * STEP
            app.receipts = {}
            app.waiting = {px: 0}
            cl = f"MDB-{time.time_ns()}-{n}"
            ids.append((cl, px))
            t0 = time.perf_counter_ns()
            engine.send_to_target(Message.new("D", [(11, cl), (21, "1"), (55, symbol), (54, "1"),
                                                    (60, time.strftime("%Y%m%d-%H:%M:%S", time.gmtime())),
                                                    (38, 1), (40, "2"), (44, f"{px:f}"), (59, "0")]),
                                  driver.session_id)
            if await _until(lambda: len(app.receipts) == len(watchers), 5):
                complete += 1
            for sid, t in app.receipts.items():
                (at_venue if sid == direct.session_id else through).append(t - t0)
            app.waiting = {}
        # tidy: the bench's bids leave the book
        for i, (cl, _px) in enumerate(ids):
            engine.send_to_target(Message.new("F", [(41, cl), (11, f"{cl}-X{i}"), (55, symbol), (54, "1"),
                                                    (38, 1), (60, time.strftime("%Y%m%d-%H:%M:%S", time.gmtime()))]),
                                  driver.session_id)
        await _until(lambda: app.acks >= 2 * len(ids), 10)
    finally:
        await engine.stop()
    return {"symbol": symbol, "subscribers": len(subs), "utilities": len(utilities), "changes": len(ids),
            "complete": complete, "p50_us": _pct(through, 50), "p99_us": _pct(through, 99),
            "venue_direct_p50_us": _pct(at_venue, 50), "venue_direct_p99_us": _pct(at_venue, 99)}
