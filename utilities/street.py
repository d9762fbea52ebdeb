"""The street utility: sends routed orders to the venues over FIX and records what they say.

Every venue response becomes a record (VENUE_ACK, FILL, CANCELED, REPLACED, EXPIRED,
VENUE_REJECT, CANCEL_REJECTED, VENUE_STATUS), replicated to the other street utilities,
every customer utility and the firm. The SENT record is appended (durably) *before* the
NewOrderSingle leaves, so a peer that takes over knows the order may be at the venue: it
never sends such an order again, it asks the venue (OrderStatusRequest) and sends it only
when the venue has never heard of it.

Venue ClOrdIDs are derived from the transaction number (the order itself: ``<txn>``; a
cancel or replace: ``<txn>~<request id>``), so any street utility can map a venue's
report back to the order after a restart or a takeover.

What bounds its queues under overload (issue 19): a street utility takes no order of its own;
everything it works comes from the customer utilities' commands, and those carry only orders
in flight, which each customer utility bounds (``cluster.max_in_flight``,
:mod:`utilities.in_flight`). So the tasks ``on_command`` spawns (one per command; a command
repeated while its order is being worked is dropped on ``inflight``), the records appended for
venue reports, and the FIX session's outbox towards the venue hold at most the customer
utilities' bounds together, plus their cancel and replace requests. The in-memory indexes are
capped by count (``KNOWN_LIMIT`` here, ``EXEC_LIMIT`` and ``REQUEST_LIMIT`` in
:mod:`utilities.street_state`: oldest dropped first). The record node's queues are bounded in
:mod:`replication.node`.

What a start-up rebuilds (:mod:`utilities.street_state`: requests, recent fill ExecIDs, the
customer orders sent, the open orders) comes from the newest snapshot and the records after it
(:mod:`utilities.street_snapshot`), and the open orders that reconciliation and takeover ask
about are an index kept from the records (:mod:`utilities.open_orders`): on a log of 1,016,600
records, a start-up took 15-19 s and each question 30-38 s before; 0.4 s and 3-13 ms now.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import Any

from fixgw import eventloop
from fixgw.application import DoNotSend, MessageCracker, handles
from fixgw.config import SessionID
from fixgw.message import Message
from fixgw.orders import CxlRejReason, CxlRejResponseTo, ExecType, OrdRejReason, OrdStatus, OrdType
from fixgw.session import utc_timestamp
from replication.codec import decode_record
from replication.errors import LogClosedError, RecordDecodeError
from replication.log import KeyFilter
from replication.record import Record, RecordType
from utilities.books import trade_date_of
from utilities.execreports import fmt
from utilities.fencing import Fence
from utilities.gcpause import gc_paused
from utilities.liveness import Liveness
from utilities.open_orders import OpenOrder, OpenOrders, Refolded
from utilities.quote_feed import QuoteFeed
from utilities.record_node import RecordNode
from utilities.routing import Command, decode_commands
from utilities.snapshot import DEFAULT_EVERY_RECORDS
from utilities.snapshot_file import Taken
from utilities.snapshot_writer import SnapshotWriter
from utilities.status import fold
from utilities.street_snapshot import read_file, take, take_command
from utilities.street_state import (
    REQUEST_TYPES,
    SENT_TYPES,
    RecentIds,
    StreetState,
    authoritative_only,
    put_bounded,
)
from utilities.tasks import TaskSet
from utilities.txn import TxnAllocator

log = logging.getLogger(__name__)
# the venue's answers to a cancel or replace request
REQUEST_ANSWERS = frozenset({RecordType.CANCELED, RecordType.REPLACED, RecordType.CANCEL_REJECTED})

# the venue answered about the order: it was there (a takeover does not send it again)
VENUE_SAW_TYPES = frozenset({RecordType.VENUE_ACK, RecordType.FILL, RecordType.CANCELED, RecordType.REPLACED,
                             RecordType.EXPIRED, RecordType.VENUE_REJECT})


KNOWN_LIMIT = 200_000   # orders whose report context is kept in memory (oldest dropped first)
REFOLD_ON_LOOP = 100    # open orders asked for with at most this many txns to fold: folded on the loop (~4 ms)
REFOLD_CHUNK = 1_000    # txns folded again in one LMDB read transaction
# txns to fold again at which the street folds them without being asked (a slice of REFOLD_ON_LOOP
# per loop turn): between two venue logons they would otherwise grow with every order for months
SETTLE_DIRTY = 10_000


class _Known:
    """What the venue reports of one order need from its records: the first SENT (or
    TAKEOVER) record and the latest REPLACED one. Kept up to date from every new record, so
    that a report costs no LMDB read and decode of the order's records."""

    __slots__ = ("base", "replaced")

    def __init__(self) -> None:
        self.base: Record | None = None
        self.replaced: Record | None = None

    def see(self, r: Record) -> None:
        if r.type in SENT_TYPES and (self.base is None or r.hlc < self.base.hlc):
            self.base = r
        elif r.type is RecordType.REPLACED and (self.replaced is None or r.hlc > self.replaced.hlc):
            self.replaced = r


def txn_of(venue_cl_ord_id: str) -> str:
    return venue_cl_ord_id.split("~", 1)[0]


def _now() -> bytes:
    # TransactTime (60): the engine's per-millisecond cached stamp (strftime per order was ~4% of a street's CPU)
    return utc_timestamp(time.time())


YIELD_EVERY = 200  # long passes (reconciliation, takeover) give the event loop a turn this often
RECHECK_S = 2.0  # an order never acknowledged and unknown at the venue after logon is asked again this much later


