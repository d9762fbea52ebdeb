"""The engine: wires sessions to sockets, stores, logs and the application.

    settings = load_settings("sessions.cfg")            # QuickFIX-style file (fixgw.config)
    async with Engine(settings, MyApp()) as engine:      # acceptors listen, initiators connect
        await engine.wait_logged_on(sid, timeout=5)
        engine.send_to_target(Message.new("D", [(11, "A1"), ...]), sid)

- Acceptor: one listener per (host, port); several sessions share it, the Logon's
  BeginString and CompIDs pick the session; ``TargetCompID=*`` creates a session per client.
- Initiator: connects, logs on, reconnects with exponential back-off.
- Group commit: what a session sends while it handles one read (and each slice of messages),
  with the updated sequence numbers, is stored in ONE durable transaction before any of it is
  written (TCP_NODELAY, one write for all that commit held). While commits are quick (an fsync
  of ~0.5 ms) they run in the event loop itself: no thread hand-off, no GIL contention. While
  they are slow (a busy disk) a store thread commits everything staged meanwhile, back to
  back, and the read loop writes the answers as soon as it sees a commit done, between two
  messages.
- Hot path: a frame of a shape the dictionary already found valid is cut, parsed and validated
  in one regex match (fixgw.plans), accepted by the session in one step (Session.accept_usual)
  and handed straight to a MessageCracker's handler.
- TLS on both sides (``SocketUseSSL=Y``).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import functools
import inspect
import logging
import socket
import ssl
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, Self

from fixgw.application import Application, MessageCracker
from fixgw.commitlane import CommitLanePolicy
from fixgw.config import SessionID, SessionSettings
from fixgw.errors import RejectLogon, StoreError
from fixgw.framing import Framer, Garbled
from fixgw.message import Message, parse_fields
from fixgw.plans import PlanBook, plan_book
from fixgw.session import (
    Batch,
    Close,
    Deliver,
    LoggedOn,
    LoggedOut,
    Session,
    SessionConfig,
    VerifyLogon,
    noop_hook,
)
from fixgw.session_state import State

__all__ = ["Engine", "SessionID", "SessionRuntime", "config_from_settings"]

_log = logging.getLogger("fixgw.engine")
_READ_SIZE = 1 << 16
_TICK = 0.2
_SLICE = 64  # messages handled before the loop lets other tasks run


def _seq_of(msg: Message) -> int:
    """A delivered message's MsgSeqNum (0 when it has none a store could expect)."""
    raw = msg.get(34)
    return int(raw) if raw is not None and raw.isdigit() else 0


class _GilSwitch:
    """While an engine runs, the interpreter's thread switch interval is at most 0.5 ms.

    The group commit runs in a store thread, which needs the GIL to start the transaction and
    again to report that it is on disk. With the default interval (5 ms) a busy event loop keeps
    it waiting up to 5 ms each time, and the answers wait with it: measured, the at-server's
    throughput doubles at 0.5 ms. A thread that is idle asks for nothing, so this costs nothing
    then. The previous value comes back when the last engine stops.
    """

    INTERVAL = 0.0005
    running = 0
    previous: float | None = None

    @classmethod
    def engine_started(cls) -> None:
        if cls.running == 0:
            current = sys.getswitchinterval()
            if current > cls.INTERVAL:
                cls.previous = current
                sys.setswitchinterval(cls.INTERVAL)
        cls.running += 1

    @classmethod
    def engine_stopped(cls) -> None:
        cls.running = max(0, cls.running - 1)
        if cls.running == 0 and cls.previous is not None:
            if sys.getswitchinterval() == cls.INTERVAL:  # nobody else changed it meanwhile
                sys.setswitchinterval(cls.previous)
            cls.previous = None


class _CommitLane:
    """A session's commits in the store thread, back to back (group commit).

    The event loop stages batches (``stage``); one drain task at a time runs in the executor
    and commits everything staged so far in ONE store transaction, then counts the batches in
    ``done`` (only that thread writes it; the loop reads it) and calls ``wake`` through the
    loop, and goes on while more was staged meanwhile. So the store thread needs no wake-up per
    commit under load, and a slow fsync only makes the next transaction bigger.
    """

    __slots__ = ("_commit", "_executor", "_lock", "_queue", "_wake", "done", "error", "running")

    def __init__(
        self,
        commit: Callable[[Batch], None],
        executor: concurrent.futures.Executor,
        wake: Callable[[], None],
    ) -> None:
        self._commit = commit
        self._executor = executor
        self._wake = wake
        self._lock = threading.Lock()
        self._queue: list[Batch] = []
        self.running = False  # a drain task is queued or running (read by the loop)
        self.done = 0
        self.error: BaseException | None = None

    def stage(self, batch: Batch) -> None:
        """(event loop) Commit this batch after those staged before it."""
        with self._lock:
            self._queue.append(batch)
            if self.running:
                return
            self.running = True
        try:
            self._executor.submit(self._drain, asyncio.get_running_loop())
        except BaseException:
            with self._lock:
                self.running = False
            raise

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """(store thread) Commit what is staged, merged, until nothing is left."""
        while True:
            with self._lock:
                batches = self._queue
                if not batches:
                    self.running = False
                    return
                self._queue = []
            try:
                self._commit(_merge(batches))
            except BaseException as exc:  # noqa: BLE001 - reported on the event loop
                self.error = exc
            self.done += len(batches)
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing waits
                loop.call_soon_threadsafe(self._wake)


