"""Test support for the FIX venues: clients (a fixgw initiator, a QuickFIX initiator) behind
one small interface, so that the same trading scenarios run over both.

    async with fixgw_client(port, "TRADER", "EXCH", "FIX.4.4") as c:
        c.send("D", [(11, "O1"), ...])
        er = await c.expect(lambda m: m.msg_type == b"8" and m.get(11) == b"O1", "ack of O1")

Every message a client receives is checked against our data dictionary for its version
(``client.invalid`` lists the ones that fail); a QuickFIX client also validates with its
own dictionary, and would reject an invalid one instead of handing it over.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fixgw.application import Application
from fixgw.config import SessionID, parse_settings
from fixgw.dictionary import DataDictionary
from fixgw.engine import Engine
from fixgw.message import Message
from fixgw.validation import validate
from tests.support.broker import free_port

__all__ = ["FixgwClient", "QuickfixClients", "fixgw_client", "free_port", "now_ts", "problems"]

PROJECT = Path(__file__).resolve().parents[2]
SPEC_DIR = PROJECT / "fixgw" / "spec"


def now_ts() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


_DICTS: dict[str, DataDictionary] = {}


def problems(raw: bytes) -> str | None:
    """Why ``raw`` (a whole received message) fails our dictionary, or None."""
    msg = Message.from_wire(raw)
    begin = msg.get_str(8) or ""
    dd = _DICTS.get(begin)
    if dd is None:
        dd = _DICTS[begin] = DataDictionary.builtin(begin)
    reject = validate(dd, msg.fields)
    return None if reject is None else f"{reject.text} (tag {reject.ref_tag}) in {msg!r}"


class _Inbox:
    """Received application messages; ``expect`` takes the first one that matches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: list[Message] = []  # everything received, in order
        self._unclaimed: list[Message] = []
        self.invalid: list[str] = []

    def add(self, msg: Message) -> None:
        why = problems(msg.raw)
        with self._lock:
            if why is not None:
                self.invalid.append(why)
            self.messages.append(msg)
            self._unclaimed.append(msg)

    def claim(self, pred: Callable[[Message], bool]) -> Message | None:
        with self._lock:
            for i, m in enumerate(self._unclaimed):
                if pred(m):
                    return self._unclaimed.pop(i)
        return None

    def unclaimed(self) -> list[Message]:
        with self._lock:
            return list(self._unclaimed)

    async def expect(self, pred: Callable[[Message], bool], what: str, timeout: float = 5.0) -> Message:
        deadline = time.monotonic() + timeout
        while True:
            m = self.claim(pred)
            if m is not None:
                return m
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} within {timeout} s; unclaimed: {self.unclaimed()}")
            await asyncio.sleep(0.005)


class FixgwClient(Application):
    """A fixgw initiator session: ``send`` application messages, ``expect`` answers."""

    def __init__(self, session_id: SessionID) -> None:
        self.session_id = session_id
        self.inbox = _Inbox()
        self.admin_in: list[Message] = []

    @property
    def invalid(self) -> list[str]:
        return self.inbox.invalid

    async def from_app(self, message: Message, session_id: SessionID) -> None:
        self.inbox.add(message)

    async def from_admin(self, message: Message, session_id: SessionID) -> None:
        self.admin_in.append(message)
        if message.msg_type == b"3":  # session-level Reject: a test wants to see it too
            self.inbox.add(message)

    def send(self, msg_type: str, fields: Sequence[tuple[int, object]]) -> bool:  # type: ignore[override]
        assert self.engine is not None
        return self.engine.send_to_target(Message.new(msg_type, fields), self.session_id)

    async def expect(self, pred: Callable[[Message], bool], what: str, timeout: float = 5.0) -> Message:
        return await self.inbox.expect(pred, what, timeout)


def initiator_settings(port: int, sender: str, target: str, begin: str, store: Path | None) -> list[Any]:
    text = (
        "[DEFAULT]\nConnectionType=initiator\nSocketConnectHost=127.0.0.1\n"
        f"SocketConnectPort={port}\nSenderCompID={sender}\nTargetCompID={target}\n"
        f"BeginString={begin}\nHeartBtInt=30\nReconnectInterval=1\n"
        + (f"FileStorePath={store}\n" if store is not None else "")
        + "[SESSION]\n"
    )
    return parse_settings(text, "<test client>")


