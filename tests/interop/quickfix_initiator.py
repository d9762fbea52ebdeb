"""A QuickFIX initiator the interop tests drive: log on, send NewOrderSingle, collect answers.

    init = QuickfixInitiator(InitiatorConfig(host="127.0.0.1", port=p, store_dir=d))
    init.start(); await init.until(init.logged_on, 10)
    ids = init.send_orders("A", 1000)
    await init.until(lambda: init.answered() >= set(ids), 30)
    init.drop()        # sockets closed, no Logout (the FileStore keeps the sequence numbers)
    init.reconnect()   # a fresh QuickFIX initiator over the same FileStore
    init.logout()      # Logout, wait for the answer, stop

Everything the counterparty sends is recorded by :class:`CollectingApplication` (MsgType,
MsgSeqNum, PossDupFlag, ClOrdID), and so is every admin message QuickFIX sends, so a test can see
ResendRequests, Rejects and Logouts. QuickFIX runs its own thread and calls the application from
it; tests on an asyncio loop wait with :meth:`QuickfixInitiator.until`, which sleeps on the loop
rather than blocking it (the fixgw engine under test runs on that loop).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import quickfix as fix

from tests.interop.quickfix_echo import SPEC_DIR, body_field, header_field


@dataclass(frozen=True, slots=True)
class InitiatorConfig:
    """A QuickFIX initiator session towards ``host:port``, persisted in ``store_dir``."""

    host: str
    port: int
    store_dir: Path
    begin_string: str = "FIX.4.4"
    sender_comp_id: str = "QFCLIENT"
    target_comp_id: str = "FIXGW"
    heartbeat_s: int = 30
    reconnect_interval_s: int = 1
    reset_on_logon: bool = False
    validate: bool = True
    log_dir: Path | None = None
    failover: tuple[tuple[str, int], ...] = ()  # SocketConnectHost1/Port1, 2, ...: tried in turn

    def __post_init__(self) -> None:
        for host in (self.host, *(h for h, _ in self.failover)):
            if host not in ("127.0.0.1", "localhost"):
                raise ValueError(f"tests connect to loopback only, got host {host!r}")
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be 1..65535, got {self.port}")
        if self.begin_string not in ("FIX.4.2", "FIX.4.4"):
            raise ValueError(f"begin_string must be FIX.4.2 or FIX.4.4, got {self.begin_string!r}")
        if self.heartbeat_s <= 0 or self.reconnect_interval_s <= 0:
            raise ValueError("heartbeat_s and reconnect_interval_s must be positive")

    def settings_text(self) -> str:
        yn = {True: "Y", False: "N"}
        lines = [
            "[DEFAULT]",
            "ConnectionType=initiator",
            f"SocketConnectHost={self.host}",
            f"SocketConnectPort={self.port}",
            *(f"SocketConnectHost{i}={h}\nSocketConnectPort{i}={p}" for i, (h, p) in enumerate(self.failover, 1)),
            "SocketNodelay=Y",
            f"ReconnectInterval={self.reconnect_interval_s}",
            f"HeartBtInt={self.heartbeat_s}",
            f"FileStorePath={self.store_dir}",
            "StartTime=00:00:00",
            "EndTime=00:00:00",
            f"ResetOnLogon={yn[self.reset_on_logon]}",
            f"UseDataDictionary={yn[self.validate]}",
            f"DataDictionary={SPEC_DIR / (self.begin_string.replace('.', '') + '.xml')}",
            "",
            "[SESSION]",
            f"BeginString={self.begin_string}",
            f"SenderCompID={self.sender_comp_id}",
            f"TargetCompID={self.target_comp_id}",
        ]
        if self.log_dir is not None:
            lines.insert(1, f"FileLogPath={self.log_dir}")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Received:
    """One message as QuickFIX handed it to the application."""

    msg_type: str
    seq_num: int
    poss_dup: bool
    cl_ord_id: str | None
    raw: str

    @classmethod
    def of(cls, message: fix.Message) -> Received:
        return cls(
            msg_type=header_field(message, 35) or "",
            seq_num=int(header_field(message, 34) or 0),
            poss_dup=header_field(message, 43) == "Y",
            cl_ord_id=body_field(message, 11),
            raw=message.toString().replace("\x01", "|"),
        )


class CollectingApplication(fix.Application):  # type: ignore[misc]
    """Records what the counterparty sends and the admin messages QuickFIX sends (thread-safe)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.app_in: list[Received] = []
        self.admin_in: list[Received] = []
        self.admin_out: list[Received] = []
        self.logons = 0
        self.logouts = 0
        self._logged_on = False

    def onCreate(self, sessionID: fix.SessionID) -> None:
        pass

    def onLogon(self, sessionID: fix.SessionID) -> None:
        with self._lock:
            self.logons += 1
            self._logged_on = True

    def onLogout(self, sessionID: fix.SessionID) -> None:
        with self._lock:
            self.logouts += 1
            self._logged_on = False

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        r = Received.of(message)
        with self._lock:
            self.admin_out.append(r)

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        r = Received.of(message)
        with self._lock:
            self.admin_in.append(r)

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        pass

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        r = Received.of(message)
        with self._lock:
            self.app_in.append(r)

    def logged_on(self) -> bool:
        with self._lock:
            return self._logged_on

    def mark_stopped(self) -> None:
        """The initiator was stopped: QuickFIX does not call onLogout when stopped by force."""
        with self._lock:
            self._logged_on = False

    def snapshot(self) -> tuple[list[Received], list[Received], list[Received]]:
        """Copies of (app_in, admin_in, admin_out)."""
        with self._lock:
            return list(self.app_in), list(self.admin_in), list(self.admin_out)


