"""A small FIX client for end-to-end tests: our engine as initiator, replies in a queue."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Self

from fixgw.application import Application
from fixgw.config import SessionID, SessionSettings
from fixgw.engine import Engine
from fixgw.message import Message


def now_ts() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


class Collector(Application):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Message] = asyncio.Queue()
        self.all: list[Message] = []

    async def from_app(self, message: Message, session_id: SessionID) -> None:
        self.all.append(message)
        self.queue.put_nowait(message)


class FixClient:
    """``async with FixClient(port, "CLIENT1", "FIXGW") as c: await c.new_order(...)``"""

    _ids = itertools.count(1)

    def __init__(self, port: int, sender: str, target: str, *, begin: str = "FIX.4.4",
                 store: Path | None = None, host: str = "127.0.0.1") -> None:
        self.settings = SessionSettings(
            begin_string=begin, sender_comp_id=sender, target_comp_id=target, connection_type="initiator",
            socket_connect_host=host, socket_connect_port=port, heart_bt_int=30, reconnect_interval=1,
            file_store_path=store, reset_on_logon=store is None,
        )
        self.sid = self.settings.session_id
        self.app = Collector()
        self.engine = Engine([self.settings], self.app)

    async def __aenter__(self) -> Self:
        await self.engine.start()
        await self.engine.wait_logged_on(self.sid, timeout=15)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.engine.stop()

    def send(self, msg: Message) -> None:
        self.engine.send_to_target(msg, self.sid)

    def clid(self, prefix: str = "C") -> str:
        return f"{prefix}{next(self._ids)}"

    def new_order(self, *, symbol: str, side: str, qty: Decimal | str | None = None, price: Decimal | str | None = None,
                  ord_type: str = "2", tif: str = "0", account: str = "", cl_ord_id: str = "",
                  cash_qty: Decimal | str | None = None) -> str:
        cl = cl_ord_id or self.clid()
        f: list[tuple[int, object]] = [(11, cl)]
        if account:
            f.append((1, account))
        f += [(21, "1"), (55, symbol), (54, side), (60, now_ts())]
        if qty is not None:
            f.append((38, str(qty)))
        if cash_qty is not None:
            f.append((152, str(cash_qty)))
        f.append((40, ord_type))
        if price is not None:
            f.append((44, str(price)))
        f.append((59, tif))
        self.send(Message.new("D", f))
        return cl

    def cancel(self, orig: str, *, symbol: str, side: str, qty: str | None = None) -> str:
        cl = self.clid("X")
        f: list[tuple[int, object]] = [(41, orig), (11, cl), (55, symbol), (54, side), (60, now_ts())]
        if qty is not None:
            f.append((38, qty))
        self.send(Message.new("F", f))
        return cl

    def replace(self, orig: str, *, symbol: str, side: str, qty: str, price: str | None = None,
                ord_type: str = "2") -> str:
        cl = self.clid("R")
        f: list[tuple[int, object]] = [(41, orig), (11, cl), (21, "1"), (55, symbol), (54, side),
                                       (60, now_ts()), (38, qty), (40, ord_type)]
        if price is not None:
            f.append((44, price))
        self.send(Message.new("G", f))
        return cl

    def status(self, cl: str, *, symbol: str, side: str) -> None:
        self.send(Message.new("H", [(11, cl), (55, symbol), (54, side)]))

    async def next(self, timeout: float = 10.0) -> Message:
        return await asyncio.wait_for(self.app.queue.get(), timeout)

    async def until(self, pred: Any, timeout: float = 15.0) -> Message:
        """The next message matching ``pred`` (others stay in ``self.app.all``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError("no matching message")
            msg = await asyncio.wait_for(self.app.queue.get(), left)
            if pred(msg):
                return msg