def _merge(batches: list[Batch]) -> Batch:
    """Consecutive batches of one session as one: a reset wipes what came before it."""
    if len(batches) == 1:
        return batches[0]
    first = 0
    for i, b in enumerate(batches):
        if b.reset:
            first = i
    messages: list[tuple[int, bytes]] = []
    for b in batches[first:]:
        messages += b.messages
    last = batches[-1]
    return Batch(batches[first].reset, messages, last.next_sender_seq, last.next_target_seq)


class LogLike(Protocol):
    def incoming(self, raw: bytes) -> None: ...
    def outgoing(self, raw: bytes) -> None: ...
    def event(self, text: str) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


class _NullLog:
    def incoming(self, raw: bytes) -> None: ...
    def outgoing(self, raw: bytes) -> None: ...
    def event(self, text: str) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


def default_store_factory(settings: SessionSettings, sid: SessionID) -> Any:
    """LmdbStore under FileStorePath when it is set, MemoryStore otherwise."""
    from fixgw import store

    if settings.file_store_path is not None:
        return store.LmdbStore(settings.file_store_path, sid, sync=settings.file_store_sync)
    return store.MemoryStore(sid)


def default_log_factory(settings: SessionSettings, sid: SessionID) -> Any:
    """File logs under FileLogPath when it is set, no log otherwise."""
    from fixgw import fixlog

    if settings.file_log_path is None:
        return fixlog.NullLog()
    return fixlog.FileLog(settings.file_log_path, sid, keep_days=settings.file_log_keep_days)


def config_from_settings(s: SessionSettings) -> SessionConfig:
    return SessionConfig(
        begin_string=s.begin_string,
        sender_comp_id=s.sender_comp_id,
        target_comp_id=s.target_comp_id,
        initiator=not s.is_acceptor,
        heartbeat_int=s.heart_bt_int,
        reset_on_logon=s.reset_on_logon,
        reset_on_logout=s.reset_on_logout,
        reset_on_disconnect=s.reset_on_disconnect,
        reset_when_peer_forgot=s.reset_when_peer_forgot,
        check_latency=s.check_latency,
        max_latency=s.max_latency,
        logon_timeout=float(s.logon_timeout),
        logout_timeout=float(s.logout_timeout),
        resend_request_chunk_size=s.resend_request_chunk_size,
        username=s.username,
        password=s.password,
        sender_sub_id=s.sender_sub_id,
        target_sub_id=s.target_sub_id,
        validate_fields_out_of_order=s.validate_fields_out_of_order,
        validate_fields_have_values=s.validate_fields_have_values,
        validate_user_defined_fields=s.validate_user_defined_fields,
        allow_unknown_msg_fields=s.allow_unknown_msg_fields,
        millis_in_timestamp=s.timestamp_precision != 0,
    )


def _dictionary(s: SessionSettings) -> Any:
    from fixgw.dictionary import DataDictionary

    if not s.use_data_dictionary:
        return None
    if s.data_dictionary is not None:
        return _load_dd(str(s.data_dictionary))
    return DataDictionary.builtin(s.begin_string)


@functools.lru_cache(maxsize=32)
def _load_dd(path: str) -> Any:
    from fixgw.dictionary import DataDictionary

    return DataDictionary.load(path)


def server_ssl_context(s: SessionSettings) -> ssl.SSLContext | None:
    if not s.socket_use_ssl:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    assert s.socket_certificate_file is not None and s.socket_private_key_file is not None
    ctx.load_cert_chain(str(s.socket_certificate_file), str(s.socket_private_key_file))
    if s.socket_ca_file is not None:
        ctx.load_verify_locations(str(s.socket_ca_file))
        ctx.verify_mode = ssl.CERT_REQUIRED  # a CA file on an acceptor means: client certificates
    return ctx


def client_ssl_context(s: SessionSettings) -> ssl.SSLContext | None:
    if not s.socket_use_ssl:
        return None
    ctx = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=str(s.socket_ca_file) if s.socket_ca_file else None
    )
    if s.socket_certificate_file is not None and s.socket_private_key_file is not None:
        ctx.load_cert_chain(str(s.socket_certificate_file), str(s.socket_private_key_file))
    return ctx


