"""The customer utility: a FIX acceptor for customers' order entry and status inquiries.

Flow (DESIGN.md, Order flow): a NewOrderSingle is validated (session may trade the account;
firm limits from the firm's read-only records; duplicate ClOrdID within the trading day,
:mod:`utilities.clordids`), given a transaction
number no other utility can produce, appended durably, and only then acknowledged
(ExecutionReport PendingNew) or refused (ExecutionReport Rejected with the reason). The
order is then routed to a street utility, at least once (:mod:`utilities.routing`). Street
records coming back are turned into ExecutionReports for the session that owns the order;
status requests are answered from the status fold over the records this node holds, so
either customer utility answers the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from fixgw import eventloop
from fixgw.application import (
    DoNotSend,
    IncorrectTagValue,
    MessageCracker,
    RejectLogon,
    UnsupportedMessageType,
    handles,
)
from fixgw.config import SessionID
from fixgw.engine import Engine
from fixgw.message import Message
from fixgw.orders import (
    TERMINAL_STATUSES,
    CxlRejReason,
    CxlRejResponseTo,
    ExecType,
    OrdRejReason,
    OrdStatus,
    OrdType,
    Side,
    TimeInForce,
)
from replication.codec import encode_record
from replication.errors import LogError, LogFullError
from replication.histogram import LatencyHistogram
from replication.log import KeyFilter
from replication.record import Record, RecordType
from replication.wire import Topics
from replication.writer import full_reason
from utilities import execreports as er
from utilities.account_inquiries import AccountInquiries
from utilities.adoption import PeerOrders, Peers, answered
from utilities.books import new_york_today
from utilities.clordids import ClOrdIds
from utilities.customer_marketdata import CustomerMarketData
from utilities.fencing import Fence
from utilities.gcpause import gc_paused
from utilities.in_flight import ANSWERED, REQUEST_ANSWERED, REQUESTS_ENDED, InFlight, InFlightLimits
from utilities.liveness import Liveness
from utilities.order_request import OrderRequest
from utilities.record_node import RecordNode
from utilities.risk import RiskView
from utilities.routing import TTL_FACTOR, Command, Pending, Router, encode_commands
from utilities.session_owner import NotReady, SessionOwner
from utilities.session_rule import SessionKey
from utilities.session_store import ReplicatedSessionStore
from utilities.session_throttle import SessionThrottle
from utilities.snapshot import (
    DEFAULT_EVERY_RECORDS,
    KEEP_DAYS,
    CustomerState,
    encode,
    read_file,
    take_command,
)
from utilities.snapshot_file import Taken, write_file
from utilities.snapshot_writer import SnapshotWriter
from utilities.status import OrderStatus, fold
from utilities.tasks import TaskSet
from utilities.txn import TxnAllocator, parse_txn

log = logging.getLogger(__name__)
_NOT_RESENT = frozenset({b"W", b"X"})  # market data refreshes: gap-filled on a resend (to_app)

STREET_TYPES = frozenset({
    RecordType.SENT, RecordType.CANCEL_SENT, RecordType.REPLACE_SENT, RecordType.VENUE_ACK,
    RecordType.VENUE_REJECT, RecordType.FILL, RecordType.CANCELED, RecordType.REPLACED,
    RecordType.EXPIRED, RecordType.CANCEL_REJECTED, RecordType.VENUE_STATUS, RecordType.TAKEOVER,
})
ORD_TYPES = {OrdType.MARKET: "market", OrdType.LIMIT: "limit"}
TIFS = frozenset({*TimeInForce, "6"})  # and GTD (6), which only a venue may refuse
LEDGER_SLICE = 64  # orders of the start-up's tail booked into the account ledger per loop turn (utilities.positions)




class CustomerUtility(MessageCracker):
    # the engine itself, not only what sends messages: session ownership closes, logs out and
    # restarts the engine's sessions (utilities.session_owner)
    engine: Engine | None = None

    def __init__(
        self,
        *,
        node: RecordNode,
        node_name: str,
        comp_id: str,
        cluster: str,
        customers: Mapping[str, tuple[str, ...]],    # client CompID -> accounts it may trade
        passwords: Mapping[str, str],
        symbol_venues: Mapping[str, str],            # symbol -> venue name
        streets: Mapping[str, tuple[str, ...]],      # street node -> venues it reaches
        liveness: Liveness,
        publish: Callable[[str, bytes], Awaitable[None]],
        reference_prices: Mapping[str, Decimal] | None = None,
        default_venue: str = "",
        today: Callable[[], dt.date] | None = None,  # the trading day (New York date); injectable for tests
        sessions: SessionOwner | None = None,        # None: every session is this process's (tests)
        rate_limits: Mapping[str, float] | None = None,  # client CompID -> messages/s per session
        in_flight: InFlightLimits | None = None,     # orders taken and not yet answered by a venue
        fence: Fence | None = None,                  # the stall detector (utilities.fencing); None: never fenced
        snapshot_path: Path | None = None,           # its snapshot (utilities.snapshot); None: none kept
        snapshot_every: int = DEFAULT_EVERY_RECORDS,  # records between two snapshots (0: only at start and stop)
        peers: tuple[str, ...] = (),                 # the other customer utilities (utilities.adoption)
    ) -> None:
        self.node = node
        self.name = node_name
        self.comp_id = comp_id
        self.cluster = cluster
        self.topics = Topics(cluster)
        self.customers = dict(customers)
        self.passwords = dict(passwords)
        self.symbol_venues = dict(symbol_venues)
        self.streets = dict(streets)
        self.liveness = liveness
        self.publish = publish
        self.default_venue = default_venue
        self.reference_prices = dict(reference_prices or {})
        # the views rebuilt from the log (utilities.snapshot): risk, ClOrdIDs, clients' orders, ...
        self.state = CustomerState.empty(node_name, self.reference_prices)
        self.risk: RiskView = self.state.risk
        self.snapshot_path = snapshot_path
        self.snapshot_every = snapshot_every
        # how the last start-up went: snapshot used or why not, records folded, seconds (status file, bench)
        self.startup: dict[str, Any] = {}
        self.router = Router(ttl_s=TTL_FACTOR * liveness.dead_after_s)
        # the peers' orders no street has answered yet, routed here if their utility dies (utilities.adoption)
        self.peer_orders = PeerOrders(node_name, peers)
        self._up_since = time.monotonic()
        self.today = today or new_york_today
        self.clids: ClOrdIds = self.state.clids
        self._day: dt.date | None = None
        self.begin_of: dict[str, str] = {}                 # client CompID -> BeginString last used
        self.txns: TxnAllocator | None = None
        self.logged_on: set[SessionID] = set()
        self._tasks = TaskSet(node_name, log)
        self._spawn = self._tasks.spawn
        self._exec_seq = 0
        self._outbox: dict[str, list[Command]] = {}
        self._sids: dict[tuple[str, str], SessionID] = {}
        self._txn_prefix = node_name + "-"
        self._venues = {v for vs in self.streets.values() for v in vs}
        self._flush_scheduled = False
        self._reach: dict[tuple[str, str], bool] = {}   # _can_reach answers of the current routing pass
        # "orders" received, "accepted" (durable, PendingNew sent), "rejects", "reports" (street
        # records turned into reports), "execution_reports" (every 35=8 sent), "routed", ...
        self.counters = {"orders": 0, "accepted": 0, "rejects": 0, "reports": 0, "execution_reports": 0, "routed": 0,
                         "reported_again": 0, "possdup_known": 0, "throttled": 0, "not_stored": 0,
                         "fenced_requests": 0, "superseded": 0, "in_flight_holds": 0, "in_flight_rejects": 0,
                         "md_not_resent": 0, "snapshots": 0, "adopted": 0}
        # its snapshots: a process of its own each, one at a time (utilities.snapshot_writer)
        self.snapshots = SnapshotWriter(
            name=node_name, path=snapshot_path, every=snapshot_every, log_dir=lambda: getattr(self.node.log, "path", None),
            command=lambda log_dir, path: take_command(log_dir, path, me=self.name, reference_prices=self.reference_prices,
                                                       today=self.today()),
            spawn=self._spawn, counters=self.counters)
        # NewOrderSingle read -> PendingNew (or Rejected) handed to the engine, seconds
        self.ack_latency = LatencyHistogram()
        self.sessions = sessions
        self.fence = fence
        if fence is not None:
            fence.on_lift(self._drop_superseded)
        if sessions is not None:
            sessions.control = self
            sessions.restore_views(self.state.sessions)
        # client -> its orders' txns -> (trading day, BeginString of the session that sent it)
        self.client_txns: dict[str, dict[str, tuple[dt.date, str]]] = self.state.client_txns
        self._reset_logon: dict[SessionKey, bool] = {}          # the Logon being taken asked for a reset
        self.throttle = SessionThrottle(rate_limits or {})
        # backpressure (utilities.in_flight): orders taken and not yet answered by a venue,
        # bounded per session and in all; at the bound a session is not read, or refused
        self.limits = in_flight or InFlightLimits()
        limits = self.limits
        self.in_flight: InFlight[SessionID] = InFlight(
            limits.total, limits.per_session, lambda sid: limits.customer_bounds.get(sid.target_comp_id))
        # cancel and replace requests in flight count too, each under "<txn>|<its ClOrdID>"
        # (routing.request_id): a burst of cancels for resting orders is a burst all the same
        self._requests_in_flight: dict[str, set[str]] = {}   # txn -> its requests in flight
        self.inquiries = AccountInquiries(name=node_name, customers=self.customers,
                                          records_for_txn=self._records_for_txn,
                                          send=self._send, today=self.today, reference_prices=reference_prices)
        self.inquiries.adopt(self.state.accounts)
        # market data from the street utilities' quotes (utilities.customer_marketdata)
        self.market_data = CustomerMarketData(name=node_name, cluster=cluster, symbols=self.symbol_venues,
                                              streets=self.streets, send=self._send, backlog=self._backlog,
                                              publish=publish, snapshot_timeout_s=max(5.0, 2 * liveness.dead_after_s))

    def bound_handlers(self) -> dict[bytes, Callable[[Message, SessionID], Awaitable[Awaitable[object] | None]]]:
        """The handlers, behind each session's message-rate limit (utilities.session_throttle)."""
        if "_bound_handlers" not in self.__dict__:
            self.__dict__["_bound_handlers"] = self.throttle.wrap(super().bound_handlers(), self._throttle_reject)
        return self.__dict__["_bound_handlers"]  # type: ignore[no-any-return]

    def _throttle_reject(self, msg: Message, sid: SessionID, text: str) -> None:
        """An order over its session's rate limit: ExecutionReport Rejected, no record (never accepted)."""
        self.counters["throttled"] += 1
        view = er.OrderView(order_id="NONE", cl_ord_id=msg.get_str(11) or "NONE", orig_cl_ord_id="",
                            account=msg.get_str(1) or "", symbol=msg.get_str(55) or "[N/A]",
                            side=msg.get_str(54) or Side.BUY, order_qty=msg.get_decimal(38),
                            cash_order_qty=msg.get_decimal(152), price=msg.get_decimal(44),
                            ord_type=msg.get_str(40) or "", tif=msg.get_str(59) or "", ord_status=OrdStatus.REJECTED,
                            cum_qty=Decimal(0), leaves_qty=Decimal(0), avg_px=Decimal(0))
        self._send(sid, er.execution_report(sid.begin_string, view, exec_id=self._exec_id(), exec_type=ExecType.REJECTED,
                                            text=text, ord_rej_reason=OrdRejReason.OTHER))

    # ------------------------------------------------------------------ start-up
    def load(self) -> None:
        """Rebuild the in-memory views (after a restart) and what must be routed: from the newest
        valid snapshot and the records after it, else from the whole log (utilities.snapshot);
        then, if it folded many records, a new snapshot."""
        t0 = time.perf_counter()
        node_log = self.node.log
        self.txns = TxnAllocator(self.name, node_log.head)
        path = self.snapshot_path
        data = b""
        # millions of long-lived objects loaded and folded: no collector passes over them (utilities.gcpause)
        with gc_paused(), node_log.reader() as rd:
            held = rd.high_water_marks()
            snap, why = read_file(path, node=self.name, reference_prices=self.reference_prices, held=held) \
                if path is not None else (None, "")
            if why:
                log.warning("%s: snapshot ignored, folding the whole log: %s", self.name, why)
            state = snap.state if snap is not None else CustomerState.empty(self.name, self.reference_prices)
            # the ledger's orders of the tail are booked after the load (book_ledger): the utility
            # takes customers sooner, and the node waits for the streets' heartbeats meanwhile
            folded = state.fold_from(rd, snap.position if snap is not None else {}, held, settle=False)
            later = False
            if path is not None and (snap is None or folded >= max(1, self.snapshot_every // 2)):
                if snap is not None and eventloop.loop_running():
                    # after the load, by the snapshot process (write_snapshot) as the periodic ones
                    # are: encoding and writing it here kept customers waiting (~2 s at 10,000,000
                    # records); from nothing it is written here, the fold being already done
                    later = True
                else:
                    state.prune_requests(rd.records_for_txn)   # (a start-up checks each request below)
                    state.roll(self.today() - KEEP_DAYS)     # as a snapshot taken later would hold it
                    data = encode(state, held, (snap.records if snap is not None else 0) + folded,
                                  self.reference_prices)
            folded += state.fold_from(rd, held, settle=False)   # held above a gap: not in the snapshot
        self._adopt(state)
        requests = sorted(state.requests.values(), key=lambda r: r.seq)
        state.requests = {}                             # kept only in snapshots
        # each request of the tail goes to the router, which drops it at once if a street record
        # answers it (most: they are filled or resting); only the others are folded, to leave
        # out those whose order is final anyway (a read and fold of every order cost ~1 s of a
        # restart at fixgw bench scale --records 10000000)
        txn_records: dict[str, list[Record]] = {}   # txn -> its records (a txn's requests read them once)
        final: dict[str, bool] = {}
        router = self.router
        for r in requests:
            recs = txn_records.get(r.txn)
            if recs is None:
                recs = txn_records[r.txn] = node_log.records_for_txn(r.txn)
            rid = router.add(r)
            for s in recs:
                if s.type in STREET_TYPES:
                    router.answered_by(s)
            if rid not in router.pending:
                continue
            done = final.get(r.txn)
            if done is None:
                st = fold(recs)
                done = final[r.txn] = st is not None and st.is_terminal
            if done:
                router.forget(rid)
            elif r.session and not any(_answers(s, r) for s in recs):
                self._take_flight(r, SessionID(str(r.extra.get("begin") or "FIX.4.4"), self.comp_id, r.session))
        self._trading_day()  # forget the ids of earlier days whose orders are done
        peer_orders = self.peer_orders
        for txn, r in sorted(state.peer_orders.items(), key=lambda kv: (kv[1].origin, kv[1].seq)):
            if r.origin in peer_orders.peers and not answered(node_log.records_for_txn(txn)):
                peer_orders.waiting[txn] = r
        state.peer_orders = {}                          # kept only in snapshots; live in self.peer_orders
        self.node.add_listener(self.on_record)
        if self.inquiries.accounts.backlog:
            if eventloop.loop_running():
                self._spawn(self.book_ledger())
            else:
                self.inquiries.accounts.settle()   # no event loop to book them on
        load_s = time.perf_counter() - t0
        self.startup = {"snapshot": snap is not None, "snapshot_records": snap.records if snap is not None else 0,
                        "snapshot_ignored": why, "folded": folded, "load_s": round(load_s, 3)}
        if snap is not None:
            log.info("%s: loaded from a snapshot of %d records (taken %s); folded %d record(s) after it in %.2f s",
                     self.name, snap.records, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(snap.taken_at)),
                     folded, load_s)
        else:
            log.info("%s: no snapshot used: folded the whole log, %d record(s), in %.2f s", self.name, folded, load_s)
        if later:
            self.startup["snapshot_written"] = "later"
            self._spawn(self.write_snapshot())
        if data and path is not None:
            try:
                write_file(path, data)
                self.startup["snapshot_written"] = len(data)
            except OSError as exc:
                log.warning("%s: snapshot not written to %s: %s", self.name, path, exc)

    async def book_ledger(self, slice_orders: int = LEDGER_SLICE) -> None:
        """Book the orders of the start-up's tail into the account ledger, a slice per loop turn
        (about 50 us an order: 64 of them hold the loop ~3 ms); an inquiry meanwhile books the rest."""
        ledger = self.inquiries.accounts
        t0 = time.perf_counter()
        while ledger.book_some(slice_orders):
            await asyncio.sleep(0)
        self.startup["ledger_booked_s"] = round(time.perf_counter() - t0, 3)

    def _adopt(self, state: CustomerState) -> None:
        """Make ``state`` the live views (start-up)."""
        self.state = state
        self.risk = state.risk
        self.clids = state.clids
        self.client_txns = state.client_txns
        self.inquiries.adopt(state.accounts)
        if self.sessions is not None:
            self.sessions.restore_views(state.sessions)

    def _records_for_txn(self, txn_id: str, want: KeyFilter | None = None) -> list[Record]:
        return self.node.log.records_for_txn(txn_id, want)

    def _index(self, r: Record) -> None:
        got = self.state.index(r)
        if got is not None and self.sessions is not None:
            self.sessions.on_fact(*got)

    # ------------------------------------------------------------------ snapshots
    async def write_snapshot(self) -> Taken | None:
        """A snapshot now (utilities.snapshot_writer); None when none is kept or it failed."""
        return await self.snapshots.write()

    def _trading_day(self) -> dt.date:
        """Today; on the first call of a new trading day, the ids of earlier days whose
        orders are done are forgotten (ClOrdIDs are unique within a day)."""
        today = self.today()
        if today != self._day:
            # late or repeated records of finished orders come within minutes: a day's margin
            dropped, forgotten = self.state.roll(today)
            if self._day is not None or dropped or forgotten:
                log.info("%s: trading day %s: %d ClOrdIDs of earlier days released (%d kept), "
                         "%d finished orders and fills forgotten", self.name, today, dropped, len(self.clids), forgotten)
            self._day = today
        return today

    # ------------------------------------------------------------------ FIX session
    async def from_admin(self, message: Message, session_id: SessionID) -> None:
        if message.msg_type == b"A":
            client = session_id.target_comp_id
            if client not in self.customers:
                raise RejectLogon(f"Unknown customer CompID {client}")
            pw = self.passwords.get(client)
            if pw and message.get_str(554) != pw:
                raise RejectLogon("Invalid username or password")

    async def before_logon(self, message: Message, session_id: SessionID) -> None:
        """Take the customer's session (from its live owner, or over from a dead one) before the
        FIX session checks the Logon's MsgSeqNum against numbers that may be another's."""
        client = session_id.target_comp_id
        if client not in self.customers:
            return  # refused by from_admin, with a Logout saying why
        if self.sessions is not None:
            key = SessionKey(session_id.begin_string, client)
            self._reset_logon[key] = message.get(141) == b"Y"
            try:
                await self.sessions.acquire(key)
            except NotReady as exc:
                raise RejectLogon(str(exc)) from None
            except LogError as exc:  # the session's records cannot be stored here now
                raise RejectLogon(cannot_store_text(exc, "sessions")) from None

    def to_app(self, message: Message, session_id: SessionID) -> None:
        """A market data refresh (W, X) is not resent on the customer's ResendRequest: gap-filled
        (:class:`DoNotSend`), as FIX advises for stale data; the customer asks for a snapshot
        again. Everything else (ExecutionReports, position reports, rejects) is resent."""
        if message.msg_type in _NOT_RESENT and message.get(43) == b"Y":
            self.counters["md_not_resent"] += 1
            raise DoNotSend("market data is not resent (stale): gap-filled")

    async def on_logon(self, session_id: SessionID) -> None:
        self.logged_on.add(session_id)
        self._apply_holds()  # still at a bound (orders of a previous connection, or the total)
        self.begin_of[session_id.target_comp_id] = session_id.begin_string
        key = SessionKey(session_id.begin_string, session_id.target_comp_id)
        if self.sessions is not None and key in self.sessions.report_again:
            self.sessions.report_again.discard(key)
            self._report_again(session_id, open_only=self._reset_logon.pop(key, False))

    async def on_logout(self, session_id: SessionID) -> None:
        self.logged_on.discard(session_id)
        self.inquiries.on_logout(session_id)
        self.market_data.on_logout(session_id)

    # ------------------------------------------------------------------ session control (SessionOwner)
    def _sid(self, key: SessionKey) -> SessionID:
        return SessionID(key.begin_string, self.comp_id, key.client)

    def abort_session(self, key: SessionKey, reason: str) -> None:
        if self.engine is not None and (rt := self.engine.sessions.get(self._sid(key))) is not None:
            rt.abort(reason)

    async def log_out_session(self, key: SessionKey, text: str, timeout: float) -> tuple[int, int]:
        if self.engine is None or (rt := self.engine.sessions.get(self._sid(key))) is None:
            return 1, 1
        if rt.logged_on:
            rt.logout(text)
            with contextlib.suppress(TimeoutError):
                await rt.wait_disconnected(timeout)
        if rt.conn is not None:
            rt.abort(text)
            with contextlib.suppress(TimeoutError):
                await rt.wait_disconnected(timeout)
        await rt.flushed()
        return rt.session.next_sender, rt.session.next_target

    def start_session_at(self, key: SessionKey, next_sender: int, next_target: int) -> None:
        if self.engine is None or (rt := self.engine.sessions.get(self._sid(key))) is None:
            return
        store = rt.store
        if isinstance(store, ReplicatedSessionStore):
            store.start_at(next_sender, next_target)

    def session_numbers(self, key: SessionKey) -> tuple[int, int]:
        if self.engine is None or (rt := self.engine.sessions.get(self._sid(key))) is None:
            return 1, 1
        return rt.store.next_sender_seq, rt.store.next_target_seq

    def session_report(self) -> list[dict[str, Any]]:
        """The sessions this process owns, for ``fixgw status``: client, begin, state, numbers."""
        if self.sessions is None or self.engine is None:
            return []
        out = []
        for key in sorted(self.sessions.owned, key=str):
            rt = self.engine.sessions.get(self._sid(key))
            if rt is None:
                continue
            out.append({"client": key.client, "begin": key.begin_string,
                        "state": "logged_on" if rt.logged_on else "disconnected",
                        "next_sender_seq": rt.session.next_sender, "next_target_seq": rt.session.next_target})
        return out

    def _report_again(self, sid: SessionID, *, open_only: bool = False) -> None:
        """After a take-over: every event of the client's orders of today and its open orders,
        again, PossResend=Y with the same ExecID (the customer may have missed them: the numbers
        the previous owner sent them under are gap-filled; customers dedupe by ExecID).

        ``open_only`` (the Logon asked for a sequence reset, ResetSeqNumFlag=Y): a customer that
        starts a new sequence does not ask for what came before and learns finished orders by
        OrderStatusRequest, as after any reset; its open orders' events are sent again so that
        its picture of the live orders is current. (A customer logging on with a reset at each
        logon, as load clients do, would otherwise get the whole day again at each move.)"""
        client, begin = sid.target_comp_id, sid.begin_string
        today = self._trading_day()
        log_ = self.node.log
        n = 0
        for txn, (day, sent_on) in sorted(self.client_txns.get(client, {}).items(), key=lambda kv: kv[1][0]):
            if (day < today or open_only) and txn not in self.risk.open or sent_on not in ("", begin):
                continue
            recs = sorted(log_.records_for_txn(txn), key=lambda r: r.hlc)
            first = next((r for r in recs if r.type in (RecordType.ORDER, RecordType.ORDER_REJECTED)), None) or \
                next((r for r in recs if r.type is RecordType.SENT), None)
            if first is None or str(first.extra.get("begin") or begin) != begin:
                continue
            for r in recs:
                msg = self._event_report(r, begin)
                if msg is not None:
                    msg.set(97, b"Y")
                    self._send(sid, msg)
                    n += 1
        self.counters["reported_again"] += n
        if n:
            log.info("%s: reported %d event(s) again to %s", self.name, n, sid)

    def _exec_id(self) -> str:
        self._exec_seq += 1
        return f"{self.name}.{time.time_ns():x}.{self._exec_seq}"

    def _fenced(self) -> bool:
        """This process may have been replaced (utilities.fencing): a request read now is left
        unanswered and unrecorded; the fence drops the connection, and the customer sends it
        again (PossDup) to the session's next owner."""
        fence = self.fence
        if fence is None or fence.may_act():
            return False
        self.counters["fenced_requests"] += 1
        return True

    def _drop_superseded(self) -> None:
        """The fence lifted (utilities.fencing): an order this process recorded just before it
        stood still, whose record and command never left, was sent again by its customer to the
        session's successor (a PossDup resend of a number the successor did not hold) and
        recorded there under another txn. Routing ours now would put the order at the venue
        twice (seen in tests/e2e/test_e2e_fencing.py's customer pause: 1-2 orders of ~620 in 3
        of 4 runs): ours is recorded Rejected, superseded, and not routed."""
        for rid, p in list(self.router.pending.items()):
            r = p.record
            if r.type is not RecordType.ORDER or r.origin != self.name or not r.session:
                continue
            others = self.clids.others(r.session, r.cl_ord_id, r.txn)
            if not others or not self.router.forget(rid):
                continue
            self.counters["superseded"] += 1
            text = (f"Superseded: {r.session} sent {r.cl_ord_id} again while {self.name} stood still; "
                    f"it is order {', '.join(sorted(others))}")
            log.warning("%s: order %s not routed: %s", self.name, r.txn, text)
            fields = {k: v for k, v in OrderRequest(
                account=r.account, symbol=r.symbol, side=r.side, order_qty=r.order_qty,
                cash_order_qty=r.cash_order_qty, price=r.price, ord_type=r.ord_type, tif=r.tif,
                cl_ord_id=r.cl_ord_id, venue=r.venue, session=r.session).record_fields().items()}
            fields["extra"] = {**fields.get("extra", {}), "superseded": ", ".join(sorted(others))}
            self._spawn(self.node.append(type=RecordType.ORDER_REJECTED, txn=r.txn, status=OrdStatus.REJECTED.value,
                                         text=text, **fields))

    @handles("D")
    async def on_new_order(self, msg: Message, sid: SessionID) -> None:
        if self._fenced():
            return
        received = time.perf_counter()
        client = sid.target_comp_id
        cl = msg.require_str(11)
        side = msg.require_str(54)
        symbol = msg.require_str(55)
        ord_type = msg.require_str(40)
        qty = msg.get_decimal(38)
        cash_qty = msg.get_decimal(152)
        price = msg.get_decimal(44)
        tif = msg.get_str(59) or TimeInForce.DAY.value
        accounts = self.customers.get(client, ())
        account = msg.get_str(1) or (accounts[0] if len(accounts) == 1 else "")
        venue = msg.get_str(100) or self.symbol_venues.get(symbol, "")
        req = OrderRequest(account=account, symbol=symbol, side=side, order_qty=qty, cash_order_qty=cash_qty,
                           price=price, ord_type=ord_type, tif=tif, cl_ord_id=cl, venue=venue, session=client,
                           begin=sid.begin_string, in_seq=_in_seq(msg))
        today = self._trading_day()
        if msg.get(43) == b"Y" and self._answer_resent(msg, sid, client, cl, today):
            return
        if (text := self._over_flight(sid)) is not None:
            self._throttle_reject(msg, sid, text)
            return
        reason = self._refuse(client, account, symbol, side, qty, cash_qty, price, ord_type, venue, cl, today)
        assert self.txns is not None
        txn = self.txns.next()
        if reason is None:
            self.clids.take(client, cl, txn, today)  # before the await: a second order with this ClOrdID is a duplicate
            self._take_flight_id(txn, txn, sid)   # in flight from here: counted before the next message is read
        self.counters["orders"] += 1
        self._spawn(self._new_order(sid, txn, req, reason, received))

    def _answer_resent(self, msg: Message, sid: SessionID, client: str, cl: str, today: dt.date) -> bool:
        """A request resent (PossDupFlag=Y) whose ClOrdID the cluster holds: answered with the
        order's current status, neither a new request nor a duplicate; False: never recorded, so
        it is processed as new."""
        if not self.clids.taken(client, cl, today):
            return False
        found = self._find(client, cl, None)
        if found is None:
            return False
        _, st = found
        self.counters["possdup_known"] += 1
        self._send(sid, er.execution_report(sid.begin_string, _view_of_status(st, st.ord_status, cl_ord_id=cl),
                                            exec_id=self._exec_id(), exec_type=ExecType.ORDER_STATUS))
        return True

    def _refuse(self, client: str, account: str, symbol: str, side: str, qty: Decimal | None,
                cash_qty: Decimal | None, price: Decimal | None, ord_type: str, venue: str,
                cl: str, today: dt.date) -> tuple[int, str] | None:
        if self.clids.taken(client, cl, today):
            return OrdRejReason.DUPLICATE_ORDER, f"Duplicate ClOrdID {cl}"
        if not account:
            return OrdRejReason.BROKER_OPTION, "Account (1) is required: this session may trade several accounts"
        if account not in self.customers.get(client, ()):
            return OrdRejReason.BROKER_OPTION, f"Session {client} may not trade account {account}"
        if not venue or venue not in self._venues:
            return OrdRejReason.UNKNOWN_SYMBOL, f"Unknown symbol {symbol}"
        if ord_type not in ORD_TYPES:
            return OrdRejReason.BROKER_OPTION, f"Unsupported OrdType {ord_type}"
        if ord_type == OrdType.LIMIT and (price is None or price <= 0):
            return OrdRejReason.BROKER_OPTION, "A limit order needs a positive Price (44)"
        if qty is None and cash_qty is None:
            return OrdRejReason.BROKER_OPTION, "OrderQty (38) or CashOrderQty (152) is required"
        refusal = self.risk.check(account=account, symbol=symbol, side=side, qty=qty, cash_qty=cash_qty, price=price)
        if refusal is not None:
            return refusal.reason, refusal.text
        return None

    async def _new_order(self, sid: SessionID, txn: str, req: OrderRequest, reason: tuple[int, str] | None,
                         received: float) -> None:
        fields = req.record_fields()
        if reason is not None:
            self.counters["rejects"] += 1
            try:
                rec = await self.node.append(type=RecordType.ORDER_REJECTED, txn=txn, status=OrdStatus.REJECTED.value,
                                             text=reason[1], **fields)
            except LogError:
                # a refusal need not be stored to be sent: the customer hears it all the same
                self.counters["not_stored"] += 1
                view, exec_id = _view_of_request(req, txn), self._exec_id()
            else:
                view, exec_id = _view_of(rec, OrdStatus.REJECTED), _record_exec_id(rec)
            self._send(sid, er.execution_report(sid.begin_string, view, exec_id=exec_id,
                                                exec_type=ExecType.REJECTED, text=reason[1], ord_rej_reason=reason[0]))
            self.ack_latency.observe(time.perf_counter() - received)
            return
        try:
            rec = await self.node.append(type=RecordType.ORDER, txn=txn, status=OrdStatus.PENDING_NEW.value, **fields)
        except LogError as exc:
            self._left_flight(txn)   # never accepted: not in flight
            # not stored, so not accepted: a clear reject, the ClOrdID free again
            self.clids.forget(req.session, req.cl_ord_id, txn)
            self.counters["not_stored"] += 1
            self._send(sid, er.execution_report(sid.begin_string, _view_of_request(req, "NONE"),
                                                exec_id=self._exec_id(), exec_type=ExecType.REJECTED,
                                                text=cannot_store_text(exc, "orders"),
                                                ord_rej_reason=OrdRejReason.OTHER))
            self.ack_latency.observe(time.perf_counter() - received)
            return
        except BaseException:
            self._left_flight(txn)   # never accepted: not in flight
            raise
        # durable: acknowledge now
        self._send(sid, er.execution_report(sid.begin_string, _view_of(rec, OrdStatus.PENDING_NEW), exec_id=_record_exec_id(rec),
                                            exec_type=ExecType.PENDING_NEW))
        self.counters["accepted"] += 1
        self.ack_latency.observe(time.perf_counter() - received)
        self._route_due([self.router.add(rec)])

    def _find(self, client: str, cl: str | None, order_id: str | None) -> tuple[str, OrderStatus] | None:
        txn = self.clids.txn_of(client, cl) if cl else None
        if txn is None and order_id:
            txn = order_id
        if txn is None:
            return None
        st = fold(self.node.log.records_for_txn(txn))
        if st is None or st.session != client:
            return None        # a customer sees only its own orders
        return txn, st

    @handles("F")
    async def on_cancel(self, msg: Message, sid: SessionID) -> None:
        await self._cancel_or_replace(msg, sid, replace=False)

    @handles("G")
    async def on_replace(self, msg: Message, sid: SessionID) -> None:
        await self._cancel_or_replace(msg, sid, replace=True)

    async def _cancel_or_replace(self, msg: Message, sid: SessionID, *, replace: bool) -> None:
        if self._fenced():
            return
        client = sid.target_comp_id
        cl = msg.require_str(11)
        orig = msg.require_str(41)
        response_to = CxlRejResponseTo.REPLACE if replace else CxlRejResponseTo.CANCEL
        found = self._find(client, orig, msg.get_str(37))
        today = self._trading_day()
        if msg.get(43) == b"Y" and self._answer_resent(msg, sid, client, cl, today):
            return
        if self.clids.taken(client, cl, today):
            self._cxl_reject(sid, None, cl, orig, response_to, CxlRejReason.BROKER_OPTION, f"Duplicate ClOrdID {cl}")
            return
        if found is None:
            self._cxl_reject(sid, None, cl, orig, response_to, CxlRejReason.UNKNOWN_ORDER, f"Unknown order {orig}")
            return
        txn, st = found
        if st.is_terminal:
            self._cxl_reject(sid, st, cl, orig, response_to, CxlRejReason.TOO_LATE_TO_CANCEL, f"Too late: order is {_STATUS_NAMES.get(st.ord_status, st.ord_status)}")
            return
        if st.pending:
            self._cxl_reject(sid, st, cl, orig, response_to, CxlRejReason.ALREADY_PENDING, "A cancel or replace is already pending")
            return
        req = OrderRequest(account=st.account, symbol=st.symbol, side=st.side, order_qty=st.order_qty,
                           cash_order_qty=st.cash_order_qty, price=st.price, ord_type=st.ord_type, tif=st.tif,
                           cl_ord_id=cl, orig_cl_ord_id=orig, venue=st.venue, session=client,
                           begin=sid.begin_string, in_seq=_in_seq(msg))
        if replace:
            new_qty = msg.get_decimal(38)
            new_px = msg.get_decimal(44)
            if new_qty is not None and new_qty <= 0:
                raise IncorrectTagValue(38, "OrderQty must be positive")
            req = dataclasses.replace(req, order_qty=req.order_qty if new_qty is None else new_qty,
                                      price=req.price if new_px is None else new_px,
                                      ord_type=msg.get_str(40) or req.ord_type)
        if (text := self._over_flight(sid)) is not None:
            self._cxl_reject(sid, st, cl, orig, response_to, CxlRejReason.BROKER_OPTION, text)
            return
        self.clids.take(client, cl, txn, today)
        self._take_flight_id(f"{txn}|{cl}", txn, sid)
        self._spawn(self._request(sid, txn, st, req, replace))

    async def _request(self, sid: SessionID, txn: str, st: OrderStatus, req: OrderRequest, replace: bool) -> None:
        rtype = RecordType.REPLACE_REQUEST if replace else RecordType.CANCEL_REQUEST
        pending, exec_type = ((OrdStatus.PENDING_REPLACE, ExecType.PENDING_REPLACE) if replace
                              else (OrdStatus.PENDING_CANCEL, ExecType.PENDING_CANCEL))
        fields = req.record_fields()
        try:
            rec = await self.node.append(type=rtype, txn=txn, status=pending.value, **fields)
        except LogError as exc:
            self._left_flight(f"{txn}|{req.cl_ord_id}")   # never accepted: not in flight
            self.clids.forget(req.session, req.cl_ord_id, txn)
            self.counters["not_stored"] += 1
            self._cxl_reject(sid, st, req.cl_ord_id, req.orig_cl_ord_id,
                             CxlRejResponseTo.REPLACE if replace else CxlRejResponseTo.CANCEL, CxlRejReason.OTHER,
                             cannot_store_text(exc, "cancels or replaces" if replace else "cancels"))
            return
        except BaseException:
            self._left_flight(f"{txn}|{req.cl_ord_id}")   # never accepted: not in flight
            raise
        view = _view_of_status(st, pending, cl_ord_id=rec.cl_ord_id, orig=rec.orig_cl_ord_id)
        self._send(sid, er.execution_report(sid.begin_string, view, exec_id=_record_exec_id(rec), exec_type=exec_type))
        self._route_due([self.router.add(rec, st.street)])

    def _cxl_reject(self, sid: SessionID, st: OrderStatus | None, cl: str, orig: str, response_to: str,
                    reason: int, text: str) -> None:
        self._send(sid, er.cancel_reject(
            begin_string=sid.begin_string, order_id=st.txn if st else "NONE", cl_ord_id=cl, orig_cl_ord_id=orig,
            ord_status=st.ord_status if st else OrdStatus.REJECTED, response_to=response_to, reason=reason, text=text,
        ))

    @handles("H")
    async def on_status(self, msg: Message, sid: SessionID) -> None:
        client = sid.target_comp_id
        cl = msg.get_str(11)
        found = self._find(client, cl, msg.get_str(37))
        req_id = msg.get_str(790) or ""
        if found is None:
            view = er.OrderView(order_id=msg.get_str(37) or "NONE", cl_ord_id=cl or "NONE", orig_cl_ord_id="",
                                account="", symbol=msg.get_str(55) or "[N/A]", side=msg.get_str(54) or Side.BUY,
                                order_qty=None, cash_order_qty=None, price=None, ord_type="", tif="",
                                ord_status=OrdStatus.REJECTED, cum_qty=Decimal(0), leaves_qty=Decimal(0), avg_px=Decimal(0))
            self._send(sid, er.execution_report(sid.begin_string, view, exec_id=self._exec_id(), exec_type=ExecType.ORDER_STATUS,
                                                text="Unknown order", ord_rej_reason=OrdRejReason.UNKNOWN_ORDER,
                                                status_request_id=req_id))
            return
        _, st = found
        self._send(sid, er.execution_report(sid.begin_string, _view_of_status(st, st.ord_status), exec_id=self._exec_id(),
                                            exec_type=ExecType.ORDER_STATUS, status_request_id=req_id))

    @handles("AN")
    async def on_request_for_positions(self, msg: Message, sid: SessionID) -> None:
        if sid.begin_string < "FIX.4.4":
            raise UnsupportedMessageType("AN")
        self.inquiries.on_request_for_positions(msg, sid)

    @handles("BB")
    async def on_collateral_inquiry(self, msg: Message, sid: SessionID) -> None:
        if sid.begin_string < "FIX.4.4":
            raise UnsupportedMessageType("BB")
        self.inquiries.on_collateral_inquiry(msg, sid)

    @handles("V")
    async def on_market_data_request(self, msg: Message, sid: SessionID) -> None:
        self.market_data.on_request(msg, sid)

    def _backlog(self, sid: SessionID) -> int:
        if self.engine is None or (rt := self.engine.sessions.get(sid)) is None:
            return 0
        return rt.write_backlog

    # ------------------------------------------------------------------ records in
    def on_record(self, r: Record) -> None:
        self._index(r)
        self.snapshots.record_added()
        self.inquiries.on_record(r)
        self.peer_orders.see(r)
        if r.type not in STREET_TYPES:
            return
        if r.type in ANSWERED:
            self._left_flight(r.txn)
        requests = self._requests_in_flight.get(r.txn)
        if requests and (r.type in REQUESTS_ENDED or r.type in REQUEST_ANSWERED):
            for rid in list(requests) if r.type in REQUESTS_ENDED else [f"{r.txn}|{r.cl_ord_id}"]:
                self._left_flight(rid)
        if self.router.answered_by(r):
            pass
        self._report(r)

    # ------------------------------------------------------------------ backpressure
    def _over_flight(self, sid: SessionID) -> str | None:
        """The reject's text when ``sid`` is at its in-flight bound under the reject policy."""
        f = self.in_flight
        if not f.full(sid) or self.limits.policy_of(sid.target_comp_id) != "reject":
            return None
        self.counters["in_flight_rejects"] += 1
        n = f.count(sid) if f.count(sid) >= f.bound(sid) else f.total
        return f"throttled: {n} orders in flight"

    def _take_flight(self, r: Record, sid: SessionID) -> None:
        """An own request record (order, cancel or replace) not answered yet (at start-up)."""
        if r.type is RecordType.ORDER:
            self._take_flight_id(r.txn, r.txn, sid)
        elif r.type in (RecordType.CANCEL_REQUEST, RecordType.REPLACE_REQUEST):
            self._take_flight_id(f"{r.txn}|{r.cl_ord_id}", r.txn, sid)

    def _take_flight_id(self, rid: str, txn: str, sid: SessionID) -> None:
        if rid != txn:
            self._requests_in_flight.setdefault(txn, set()).add(rid)
        if self.in_flight.add(rid, sid):
            self.counters["in_flight_holds"] += 1
            self._apply_holds()

    def _left_flight(self, rid: str) -> None:
        txn, sep, _ = rid.partition("|")
        if sep and (requests := self._requests_in_flight.get(txn)) is not None:
            requests.discard(rid)
            if not requests:
                del self._requests_in_flight[txn]
        if self.in_flight.answered(rid):
            self._apply_holds()

    def _apply_holds(self) -> None:
        """Pause reading the sessions held at a bound (policy "pause"), resume the others: called
        when a hold starts or ends (utilities.in_flight's marks), not per order."""
        engine = self.engine
        if engine is None:
            return
        in_flight, limits = self.in_flight, self.limits
        for sid, rt in engine.sessions.items():
            hold = in_flight.is_held(sid) and limits.policy_of(sid.target_comp_id) == "pause"
            if hold and not rt.reading_paused:
                rt.pause_reading()
            elif not hold and rt.reading_paused:
                rt.resume_reading()

    def in_flight_report(self) -> dict[str, Any]:
        """For the status file: orders in flight, the bounds, who is held now."""
        f = self.in_flight
        return {"total": f.total, "bound": f.total_bound, "per_session_bound": f.default_per_session,
                "policy": self.limits.policy, "peak": f.peak, "holds": f.times_held, "all_held": f.all_held,
                "sessions": {str(k): v for k, v in sorted(f.counts.items(), key=lambda kv: str(kv[0]))},
                "held": sorted(str(k) for k in f.held)}

    def _owner_session(self, r: Record) -> SessionID | None:
        client = r.session
        if not client:
            return None
        if self.sessions is not None:
            # the session's owner reports its events, whoever took the order; street records
            # do not say the BeginString: the client's one owned session here then
            said = r.extra.get("begin") or self.client_txns.get(client, {}).get(r.txn, (None, ""))[1]
            owned = [k for k in self.sessions.owned if k.client == client and (not said or k.begin_string == said)]
            if len(owned) != 1:
                return None
            return self._sid(owned[0])
        begin = str(r.extra.get("begin") or self.begin_of.get(client) or "FIX.4.4")
        key = (begin, client)
        sid = self._sids.get(key)
        if sid is None:
            sid = self._sids[key] = SessionID(begin, self.comp_id, client)
        if r.txn.startswith(self._txn_prefix):
            return sid
        # the customer utility that took the order is down: whoever holds the client now reports
        if sid in self.logged_on:
            try:
                origin = parse_txn(r.txn).node_id
            except ValueError:
                return None
            if not self.liveness.alive(origin):
                return sid
        return None

    def _report(self, r: Record) -> None:
        sid = self._owner_session(r)
        if sid is None or self.engine is None:
            return
        msg = self._event_report(r, sid.begin_string)
        if msg is None:
            return
        self.counters["reports"] += 1
        self._send(sid, msg)

    def _event_report(self, r: Record, begin: str) -> Message | None:
        """The message that reports record ``r`` to the customer (ExecID from the record: the
        same on every customer utility, so a report sent again is recognised), or None."""
        t = r.type
        if r.extra.get("superseded"):
            return None     # a copy of an order its customer sent twice: the customer knows the other one
        status = r.status or OrdStatus.NEW
        exec_id = _record_exec_id(r)
        if t is RecordType.ORDER:
            return er.execution_report(begin, _view_of(r, OrdStatus.PENDING_NEW), exec_id=exec_id,
                                       exec_type=ExecType.PENDING_NEW)
        if t is RecordType.ORDER_REJECTED:
            return er.execution_report(begin, _view_of(r, OrdStatus.REJECTED, terminal=True), exec_id=exec_id,
                                       exec_type=ExecType.REJECTED, text=r.text)
        if t is RecordType.VENUE_ACK:
            msg = er.execution_report(begin, _view_of(r, OrdStatus.NEW), exec_id=exec_id, exec_type=ExecType.NEW)
        elif t is RecordType.FILL:
            msg = er.execution_report(begin, _view_of(r, status), exec_id=exec_id, exec_type=ExecType.TRADE,
                                      last_qty=r.last_qty, last_px=r.last_px)
        elif t is RecordType.CANCELED:
            msg = er.execution_report(begin, _view_of(r, OrdStatus.CANCELED, terminal=True), exec_id=exec_id,
                                      exec_type=ExecType.CANCELED, text=r.text)
        elif t is RecordType.REPLACED:
            msg = er.execution_report(begin, _view_of(r, status), exec_id=exec_id, exec_type=ExecType.REPLACED)
        elif t is RecordType.VENUE_REJECT:
            msg = er.execution_report(begin, _view_of(r, OrdStatus.REJECTED, terminal=True), exec_id=exec_id,
                                      exec_type=ExecType.REJECTED, text=r.text, ord_rej_reason=_int(r.extra.get("reason"), 0))
        elif t is RecordType.EXPIRED:
            msg = er.execution_report(begin, _view_of(r, OrdStatus.EXPIRED, terminal=True), exec_id=exec_id,
                                      exec_type=ExecType.EXPIRED, text=r.text)
        elif t is RecordType.CANCEL_REJECTED:
            msg = er.cancel_reject(begin_string=begin, order_id=r.txn, cl_ord_id=r.cl_ord_id, orig_cl_ord_id=r.orig_cl_ord_id,
                                   ord_status=status, response_to=str(r.extra.get("response_to") or CxlRejResponseTo.CANCEL),
                                   reason=_int(r.extra.get("reason"), CxlRejReason.BROKER_OPTION), text=r.text or "Cancel rejected")
        else:
            return None
        return msg

    def _send(self, sid: SessionID, msg: Message) -> None:
        if self.engine is None:
            return
        if msg.msg_type == b"8":
            self.counters["execution_reports"] += 1
        try:
            self.engine.send_to_target(msg, sid)
        except KeyError:
            log.warning("%s: no session %s to report to", self.name, sid)

    # ------------------------------------------------------------------ routing
    def _choose(self, p: Pending) -> str | None:
        venue = p.record.venue
        if p.record.type is not RecordType.ORDER:
            st = fold(self.node.log.records_for_txn(p.record.txn))
            street = st.street if st is not None else ""
            if not street:
                return None      # the order itself has not reached a street yet
            if self.liveness.alive(street):
                return street
            # its street is dead: a live peer has taken the order over (or will)
        if p.street and self._can_reach(p.street, venue):
            return p.street
        live = sorted(s for s in self.streets if self._can_reach(s, venue))
        if not live:
            return None
        # spread orders over the live streets, the same txn always to the same one, whichever
        # customer utility routes it (a stable hash: str's is salted per process), so that an order
        # adopted from a paused peer (utilities.adoption) and the peer's own repeat meet at one street
        return live[zlib.crc32(p.record.txn.encode()) % len(live)]

    def _can_reach(self, street: str, venue: str) -> bool:
        reach = self._reach
        ok = reach.get((street, venue))
        if ok is None:
            ok = reach[(street, venue)] = self._reaches(street, venue)
        return ok

    def _reaches(self, street: str, venue: str) -> bool:
        hb = self.liveness.heartbeat(street)
        return self.liveness.alive(street) and hb is not None and venue in hb.venues

    def can_route(self, venue: str) -> bool:
        """Whether a live street utility reaches ``venue`` now (asked afresh, not from the
        routing pass's answers): a node starting up waits for this for every venue."""
        return any(self._reaches(s, venue) for s in self.streets)

    def _route_due(self, only: list[str] | None = None) -> None:
        # one routing pass asks the liveness of each (street, venue) once, not once per command
        # (the periodic pass goes over every unanswered command: thousands under a burst)
        self._reach = {}
        for p, street in self.router.due(self._choose, only):
            self.counters["routed"] += 1
            self._outbox.setdefault(street, []).append(p.command(encode_record(p.record)))
        if self._outbox and not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_outbox)

    def _flush_outbox(self) -> None:
        # everything routed during one loop turn goes to each street in one publish
        self._flush_scheduled = False
        outbox, self._outbox = self._outbox, {}
        for street, records in outbox.items():
            self._spawn(self._publish_commands(street, records))

    async def _publish_commands(self, street: str, records: list[Command]) -> None:
        if self.fence is not None and not self.fence.may_act():
            # routed just before this process stood still, published only now: its view may be
            # stale (the customer may have sent the order again elsewhere meanwhile); the router
            # repeats what is still due once the fence is lifted (_drop_superseded first)
            return
        try:
            await self.publish(self.topics.commands(street), encode_commands(records))
        except Exception as exc:  # noqa: BLE001 - the broker away (any MQTT error): the router repeats them
            log.debug("%s: %d command(s) for %s not sent: %s", self.name, len(records), street, exc)

    def adopt_orphans(self) -> int:
        """Route the orders of a dead peer that no street has answered (utilities.adoption); how many."""
        po = self.peer_orders
        if not po.waiting:
            return 0
        liveness, fence, up = self.liveness, self.fence, time.monotonic() - self._up_since

        def silent(p: str) -> float:
            s = liveness.silent_for(p)
            return up if s is None else s

        peers = Peers(alive=liveness.alive, silent_for=silent,
                      presumed_dead=lambda p: fence is None or fence.may_presume_dead(liveness.silent_for(p)))
        rids = []
        now = time.time()
        for r in po.due(peers, self.router.ttl_s):
            po.drop(r.txn)
            if answered(self.node.log.records_for_txn(r.txn)):
                continue     # its answer came before its order record
            rid = self.router.add(r)
            p = self.router.pending[rid]
            if p.attempts == 0:
                # moved from the dead utility: the street asks the venue before it sends (utilities.routing)
                p.moved_from, p.prev_expires = r.origin, now
            rids.append(rid)
            log.warning("%s: routing order %s (%s %s) of %s, dead before a street answered it",
                        self.name, r.txn, r.session, r.cl_ord_id, r.origin)
        if rids:
            self.counters["adopted"] += len(rids)
            self._route_due(rids)
        return len(rids)

    async def run_router(self, interval: float = 0.2) -> None:
        fence = self.fence
        while True:
            if fence is None or fence.may_act():   # fenced: its view of what is answered may be stale
                self.adopt_orphans()
                self._route_due()
            self._trading_day()  # a new day frees old ids even while no order comes in
            await asyncio.sleep(interval)