class StreetUtility(MessageCracker):
    def __init__(
        self,
        *,
        node: RecordNode,
        node_name: str,
        venues: Mapping[str, SessionID],             # venue name -> our FIX session to it
        peers: tuple[str, ...],                      # the other street utilities
        liveness: Liveness,
        startup_grace_s: float = 3.0,
        fence: Fence | None = None,
        command_ttl_s: float = 0.0,
        quotes: QuoteFeed | None = None,             # market data for the customer utilities
        recheck_s: float = RECHECK_S,
        snapshot_path: Path | None = None,           # its snapshot (utilities.street_snapshot); None: none kept
        snapshot_every: int = DEFAULT_EVERY_RECORDS,  # records between two snapshots (0: only at start and stop)
    ) -> None:
        self.node = node
        self.name = node_name
        self.venues = dict(venues)
        self.venue_of = {sid: v for v, sid in self.venues.items()}
        self.peers = peers
        self.liveness = liveness
        self.logged_on: set[str] = set()
        # FIX sessions the engine has created (on_create): commands that arrive before (the
        # bus connects before the engine has started) are not acted on; the router repeats them
        self.sessions_created: set[SessionID] = set()
        # the views rebuilt from the log (utilities.street_state): requests by venue ClOrdID, recent
        # fill ExecIDs, the (client, ClOrdID)s sent, the open orders
        self.state = StreetState()
        self._open_lock = asyncio.Lock()             # one refold of the open orders at a time
        self._settling = False                       # a _settle_open task is running
        self._authoritative: KeyFilter = lambda origin, seq: True   # set by load(): by the log's holdings
        self.snapshot_path = snapshot_path
        self.snapshot_every = snapshot_every
        # how the last start-up went: snapshot used or why not, records folded, seconds (status file)
        self.startup: dict[str, Any] = {}
        self.inflight: set[str] = set()
        self.resolving: set[str] = set()             # txns taken over, waiting for the venue's status
        self.reconciling: set[str] = set()           # txns asked about after a logon (reconcile)
        self.rechecking: set[str] = set()            # ... unknown there, never acknowledged: asked once more
        self.recheck_s = recheck_s
        self._known: dict[str, _Known] = {}          # txn -> report context (a cache of the log)
        self.ids: TxnAllocator | None = None
        self._tasks = TaskSet(node_name, log)
        self._spawn = self._tasks.spawn
        self._started = asyncio.get_event_loop().time()
        self.startup_grace_s = startup_grace_s
        self.fence = fence
        self.command_ttl_s = command_ttl_s             # act on a command only this long after it was routed
        self.withheld: set[str] = set()              # txns recorded SENT but not sent: fenced in between
        # (dead peers, their high-water marks, venues logged on) at the last whole takeover pass
        self._takeover_seen: tuple[frozenset[str], tuple[int, ...], frozenset[str]] | None = None
        self.quotes = quotes
        if fence is not None:
            fence.on_lift(self._settle_withheld)
        self.counters = {"sent": 0, "reports": 0, "takeovers": 0, "duplicates": 0, "duplicate_fills": 0,
                         "fenced_commands": 0, "withheld": 0, "moved": 0, "stale_commands": 0,
                         "reconciled": 0, "canceled_by_venue": 0, "rechecked": 0, "resends_withheld": 0, "superseded": 0, "unknown_ignored": 0, "not_ready": 0,
                         "snapshots": 0}
        # its snapshots: a process of its own each, one at a time (utilities.snapshot_writer)
        self.snapshots = SnapshotWriter(
            name=node_name, path=snapshot_path, every=snapshot_every, log_dir=lambda: getattr(self.node.log, "path", None),
            command=lambda log_dir, path: take_command(log_dir, path, me=self.name),
            spawn=self._spawn, counters=self.counters)

    # ------------------------------------------------------------------ start-up
    @property
    def requests(self) -> dict[str, Record]:
        """Venue ClOrdID of a cancel/replace -> its *_SENT record (a bounded cache of the log)."""
        return self.state.requests

    @property
    def seen_exec(self) -> RecentIds:
        return self.state.seen_exec

    @seen_exec.setter
    def seen_exec(self, ids: RecentIds) -> None:
        self.state.seen_exec = ids

    def load(self) -> None:
        """Rebuild the views (after a restart): from the newest valid snapshot and the records
        after it, else from the whole log (utilities.street_snapshot); then, if it folded many
        records, a new snapshot (by the snapshot process once the utility runs)."""
        t0 = time.perf_counter()
        node_log = self.node.log
        self.ids = TxnAllocator(self.name, node_log.head)
        self._authoritative = authoritative_only(node_log.holding_of)
        path = self.snapshot_path
        with gc_paused(), node_log.reader() as rd:
            held = rd.high_water_marks()
            snap, why = read_file(path, node=self.name, held=held) if path is not None else (None, "")
            if why:
                log.warning("%s: snapshot ignored, folding the whole log: %s", self.name, why)
            state = snap.state if snap is not None else StreetState()
            folded = state.fold_from(rd, snap.position if snap is not None else {}, held)
            folded += state.fold_from(rd, held)   # held above a gap: not in the snapshot
        self.state = state
        self.node.add_listener(self._index)
        load_s = time.perf_counter() - t0
        self.startup = {"snapshot": snap is not None, "snapshot_records": snap.records if snap is not None else 0,
                        "snapshot_ignored": why, "folded": folded, "open_orders_to_fold": len(state.open_orders.dirty),
                        "load_s": round(load_s, 3)}
        if snap is not None:
            log.info("%s: loaded from a snapshot of %d records; folded %d record(s) after it in %.2f s",
                     self.name, snap.records, folded, load_s)
        else:
            log.info("%s: no snapshot used: folded the whole log, %d record(s), in %.2f s", self.name, folded, load_s)
        if path is not None and (snap is None or folded >= max(1, self.snapshot_every // 2)):
            if eventloop.loop_running():
                self.startup["snapshot_written"] = "later"
                self._spawn(self.write_snapshot())
            else:
                try:
                    self.startup["snapshot_written"] = take(node_log, path, me=self.name).bytes
                except OSError as exc:
                    log.warning("%s: snapshot not written to %s: %s", self.name, path, exc)

    def _index(self, r: Record) -> None:
        known = self._known.get(r.txn)
        if known is not None:
            known.see(r)
        state = self.state
        state.index(r, self._authoritative(r.origin, r.seq))
        if len(state.open_orders.dirty) >= SETTLE_DIRTY and not self._settling:
            self._settling = True
            self._spawn(self._settle_open())
        self.snapshots.record_added()

    # ------------------------------------------------------------------ snapshots
    async def write_snapshot(self) -> Taken | None:
        """A snapshot now (utilities.snapshot_writer); None when none is kept or it failed."""
        return await self.snapshots.write()

    def _sent_as(self, order: Record) -> str | None:
        """Another txn under which this customer order (its client and ClOrdID, today) went to
        a venue already, by this street or a peer: a customer utility paused right after
        routing it, whose customer sent it again to the successor (the venue sees other
        ClOrdIDs, ours are txns, so it cannot tell)."""
        if not order.session or not order.cl_ord_id:
            return None
        other = self.state.sent_as(order.session, order.cl_ord_id, trade_date_of(order.hlc))
        return other if other is not None and other != order.txn else None

    # ------------------------------------------------------------------ FIX sessions
    async def on_create(self, session_id: SessionID) -> None:
        self.sessions_created.add(session_id)

    def _venue_ready(self, venue: str) -> bool:
        """Whether the engine has created the FIX session to ``venue``. Starting, it has not (the
        bus connects first): a command is not acted on, counted ``not_ready``, and the customer
        utility's router repeats it (recorded SENT, it could not go out: a restarted street
        logged 32 KeyErrors so in a fixgw chaos run)."""
        if self.venues.get(venue) in self.sessions_created:
            return True
        self.counters["not_ready"] += 1
        return False

    async def on_logon(self, session_id: SessionID) -> None:
        venue = self.venue_of.get(session_id)
        if venue:
            self.logged_on.add(venue)
            self._spawn(self.reconcile(venue))
            if self.quotes is not None:
                self._spawn(self._market_data_after_logon())

    async def _market_data_after_logon(self) -> None:
        await asyncio.sleep(0)  # after the logon callback: the session is up for sending
        if self.quotes is not None:
            self.quotes.reconcile()

    async def on_logout(self, session_id: SessionID) -> None:
        venue = self.venue_of.get(session_id, "")
        self.logged_on.discard(venue)
        if self.quotes is not None:
            self.quotes.on_logout(venue)

    def send_to_venue(self, venue: str, msg: Message) -> None:
        """An application message to ``venue`` on this street's session (market data: utilities.quote_feed)."""
        self._send(venue, msg)

    def _send(self, venue: str, msg: Message) -> None:
        sid = self.venues.get(venue)
        if sid is None or self.engine is None:
            log.error("%s: no FIX session to venue %r", self.name, venue)
            return
        self.engine.send_to_target(msg, sid)

    # ------------------------------------------------------------------ commands in
    def on_command(self, topic: str, payload: bytes) -> None:
        try:
            items = decode_commands(payload)
        except ValueError as exc:
            log.warning("%s: malformed command message on %s set aside: %s", self.name, topic, exc)
            return
        for cmd in items:
            try:
                r = decode_record(cmd.record)
            except RecordDecodeError as exc:
                log.warning("%s: malformed command on %s set aside: %s", self.name, topic, exc)
                continue
            self._command(r, cmd)

    def _command(self, r: Record, cmd: Command | None = None) -> None:
        if r.type is RecordType.ORDER:
            self._spawn(self._new_order(r, cmd or Command(b"")))
        elif r.type in (RecordType.CANCEL_REQUEST, RecordType.REPLACE_REQUEST):
            self._spawn(self._request(r))
        else:
            log.warning("%s: command of type %s ignored", self.name, r.type.value)

    def _order_fields(self, r: Record) -> dict[str, Any]:
        return {"account": r.account, "symbol": r.symbol, "side": r.side, "order_qty": r.order_qty,
                "cash_order_qty": r.cash_order_qty, "price": r.price, "ord_type": r.ord_type, "tif": r.tif,
                "cl_ord_id": r.cl_ord_id, "orig_cl_ord_id": r.orig_cl_ord_id, "venue": r.venue, "session": r.session}

    def _may_act(self) -> bool:
        """Not fenced (:mod:`utilities.fencing`): this process may send to a venue now."""
        return self.fence is None or self.fence.may_act()

    # ------------------------------------------------------------------ the last gate before the wire
    def may_write(self, session_id: SessionID) -> bool:
        """The engine asks this just before it writes an order, cancel or status request to a
        venue's socket. Checking the fence when the order was sealed is not enough: the bytes
        reach the socket after the FIX store's commit, and a process stopped in between (seen:
        six NewOrderSingles sealed at 07:55:18.185 reached the venue at 07:55:22.708, after a
        SIGSTOP, 2 s after the peer that took them over had sent them) must not let them out on
        waking. Withheld, they stay in the FIX store; the venue asks for them after the next
        logon and :meth:`to_app` decides then."""
        return self._may_act()

    def to_app(self, message: Message, session_id: SessionID) -> None:
        """What the FIX session resends to a venue (its ResendRequest after a reconnect) is
        decided here, not replayed blindly. Gap-filled (:class:`DoNotSend`):

        - anything while this street is fenced; a NewOrderSingle so withheld is asked about at
          the venue once the fence is lifted (``withheld``) and sent then only if the venue
          never heard of it and it is still ours (see :meth:`may_write`);
        - a status request (reconciliation asks afresh after the logon);
        - an order that is final, or that the venue acknowledged already, or that another
          street has taken over since; a cancel or replace the venue answered already.
          Measured in the venue-restart test (tests/e2e/test_e2e_venue_forgets.py): the
          exchange restarted empty asked for 1..10, and the resent NewOrderSingles put the
          forgotten orders back at the venue, where reconciliation then found them "known".

        An order the venue never answered about and still ours is resent: its first delivery."""
        if message.get(43) != b"Y":
            return
        mt = message.msg_type
        if mt == b"H":
            raise DoNotSend("a status request is not resent: reconciliation asks afresh after logon")
        vid = message.get_str(11)
        if mt not in (b"D", b"F", b"G") or not vid:
            return
        txn = txn_of(vid)
        if not self._may_act():
            if mt == b"D":
                self.withheld.add(txn)
            self.counters["resends_withheld"] += 1
            raise DoNotSend(f"{vid}: fenced: not sent again until caught up")
        held = self.node.log.records_for_txn(txn)
        st = fold(held)
        if st is not None and st.is_terminal:
            self.counters["resends_withheld"] += 1
            raise DoNotSend(f"{vid}: the order is {st.ord_status}: not sent again")
        if mt == b"D" and any(h.type in VENUE_SAW_TYPES for h in held):
            self.counters["resends_withheld"] += 1
            raise DoNotSend(f"{vid}: the venue acknowledged this order already: not sent again")
        if mt == b"D" and not self._still_ours(txn):
            self.counters["resends_withheld"] += 1
            raise DoNotSend(f"{vid}: another street took this order over: not sent again")
        if mt != b"D":
            req = self._request_of(vid)
            if req is not None and any(h.type in REQUEST_ANSWERS and h.cl_ord_id == req.cl_ord_id
                                       and h.hlc > req.hlc for h in held):
                self.counters["resends_withheld"] += 1
                raise DoNotSend(f"{vid}: the venue answered this request already: not sent again")

    def _still_ours(self, txn: str) -> bool:
        """Whether this street's SENT/TAKEOVER is the order's latest one."""
        sent = [h for h in self.node.log.records_for_txn(txn) if h.type in SENT_TYPES]
        return bool(sent) and str(max(sent, key=lambda h: h.hlc).extra.get("street")) == self.name

    def _stale(self, cmd: Command) -> bool:
        if cmd.stale(self.command_ttl_s, time.time()):
            self.counters["stale_commands"] += 1
            return True
        return False

    async def _new_order(self, order: Record, cmd: Command) -> None:
        txn = order.txn
        moved_from = cmd.moved_from if cmd.moved_from != self.name else ""
        if txn in self.inflight or self._stale(cmd):
            return      # stale: the customer utility may have moved it; it repeats it if not
        if not self._may_act():
            # stale (queued while we stood still): the customer utility's router repeats it
            self.counters["fenced_commands"] += 1
            return
        if not self._venue_ready(order.venue):
            return
        held = self.node.log.records_for_txn(txn)
        if any(h.type in SENT_TYPES for h in held):
            self.counters["duplicates"] += 1
            return      # already sent by us or a peer: idempotent on txn
        other = self._sent_as(order)
        if other is not None:
            if any(h.type is RecordType.VENUE_REJECT for h in held):
                return  # refused already (the router repeated the command before our record reached it)
            self.counters["superseded"] += 1
            log.warning("%s: order %s not sent: %s's ClOrdID %s went to the venue as %s already", self.name, txn,
                        order.session, order.cl_ord_id, other)
            fields = self._order_fields(order)
            fields["text"] = (f"Not sent: {order.session}'s ClOrdID {order.cl_ord_id} went to the venue as order "
                              f"{other} already")
            await self.node.append(type=RecordType.VENUE_REJECT, txn=txn, status=OrdStatus.REJECTED.value,
                                   extra={"street": self.name, "reason": str(OrdRejReason.DUPLICATE_ORDER),
                                          "superseded": other}, **fields)
            return
        self.inflight.add(txn)
        try:
            fields = self._order_fields(order)
            if moved_from:
                # moved here from another street, which may have sent it (its records not here
                # yet): once its copy expired, take it over and ask the venue; it is sent only
                # if the venue never saw it
                wait = cmd.prev_expires - time.time()
                if wait > 0:
                    await asyncio.sleep(min(wait, self.command_ttl_s or wait))
                if any(h.type in SENT_TYPES for h in self.node.log.records_for_txn(txn)):
                    self.counters["duplicates"] += 1
                    return
                fields["extra"] = {"street": self.name, "from": moved_from, "venue_cl_ord_id": txn,
                                   "begin": order.extra.get("begin", "")}
                taken = await self.node.append(type=RecordType.TAKEOVER, txn=txn, status=OrdStatus.PENDING_NEW.value, **fields)
                if txn not in self._known:
                    self._remember(txn, [*held, taken])
                self.counters["moved"] += 1
                self.resolving.add(txn)
                if self._may_act():
                    self._status_request(order)
                else:
                    self.withheld.add(txn)
                return
            fields["extra"] = {"street": self.name, "venue_cl_ord_id": txn, "begin": order.extra.get("begin", "")}
            sent = await self.node.append(type=RecordType.SENT, txn=txn, status=OrdStatus.PENDING_NEW.value, **fields)
            if txn not in self._known:
                self._remember(txn, [*held, sent])
            if not self._may_act():
                # fenced while the SENT record was committing: ask the venue once caught up
                self.withheld.add(txn)
                self.counters["withheld"] += 1
                return
            if self._stale(cmd):
                # expired while the SENT record was committing: ask the venue, send if unknown
                self.counters["withheld"] += 1
                self.resolving.add(txn)
                self._status_request(order)
                return
            self._send_new(order.venue, txn, order)
            self.counters["sent"] += 1
        finally:
            self.inflight.discard(txn)

    def _send_new(self, venue: str, venue_id: str, r: Record) -> None:
        f: list[tuple[int, object]] = [(11, venue_id), (1, r.account), (21, "1"), (55, r.symbol), (54, r.side),
                                       (60, _now())]
        if r.order_qty is not None:
            f.append((38, fmt(r.order_qty)))
        if r.cash_order_qty is not None:
            f.append((152, fmt(r.cash_order_qty)))
        f.append((40, r.ord_type))
        if r.price is not None and r.ord_type != OrdType.MARKET:
            f.append((44, fmt(r.price)))
        if r.tif:
            f.append((59, r.tif))
        self._send(venue, Message.new("D", f))

    def _current_venue_id(self, held: list[Record], txn: str) -> str:
        replaced = [h for h in held if h.type is RecordType.REPLACED and h.extra.get("venue_cl_ord_id")]
        if not replaced:
            return txn
        return str(max(replaced, key=lambda h: h.hlc).extra["venue_cl_ord_id"])

    async def _request(self, req: Record) -> None:
        txn = req.txn
        key = f"{txn}|{req.cl_ord_id}"
        if key in self.inflight:
            return
        held = self.node.log.records_for_txn(txn)
        kind = RecordType.CANCEL_SENT if req.type is RecordType.CANCEL_REQUEST else RecordType.REPLACE_SENT
        if any(h.type is kind and h.cl_ord_id == req.cl_ord_id for h in held):
            self.counters["duplicates"] += 1
            return
        sent = [h for h in held if h.type in SENT_TYPES]
        if not sent:
            return      # the order has not reached us yet; the customer utility repeats the request
        if not self._may_act():
            self.counters["fenced_commands"] += 1
            return      # the customer utility repeats the request once we answer again
        if not self._venue_ready(sent[0].venue):
            return
        self.inflight.add(key)
        try:
            assert self.ids is not None
            venue_id = f"{txn}~{self.ids.next()}"
            orig_vid = self._current_venue_id(held, txn)
            fields = self._order_fields(req)
            fields["extra"] = {"street": self.name, "venue_cl_ord_id": venue_id, "venue_orig_cl_ord_id": orig_vid}
            rec = await self.node.append(type=kind, txn=txn, status=(OrdStatus.PENDING_CANCEL if kind is RecordType.CANCEL_SENT else OrdStatus.PENDING_REPLACE).value,
                                         **fields)
            self.state.remember_request(venue_id, rec)
            f: list[tuple[int, object]] = [(41, orig_vid), (11, venue_id), (1, req.account), (55, req.symbol),
                                           (54, req.side), (60, _now())]
            if req.order_qty is not None:
                f.append((38, fmt(req.order_qty)))
            if req.cash_order_qty is not None:
                f.append((152, fmt(req.cash_order_qty)))
            if kind is RecordType.REPLACE_SENT:
                f += [(21, "1"), (40, req.ord_type)]
                if req.price is not None and req.ord_type != OrdType.MARKET:
                    f.append((44, fmt(req.price)))
                if req.tif:
                    f.append((59, req.tif))
            self._send(req.venue, Message.new("F" if kind is RecordType.CANCEL_SENT else "G", f))
        finally:
            self.inflight.discard(key)

    # ------------------------------------------------------------------ venue reports in
    def _known_for(self, txn: str) -> _Known:
        known = self._known.get(txn)
        return known if known is not None else self._remember(txn, self.node.log.records_for_txn(txn))

    def _remember(self, txn: str, held: list[Record]) -> _Known:
        known = _Known()
        for h in held:
            known.see(h)
        if known.base is None:
            return known    # not sent yet: nothing worth keeping
        put_bounded(self._known, txn, known, KNOWN_LIMIT)
        return known

    def fill_recorded(self, txn: str, exec_id: str, *, poss_dup: bool) -> bool:
        """Whether the venue's fill ``exec_id`` of ``txn`` is already recorded (or on its way).

        Recent ExecIDs are in memory; an older one can only come back resent, flagged
        PossDupFlag(43)=Y (a resend after a reconnect, or a restart of this utility), and then
        the order's records say whether it is already there."""
        if exec_id in self.seen_exec:
            return True
        if not poss_dup:
            return False
        return any(r.type is RecordType.FILL and r.exec_id == exec_id for r in self.node.log.records_for_txn(txn))

    def _base(self, txn: str) -> Record | None:
        return self._known_for(txn).base

    @handles("8")
    async def on_execution_report(self, msg: Message, sid: SessionID) -> Awaitable[object] | None:
        vid = msg.require_str(11)
        txn = txn_of(vid)
        base = self._base(txn)
        if base is None:
            log.warning("%s: report for unknown order %s ignored", self.name, vid)
            return None
        exec_type = msg.require_str(150)
        ord_status = msg.require_str(39)
        req = self._request_of(vid)
        fields = self._order_fields(base)
        if req is not None:
            # a report about a cancel/replace request: customer ClOrdIDs of that request
            fields["cl_ord_id"], fields["orig_cl_ord_id"] = req.cl_ord_id, req.orig_cl_ord_id
            if req.type is RecordType.REPLACE_SENT:
                fields.update(order_qty=req.order_qty, price=req.price, ord_type=req.ord_type, tif=req.tif)
        else:
            fields["cl_ord_id"] = self._customer_clid(txn, base)
        fields.update(
            venue_order_id=msg.get_str(37) or "",
            cum_qty=msg.get_decimal(14), avg_px=msg.get_decimal(6), text=msg.get_str(58) or "",
        )
        leaves = msg.get_decimal(151)
        extra: dict[str, Any] = {"street": self.name}
        if leaves is not None:
            extra["leaves_qty"] = leaves
        if exec_type in (ExecType.TRADE, ExecType.PARTIAL_FILL, ExecType.FILL):
            exec_id = msg.require_str(17)
            if self.fill_recorded(txn, exec_id, poss_dup=msg.get_str(43) == "Y"):
                self.counters["duplicate_fills"] += 1
                return None
            self.seen_exec.add(exec_id)
            rtype = RecordType.FILL
            fields.update(exec_id=exec_id, last_qty=msg.get_decimal(32), last_px=msg.get_decimal(31))
        elif exec_type == ExecType.NEW:
            rtype = RecordType.VENUE_ACK
        elif exec_type == ExecType.CANCELED:
            rtype = RecordType.CANCELED
        elif exec_type == ExecType.REPLACED:
            rtype = RecordType.REPLACED
            extra["venue_cl_ord_id"] = vid
            new_qty = msg.get_decimal(38)
            if new_qty is not None:
                fields["order_qty"] = new_qty
            if msg.get_decimal(44) is not None:
                fields["price"] = msg.get_decimal(44)
        elif exec_type == ExecType.REJECTED:
            if msg.get_str(103) == str(OrdRejReason.DUPLICATE_ORDER):
                # the venue already has this ClOrdID: the order is there; ask, don't record a reject
                self._status_request(base)
                return None
            rtype = RecordType.VENUE_REJECT
            extra["reason"] = msg.get_str(103) or str(OrdRejReason.BROKER_OPTION)
        elif exec_type == ExecType.EXPIRED:
            rtype = RecordType.EXPIRED
        elif exec_type == ExecType.ORDER_STATUS:
            rtype = RecordType.VENUE_STATUS
            unknown = (ord_status == OrdStatus.REJECTED
                       and msg.get_str(103) in (str(OrdRejReason.UNKNOWN_ORDER), None))
            reconciling = txn in self.reconciling
            self.reconciling.discard(txn)
            if unknown and txn in self.resolving and not self._reached_venue(txn):
                await self._resend_unknown(base)
                return None
            self.resolving.discard(txn)
            if unknown and reconciling:
                if self._reached_venue(txn):
                    self.rechecking.discard(txn)
                    if self._may_act():
                        return self._canceled_by_venue(txn, base, msg)
                elif txn in self.rechecking:
                    # never acknowledged, unknown twice ``recheck_s`` apart: it is not on its way,
                    # the venue never got it (this street died or was fenced between recording
                    # SENT and the write). The customer was told New: send it now, not "canceled
                    # by the venue" (a fixgw chaos run found one so canceled that no venue had seen)
                    self.rechecking.discard(txn)
                    if self._still_ours(txn):
                        await self._resend_unknown(base, why="sent_after_reconcile")
                else:
                    self._recheck_later(txn)
                return None
            if unknown:
                # "unknown order" that no takeover, reconciliation or recheck waits for (a second
                # answer to a question asked twice): not a fact about the order. Recorded, it made
                # the fold show acknowledged orders Rejected "unknown order" (1,046 in a 10-minute
                # fixgw chaos run) that no street had ever sent
                self.counters["unknown_ignored"] += 1
                return None
        else:
            return None  # pending states: nothing new
        self.counters["reports"] += 1
        # not awaited: the session goes on with the next report while this one commits, so
        # reports arriving together share one group commit (appends keep their order). Returned:
        # the engine keeps the venue's MsgSeqNum of this report out of the session's store until
        # the record is durable, so a street killed in between gets the report resent (PossDup) at
        # its next logon instead of losing it (a fill lost so was missing from the firm's books:
        # 7 orders in a 10-minute fixgw chaos run)
        fut = self.node.append(type=rtype, txn=txn, status=ord_status, extra=extra, **fields)
        self._spawn(fut)
        return fut

    def _request_of(self, vid: str) -> Record | None:
        """The CANCEL_SENT/REPLACE_SENT record of a venue ClOrdID of ours, if it names one.

        Only ``<txn>~<n>`` ids name requests (an order goes to the venue under its txn), so a
        report about an order never costs a log read; a request older than the cache is read
        back from the log: a replaced order's later fills still carry the replace's ids."""
        req = self.requests.get(vid)
        if req is None and "~" in vid:
            for r in self.node.log.records_for_txn(txn_of(vid)):
                if r.type in REQUEST_TYPES and r.extra.get("venue_cl_ord_id") == vid:
                    req = r
                    self.state.remember_request(vid, r)
                    break
        return req

    def _customer_clid(self, txn: str, base: Record) -> str:
        replaced = self._known_for(txn).replaced
        return replaced.cl_ord_id if replaced is not None else base.cl_ord_id

    @handles("9")
    async def on_cancel_reject(self, msg: Message, sid: SessionID) -> Awaitable[object] | None:
        vid = msg.require_str(11)
        txn = txn_of(vid)
        base = self._base(txn)
        req = self._request_of(vid)
        if base is None or req is None:
            log.warning("%s: cancel reject for unknown request %s ignored", self.name, vid)
            return None
        fields = self._order_fields(base)
        fields["cl_ord_id"], fields["orig_cl_ord_id"] = req.cl_ord_id, req.orig_cl_ord_id
        fields["text"] = msg.get_str(58) or "Cancel rejected by the venue"
        extra = {"street": self.name, "response_to": msg.get_str(434) or CxlRejResponseTo.CANCEL.value,
                 "reason": msg.get_str(102) or str(CxlRejReason.BROKER_OPTION)}
        fut = self.node.append(type=RecordType.CANCEL_REJECTED, txn=txn, status=msg.get_str(39) or OrdStatus.NEW.value,
                               extra=extra, **fields)
        self._spawn(fut)
        return fut    # durable before the venue's MsgSeqNum is (on_execution_report)

    # ------------------------------------------------------------------ market data (utilities.quote_feed)
    @handles("W")
    async def on_md_snapshot(self, msg: Message, sid: SessionID) -> None:
        if self.quotes is not None:
            self.quotes.on_snapshot(msg)

    @handles("X")
    async def on_md_incremental(self, msg: Message, sid: SessionID) -> None:
        if self.quotes is not None:
            self.quotes.on_incremental(msg)

    @handles("Y")
    async def on_md_reject(self, msg: Message, sid: SessionID) -> None:
        if self.quotes is not None:
            self.quotes.on_reject(msg)

    @handles("j")
    async def on_business_reject(self, msg: Message, sid: SessionID) -> None:
        log.warning("%s: venue sent BusinessMessageReject: %s", self.name, msg)

    # ------------------------------------------------------------------ reconciliation
    async def reconcile(self, venue: str) -> int:
        """After a logon to ``venue``: ask it about every open order this street owns there
        (one OrderStatusRequest each). One it no longer knows (a venue restarted empty, or
        one that cancels on disconnect) becomes a CANCELED record with the reason
        (``on_execution_report``): reported to the customer, its reservation released.
        A fenced street asks nothing (it may not own the orders any more); returns how many
        orders were asked about."""
        await asyncio.sleep(0)  # after the logon callback: the session is up for sending
        if not self._may_act():
            return 0
        asked = 0
        for txn, st, _ in await self._open_orders():
            if st.venue != venue or st.street != self.name or not self._may_act():
                continue
            base = self._base(txn)
            if base is None:
                continue
            self.reconciling.add(txn)
            self._status_request(base)
            asked += 1
            if asked % YIELD_EVERY == 0:
                await asyncio.sleep(0)   # thousands of requests: let the reports in meanwhile
        self.counters["reconciled"] += asked
        if asked:
            log.info("%s: reconciling %d open order(s) with %s after logon", self.name, asked, venue)
        return asked

    def _recheck_later(self, txn: str) -> None:
        """An order the venue never acknowledged, unknown to it after logon: its NewOrderSingle may
        still be on its way (sent after the status request, or resent with the session's gap),
        so the venue is asked once more ``recheck_s`` later; unknown then, it is canceled by the
        venue. Deciding at the first answer would record canceled an order then acknowledged
        and working at the venue (or, sending it again, put it there twice)."""
        self.rechecking.add(txn)
        self.counters["rechecked"] += 1
        asyncio.get_running_loop().call_later(self.recheck_s, self._recheck, txn)

    def _recheck(self, txn: str) -> None:
        st = fold(self.node.log.records_for_txn(txn))
        base = self._base(txn)
        if st is None or base is None or st.is_terminal or self._reached_venue(txn) or st.street != self.name:
            self.rechecking.discard(txn)   # answered meanwhile (acknowledged, filled, taken over)
            return
        if not self._may_act() or base.venue not in self.logged_on:
            self.rechecking.discard(txn)   # the next logon reconciles it again
            return
        self.reconciling.add(txn)
        self._status_request(base)

    def _canceled_by_venue(self, txn: str, base: Record, msg: Message) -> Awaitable[Record]:
        fields = self._order_fields(base)
        fields["cl_ord_id"] = self._customer_clid(txn, base)
        why = msg.get_str(58) or "unknown order"
        fields["text"] = f"Canceled by the venue {base.venue}: it no longer knows the order ({why})"
        self.counters["canceled_by_venue"] += 1
        log.warning("%s: order %s unknown at %s after logon: recorded canceled by the venue", self.name, txn,
                    base.venue)
        fut = self.node.append(type=RecordType.CANCELED, txn=txn, status=OrdStatus.CANCELED.value,
                               venue_order_id=msg.get_str(37) or "",
                               extra={"street": self.name, "canceled_by_venue": True,
                                      "reason": "unknown at the venue after logon"},
                               **fields)
        self._spawn(fut)
        return fut

    async def _open_orders(self) -> list[OpenOrder]:
        """(txn, status, first record) of every order of this street's log not final: the index
        kept from the records (utilities.open_orders), its txns touched since the last question
        folded again first, in a worker thread when there are many (on the event loop, a scan of
        a log of tens of thousands of orders stood the street still for 9-17 s in ``fixgw chaos``
        runs: past the liveness timeout, so it fenced itself)."""
        async with self._open_lock:
            index = self.state.open_orders
            dirty = index.take_dirty()
            if dirty:
                want, node_log = self._authoritative, self.node.log

                def refold() -> Refolded:
                    # a read transaction per chunk, not per txn (3x fewer CPU seconds per txn), nor
                    # one for all: a resize of the map waits for the readers (replication.mapsize)
                    out: Refolded = {}
                    txns = list(dirty)
                    for i in range(0, len(txns), REFOLD_CHUNK):
                        with node_log.reader() as rd:
                            out.update(OpenOrders.refold(txns[i:i + REFOLD_CHUNK],
                                                         lambda txn: rd.records_for_txn(txn, want)))
                    return out
                try:
                    got = refold() if len(dirty) <= REFOLD_ON_LOOP else await asyncio.to_thread(refold)
                except BaseException:
                    index.dirty |= dirty    # folded at the next question
                    raise
                index.apply(got)
            return index.listing()

    async def _settle_open(self) -> None:
        """Fold the txns to fold again, a slice per loop turn (~5 ms), until none is left."""
        try:
            async with self._open_lock:
                index, node_log, want = self.state.open_orders, self.node.log, self._authoritative
                while index.dirty:
                    dirty = index.dirty
                    chunk = [dirty.pop() for _ in range(min(REFOLD_ON_LOOP, len(dirty)))]
                    with node_log.reader() as rd:   # no await between the pops and this read
                        index.apply(OpenOrders.refold(chunk, lambda txn: rd.records_for_txn(txn, want)))
                    await asyncio.sleep(0)
        except LogClosedError:
            pass        # stopping: the next start folds them (from the snapshot's tail)
        finally:
            self._settling = False

    # ------------------------------------------------------------------ takeover
    def _status_request(self, r: Record) -> None:
        held = self.node.log.records_for_txn(r.txn)
        vid = self._current_venue_id(held, r.txn)
        self._send(r.venue, Message.new("H", [(11, vid), (55, r.symbol), (54, r.side)]))

    def _reached_venue(self, txn: str) -> bool:
        """Whether the venue ever answered about the order (it was there)."""
        return any(h.type in VENUE_SAW_TYPES for h in self.node.log.records_for_txn(txn))

    async def _resend_unknown(self, base: Record, why: str = "resent_after_takeover") -> None:
        """The venue never got the order its sender (a dead peer, or this street before a crash
        or a fence) recorded as SENT: send it now (recorded SENT again, marked ``why``)."""
        txn = base.txn
        self.resolving.discard(txn)
        if self._reached_venue(txn):
            return
        if not self._may_act():
            self.withheld.add(txn)   # fenced: asked about again once caught up (_settle_withheld)
            return
        fields = self._order_fields(base)
        fields["extra"] = {"street": self.name, "venue_cl_ord_id": txn, why: True}
        await self.node.append(type=RecordType.SENT, txn=txn, status=OrdStatus.PENDING_NEW.value, **fields)
        if not self._may_act():
            self.withheld.add(txn)
            return
        self._send_new(base.venue, txn, base)
        self.counters["sent"] += 1

    def _settle_withheld(self) -> None:
        """After a fence is lifted: each order recorded SENT here but not sent is asked about at
        the venue; one it never heard of is sent then (``_resend_unknown``), unless a peer sent or
        took it over meanwhile (its records are here now: we caught up)."""
        for txn in sorted(self.withheld):
            base = self._base(txn)
            if base is None or not self._still_ours(txn):
                continue
            self.resolving.add(txn)
            self._status_request(base)
        self.withheld.clear()

    def _dead_peers(self) -> list[str]:
        now = asyncio.get_event_loop().time()
        if now - self._started < self.startup_grace_s:
            return []
        if self.fence is not None:
            # fresh evidence only: silence seen while we ran unfenced and connected (utilities.fencing)
            return [p for p in self.peers
                    if not self.liveness.alive(p) and self.fence.may_presume_dead(self.liveness.silent_for(p))]
        return [p for p in self.peers if not self.liveness.alive(p)]

    def _i_take_over(self, venue: str) -> bool:
        """The lowest-named live street that reaches the venue takes a dead peer's orders."""
        live = sorted([self.name] + [p for p in self.peers if self.liveness.alive(p) and
                                     venue in (self.liveness.heartbeat(p) or _NO_HB).venues])
        return venue in self.logged_on and live and live[0] == self.name  # type: ignore[return-value]

    async def takeover_once(self) -> int:
        dead = set(self._dead_peers())
        if not dead:
            self._takeover_seen = None
            return 0
        # a pass over the whole log finds nothing new while the dead peers wrote nothing since
        # the last one and this street reaches the same venues: skip it
        hwms = self.node.log.high_water_marks()
        seen = (frozenset(dead), tuple(hwms.get(p, 0) for p in sorted(dead)), frozenset(self.logged_on))
        if seen == self._takeover_seen:
            return 0
        taken = 0
        for txn, st, first in await self._open_orders():
            if not self._may_act():
                break
            if st.street not in dead or not self._i_take_over(st.venue):
                continue
            fields = self._order_fields(first)
            fields["cl_ord_id"] = st.cl_ord_id
            fields["extra"] = {"street": self.name, "from": st.street}
            base = self._base(txn)
            await self.node.append(type=RecordType.TAKEOVER, txn=txn, status=st.ord_status, **fields)
            self.resolving.add(txn)
            if base is not None:
                self._status_request(base)
            taken += 1
            if taken % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        else:
            self._takeover_seen = seen   # a whole pass, unfenced
        self.counters["takeovers"] += taken
        if taken:
            log.warning("%s: took over %d open order(s) of %s", self.name, taken, ", ".join(sorted(dead)))
        return taken

    async def run_takeover(self, interval: float = 0.5) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.takeover_once()
            except Exception:
                log.exception("%s: takeover pass failed", self.name)


class _NoHeartbeat:
    venues: tuple[str, ...] = ()


_NO_HB: Any = _NoHeartbeat()
