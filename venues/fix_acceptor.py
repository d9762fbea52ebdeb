"""The simulated venues as FIX acceptors: one :class:`~venues.interface.Venue` behind a fixgw
engine, usable by anyone testing a FIX client (``fixgw venue exchange|fund``).

    venue = Exchange(cfg.exchange, clock)
    settings = venue_settings(comp_id="EXCH", host="127.0.0.1", port=9880, data_dir=None)
    async with VenueServer(venue, settings) as server:   # listening; timer running
        ...

Rules a client can rely on (the brokerage's street utilities depend on them):

- **Firms.** Sessions whose SenderCompID share the part before the first '-' belong to one
  firm (``FIXGW-SSU1`` and ``FIXGW-SSU2`` are firm ``FIXGW``). The venue keys orders by
  firm: ClOrdIDs are unique per firm, and any session of the firm may query, cancel or
  replace the firm's orders. A NewOrderSingle with a ClOrdID the firm already used is
  rejected (OrdRejReason 103=6) unless it carries PossDupFlag/PossResend=Y: then it is a
  resend of an order the venue has, and the answer is that order's status report
  (ExecType I / 4.2 ExecTransType 3), not a second order.
- **Who gets the reports.** Reports about an order go to the session that last sent a
  message about it (new order, cancel, replace, status request). If that session is logged
  out they are still sent on it: the engine stores them and the client gets them by
  ResendRequest when it logs on again (sessions are not reset on logon unless the client
  asks with ResetSeqNumFlag=Y). So a peer that asks for the status of a dead session's order
  takes the order over: its later fills go to the peer.
- An OrderStatusRequest for an order the firm never sent is answered with OrdStatus 8,
  OrdRejReason 5 (unknown order).
- **Market data** (the exchange): MarketDataRequest (V) is served by
  :class:`venues.marketdata.MarketData` (snapshot W, subscription with incremental X after
  every command or tick that moved a subscribed book or traded, unsubscribe, reject Y). A
  session's subscriptions end when it logs out. The fund company has no books: every
  symbol is unknown to it (Y, MDReqRejReason 0).
- A timer drives :meth:`Venue.tick` (sleeping until :meth:`Venue.next_timer`, at most
  250 ms), so DAY expiries at the session end and fund valuations reach clients that send
  nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Self

from fixgw import eventloop
from fixgw.application import MessageCracker, handles
from fixgw.config import SessionID, SessionSettings, parse_settings
from fixgw.engine import Engine
from fixgw.mdmessages import (
    incremental_refresh,
    md_reject,
    parse_md_request,
    refresh_group,
    snapshot,
)
from fixgw.message import Message
from fixgw.orders import OrdStatus
from venues.clock import Clock, SimulatedDayClock, SystemClock
from venues.commands import CancelOrder, QueryStatus, ReplaceOrder, SubmitOrder
from venues.events import (
    NO_ORDER_ID,
    CancelRejected,
    OrderAccepted,
    OrderRejected,
    OrderReplaced,
    OrderStatusReport,
    VenueEvent,
)
from venues.exchange import Exchange
from venues.fix_mapping import (
    ReportWriter,
    cancel_from_fix,
    firm_of,
    is_possible_resend,
    replace_from_fix,
    status_from_fix,
    submit_from_fix,
)
from venues.fund import FundCompany
from venues.interface import Venue
from venues.journal import (
    JournalClock,
    VenueJournal,
    command_record,
    decode_command,
    from_micros,
    to_micros,
)
from venues.marketdata import MarketData, MdOutput, MdRefresh, MdSnapshot
from venues.metrics import VenueCollector
from venues.venue_config import VenueConfig

__all__ = [
    "BEGIN_STRINGS",
    "DEFAULTS",
    "VenueApplication",
    "VenueKind",
    "VenueServer",
    "build_venue",
    "journaled_server",
    "seconds_until_for",
    "serve",
    "venue_settings",
]

_log = logging.getLogger("venues.fix")

VenueKind = Literal["exchange", "fund"]
BEGIN_STRINGS: tuple[str, ...] = ("FIX.4.2", "FIX.4.4")
# kind -> (default port, default CompID)
DEFAULTS: dict[str, tuple[int, str]] = {"exchange": (9880, "EXCH"), "fund": (9881, "FUND")}
MAX_TIMER_SLEEP = 0.25  # seconds: the longest the timer waits between two ticks
_MIN_TIMER_SLEEP = 0.001  # never spin, whatever next_timer() says
_ANSWERS = (OrderAccepted, OrderRejected, OrderReplaced, CancelRejected)


class _Route:
    """Where the reports of one live order go, and the Account (1) they carry."""

    __slots__ = ("account", "session")

    def __init__(self, session: SessionID, account: str) -> None:
        self.session = session
        self.account = account


def _default_seconds_until(at: datetime) -> float:
    return (at - datetime.now(UTC)).total_seconds()


def seconds_until_for(clock: Clock) -> Callable[[datetime], float]:
    """Real seconds until ``clock`` shows a given instant (for the timer)."""
    if isinstance(clock, SimulatedDayClock):
        return clock.real_seconds_until
    if isinstance(clock, SystemClock):
        return _default_seconds_until
    return lambda at: (at - clock.now()).total_seconds()


class VenueApplication(MessageCracker):
    """The FIX application in front of one venue: commands in, reports routed out."""

    def __init__(
        self,
        venue: Venue,
        *,
        seconds_until: Callable[[datetime], float] | None = None,
        max_timer_sleep: float = MAX_TIMER_SLEEP,
    ) -> None:
        self.venue = venue
        self._seconds_until = seconds_until or _default_seconds_until
        self._max_sleep = max_timer_sleep
        self._routes: dict[str, _Route] = {}  # order id -> where its reports go
        self._firms: dict[SessionID, str] = {}
        self._writers: dict[str, ReportWriter] = {}
        self.reports_sent = 0
        books = ({s: (venue.book(s), venue.tick_size(s)) for s in venue.symbols}
                 if isinstance(venue, Exchange) else {})
        self.market_data = MarketData(books)
        self._md_sessions: dict[str, SessionID] = {}
        self.md_sent = 0
        self.unrouted = 0  # events for an order no session ever spoke about (a bug if > 0)
        self._jrnl: VenueJournal | None = None
        self._jclock: JournalClock | None = None
        self._replaying = False
        self.replay_errors = 0  # journal records that raised on replay (skipped: see replay)

    # -- session bookkeeping ------------------------------------------------------------

    def firm(self, session_id: SessionID) -> str:
        f = self._firms.get(session_id)
        if f is None:
            # our SessionID has us as sender: the client's CompID is the target
            f = self._firms[session_id] = firm_of(session_id.target_comp_id)
        return f

    def _writer(self, session_id: SessionID) -> ReportWriter:
        w = self._writers.get(session_id.begin_string)
        if w is None:
            w = self._writers[session_id.begin_string] = ReportWriter(session_id.begin_string)
        return w

    def route_of(self, order_id: str) -> SessionID | None:
        """The session that gets the reports of a live order (None if unknown or done)."""
        r = self._routes.get(order_id)
        return None if r is None else r.session

    def routed_sessions(self) -> set[SessionID]:
        """The sessions that get the reports of some live order."""
        return {r.session for r in self._routes.values()}

    @property
    def live_routes(self) -> int:
        return len(self._routes)

    # -- inbound --------------------------------------------------------------------------

    @handles("D")
    async def new_order_single(self, msg: Message, session_id: SessionID) -> None:
        cmd = submit_from_fix(msg, self.firm(session_id))
        resend = is_possible_resend(msg)
        self._journal("D", session_id, cmd.account, resend, cmd)
        self.apply_submit(cmd, session_id, resend)
        self._unpin()

    @handles("F")
    async def order_cancel_request(self, msg: Message, session_id: SessionID) -> None:
        cmd = cancel_from_fix(msg, self.firm(session_id))
        account = msg.get_str(1) or ""
        self._journal("F", session_id, account, cmd)
        due = self.venue.next_timer()
        events = self.venue.cancel(cmd)
        self._deliver(events, session_id, cmd.owner, cmd.cl_ord_id, account, True, None)
        self._market_data_after(events, due)
        self._unpin()

    @handles("G")
    async def order_cancel_replace_request(self, msg: Message, session_id: SessionID) -> None:
        cmd = replace_from_fix(msg, self.firm(session_id))
        account = msg.get_str(1) or ""
        self._journal("G", session_id, account, cmd)
        due = self.venue.next_timer()
        events = self.venue.replace(cmd)
        self._deliver(events, session_id, cmd.owner, cmd.cl_ord_id, account, False, None)
        self._market_data_after(events, due)
        self._unpin()

    @handles("H")
    async def order_status_request(self, msg: Message, session_id: SessionID) -> None:
        cmd = status_from_fix(msg, self.firm(session_id))
        account = msg.get_str(1) or ""
        req_id = msg.get(790)
        self._journal("H", session_id, account, req_id, cmd)
        due = self.venue.next_timer()
        events = self.venue.status(cmd)
        self._deliver(events, session_id, cmd.owner, cmd.cl_ord_id, account, True, req_id)
        self._market_data_after(events, due)
        self._unpin()

    def apply_submit(self, cmd: SubmitOrder, session_id: SessionID, resend: bool) -> None:
        firm = cmd.owner
        if resend:
            # a resend of an order we may have: answer with its status rather than a
            # duplicate reject (and take its reports over to this session)
            events = self.venue.status(QueryStatus(firm, cmd.cl_ord_id, cmd.symbol, cmd.side))
            last = events[-1]
            if not (last.ord_status is OrdStatus.REJECTED and last.order_id == NO_ORDER_ID):
                self._deliver(events, session_id, firm, cmd.cl_ord_id, cmd.account, True, None)
                return
            self._deliver(events[:-1], session_id, firm, cmd.cl_ord_id, cmd.account, False, None)
        due = self.venue.next_timer()
        events = self.venue.submit(cmd)
        self._deliver(events, session_id, firm, cmd.cl_ord_id, cmd.account, False, None)
        self._market_data_after(events, due)

    @handles("V")
    async def market_data_request(self, msg: Message, session_id: SessionID) -> None:
        owner = str(session_id)
        self._md_sessions[owner] = session_id
        self._send_md(self.market_data.request(owner, parse_md_request(msg)))

    async def on_logout(self, session_id: SessionID) -> None:
        owner = str(session_id)
        if self._md_sessions.pop(owner, None) is not None:
            self.market_data.drop_owner(owner)

    # -- market data ----------------------------------------------------------------------

    def _market_data_after(self, events: Sequence[VenueEvent], due_before: datetime | None) -> None:
        """Refreshes after a command or tick: the books of the events' symbols may have moved,
        and all of them if time-driven work ran (``next_timer`` changed: a requote)."""
        md = self.market_data
        if not md.subscriptions and not events:
            return
        if due_before != self.venue.next_timer():
            symbols: set[str] | frozenset[str] = md.subscribed_symbols
        else:
            symbols = {e.symbol for e in events if not isinstance(e, CancelRejected)}
        self._send_md(md.after(events, symbols))

    def _send_md(self, outputs: Sequence[MdOutput]) -> None:
        assert self.engine is not None
        groups: dict[int, list[tuple[int, bytes]]] = {}  # refreshes sharing changes: encoded once
        for o in outputs:
            if type(o) is MdRefresh:
                group = groups.get(id(o.entries))
                if group is None:
                    group = groups[id(o.entries)] = refresh_group(o.entries)
                msg = incremental_refresh(o.req_id, o.entries, group)
            elif type(o) is MdSnapshot:
                msg = snapshot(o.req_id, o.symbol, o.entries)
            else:
                msg = md_reject(o.req_id, o.reason, o.text)  # type: ignore[union-attr]
            session = self._md_sessions.get(o.owner)
            if session is None:
                continue
            try:
                self.engine.send_to_target(msg, session)
            except KeyError:
                _log.warning("session %s is gone: market data for %s dropped", o.owner, o.req_id)
                continue
            self.md_sent += 1

    # -- the journal (venues.journal): commands in, replayed after a restart --------------

    def attach_journal(self, journal: VenueJournal, clock: JournalClock) -> None:
        """Journal every command from now on (the venue must read ``clock``)."""
        self._jrnl = journal
        self._jclock = clock

    def _unpin(self) -> None:
        if self._jclock is not None:
            self._jclock.unpin()

    def _journal(self, kind: str, session_id: SessionID, *rest: object) -> None:
        if self._jrnl is None:
            return
        assert self._jclock is not None
        self._jclock.unpin()
        at = self._jclock.now()
        self._jclock.pin(at)  # the venue reads this instant, as replay will
        cmd = rest[-1]
        assert isinstance(cmd, (SubmitOrder, CancelOrder, ReplaceOrder, QueryStatus))
        fields = command_record(kind, at, (session_id.begin_string, session_id.sender_comp_id,
                                           session_id.target_comp_id), rest[:-1], cmd)
        self._jrnl.append(fields)

    def replay(self, records: Iterable[list[Any]], clock: JournalClock) -> int:
        """Apply journaled commands (after the start record) to the venue, sending nothing:
        rebuilds the venue's state and this application's routes. Returns the count."""
        self._replaying = True
        n = 0
        try:
            for i, rec in enumerate(records, 2):
                try:
                    if not self._replay_one(rec, clock):
                        continue  # the start record
                except Exception as exc:  # noqa: BLE001 - one bad command must not keep the venue down
                    # A command that raised when it was first applied raises again here, after
                    # the same partial effect (the venue is deterministic): skipping it rebuilds
                    # the state the venue had. A record that does not decode was never applied.
                    self.replay_errors += 1
                    _log.warning("journal record %d (%s) raised on replay and was skipped: %r", i,
                                 rec[0] if isinstance(rec, list) and rec else "?", exc)
                n += 1
        finally:
            self._replaying = False
        return n

    def _replay_one(self, rec: list[Any], clock: JournalClock) -> bool:
        kind = rec[0]
        clock.pin(from_micros(rec[1]))
        if kind == "T":
            self.venue.tick()
        elif kind in ("D", "F", "G", "H"):
            sid = SessionID(*rec[2])
            account = rec[3]
            cmd = decode_command(kind, rec[-1])
            if isinstance(cmd, SubmitOrder):
                self.apply_submit(cmd, sid, bool(rec[4]))
            elif isinstance(cmd, CancelOrder):
                self._deliver(self.venue.cancel(cmd), sid, cmd.owner, cmd.cl_ord_id, account, True, None)
            elif isinstance(cmd, ReplaceOrder):
                self._deliver(self.venue.replace(cmd), sid, cmd.owner, cmd.cl_ord_id, account, False, None)
            else:
                self._deliver(self.venue.status(cmd), sid, cmd.owner, cmd.cl_ord_id, account, True, None)
        else:
            return False
        return True

    # -- outbound -------------------------------------------------------------------------

    def _deliver(
        self,
        events: Sequence[VenueEvent],
        session_id: SessionID | None,
        firm: str,
        cl_ord_id: str,
        account: str,
        last_is_answer: bool,
        status_req_id: bytes | None,
    ) -> None:
        """Send each event to its session. The events a command caused on its own order go
        to ``session_id`` (which becomes the order's route); every other event (time-driven
        ones, fills of resting orders it traded with) follows its order's route.

        Which events are the command's own: for a cancel or a status request the last one
        (its answer; what precedes it is time-driven); for a new order or a replace, from
        its answer (accepted/rejected/replaced/cancel-rejected with this firm and ClOrdID)
        on, those that carry this firm and ClOrdID (fills of the new or replaced order)."""
        routes = self._routes
        n = len(events)
        started = False
        for i, e in enumerate(events):
            if session_id is None:
                mine = False
            elif last_is_answer:
                mine = i == n - 1
            elif e.owner == firm and e.cl_ord_id == cl_ord_id:
                if not started and isinstance(e, _ANSWERS):
                    started = True
                mine = started
            else:
                mine = False
            order_id = e.order_id
            known = order_id != NO_ORDER_ID
            route = routes.get(order_id) if known else None
            if mine:
                assert session_id is not None
                target = session_id
                acct = route.account if route is not None and route.account else account
            elif route is not None:
                target = route.session
                acct = route.account
            elif self._replaying:
                continue
            else:
                self.unrouted += 1
                _log.warning("no session for %s of order %s (%s): dropped", type(e).__name__, order_id, e.owner)
                continue
            is_status = type(e) is OrderStatusReport
            if known:
                if e.ord_status.is_terminal:
                    if not is_status and route is not None:
                        del routes[order_id]  # done: nothing more will come for it
                elif mine:
                    if route is None:
                        routes[order_id] = _Route(target, acct)
                    else:
                        route.session = target
                        route.account = acct
            if self._replaying:
                continue  # rebuilding state: these reports were sent before the restart
            msg = self._writer(target).report(e, account=acct, status_req_id=status_req_id if is_status else None)
            try:
                assert self.engine is not None
                self.engine.send_to_target(msg, target)
            except KeyError:
                self.unrouted += 1
                _log.warning("session %s is gone: %s of order %s dropped", target, type(e).__name__, order_id)
                continue
            self.reports_sent += 1

    # -- time -----------------------------------------------------------------------------

    def tick(self) -> int:
        """Deliver the time-driven events due now; returns how many there were."""
        due = self.venue.next_timer()
        clock = self._jclock
        if clock is not None:
            clock.unpin()
            at = clock.now()
            if self._jrnl is not None and due is not None and at >= due:
                self._jrnl.append(["T", to_micros(at)])
            clock.pin(at)
            try:
                events = self.venue.tick()
            finally:
                clock.unpin()
        else:
            events = self.venue.tick()
        if events:
            self._deliver(events, None, "", "", "", False, None)
        self._market_data_after(events, due)
        return len(events)

    def timer_delay(self) -> float:
        """Seconds until the next tick: until next_timer(), at most ``max_timer_sleep``."""
        due = self.venue.next_timer()
        delay = self._max_sleep
        if due is not None:
            delay = min(delay, self._seconds_until(due))
        return max(_MIN_TIMER_SLEEP, delay)

    async def run_timer(self) -> None:
        """Tick the venue forever (cancel the task to stop)."""
        while True:
            await asyncio.sleep(self.timer_delay())
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - a venue bug must not stop time for everyone else
                _log.exception("venue tick failed")


# -- wiring -------------------------------------------------------------------------------


def venue_settings(
    *,
    comp_id: str,
    host: str,
    port: int,
    data_dir: Path | None,
    begin_strings: Sequence[str] = BEGIN_STRINGS,
    extra: Sequence[str] = (),
    store_sync: bool = True,
) -> list[SessionSettings]:
    """Acceptor sessions ``comp_id`` <-> any client CompID (TargetCompID=*) for each FIX
    version; ResetOnLogon=N (a client that was away gets what it missed by ResendRequest);
    LMDB stores under ``data_dir/store`` and FIX logs under ``data_dir/log`` when
    ``data_dir`` is given (fsynced unless ``store_sync`` is false), memory stores otherwise. ``extra`` lines (Key=Value) go into
    [DEFAULT]. Raises fixgw.config.ConfigError for a bad CompID or port."""
    lines = [
        "[DEFAULT]",
        "ConnectionType=acceptor",
        f"SocketAcceptHost={host}",
        f"SocketAcceptPort={port}",
        f"SenderCompID={comp_id}",
        "TargetCompID=*",
        "ResetOnLogon=N",
        "UseDataDictionary=Y",
        "LogoutTimeout=2",
        *extra,
    ]
    if data_dir is not None:
        lines += [f"FileStorePath={data_dir / 'store'}", f"FileLogPath={data_dir / 'log'}",
                  f"FileStoreSync={'Y' if store_sync else 'N'}"]
    for begin in begin_strings:
        lines += ["[SESSION]", f"BeginString={begin}"]
    return parse_settings("\n".join(lines) + "\n", f"<fixgw venue {comp_id}>")


def build_venue(kind: VenueKind, config: VenueConfig, clock: Clock) -> Venue:
    if kind == "exchange":
        return Exchange(config.exchange, clock)
    if kind == "fund":
        return FundCompany(config.fund_company, clock)
    raise ValueError(f"unknown venue kind {kind!r}: expected exchange or fund")


class VenueServer:
    """A venue, its FIX acceptor engine and its timer, started and stopped together."""

    def __init__(
        self,
        venue: Venue,
        settings: Sequence[SessionSettings],
        *,
        seconds_until: Callable[[datetime], float] | None = None,
        store_factory: Callable[[SessionSettings, SessionID], Any] | None = None,
        log_factory: Callable[[SessionSettings, SessionID], Any] | None = None,
        max_timer_sleep: float = MAX_TIMER_SLEEP,
    ) -> None:
        self.venue = venue
        self.app = VenueApplication(venue, seconds_until=seconds_until, max_timer_sleep=max_timer_sleep)
        self.engine = Engine(settings, self.app, store_factory=store_factory, log_factory=log_factory)
        self._timer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.engine.start()
        # the sessions that own recovered orders exist before their clients log on again:
        # reports sent to them meanwhile are stored for their ResendRequest
        for sid in self.app.routed_sessions():
            await self.engine.open_session(sid)
        self._timer = asyncio.get_running_loop().create_task(self.app.run_timer())

    async def stop(self) -> None:
        """Stop the timer, log every session out, close."""
        if self._timer is not None:
            self._timer.cancel()
            try:
                await self._timer
            except asyncio.CancelledError:
                pass
            self._timer = None
        await self.engine.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def ports(self) -> dict[tuple[str, int], int]:
        """(host, configured port) -> the port actually bound (0 picks a free one)."""
        return dict(self.engine.bound_ports)


def journaled_server(
    kind: VenueKind,
    config: VenueConfig,
    clock: Clock,
    settings: Sequence[SessionSettings],
    journal: VenueJournal,
    *,
    seconds_until: Callable[[datetime], float] | None = None,
    max_timer_sleep: float = MAX_TIMER_SLEEP,
) -> tuple[VenueServer, int]:
    """A venue server whose venue is rebuilt from ``journal`` (built as at its first start,
    then every journaled command replayed at its instant) and journals from then on.
    Returns the server (not started) and the number of commands replayed."""
    jclock = JournalClock(clock)
    first = journal.first()
    if first is None:
        journal.append(["S", to_micros(clock.now())])
        first = journal.first()
        assert first is not None
    jclock.pin(from_micros(first[1]))  # the venue is built as it was the first time
    venue = build_venue(kind, config, jclock)
    server = VenueServer(venue, settings, seconds_until=seconds_until, max_timer_sleep=max_timer_sleep)
    replayed = server.app.replay(itertools.islice(journal.records(), 1, None), jclock)
    jclock.unpin()
    server.app.attach_journal(journal, jclock)
    return server, replayed


async def serve(
    kind: VenueKind,
    *,
    host: str,
    port: int,
    comp_id: str,
    config: VenueConfig,
    data_dir: Path | None = None,
    store_sync: bool = True,
    day_seconds: float | None = None,
    announce: bool = True,
    stop: asyncio.Event | None = None,
    metrics_port: int | None = None,
) -> int:
    """Run a venue until SIGTERM/SIGINT (or ``stop``); returns the exit code (0)."""

    settings = venue_settings(comp_id=comp_id, host=host, port=port, data_dir=data_dir, store_sync=store_sync)
    journal: VenueJournal | None = None
    last: list[Any] | None = None
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        journal = VenueJournal(data_dir / "journal", sync=store_sync)
        last = journal.last()
    # a simulated day resumes where the journal stopped (its days must not run backwards)
    clock: Clock = (SimulatedDayClock(day_seconds, start=None if last is None else from_micros(last[1]))
                    if day_seconds else SystemClock())
    started = time.perf_counter()
    if journal is not None:
        server, replayed = journaled_server(kind, config, clock, settings, journal,
                                            seconds_until=seconds_until_for(clock))
    else:
        server, replayed = VenueServer(build_venue(kind, config, clock), settings,
                                       seconds_until=seconds_until_for(clock)), 0
    replay_seconds = time.perf_counter() - started
    stop = stop or asyncio.Event()
    eventloop.stop_on_signals(stop)
    await server.start()
    metrics = None
    if metrics_port is not None:
        from fixgw.metrics import EngineCollector, serve_metrics

        labels = {"node": kind, "role": "venue"}
        try:
            metrics = serve_metrics(host, metrics_port, [EngineCollector(lambda: server.engine, labels),
                                                         VenueCollector(server.app, labels)])
        except OSError as exc:
            await server.stop()
            raise OSError(exc.errno, f"metrics port {metrics_port}: {exc.strerror}") from None
    # start-up objects (dictionaries, config, the market maker's book) are never freed
    eventloop.settle_gc()
    try:
        if announce:
            bound = next(iter(server.ports.values()), port)
            day = f"; business day = {day_seconds:g} s" if day_seconds else ""
            store = (f"store {data_dir}; journal replayed {replayed} commands in {replay_seconds:.2f} s"
                     if data_dir is not None else "memory store")
            print(f"fixgw venue {kind} {server.venue.name} listening on {host}:{bound} as {comp_id} "
                  f"({', '.join(BEGIN_STRINGS)}; any client CompID; {store}{day})", flush=True)
            if metrics is not None:
                print(f"fixgw venue {kind}: metrics on {metrics.url}", flush=True)
        await stop.wait()
    finally:
        await server.stop()
        if journal is not None:
            journal.close()
        if metrics is not None:
            metrics.close()
        if announce:
            print(f"fixgw venue {kind} stopped: {server.app.reports_sent} reports sent", flush=True)
    return 0