def _call_factory(factory: Callable[..., Any], settings: SessionSettings, sid: SessionID) -> Any:
    """Factories take (settings, session_id), or just (session_id) like fixgw.store's and
    fixgw.fixlog's ready-made factories."""
    try:
        n = len(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        n = 2
    return factory(sid) if n == 1 else factory(settings, sid)


class _Conn:
    """One TCP (or TLS) connection."""

    __slots__ = ("closing", "framer", "peer", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_size: int) -> None:
        self.reader = reader
        self.writer = writer
        self.framer = Framer(max_size)
        self.closing = False
        self.peer = writer.get_extra_info("peername")
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            with contextlib.suppress(Exception):
                self.writer.close()


_ADMIN_TYPES = frozenset({b"0", b"1", b"2", b"3", b"4", b"5", b"A"})


def _holds_app_message(raw: bytes) -> bool:
    """Whether a sealed message is an application message (its MsgType, tag 35, is not one of
    the session's own): read off the bytes, which always carry 35 as the third field."""
    start = raw.find(b"\x0135=") + 4
    end = raw.find(b"\x01", start)
    return start >= 4 and raw[start:end] not in _ADMIN_TYPES


def _version_aware(dd: Any, app_supports: Callable[[bytes], bool]) -> tuple[Callable[[bytes], bool], Callable[[bytes], bool]]:
    """(supports, is_app_type) for a session with dictionary ``dd``: a type the application
    handles but ``dd`` does not define counts as an application type it does not support."""

    def supports(mt: bytes) -> bool:
        return app_supports(mt) and dd.message_b(mt) is not None

    def is_app(mt: bytes) -> bool:
        m = dd.message_b(mt)
        return (m is not None and not m.is_admin) or (m is None and app_supports(mt))

    return supports, is_app


class SessionRuntime:
    """A session as the engine runs it: state machine + store + log + connection."""

    def __init__(self, engine: Engine, settings: SessionSettings, store: Any, log: Any) -> None:
        self.engine = engine
        self.settings = settings
        self.session_id = settings.session_id
        self.store = store
        self.log = log
        app = engine.app
        sid = self.session_id
        dd = _dictionary(settings)
        validator: Callable[[Sequence[tuple[int, bytes]]], object | None] | None = None
        is_app: Callable[[bytes], bool] | None = None
        if dd is not None:
            from fixgw.validation import validate

            validator = functools.partial(
                validate,
                dd,
                check_fields_out_of_order=settings.validate_fields_out_of_order,
                check_fields_have_values=settings.validate_fields_have_values,
                check_user_defined_fields=settings.validate_user_defined_fields,
                allow_unknown_msg_fields=settings.allow_unknown_msg_fields,
            )

            def is_app(mt: bytes, _dd: Any = dd) -> bool:
                m = _dd.message_b(mt)
                return m is not None and not m.is_admin

        # a MessageCracker that does not override from_app: the engine calls its handlers
        self._handlers: dict[bytes, Any] | None = (
            app.bound_handlers()
            if isinstance(app, MessageCracker) and type(app).from_app is MessageCracker.from_app
            else None
        )
        # learned message shapes of the dictionary: parse + validate in one regex match
        self._plans: PlanBook | None = plan_book(dd) if dd is not None else None
        supports: Callable[[bytes], bool] | None = (
            app.supports if type(app).supports is not Application.supports else None)
        is_app_type: Callable[[bytes], bool] | None = is_app
        if supports is not None and dd is not None:
            # a type the application handles but this session's FIX version does not define
            # (RequestForPositions on FIX 4.2): unsupported here, so BusinessMessageReject 380=3
            # rather than the dictionary's Reject 373=11
            supports, is_app_type = _version_aware(dd, supports)
        self.session = Session(
            config_from_settings(settings),
            next_sender_seq=store.next_sender_seq,
            next_target_seq=store.next_target_seq,
            store=store,
            validator=validator,
            supports=supports,
            is_app_type=is_app_type,
            # an application that does not override a hook costs no call per message
            to_admin=(lambda m: app.to_admin(m, sid))
            if type(app).to_admin is not Application.to_admin else noop_hook,
            to_app=(lambda m: app.to_app(m, sid))
            if type(app).to_app is not Application.to_app else noop_hook,
            event=log.event,
        )
        # asked before each write holding an application message (Application.may_write)
        self._may_write: Callable[[], bool] | None = (
            (lambda: app.may_write(sid)) if type(app).may_write is not Application.may_write else None)
        self.writes_withheld = 0
        self.conn: _Conn | None = None
        from fixgw.fixlog import NullLog

        self._log_io = not isinstance(log, NullLog)  # skip per-message calls to a null log
        self.logons = 0
        # FIX messages read and written on this session (admin and application), kept as
        # plain ints for fixgw.metrics to read at scrape time: one addition per message
        self.messages_in = 0
        self.messages_out = 0
        self.commits = 0  # store transactions (group commits) and the messages they held
        self.committed_messages = 0
        self._kick_scheduled = False
        # group commit (durable store): what the session produced is staged, in order, as
        # (batch, bytes to write once it is on disk); the store thread commits every batch
        # staged meanwhile in one transaction, back to back, and counts them (lane.done); the
        # read loop compares that count between messages and writes the answers at once
        self._lane = _CommitLane(self._commit, engine.executor, self._commit_returned)
        self._staged: collections.deque[tuple[Batch | None, list[bytes | Close]]] = (
            collections.deque()
        )
        self._acked = 0  # batches of the lane already written (compared with lane.done)
        # inbound messages the application has not made durable yet (from_app returned an
        # awaitable, or is still running): the store's expected inbound MsgSeqNum stays at the
        # first of them, so a crash before they are durable gets them resent at the next logon
        self._in_app = 0                                  # MsgSeqNum being handled, 0: none
        self._holds: collections.deque[tuple[int, asyncio.Future[Any]]] = collections.deque()
        self._failed_floor = 0                            # first one whose awaitable failed
        self._floor_applied = False                       # a batch was committed held back
        self.inbound_held = 0                             # batches committed held back
        self._lane_policy = CommitLanePolicy()  # inline or in the store thread (fixgw.commitlane)
        self._draining = False
        # backpressure (pause_reading): set while the application wants this peer not read
        self._hold: asyncio.Event | None = None
        self.reading_pauses = 0
        self._flush_idle = asyncio.Event()
        self._flush_idle.set()
        self._logged_on = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._disconnected.set()
        # a file store is committed in a worker thread while its commits are slow, even when it
        # does not fsync (FileStoreSync=N): at full load the thread merges the batches staged
        # meanwhile and its writes overlap the loop's work (measured: committing such a store
        # always inline lost 5-25% of the end-to-end bench's orders/s at --rate 0); a memory
        # store inline
        self.durable = not type(store).__name__.startswith("Memory")

    # ---- app-facing
    def send(self, msg: Message) -> bool:
        ok = self.session.send(msg, self.engine.clock())
        if not self._kick_scheduled:
            # flush at the end of this loop turn: everything sent meanwhile goes in one batch
            self._kick_scheduled = True
            asyncio.get_running_loop().call_soon(self._scheduled_kick)
        return ok

    def _scheduled_kick(self) -> None:
        self._kick_scheduled = False
        self.kick()

    @property
    def logged_on(self) -> bool:
        return self.session.logged_on

    @property
    def write_backlog(self) -> int:
        """Bytes written to the peer and not read by it yet (0 without a connection); while the
        session holds writes back for a peer that does not read (4 MB waiting), at least that.
        An application with messages it can conflate (market data) holds them back while large."""
        conn = self.conn
        if conn is None or conn.closing:
            return 0
        size = conn.writer.transport.get_write_buffer_size()
        return max(size, 4 << 20) if self._draining else size

    async def wait_logged_on(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._logged_on.wait(), timeout)

    async def wait_disconnected(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._disconnected.wait(), timeout)

    def logout(self, text: str = "") -> None:
        self.session.logout(self.engine.clock(), text)
        self.kick()

    # ---- backpressure: the application stops reading a peer that sends more than it can work
    def pause_reading(self) -> None:
        """Read no further message of this peer until :meth:`resume_reading` (TCP flow control
        then slows the peer down: its messages wait in the socket buffers, unread, unanswered).
        It takes effect between two messages: the message being handled is finished. Messages
        keep going out (answers, heartbeats), and the peer's silence while it is not read does
        not count against it (:meth:`Session.reading_held`): a pause longer than the heartbeat
        interval does not time the session out. It outlives a connection: a peer that
        reconnects while paused gets its Logon answered, then waits."""
        if self._hold is None:
            self._hold = asyncio.Event()
            self.reading_pauses += 1
            self.log.event("reading paused (backpressure)")

    def resume_reading(self) -> None:
        hold, self._hold = self._hold, None
        if hold is not None:
            hold.set()
            self.session.reading_held(self.engine.clock())
            self.log.event("reading resumed")

    @property
    def reading_paused(self) -> bool:
        return self._hold is not None

    async def _wait_held(self, conn: _Conn) -> None:
        """(read loop) Wait while reading is paused, or until the connection closes."""
        self.kick()  # what the handled messages produced goes out meanwhile
        while (hold := self._hold) is not None and not conn.closing and not self._closing():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hold.wait(), _TICK)

    def abort(self, reason: str) -> None:
        """Close the connection now and send nothing more on it: what the session produced and
        has not written yet is dropped (e.g. the application learnt that this process no
        longer owns the session)."""
        self.log.event(f"connection aborted: {reason}")
        self.session.outbox = []
        conn = self.conn
        if conn is not None:
            conn.close()  # a closing connection is never written to again (_write)

    # ---- engine internals
    async def run_actions(self, actions: list[Any]) -> None:
        app = self.engine.app
        sid = self.session_id
        session = self.session
        for a in actions:
            if type(a) is Deliver:
                try:
                    if a.admin:
                        await app.from_admin(a.message, sid)
                    else:
                        seq = _seq_of(a.message)
                        self._in_app = seq
                        self._app_returned(seq, await app.from_app(a.message, sid))
                except Exception as exc:  # noqa: BLE001 - the application's answer is a reject of some kind
                    self._in_app = 0
                    await self._app_failed(a, exc)
            elif type(a) is VerifyLogon:
                try:
                    await app.from_admin(a.message, sid)
                except RejectLogon as exc:
                    more = session.logon_rejected(str(exc), self.engine.clock())
                except Exception as exc:  # noqa: BLE001 - a broken authentication hook refuses the logon
                    _log.exception("from_admin(Logon) failed in %s", sid)
                    more = session.logon_rejected(f"logon refused: {exc}", self.engine.clock())
                else:
                    more = session.logon_accepted(self.engine.clock())
                await self.run_actions(more)
            elif type(a) is LoggedOn:
                self.logons += 1
                self._logged_on.set()
                await app.on_logon(sid)
            elif type(a) is LoggedOut:
                self._logged_on.clear()
                await app.on_logout(sid)

    async def _app_failed(self, a: Deliver, exc: Exception) -> None:
        """The application raised on a delivered message: answer as QuickFIX does."""
        more = self.session.app_error(a.message, exc, self.engine.clock())
        if not isinstance(exc, (RejectLogon,)) and type(exc).__module__ == "builtins":
            _log.error("application error in %s", self.session_id, exc_info=exc)
        await self.run_actions(more)

    async def handle(self, item: Message | Garbled) -> None:
        now = self.engine.clock()
        session = self.session
        self.messages_in += 1
        if type(item) is Garbled:
            actions = session.on_garbled(item.raw, item.reason, now)
        else:
            if self._log_io:
                self.log.incoming(item.raw)
            actions = session.on_message(item, now)  # type: ignore[arg-type]
        if actions:
            await self.run_actions(actions)
        if session._queue:
            while (more := session.next_queued(now)) is not None:
                await self.run_actions(more)

    def _item(self, raw: bytes | Garbled) -> Message | Garbled:
        """A frame from Framer.next_raw as Framer.next would give it, by a learned shape when
        one matches (then already validated)."""
        if type(raw) is Garbled:
            return raw
        assert isinstance(raw, bytes)
        plans = self._plans
        if plans is not None:
            fields = plans.fields(raw)
            if fields is not None:
                msg = Message(fields, raw)
                msg.validated = True
                msg._mt = fields[2][1]  # a learned shape has MsgType third
                return msg
        fields = parse_fields(raw)
        if fields is None:
            return Garbled(raw, "a field is not tag=value with a numeric tag")
        return Message(fields, raw)

    def kick(self) -> None:
        """Make sure what the session produced gets committed and written."""
        if self._draining:
            return  # the peer does not read: resumes when it does
        s = self.session
        if not s.outbox and not s._to_store and not s._dirty and not s._reset_pending:
            return
        if not self.durable:
            self._flush_sync()
            return
        batch = self._take_batch()
        out = s.take_outbox()
        if batch is None and not self._staged:
            if out:
                self._write(out)  # nothing to make durable, nothing before it waits
            return
        if batch is not None and not self._staged and self._inline_ok():
            self._commit_inline(batch, out)
            return
        self._flush_idle.clear()
        self._staged.append((batch, out))
        if batch is not None:
            self._lane.stage(batch)

    def _inline_ok(self) -> bool:
        """Commit in the event loop itself while commits are quick (nothing staged, no thread
        commit running), else in the store thread: :mod:`fixgw.commitlane`."""
        return self._lane_policy.inline(self._lane.running)

    def _commit_inline(self, batch: Batch, out: list[bytes | Close]) -> None:
        t = time.perf_counter()
        try:
            self._commit(batch)
        except Exception as exc:  # noqa: BLE001 - the same answer as a failed commit in the thread
            self._commit_failed(exc)
            if self.conn is not None:
                self.conn.close()
            return
        self._lane_policy.inline_took(time.perf_counter() - t)
        self.session.batch_committed(batch)
        if out:
            self._write(out)
            self._check_backlog()

    def _commit_failed(self, exc: BaseException) -> None:
        """A store commit failed: the connection is closed (what it held is not sent). A store
        that refuses (StoreError: closed, or the application's owner check says this process
        may not send on the session any more) is an expected turn of events, logged in one
        line; anything else with its traceback."""
        if isinstance(exc, StoreError):
            self.log.event(f"store commit refused: {exc}: closing the connection")
            _log.warning("%s: store commit refused (%s): closing the connection", self.session_id, exc)
        else:
            _log.error("store commit failed for %s: closing the connection", self.session_id,
                       exc_info=exc)

    def _check_backlog(self) -> None:
        """After a write: when the peer does not read (4 MB waiting), no more commits and
        writes until it does."""
        conn = self.conn
        if (
            conn is not None
            and not conn.closing
            and conn.writer.transport.get_write_buffer_size() > 4 << 20
        ):
            self._draining = True
            self._flush_idle.clear()
            asyncio.get_running_loop().create_task(self._drain_then_kick(conn))

    def _collect(self) -> None:
        """Write what waited for the commits the store thread has finished, in order."""
        lane = self._lane
        err = lane.error
        if err is not None:
            lane.error = None
            self._staged.clear()
            self._acked = lane.done
            self._commit_failed(err)
            if self.conn is not None:
                self.conn.close()
            self._flush_idle.set()
            return
        done = lane.done
        staged = self._staged
        out: list[bytes | Close] = []
        session = self.session
        while staged:
            batch, more = staged[0]
            if batch is not None:
                if self._acked >= done:
                    break
                self._acked += 1
                session.batch_committed(batch)
            staged.popleft()
            out += more
        if out:
            self._write(out)
            self._check_backlog()
        if not staged and not self._draining:
            self._flush_idle.set()

    async def _drain_then_kick(self, conn: _Conn) -> None:
        try:
            with contextlib.suppress(Exception):
                await conn.writer.drain()
        finally:
            self._draining = False
            if not self._staged:
                self._flush_idle.set()
            self.kick()

    def _write(self, out: list[bytes | Close]) -> None:
        conn = self.conn
        if conn is None or conn.closing:
            return
        data: list[bytes] = []
        close: Close | None = None
        log_out = self.log.outgoing if self._log_io else None
        for item in out:
            if type(item) is Close:
                close = item
                break
            data.append(item)  # type: ignore[arg-type]
            if log_out is not None:
                log_out(item)
        if data:
            if self._may_write is not None and any(map(_holds_app_message, data)) and not self._may_write():
                # the application may have been presumed dead since these were sealed: they stay
                # in the store only; the counterparty's ResendRequest after the next logon asks
                # for them, and to_app decides then (resend or gap-fill)
                self.writes_withheld += 1
                self.log.event(f"write of {len(data)} message(s) withheld by the application: disconnecting")
                _log.warning("%s: write of %d message(s) withheld by the application: disconnecting",
                             self.session_id, len(data))
                conn.close()
                return
            self.messages_out += len(data)
            try:
                conn.writer.write(b"".join(data) if len(data) > 1 else data[0])
            except Exception:  # noqa: BLE001 - the peer is gone; the reader notices
                conn.close()
                return
        if close is not None:
            conn.close()

    # ---- inbound durability: Application.from_app may return an awaitable
    def _take_batch(self) -> Batch | None:
        """The session's batch, its expected inbound MsgSeqNum held at the first inbound message
        the application has not made durable yet (a record still being committed)."""
        batch = self.session.take_batch()
        if batch is None:
            return None
        if batch.reset:
            self._holds.clear()      # the counterparty's old sequence numbers are gone
            self._failed_floor = 0
        floor = self._inbound_floor()
        if floor and batch.next_target_seq > floor:
            batch.next_target_seq = floor
            self._floor_applied = True
            self.inbound_held += 1
        return batch

    def _inbound_floor(self) -> int:
        holds = self._holds
        while holds and holds[0][1].done():
            seq, fut = holds.popleft()
            if (fut.cancelled() or fut.exception() is not None) and not self._failed_floor:
                # not durable: the store keeps expecting it, so that the counterparty resends
                # it after this process restarts (the records of the messages after it are
                # kept too, and their resends are the application's duplicates to drop)
                self._failed_floor = seq
                self.log.event(f"inbound message {seq} not made durable by the application: "
                               "its resend will be asked for after a restart")
        floor = self._in_app
        for f in (holds[0][0] if holds else 0, self._failed_floor):
            if f and (not floor or f < floor):
                floor = f
        return floor

    def _app_returned(self, seq: int, result: Awaitable[object] | None) -> None:
        """(after from_app) Keep the inbound MsgSeqNum ``seq`` from the store until ``result``
        (when the application returned an awaitable) is done."""
        self._in_app = 0
        if result is not None and seq:
            fut: asyncio.Future[Any] = asyncio.ensure_future(result)
            if not fut.done():
                self._holds.append((seq, fut))
                fut.add_done_callback(self._hold_done)
                return
            if fut.cancelled() or fut.exception() is not None:
                self._holds.append((seq, fut))
        if self._floor_applied:
            self._hold_done(None)

    def _hold_done(self, _fut: object) -> None:
        """An awaitable is done: commit the expected inbound MsgSeqNum it held back."""
        if not self._floor_applied:
            return
        if self._holds and not self._holds[0][1].done():
            return  # the first held message is still not durable: nothing moves yet
        self._floor_applied = False
        self.session._dirty = True  # the session's next batch carries the sequence numbers again
        if not self._kick_scheduled:
            self._kick_scheduled = True
            asyncio.get_running_loop().call_soon(self._scheduled_kick)

    def _flush_sync(self) -> None:
        s = self.session
        batch = self._take_batch()
        out = s.take_outbox()
        if batch is not None:
            self._commit(batch)
            s.batch_committed(batch)
        if out:
            self._write(out)

    def _commit_returned(self) -> None:
        if self._lane.done != self._acked or self._lane.error is not None:
            self._collect()

    def _commit(self, batch: Batch) -> None:
        self.commits += 1
        self.committed_messages += len(batch.messages)
        if batch.reset:
            self.store.reset()
        self.store.commit_batch(batch.messages, batch.next_sender_seq, batch.next_target_seq)

    async def flushed(self) -> None:
        """Wait until everything produced so far is committed and written."""
        self.kick()
        while not self._flush_idle.is_set():
            await self._flush_idle.wait()
            self.kick()

    def _closing(self) -> bool:
        return self.session.state is State.DISCONNECTING

    async def run_connection(self, conn: _Conn, first: list[Message | Garbled]) -> None:
        """Drive one connection: the session reads, answers, and ends when it closes."""
        self.conn = conn
        self._disconnected.clear()
        session = self.session
        try:
            await self.run_actions(session.connected(self.engine.clock()))
            for first_item in first:
                await self.handle(first_item)
                if conn.closing or self._closing():
                    break
            self.kick()
            reader = conn.reader
            framer = conn.framer
            frame_at = self._plans.frame_at if self._plans is not None else None
            while not conn.closing and not self._closing():
                try:
                    data = await reader.read(_READ_SIZE)
                except (ConnectionError, OSError, ssl.SSLError):
                    break
                if not data:
                    break
                framer.feed(data)
                n = 0
                clock = self.engine.clock
                from_app = self.engine.app.from_app
                handlers = self._handlers
                lane = self._lane
                sid = self.session_id
                while True:
                    if self._hold is not None:  # the application pushes back: read nothing more
                        await self._wait_held(conn)
                        if conn.closing or self._closing():
                            break
                    hit = framer.next_known(frame_at) if frame_at is not None else None
                    item: Message | Garbled
                    if hit is not None:
                        # a frame of a learned shape: cut, parsed and validated in one match
                        raw, fields, shape = hit
                        item = Message(fields, raw)
                        item.validated = True
                        item._mt = fields[2][1]
                        if shape.unique:
                            item._map = dict(fields)
                    else:
                        frame = framer.next_raw()
                        if frame is None:
                            break
                        item = self._item(frame)
                    if type(item) is Message and not self._log_io and not session._queue:
                        # the common case, inlined: a message, no log, nothing queued
                        self.messages_in += 1
                        now = clock()
                        if session.accept_usual(item, now):
                            # the usual application message: straight to the application
                            # (accept_usual has read its MsgType into _mt)
                            handler = (
                                handlers.get(item._mt)  # type: ignore[arg-type]
                                if handlers is not None else None
                            )
                            seq = self._in_app = session.next_target - 1
                            try:
                                if handler is not None:
                                    r = await handler(item, sid)
                                else:
                                    r = await from_app(item, sid)
                            except Exception as exc:  # noqa: BLE001 - answered by a reject
                                self._in_app = 0
                                await self._app_failed(Deliver(item, False), exc)
                            else:
                                if r is not None or self._floor_applied:
                                    self._app_returned(seq, r)
                                else:
                                    self._in_app = 0
                        else:
                            actions = session.on_message(item, now)
                            if actions:
                                a = actions[0]
                                if type(a) is Deliver and not a.admin and len(actions) == 1:
                                    seq = self._in_app = _seq_of(a.message)
                                    try:
                                        self._app_returned(seq, await from_app(a.message, sid))
                                    except Exception as exc:  # noqa: BLE001 - answered by a reject
                                        self._in_app = 0
                                        await self._app_failed(a, exc)
                                else:
                                    await self.run_actions(actions)
                    else:
                        await self.handle(item)
                    if lane.done != self._acked or lane.error is not None:
                        self._collect()  # a commit is on disk: answer now
                    if session.state is State.DISCONNECTING:
                        break
                    n += 1
                    if n % _SLICE == 0:
                        # let the store commit what is done so far (in its thread) while we
                        # go on: the first answers leave sooner and the client refills sooner
                        self.kick()
                        await asyncio.sleep(0)
                self.kick()
        finally:
            await self.flushed()
            conn.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.writer.wait_closed(), 2.0)
            self.conn = None
            actions = session.disconnected(self.engine.clock())
            self._logged_on.clear()
            await self.run_actions(actions)
            await self.flushed()
            with contextlib.suppress(Exception):
                self.log.flush()
            self._disconnected.set()

    async def tick(self, now: float) -> None:
        s = self.session
        if s.state is State.DISCONNECTED:
            return
        if self._hold is not None:
            s.reading_held(now)  # not read by our choice: its silence is not the peer's
        actions = s.on_timer(now)
        if actions:
            await self.run_actions(actions)
        self.kick()