def new_order_single(
    begin_string: str, cl_ord_id: str, qty: int = 100, price: str = "10.25", symbol: str = "IBM",
    side: str = "1",
) -> fix.Message:
    """A limit NewOrderSingle valid in FIX.4.2 and FIX.4.4."""
    m = fix.Message()
    m.getHeader().setField(fix.BeginString(begin_string))
    m.getHeader().setField(fix.MsgType("D"))
    m.setField(fix.ClOrdID(cl_ord_id))
    m.setField(fix.HandlInst("1"))
    m.setField(fix.Symbol(symbol))
    m.setField(fix.Side(side))
    m.setField(fix.StringField(60, dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]))
    m.setField(fix.StringField(38, str(qty)))
    m.setField(fix.OrdType("2"))
    m.setField(fix.StringField(44, price))
    return m


class QuickfixInitiator:
    """A QuickFIX ``SocketInitiator`` with one session, restartable over the same FileStore."""

    def __init__(self, config: InitiatorConfig, application: CollectingApplication | None = None) -> None:
        self.config = config
        self.app = application if application is not None else CollectingApplication()
        config.store_dir.mkdir(parents=True, exist_ok=True)
        if config.log_dir is not None:
            config.log_dir.mkdir(parents=True, exist_ok=True)
        self._settings_path = config.store_dir / "initiator.cfg"
        self._settings_path.write_text(config.settings_text())
        self.session_id = fix.SessionID(config.begin_string, config.sender_comp_id, config.target_comp_id)
        self._running = False
        self._objects: dict[str, object] = {}

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start a fresh QuickFIX initiator; it reads its sequence numbers from the FileStore."""
        if self._running:
            raise RuntimeError("already running")
        settings = fix.SessionSettings(str(self._settings_path))
        store = fix.FileStoreFactory(settings)
        if self.config.log_dir is not None:
            log = fix.FileLogFactory(settings)
            initiator = fix.SocketInitiator(self.app, store, settings, log)
            self._objects = {"settings": settings, "store": store, "log": log, "initiator": initiator}
        else:
            initiator = fix.SocketInitiator(self.app, store, settings)
            self._objects = {"settings": settings, "store": store, "initiator": initiator}
        initiator.start()
        self._running = True

    def _initiator(self) -> fix.SocketInitiator:
        return self._objects["initiator"]

    def _stop(self, force: bool) -> None:
        if not self._running:
            return
        self._running = False
        self._initiator().stop(force)
        # free the initiator before the factories it uses when it is destroyed (else: segfault)
        del self._objects["initiator"]
        self._objects.clear()
        self.app.mark_stopped()

    def drop(self) -> None:
        """Close the connection at once, without a Logout (as a crash would)."""
        self._stop(force=True)

    def reconnect(self) -> None:
        """After :meth:`drop`: a new initiator over the same FileStore connects and logs on."""
        self.start()

    def logout(self, timeout_s: float = 10.0) -> bool:
        """Send Logout, wait (blocking, up to QuickFIX's 10 s) for the answer, stop; True if answered."""
        if not self._running:
            return False
        deadline = time.monotonic() + timeout_s
        self._stop(force=False)
        while self.app.logged_on() and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self.app.logged_on()

    async def logout_async(self, timeout_s: float = 10.0) -> bool:
        """:meth:`logout` without blocking the event loop (the peer may run on it)."""
        return await asyncio.to_thread(self.logout, timeout_s)

    def close(self) -> None:
        self._stop(force=True)

    # -- state ----------------------------------------------------------------------------------

    def logged_on(self) -> bool:
        return self.app.logged_on()

    def session(self) -> fix.Session:
        s = fix.Session.lookupSession(self.session_id)
        if s is None:
            raise RuntimeError("the QuickFIX session is not running")
        return s

    def next_sender_seq(self) -> int:
        return int(self.session().getExpectedSenderNum())

    def next_target_seq(self) -> int:
        return int(self.session().getExpectedTargetNum())

    def reports(self) -> list[Received]:
        """ExecutionReports received, in arrival order."""
        return [r for r in self.app.snapshot()[0] if r.msg_type == "8"]

    def answered(self) -> set[str]:
        return {r.cl_ord_id for r in self.reports() if r.cl_ord_id is not None}

    # -- sending --------------------------------------------------------------------------------

    def send_order(self, cl_ord_id: str, qty: int = 100, price: str = "10.25") -> bool:
        """Send one NewOrderSingle; False if QuickFIX only stored it (not logged on)."""
        msg = new_order_single(self.config.begin_string, cl_ord_id, qty, price)
        return bool(fix.Session.sendToTarget(msg, self.session_id))

    def send_orders(self, prefix: str, n: int, start: int = 0) -> list[str]:
        """Send ``n`` NewOrderSingle with ClOrdIDs ``<prefix><number>``; returns the ClOrdIDs."""
        ids = [f"{prefix}{i:06d}" for i in range(start, start + n)]
        for cl in ids:
            self.send_order(cl)
        return ids

    # -- waiting --------------------------------------------------------------------------------

    async def until(self, predicate: Callable[[], bool], timeout_s: float, what: str = "") -> None:
        """Poll ``predicate`` on the event loop until it holds; TimeoutError after ``timeout_s``."""
        await until(predicate, timeout_s, what)


async def until(predicate: Callable[[], bool], timeout_s: float, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout_s} s: {what or predicate}")
        await asyncio.sleep(0.01)