_STATUS_NAMES: dict[str, str] = {s: "".join(w.capitalize() for w in s.name.split("_")) for s in OrdStatus}  # "PartiallyFilled"


def _record_exec_id(r: Record) -> str:
    """An event's ExecID: its record's key, the same on every node."""
    return f"{r.origin}.{r.seq}"


def _in_seq(msg: Message) -> int:
    """The MsgSeqNum a request arrived with, recorded with it (a successor expects the customer's
    next number from it: utilities.session_rule); 0 for a resend (PossDupFlag=Y)."""
    seq = msg.get(34)
    return int(seq) if seq is not None and seq.isdigit() and msg.get(43) != b"Y" else 0


def _answers(s: Record, r: Record) -> bool:
    """Whether record ``s`` shows a venue's answer to the request ``r`` (utilities.in_flight)."""
    if r.type is RecordType.ORDER:
        return s.type in ANSWERED
    return s.type in REQUESTS_ENDED or (s.type in REQUEST_ANSWERED and s.cl_ord_id == r.cl_ord_id)


def cannot_store_text(exc: LogError, what: str) -> str:
    """The text of a reject for a request that could not be stored (the node is degraded)."""
    if isinstance(exc, LogFullError):
        return f"node cannot store {what}: {full_reason(exc)}"
    return f"node cannot store {what}: {exc}"