class Engine:
    """Acceptors and initiators for a list of sessions, one application."""

    def __init__(
        self,
        settings: Sequence[SessionSettings],
        app: Application,
        *,
        store_factory: Callable[..., Any] | None = None,
        log_factory: Callable[..., Any] | None = None,
        clock: Callable[[], float] = time.time,
        tick_interval: float = _TICK,
    ) -> None:
        if not settings:
            raise ValueError("an engine needs at least one session")
        self.settings = list(settings)
        self.app = app
        self.store_factory = store_factory or default_store_factory
        self.log_factory = log_factory or default_log_factory
        self.clock = clock
        self.tick_interval = tick_interval
        self.sessions: dict[SessionID, SessionRuntime] = {}
        self._templates: dict[tuple[str, str], SessionSettings] = {}
        self._listeners: dict[tuple[str, int], list[SessionSettings]] = {}
        self._servers: list[asyncio.base_events.Server] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._creating: dict[SessionID, asyncio.Future[SessionRuntime]] = {}  # runtimes being created
        self._stopping = False
        self._started = False
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="fixgw-store")
        self._unnamed: set[_Conn] = set()
        self.bound_ports: dict[tuple[str, int], int] = {}
        app.attach(self)
        for s in self.settings:
            if s.is_acceptor:
                key = (s.socket_accept_host, int(s.socket_accept_port or 0))
                self._listeners.setdefault(key, []).append(s)
                if s.session_id.is_dynamic:
                    self._templates[(s.begin_string, s.sender_comp_id)] = s

    # ---------------------------------------------------------------- lifecycle
    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        _GilSwitch.engine_started()
        for s in self.settings:
            if not s.session_id.is_dynamic:
                await self._create_runtime(s)
        for (host, port), group in self._listeners.items():
            ctx = server_ssl_context(group[0])
            server = await asyncio.start_server(
                functools.partial(self._on_accept, group=group), host, port, ssl=ctx,
                reuse_address=True, limit=_READ_SIZE * 4,
            )
            self._servers.append(server)
            sock = server.sockets[0]
            self.bound_ports[(host, port)] = sock.getsockname()[1]
        for rt in list(self.sessions.values()):
            if not rt.settings.is_acceptor:
                self._spawn(self._initiate(rt))
        self._spawn(self._ticker())

    async def stop(self, timeout: float = 3.0) -> None:
        """Log out every logged-on session (waiting up to ``timeout``), then close everything."""
        if self._stopping:
            return
        self._stopping = True
        for server in self._servers:
            server.close()
        for conn in list(self._unnamed):
            conn.close()
        waits = []
        for rt in self.sessions.values():
            if rt.logged_on:
                rt.logout("")
                waits.append(rt.wait_disconnected(timeout))
            elif rt.conn is not None:
                rt.conn.close()
        if waits:
            await asyncio.gather(*waits, return_exceptions=True)
        for rt in self.sessions.values():
            if rt.conn is not None:
                rt.conn.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for rt in self.sessions.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(rt.flushed(), 2.0)
            with contextlib.suppress(Exception):
                rt.store.close()
            with contextlib.suppress(Exception):
                rt.log.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        self.executor.shutdown(wait=True)
        if self._started:
            _GilSwitch.engine_stopped()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return t

    async def _create_runtime(self, s: SessionSettings) -> SessionRuntime:
        """The session's runtime, created once: two connections for a new dynamic session that
        arrive together both wait for the one creation (a second store open of the same session
        failed with "already open in this process": a venue in a fixgw chaos run)."""
        sid = s.session_id
        rt = self.sessions.get(sid)
        if rt is not None:
            return rt
        pending = self._creating.get(sid)
        if pending is not None:
            return await asyncio.shield(pending)
        loop = asyncio.get_running_loop()
        pending = self._creating[sid] = loop.create_future()
        try:
            store = await loop.run_in_executor(self.executor, _call_factory, self.store_factory, s, sid)
            log = _call_factory(self.log_factory, s, sid)
            rt = SessionRuntime(self, s, store, log)
            self.sessions[sid] = rt
            await self.app.on_create(sid)
            pending.set_result(rt)
        except BaseException as exc:
            pending.set_exception(exc)
            pending.exception()  # retrieved: only the waiters (if any) see it again
            raise
        finally:
            del self._creating[sid]
        return rt

    # ---------------------------------------------------------------- app-facing
    def session(self, session_id: SessionID) -> SessionRuntime:
        try:
            return self.sessions[session_id]
        except KeyError:
            raise KeyError(f"no session {session_id}") from None

    def send_to_target(self, msg: Message, session_id: SessionID) -> bool:
        """Send an application message on a session (from the engine's event loop)."""
        rt = self.sessions.get(session_id)
        if rt is None:
            rt = self.session(session_id)  # raises the usual KeyError
        return rt.send(msg)

    async def open_session(self, session_id: SessionID) -> bool:
        """Create the runtime of a session an acceptor template (TargetCompID=*) allows, before
        its peer connects, so that messages sent to it are stored for the peer's
        ResendRequest at logon (a restarted venue's reports for orders it recovered).
        False if no settings allow ``session_id``. Call after :meth:`start`."""
        if session_id in self.sessions:
            return True
        template = self._templates.get((session_id.begin_string, session_id.sender_comp_id))
        if template is None or not session_id.target_comp_id:
            return False
        try:
            s = dataclasses.replace(template, target_comp_id=session_id.target_comp_id)
        except ValueError:
            return False
        await self._create_runtime(s)
        return True

    async def wait_logged_on(self, session_id: SessionID, timeout: float | None = None) -> None:
        await self.session(session_id).wait_logged_on(timeout)

    def port(self, host: str, port: int) -> int:
        return self.bound_ports[(host, port)]

    # ---------------------------------------------------------------- timers
    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            now = self.clock()
            for rt in list(self.sessions.values()):
                try:
                    await rt.tick(now)
                except Exception:  # noqa: BLE001 - isolate the engine from a failing callback or peer
                    _log.exception("timer failed for %s", rt.session_id)

    # ---------------------------------------------------------------- acceptor
    def _lookup(self, group: list[SessionSettings], msg: Message) -> SessionSettings | None:
        begin = msg.get_str(8) or ""
        ours = msg.get_str(56) or ""
        theirs = msg.get_str(49) or ""
        for s in group:
            if s.begin_string == begin and s.sender_comp_id == ours and s.target_comp_id == theirs:
                return s
        for s in group:
            if s.session_id.is_dynamic and s.begin_string == begin and s.sender_comp_id == ours and theirs:
                try:
                    return dataclasses.replace(s, target_comp_id=theirs)
                except ValueError:
                    return None
        return None

    async def _on_accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, group: list[SessionSettings]) -> None:
        conn = _Conn(reader, writer, max(s.max_message_size for s in group))
        if self._stopping:
            conn.close()
            return
        # until its first message names a session, stop() knows the connection only from here
        self._unnamed.add(conn)
        try:
            first = await asyncio.wait_for(self._read_first(conn), min(s.logon_timeout for s in group))
        except (TimeoutError, ConnectionError, OSError, ssl.SSLError):
            conn.close()
            return
        finally:
            self._unnamed.discard(conn)
        if self._stopping:
            conn.close()
            return
        if not first or type(first[0]) is not Message:
            _log.info("connection from %s: no valid first message, closing", conn.peer)
            conn.close()
            return
        msg = first[0]
        s = self._lookup(group, msg)
        if s is None:
            _log.info("connection from %s: unknown session in %r, closing", conn.peer, msg)
            conn.close()
            return
        rt = self.sessions.get(s.session_id)
        if rt is None:
            rt = await self._create_runtime(s)
        if rt.conn is not None and (rt.conn.closing or rt._closing()):
            # the previous connection is being torn down: let it finish rather than refuse
            with contextlib.suppress(asyncio.TimeoutError):
                await rt.wait_disconnected(2.0)
        if rt.conn is not None or rt.session.state is not State.DISCONNECTED or self._stopping:
            rt.log.event(f"second connection from {conn.peer} for a session in use: closed")
            conn.close()
            return
        if not await self._before_logon(rt, msg, conn):
            return
        try:
            await rt.run_connection(conn, first)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - isolate the engine from a failing callback or peer
            _log.exception("session %s failed", rt.session_id)

    async def _before_logon(self, rt: SessionRuntime, msg: Message, conn: _Conn) -> bool:
        """The application's before_logon, then (RefreshOnLogon=Y) the sequence numbers reloaded
        from the store; False: the connection was closed."""
        app = self.app
        if type(app).before_logon is not Application.before_logon:
            try:
                await app.before_logon(msg, rt.session_id)
            except RejectLogon as exc:
                rt.log.event(f"connection from {conn.peer} refused before logon: {exc}")
                conn.close()
                return False
            except Exception:  # noqa: BLE001 - a broken hook refuses the connection
                _log.exception("before_logon failed for %s", rt.session_id)
                conn.close()
                return False
            if rt.conn is not None or rt.session.state is not State.DISCONNECTED or self._stopping or conn.closing:
                rt.log.event(f"connection from {conn.peer} closed: the session got busy meanwhile")
                conn.close()
                return False
        if rt.settings.refresh_on_logon:
            rt.store.refresh()
            rt.session.restore(rt.store.next_sender_seq, rt.store.next_target_seq)
        return True

    @staticmethod
    async def _read_first(conn: _Conn) -> list[Message | Garbled]:
        framer = conn.framer
        while True:
            item = framer.next()
            if item is not None:
                out: list[Message | Garbled] = [item]
                return out
            data = await conn.reader.read(_READ_SIZE)
            if not data:
                return []
            framer.feed(data)

    # ---------------------------------------------------------------- initiator
    async def _initiate(self, rt: SessionRuntime) -> None:
        s = rt.settings
        assert s.socket_connect_host is not None and s.socket_connect_port is not None
        ctx = client_ssl_context(s)
        interval = float(s.reconnect_interval)
        while not self._stopping:
            try:
                reader, writer = await asyncio.open_connection(
                    s.socket_connect_host, s.socket_connect_port, ssl=ctx, limit=_READ_SIZE * 4,
                    server_hostname=s.socket_connect_host if ctx is not None else None,
                )
            except (OSError, ssl.SSLError) as exc:
                rt.log.event(f"connect to {s.socket_connect_host}:{s.socket_connect_port} failed: {exc}")
                await asyncio.sleep(interval)
                interval = min(interval * 2, float(s.effective_max_reconnect_interval))
                continue
            conn = _Conn(reader, writer, s.max_message_size)
            rt.log.event(f"connected to {s.socket_connect_host}:{s.socket_connect_port}")
            logons_before = rt.logons
            try:
                await rt.run_connection(conn, [])
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - isolate the engine from a failing callback or peer
                _log.exception("session %s failed", rt.session_id)
            if self._stopping:
                break
            if rt.logons > logons_before:
                interval = float(s.reconnect_interval)  # it worked: start the back-off afresh
            await asyncio.sleep(interval)
            interval = min(interval * 2, float(s.effective_max_reconnect_interval))
