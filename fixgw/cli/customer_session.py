"""The customer's FIX session the ``fixgw order`` commands share: log on to a customer utility
as the customer CompID (our engine as the initiator, a FIX client like any other), hand every
application message and session-level Reject to the caller, log out on the way out.

    async with customer_session(host, port, "CLIENT1", "FIXGW", "FIX.4.4") as s:
        s.send(Message.new("D", [...]))
        msg = await s.next(deadline)      # None once the loop time passes ``deadline``
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fixgw.application import Application
from fixgw.cli import CliError
from fixgw.config import SessionID, SessionSettings
from fixgw.engine import Engine
from fixgw.message import Message

LOGON_TIMEOUT_S = 10.0


@dataclass(slots=True)
class CustomerSession:
    engine: Engine
    session_id: SessionID
    inbox: asyncio.Queue[Message]

    def send(self, msg: Message) -> None:
        self.engine.send_to_target(msg, self.session_id)

    async def next(self, deadline: float) -> Message | None:
        """The next message received before the loop time ``deadline``, or None."""
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            return await asyncio.wait_for(self.inbox.get(), max(0.0, remaining))
        except TimeoutError:
            return None


class _Client(Application):
    def __init__(self) -> None:
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.refused: list[str] = []

    async def from_app(self, message: Message, session_id: SessionID) -> None:
        self.inbox.put_nowait(message)

    async def from_admin(self, message: Message, session_id: SessionID) -> None:
        if message.msg_type == b"5" and message.get_str(58):
            self.refused.append(message.get_str(58) or "")
        elif message.msg_type == b"3":
            self.inbox.put_nowait(message)   # our request refused by the session: the caller says why


@contextlib.asynccontextmanager
async def customer_session(host: str, port: int, sender: str, target: str,
                           begin: str = "FIX.4.4") -> AsyncIterator[CustomerSession]:
    """Logged on (CliError, with the utility's Logout text if any, when not within 10 s)."""
    settings = SessionSettings(begin_string=begin, sender_comp_id=sender, target_comp_id=target,
                               connection_type="initiator", socket_connect_host=host, socket_connect_port=port,
                               heart_bt_int=30, reset_on_logon=True, reconnect_interval=1)
    client = _Client()
    engine = Engine([settings], client)
    await engine.start()
    try:
        try:
            await engine.wait_logged_on(settings.session_id, timeout=LOGON_TIMEOUT_S)
        except TimeoutError:
            why = f": {client.refused[-1]}" if client.refused else " (is 'fixgw up' running?)"
            raise CliError(f"no logon to {host}:{port} as {sender} -> {target}{why}") from None
        yield CustomerSession(engine, settings.session_id, client.inbox)
    finally:
        await engine.stop()