def _int(v: object, default: int) -> int:
    try:
        return int(str(v))
    except (TypeError, ValueError):
        return default


def _view_of(r: Record, ord_status: str, *, terminal: bool = False) -> er.OrderView:
    cum = r.cum_qty or Decimal(0)
    leaves_extra = r.extra.get("leaves_qty")
    if terminal or ord_status in TERMINAL_STATUSES:
        leaves = Decimal(0)
    elif leaves_extra is not None:
        leaves = Decimal(str(leaves_extra))
    elif r.order_qty is not None:
        leaves = max(Decimal(0), r.order_qty - cum)
    else:
        leaves = Decimal(0)
    return er.OrderView(
        order_id=r.txn, cl_ord_id=r.cl_ord_id, orig_cl_ord_id=r.orig_cl_ord_id, account=r.account,
        symbol=r.symbol, side=r.side, order_qty=r.order_qty, cash_order_qty=r.cash_order_qty, price=r.price,
        ord_type=r.ord_type, tif=r.tif, ord_status=ord_status, cum_qty=cum, leaves_qty=leaves,
        avg_px=r.avg_px or Decimal(0),
    )


def _view_of_request(req: OrderRequest, order_id: str) -> er.OrderView:
    """A refused request that no record holds (the node could not store it)."""
    return er.OrderView(
        order_id=order_id, cl_ord_id=req.cl_ord_id, orig_cl_ord_id=req.orig_cl_ord_id, account=req.account,
        symbol=req.symbol, side=req.side, order_qty=req.order_qty, cash_order_qty=req.cash_order_qty,
        price=req.price, ord_type=req.ord_type, tif=req.tif, ord_status=OrdStatus.REJECTED, cum_qty=Decimal(0),
        leaves_qty=Decimal(0), avg_px=Decimal(0),
    )


def _view_of_status(st: OrderStatus, ord_status: str, *, cl_ord_id: str = "", orig: str = "") -> er.OrderView:
    return er.OrderView(
        order_id=st.txn, cl_ord_id=cl_ord_id or st.cl_ord_id, orig_cl_ord_id=orig or st.orig_cl_ord_id,
        account=st.account, symbol=st.symbol, side=st.side, order_qty=st.order_qty,
        cash_order_qty=st.cash_order_qty, price=st.price, ord_type=st.ord_type, tif=st.tif,
        ord_status=ord_status, cum_qty=st.cum_qty, leaves_qty=st.leaves_qty, avg_px=st.avg_px,
    )