@contextlib.asynccontextmanager
async def fixgw_client(
    port: int, sender: str, target: str, begin: str = "FIX.4.4", store: Path | None = None
) -> AsyncIterator[FixgwClient]:
    """A logged-on fixgw initiator (logged out on exit)."""
    sid = SessionID(begin, sender, target)
    client = FixgwClient(sid)
    async with Engine(initiator_settings(port, sender, target, begin, store), client) as engine:
        await engine.wait_logged_on(sid, 10)
        yield client


# -- QuickFIX ------------------------------------------------------------------------------


def _qf() -> Any:
    import quickfix

    return quickfix


class _QfApp:
    """Built lazily (quickfix imported inside): records application messages per session."""

    @staticmethod
    def make(inboxes: dict[str, _Inbox], logged_on: set[str], lock: threading.Lock) -> Any:
        fix = _qf()

        class App(fix.Application):  # type: ignore[misc,name-defined]
            def onCreate(self, sessionID: Any) -> None:
                pass

            def onLogon(self, sessionID: Any) -> None:
                with lock:
                    logged_on.add(sessionID.toString())

            def onLogout(self, sessionID: Any) -> None:
                with lock:
                    logged_on.discard(sessionID.toString())

            def toAdmin(self, message: Any, sessionID: Any) -> None:
                pass

            def fromAdmin(self, message: Any, sessionID: Any) -> None:
                if message.getHeader().getField(35) == "3":
                    inboxes[sessionID.toString()].add(Message.from_wire(message.toString().encode("latin-1")))

            def toApp(self, message: Any, sessionID: Any) -> None:
                pass

            def fromApp(self, message: Any, sessionID: Any) -> None:
                inboxes[sessionID.toString()].add(Message.from_wire(message.toString().encode("latin-1")))

        return App()


class QuickfixSession:
    """One session of a :class:`QuickfixClients`, with the FixgwClient interface."""

    def __init__(self, owner: QuickfixClients, session_id: Any, inbox: _Inbox) -> None:
        self._owner = owner
        self.session_id = session_id
        self.inbox = inbox
        self.begin_string = session_id.getBeginString().getValue()

    @property
    def invalid(self) -> list[str]:
        return self.inbox.invalid

    def send(self, msg_type: str, fields: Sequence[tuple[int, object]]) -> bool:
        fix = _qf()
        m = fix.Message()
        m.getHeader().setField(fix.BeginString(self.begin_string))
        m.getHeader().setField(fix.MsgType(msg_type))
        for tag, value in fields:
            if tag in (43, 97):
                m.getHeader().setField(fix.StringField(tag, str(value)))
            else:
                m.setField(fix.StringField(tag, str(value)))
        return bool(fix.Session.sendToTarget(m, self.session_id))

    async def expect(self, pred: Callable[[Message], bool], what: str, timeout: float = 5.0) -> Message:
        return await self.inbox.expect(pred, what, timeout)

    def logged_on(self) -> bool:
        return self._owner.is_logged_on(self.session_id)


class QuickfixClients:
    """A QuickFIX ``SocketInitiator`` from a settings file (all its sessions)."""

    def __init__(self, settings_path: Path) -> None:
        fix = _qf()
        self._lock = threading.Lock()
        self._logged_on: set[str] = set()
        self._inboxes: dict[str, _Inbox] = {}
        self.settings = fix.SessionSettings(str(settings_path))
        self.sessions: dict[str, QuickfixSession] = {}  # by TargetCompID
        self.by_sender: dict[str, QuickfixSession] = {}  # by SenderCompID
        for sid in self.settings.getSessions():
            inbox = _Inbox()
            self._inboxes[sid.toString()] = inbox
            session = QuickfixSession(self, sid, inbox)
            self.sessions[sid.getTargetCompID().getValue()] = session
            self.by_sender[sid.getSenderCompID().getValue()] = session
        self._app = _QfApp.make(self._inboxes, self._logged_on, self._lock)
        self._store = fix.FileStoreFactory(self.settings)
        self._log = fix.FileLogFactory(self.settings)
        self._initiator: Any = fix.SocketInitiator(self._app, self._store, self.settings, self._log)
        self._running = False

    def is_logged_on(self, sid: Any) -> bool:
        with self._lock:
            return sid.toString() in self._logged_on

    def start(self) -> None:
        self._initiator.start()
        self._running = True

    def stop(self) -> None:
        """Log out (blocking up to QuickFIX's own timeout) and free the initiator."""
        if self._running:
            self._running = False
            self._initiator.stop()
        # free the initiator before the factories it uses (else: crash at exit)
        self._initiator = None
