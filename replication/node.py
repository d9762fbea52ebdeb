"""A replication node: its LMDB log, group commit, and replication over MQTT.

    async with ReplicationNode(node_id="cfu1", role=Role.CUSTOMER, cluster="local",
                               data_dir=Path("data/cfu1"), broker_port=1883) as node:
        node.add_listener(on_record)            # every newly inserted record, once
        rec = await node.append(type=RecordType.ORDER, txn="cfu1-1", status="new", ...)
        # rec is durable here: acknowledge the client now
        node.log.records_for_txn("cfu1-1")

Own records get the next own seq and an HLC timestamp and are made durable by group
commit before ``append`` returns; the publisher then sends them on
``fixgw/<cluster>/rec/<role>/<node>``, many per publish, and moves on only after the
broker's PUBACK, so nothing is skipped across reconnects. Received records are inserted
idempotently; a gap or a digest announcing a higher head makes the node ask the origin to
resend (see :mod:`replication.catchup`). The origin answers with "R" messages
(:mod:`replication.wire`), each covering a range whole: the records it still holds, and the
word that the other seqs of the range were archived (retention moves old, final orders out
of every live log), so that the replica's high-water mark moves over those holes in the same
transaction as the records instead of stopping at the first one and asking for it for ever.
An "R" is accepted only on this node's own resend topic. Appends keep working while the
broker is away.

Nothing received is trusted beyond what its topic proves: the broker's ACL lets a node
publish only under its own name (:mod:`replication.auth`), and a payload whose sender
differs from the one its topic names is malformed (dropped, counted). A record that comes
under a key held here with other bytes is a conflict: the first version stays, and the
node counts it, logs both versions and keeps the latest few for ``fixgw status``; an
origin that hears its own key with foreign content says so the same way. Resend requests
are served within a budget per requester (records and requests per second): a flood of
distinct requests costs the origin a bounded share of its CPU, and a request over budget
is dropped (counted) for the requester to repeat later, as it does for any lost request.

Its queues, and what bounds each under overload (issue 19): the publisher's outbox holds at
most ``outbox_limit`` records (older ones are read back from LMDB); the resend queue holds one
entry per distinct (requester, range) admitted by the per-requester budget; the group-commit
writer's queue holds what arrived during one loop turn and what waits on the commit in flight
(its size grows with the load, never past what the loop took in meanwhile); MQTT delivery to a
node is QoS 1 through the broker, which queues at most ``max_queued_messages`` per node
(``replication.broker``; beyond, the node's catch-up fetches them again from the origin's log).
The records themselves are bounded upstream: customer utilities bound the orders in flight
(:mod:`utilities.in_flight`), and every record is about an order. How far behind each origin
the node is, in records and seconds, is :mod:`replication.lag`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from replication.auth import BusLogin
from replication.bus import BusDisconnected, MqttBus
from replication.catchup import CatchUp
from replication.codec import check_node_id
from replication.conflicts import RECENT_CONFLICTS, ConflictReport, describe_record
from replication.errors import LogError, RecordDecodeError
from replication.histogram import LatencyHistogram
from replication.hlc import HybridLogicalClock
from replication.lag import DEFAULT_BEHIND_AFTER_S, LagTracker, OriginLag
from replication.log import DEFAULT_MAP_SIZE, Conflict, Inserted, InsertOutcome, RecordLog
from replication.matrix import holding_for, roles_held_by
from replication.record import Record, RecordType, Role
from replication.request_budget import RequestBudget
from replication.storage_health import (
    LOW_SPACE_BYTES,
    RECORD_LOG,
    Backoff,
    StorageHealth,
    free_bytes,
)
from replication.wire import (
    Batch,
    Digest,
    ResendRequest,
    Topics,
    decode_message,
    encode_batch,
    encode_digest,
    encode_request,
    encode_resend,
)

log = logging.getLogger(__name__)

Listener = Callable[[Record], None]
# the topic kinds (fixgw/<cluster>/<kind>/...) the replication protocol itself uses
_REPLICATION_KINDS = frozenset({"rec", "digest", "req", "resend"})
_OWN_PAYLOADS = 1024  # hashes of our latest record publishes, to recognise their echo


@dataclass(frozen=True, slots=True)
class NodeStats:
    """A snapshot of a node's counters (for ``fixgw status``)."""

    node_id: str
    role: Role
    connected: bool
    connects: int
    head: int              # highest own seq committed
    published_upto: int    # own records up to here were acknowledged by the broker
    appended: int          # own records committed since start
    published: int         # own records published live (PUBACKed)
    publishes: int         # MQTT publishes of record batches (live and resent)
    received: int          # records of others newly inserted
    duplicates: int        # records received that were already here
    malformed: int         # payloads that did not decode or disagreed with their topic (logged, dropped)
    rejected: int          # records refused (role not held, role clash)
    conflicts: int         # records received under a held key with other bytes (first kept)
    resends_limited: int   # resend requests dropped over their requester's budget
    gaps_requested: int    # resend requests sent
    resends_served: int    # resend requests answered
    resent: int            # records resent on request
    commits: int           # LMDB transactions committed
    behind_peers: bool     # a peer holds own records this log lacks (lost data directory?)
    hwms: dict[str, int]   # per origin: contiguous high-water mark
    recent_conflicts: tuple[ConflictReport, ...] = ()  # the latest conflicts, oldest first
    degraded: str | None = None  # why the node cannot store now (a full disk or map), or None
    not_stored: int = 0    # records received that could not be stored (asked again once it can)


class _Counters:
    def __init__(self) -> None:
        self.appended = 0
        self.published = 0
        self.publishes = 0
        self.received = 0
        self.duplicates = 0
        self.malformed = 0
        self.rejected = 0
        self.gaps_requested = 0
        self.resends_served = 0
        self.resent = 0
        self.conflicts = 0
        self.resends_limited = 0
        self.not_stored = 0


class ReplicationNode:
    """One node of the cluster. Use as ``async with``; see the module docstring."""

    def __init__(
        self,
        *,
        node_id: str,
        role: Role,
        cluster: str,
        data_dir: Path | str,
        broker_host: str = "127.0.0.1",
        broker_port: int = 1883,
        clock: HybridLogicalClock | None = None,
        map_size: int = DEFAULT_MAP_SIZE,
        map_limit: int | None = None,
        digest_interval: float = 1.0,
        retry_after: float | None = None,
        max_batch_records: int = 500,
        max_batch_bytes: int = 256 * 1024,
        resend_chunk: int = 5000,
        outbox_limit: int = 100_000,
        backoff_max: float = 2.0,
        mqtt: bool = True,
        login: BusLogin | None = None,
        resend_records_per_s: float = 20_000.0,
        resend_requests_per_s: float = 20.0,
        monotonic: Callable[[], float] = time.monotonic,
        publish_linger: float = 0.002,
        publish_linger_idle: bool = False,
        extra_subscriptions: Sequence[tuple[str, int]] = (),
        on_extra_message: Callable[[str, bytes], None] | None = None,
        behind_after_s: float = DEFAULT_BEHIND_AFTER_S,
        insert_linger_s: float = 0.0,
    ) -> None:
        self.node_id = check_node_id(node_id)
        self.role = Role(role)
        self.topics = Topics(cluster)
        self.data_dir = Path(data_dir)
        self.broker_host = broker_host
        self.broker_port = broker_port
        self.clock = clock or HybridLogicalClock(node_id)
        if self.clock.node != node_id:
            raise ValueError(f"the clock belongs to node {self.clock.node!r}, not {node_id!r}")
        if digest_interval <= 0 or max_batch_records < 1 or resend_chunk < 1:
            raise ValueError("digest_interval > 0, max_batch_records >= 1 and resend_chunk >= 1 are required")
        self._map_size = map_size
        self._map_limit = map_limit  # the log grows its map by itself up to here (None: fixed)
        self._digest_interval = digest_interval
        self._max_batch_records = max_batch_records
        self._max_batch_bytes = max_batch_bytes
        self._resend_chunk = resend_chunk
        self._backoff_max = backoff_max
        self._mqtt = mqtt
        self._login = login
        self._resend_budget = RequestBudget(
            records_per_s=resend_records_per_s, record_burst=max(2.0 * resend_chunk, resend_records_per_s / 10),
            requests_per_s=resend_requests_per_s, request_burst=max(4.0, resend_requests_per_s), monotonic=monotonic)
        self._conflicts: collections.deque[ConflictReport] = collections.deque(maxlen=RECENT_CONFLICTS)
        self._own_payloads: set[int] = set()
        self._own_payload_order: collections.deque[int] = collections.deque()
        self._catchup = CatchUp(
            retry_after=retry_after if retry_after is not None else max(2 * digest_interval, 0.5),
            chunk=resend_chunk,
            grace=min(digest_interval, 0.5),
            monotonic=monotonic,
        )
        self._listeners: list[Listener] = []
        # topics the roles built on the node use for their own messages (heartbeats,
        # order routing): the node carries them on its connection but does not read them
        self._publish_linger = publish_linger
        # own records wait publish_linger for more even when nothing was published a moment ago
        self._publish_linger_idle = publish_linger_idle
        self._insert_linger = insert_linger_s   # received records' commit may wait this long (writer)
        self._extra_subscriptions = list(extra_subscriptions)
        self._on_extra_message = on_extra_message
        self._counters = _Counters()
        # own records not yet published, newest last; beyond the limit the oldest fall out (in
        # C, as the deque appends) and the publisher reads those back from LMDB
        self._outbox: collections.deque[tuple[int, bytes]] = collections.deque(
            maxlen=max(1, outbox_limit))
        self._log: RecordLog | None = None
        self._writer: Any = None
        self._bus: MqttBus | None = None
        self._pub_wakeup = asyncio.Event()
        self._resend_queue: asyncio.Queue[ResendRequest] = asyncio.Queue()
        self._resend_pending: set[tuple[str, int, int]] = set()
        self._committed_head = 0
        self._published_upto = 0
        self._peer_digests: dict[str, Digest] = {}
        self._malformed_logged = 0
        self.lag = LagTracker(behind_after_s, monotonic)
        """How far behind each origin this node is (records, seconds): :mod:`replication.lag`."""
        self.behind_peers = False
        """True once a peer's digest showed more of our own records than our log holds."""
        self._background: set[asyncio.Task[Any]] = set()
        self.storage = StorageHealth()
        """Whether this node can store (replication.storage_health); other writers of the node
        (a customer utility's FIX message store) report here too."""
        self._probe_backoff = Backoff(first=0.2, most=2.0)

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        from replication.writer import GroupCommitWriter  # one import cycle less for ops tools

        self._log = RecordLog(self.data_dir, node_id=self.node_id, role=self.role, map_size=self._map_size,
                              map_limit=self._map_limit)
        head = self._log.head
        if head:
            # Our clock must run ahead of what we wrote before a restart, even if the wall
            # clock went back meanwhile.
            last = self._log.get(self.node_id, head)
            if last is not None:
                self.clock.observe(last.hlc)
        self._committed_head = self._published_upto = head
        self._writer = GroupCommitWriter(self._log, self.clock, on_commit=self._on_commit, health=self.storage,
                                         insert_linger_s=self._insert_linger)
        self._writer.start()
        self._spawn(self._storage_probe())
        if self._mqtt:
            self._bus = MqttBus(
                client_id=self.node_id,
                host=self.broker_host,
                port=self.broker_port,
                subscriptions=self._subscriptions(),
                on_message=self._on_message,
                on_connected=self._connected,
                backoff_max=self._backoff_max,
                login=self._login,
            )
            self._bus.start()

    async def close(self, drain_timeout: float = 1.0) -> None:
        """Publish what is pending (up to ``drain_timeout`` s), disconnect, close the log."""
        if self._bus is not None:
            if self._bus.connected and drain_timeout > 0:
                try:
                    await self.flush(drain_timeout)
                except TimeoutError:
                    pass
            await self._bus.close()
            self._bus = None
        for t in list(self._background):
            t.cancel()
        if self._writer is not None:
            await self._writer.close()
            self._writer = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _subscriptions(self) -> list[tuple[str, int]]:
        t = self.topics
        subs: list[tuple[str, int]] = [(t.requests_to(self.node_id), 1), (t.resends_to(self.node_id), 1)]
        for role in roles_held_by(self.role):
            subs.append((t.records_of_role(role), 1))
            subs.append((t.digests_of_role(role), 0))
        subs.extend(self._extra_subscriptions)
        return subs

    # -- the API the utilities use -----------------------------------------------------------

    @property
    def log(self) -> RecordLog:
        if self._log is None:
            raise LogError(f"node {self.node_id} is not started")
        return self._log

    @property
    def connected(self) -> bool:
        return self._bus is not None and self._bus.connected

    def mqtt_socket(self) -> Any:
        """The TCP socket of the current broker connection (to check its options)."""
        return self._bus.client_socket() if self._bus is not None else None

    async def wait_connected(self, timeout: float | None = None) -> None:
        if self._bus is None:
            raise RuntimeError(f"node {self.node_id} has no MQTT bus")
        await self._bus.wait_connected(timeout)

    def append(self, *, type: RecordType, txn: str, status: str, **fields: Any) -> asyncio.Future[Record]:
        """Append an own record; the future gives it (seq, HLC assigned) once it is durable
        in LMDB.

        The future raises ValueError for invalid fields, LogFullError when the map or disk is
        full, LogError when the node is not running. (A plain function, not a coroutine: one
        coroutine less per append, measured ~2 us on this machine.)
        """
        fields["type"] = type
        fields["txn"] = txn
        fields["status"] = status
        return self.append_fields(fields)

    def append_fields(self, fields: dict[str, Any]) -> asyncio.Future[Record]:
        """Like :meth:`append`, with all the record's fields (``type``, ``txn`` and ``status``
        among them) in one dict, which the log takes over: the caller must not change it
        afterwards. For hot paths: keyword arguments unpacked into ``append(**fields)`` cost
        ~2 us more per record on this machine than handing the dict over.
        """
        writer = self._writer
        try:
            if writer is None:
                raise LogError(f"node {self.node_id} is not started")
            fut: asyncio.Future[Record] = writer.append(fields)
            return fut
        except LogError as exc:
            failed: asyncio.Future[Record] = asyncio.get_running_loop().create_future()
            failed.set_exception(exc)
            return failed

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1) -> None:
        """Publish a message of the role on top of this node (not a record) on its connection.

        Raises BusDisconnected (or RuntimeError without MQTT) when the broker is away: the
        caller decides whether to repeat it.
        """
        if self._bus is None:
            raise RuntimeError(f"node {self.node_id} has no MQTT bus")
        await self._bus.publish(topic, payload, qos=qos)

    def add_listener(self, callback: Listener, *, replay: bool = False) -> None:
        """Call ``callback(record)`` on the loop thread for every newly inserted record (own
        or replicated), once, after its commit; own records before ``append`` returns.

        ``replay=True`` (on a started node) first calls it for every record already in the
        log, authoritative then read-only, to rebuild in-memory views at start-up. A record
        committed at that very moment may then be seen twice (folds are idempotent).
        """
        if replay:
            for rec in self.log.iter_all():
                callback(rec)
        self._listeners.append(callback)

    def remove_listener(self, callback: Listener) -> None:
        self._listeners.remove(callback)

    @property
    def stats(self) -> NodeStats:
        c = self._counters
        return NodeStats(
            node_id=self.node_id,
            role=self.role,
            connected=self.connected,
            connects=self._bus.connects if self._bus else 0,
            head=self._committed_head,
            published_upto=self._published_upto,
            appended=c.appended,
            published=c.published,
            publishes=c.publishes,
            received=c.received,
            duplicates=c.duplicates,
            malformed=c.malformed,
            rejected=c.rejected,
            gaps_requested=c.gaps_requested,
            resends_served=c.resends_served,
            resent=c.resent,
            commits=self._writer.commits if self._writer else 0,
            behind_peers=self.behind_peers,
            hwms=self._log.high_water_marks() if self._log else {},
            conflicts=c.conflicts,
            resends_limited=c.resends_limited,
            recent_conflicts=tuple(self._conflicts),
            degraded=self.storage.degraded,
            not_stored=c.not_stored,
        )

    @property
    def commit_latency(self) -> LatencyHistogram | None:
        """Wall time of each LMDB commit of this node's log (None before start)."""
        return self._writer.commit_latency if self._writer else None

    @property
    def appends(self) -> int:
        """Own records handed to the log writer since start (each ends committed or refused)."""
        return self._writer.appends if self._writer else 0

    def replication_lag(self) -> dict[str, OriginLag]:
        """Per origin heard of: records and seconds this node is behind it (:mod:`replication.lag`)."""
        return self.lag.report(self.log.high_water_marks())

    def peer_digests(self) -> dict[str, Digest]:
        """The latest digest heard from each node whose records this node holds."""
        return dict(self._peer_digests)

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every own record committed so far has been acknowledged by the broker."""
        async def _wait() -> None:
            while self._published_upto < self._committed_head:
                await asyncio.sleep(0.005)
        await asyncio.wait_for(_wait(), timeout)

    # -- commits (loop thread) -------------------------------------------------------------

    def _on_commit(self, new: list[Inserted]) -> None:
        own = self.node_id
        c = self._counters
        add_to_outbox = self._outbox.append
        head = self._committed_head
        appended = received = 0
        for item in new:
            rec = item.record
            if rec.origin == own:
                seq = rec.seq
                if seq > head:
                    head = seq
                    add_to_outbox((seq, item.data))
                    appended += 1
            else:
                received += 1
        self._committed_head = head
        c.received += received
        if appended:
            c.appended += appended
            self._pub_wakeup.set()
        listeners = self._listeners
        if listeners:
            for item in new:
                for cb in listeners:
                    try:
                        cb(item.record)
                    except Exception:
                        log.exception("%s: record listener %r failed", self.node_id, cb)

    # -- receiving (loop thread) -----------------------------------------------------------

    def _malformed(self, topic: str, why: str) -> None:
        self._counters.malformed += 1
        self._malformed_logged += 1
        if self._malformed_logged <= 20 or self._malformed_logged % 1000 == 0:
            log.warning("%s: dropped a malformed payload on %s (%d so far): %s",
                        self.node_id, topic, self._counters.malformed, why)

    def _on_message(self, topic: str, payload: bytes) -> None:
        prefix = self.topics.prefix
        if not topic.startswith(prefix):
            self._malformed(topic, "topic outside this cluster")
            return
        parts = topic[len(prefix):].split("/")
        kind = parts[0]
        if kind not in _REPLICATION_KINDS:
            if self._on_extra_message is not None:
                try:
                    self._on_extra_message(topic, payload)
                except Exception:
                    log.exception("%s: handler of %s failed", self.node_id, topic)
            else:
                self._malformed(topic, f"unexpected topic kind {kind!r}")
            return
        if len(parts) != 3:
            self._malformed(topic, "not a fixgw/<cluster>/<kind>/<a>/<b> topic")
            return
        if kind == "rec" and parts[2] == self.node_id and hash(payload) in self._own_payloads:
            return  # our own records, echoed back by the broker to our role subscription
        try:
            msg = decode_message(payload)
        except RecordDecodeError as exc:
            self._malformed(topic, str(exc))
            return
        # the sender a payload names must be the one its topic names (the last level, the
        # one the broker's ACL ties to the publisher's credentials)
        if isinstance(msg, Batch):
            if kind == "rec" and (parts[1] != msg.origin_role.value or parts[2] != msg.origin):
                self._malformed(topic, f"batch of {msg.origin_role.value} {msg.origin} on the wrong topic")
                return
            if kind == "resend" and (parts[1] != self.node_id or parts[2] != msg.origin):
                self._malformed(topic, f"batch of {msg.origin} resent on the wrong topic")
                return
            if kind not in ("rec", "resend"):
                self._malformed(topic, "a record batch on a non-record topic")
                return
            if msg.complete is not None and kind != "resend":
                # "the rest of the range was archived" is an answer to this node's request only
                self._malformed(topic, f"a resend answer of {msg.origin} outside this node's resend topic")
                return
            if msg.origin == self.node_id:
                self._check_own(msg)
                return
            self._receive_batch(msg)
        elif isinstance(msg, Digest):
            if kind != "digest" or parts[1] != msg.role.value or parts[2] != msg.node:
                self._malformed(topic, f"a digest of {msg.role.value} {msg.node} on {topic}")
                return
            self._receive_digest(msg)
        elif isinstance(msg, ResendRequest):
            if kind != "req" or msg.origin != self.node_id or parts[1] != msg.origin or parts[2] != msg.requester:
                self._malformed(topic, f"a resend request of {msg.requester} for {msg.origin} on {topic}")
                return
            key = (msg.requester, msg.first, msg.last)
            if key in self._resend_pending:
                return
            cost = max(0, min(msg.last, self._committed_head, msg.first + self._resend_chunk - 1) - msg.first + 1)
            if not self._resend_budget.allow(msg.requester, cost):
                self._counters.resends_limited += 1
                n = self._counters.resends_limited
                if n <= 20 or n % 1000 == 0:
                    log.warning("%s: resend request of %s for %d..%d over its budget: dropped (%d so far)",
                                self.node_id, msg.requester, msg.first, msg.last, n)
                return
            self._resend_pending.add(key)
            self._resend_queue.put_nowait(msg)

    # -- conflicts ---------------------------------------------------------------------------

    def _conflict(self, conflict: Conflict, *, own: bool) -> None:
        self._counters.conflicts += 1
        report = ConflictReport(conflict.origin, conflict.seq, describe_record(conflict.kept),
                                describe_record(conflict.received), own, time.time())
        self._conflicts.append(report)
        n = self._counters.conflicts
        if n <= 100 or n % 1000 == 0:
            if own:
                log.error("%s: FOREIGN CONTENT under our own record %s#%d (%d conflicts so far): ours: %s; "
                          "heard on the bus: %s", self.node_id, conflict.origin, conflict.seq, n,
                          report.kept, report.received)
            else:
                log.error("%s: CONFLICT at %s#%d (%d so far): kept the first version: %s; refused: %s",
                          self.node_id, conflict.origin, conflict.seq, n, report.kept, report.received)

    def _check_own(self, batch: Batch) -> None:
        """Records under our own name that we did not publish as such: say so if they differ."""
        if self._log is None:
            return
        held = [(r.seq, d) for r, d in batch.records if r.seq <= self._committed_head]
        for conflict in self._log.conflicts(self.node_id, held):
            self._conflict(conflict, own=True)
        for rec, data in batch.records:
            if rec.seq > self._committed_head:  # a seq we never wrote: foreign all the same
                self._conflict(Conflict(self.node_id, rec.seq, b"", data), own=True)

    def _remember_own_payload(self, payload: bytes) -> None:
        h = hash(payload)
        if h not in self._own_payloads:
            self._own_payloads.add(h)
            self._own_payload_order.append(h)
            if len(self._own_payload_order) > _OWN_PAYLOADS:
                self._own_payloads.discard(self._own_payload_order.popleft())

    def _receive_batch(self, batch: Batch) -> None:
        origin = batch.origin
        complete = batch.complete   # a resend answer: the range it covers whole (archived holes)
        if origin == self.node_id or (not batch.records and complete is None):
            return
        if holding_for(self.node_id, self.role, origin, batch.origin_role) is None:
            self._counters.rejected += len(batch.records)
            return
        if batch.records:
            self.clock.observe(max(r.hlc for r, _ in batch.records))
        # a batch is in seq order; an answer's origin had records up to its range's end
        self.lag.heard(origin, complete[1] if complete is not None else batch.records[-1][0].seq)
        st = self.log.origin_state(origin)
        items = list(batch.records)
        if st is not None:
            hwm = st.hwm
            fresh = [it for it in items if it[0].seq > hwm]
            if len(fresh) < len(items):
                self._counters.duplicates += len(items) - len(fresh)
                held = [(r.seq, d) for r, d in items if r.seq <= hwm]
                for conflict in self.log.conflicts(origin, held):
                    self._conflict(conflict, own=False)
            items = fresh
            if complete is not None and complete[1] <= hwm:
                complete = None  # the range is held (or known archived) already
            if not items and complete is None:
                return
        fut = self._writer.insert(batch.origin_role, items,
                                  complete=None if complete is None else (origin, *complete))
        fut.add_done_callback(partial(self._inserted, origin))

    def _inserted(self, origin: str, fut: asyncio.Future[InsertOutcome]) -> None:
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            # not stored: the digests' heads keep the gap open and it is asked again (_digests)
            self._counters.not_stored += 1
            n = self._counters.not_stored
            if n <= 10 or n % 1000 == 0:
                log.error("%s: could not store records of %s (%d batches so far; asked again once the node "
                          "can write): %s", self.node_id, origin, n, exc)
            return
        out = fut.result()
        self._counters.duplicates += out.duplicates
        for conflict in out.conflicts:
            self._conflict(conflict, own=origin == self.node_id)
        if out.rejected:
            self._counters.rejected += len(out.rejected)
            log.warning("%s: refused %d record(s) of %s: %s", self.node_id, len(out.rejected), origin, out.rejected[0])
        self._check_gap(origin)

    def _receive_digest(self, digest: Digest) -> None:
        if digest.node == self.node_id:
            return
        theirs = digest.hwms.get(self.node_id, 0)
        if theirs > self._committed_head and not self.behind_peers:
            # A peer holds more of our own records than we do: our data directory was lost
            # or restored from an old copy. New appends would reuse seqs peers already
            # hold (they would keep their copies and ignore ours): say so loudly.
            self.behind_peers = True
            log.error("%s: %s holds our records up to seq %d but our log ends at %d; rebuild "
                      "this node's log from a peer (fixgw log export/import) before appending",
                      self.node_id, digest.node, theirs, self._committed_head)
        if holding_for(self.node_id, self.role, digest.node, digest.role) is None:
            return
        self._peer_digests[digest.node] = digest
        self._catchup.saw_head(digest.node, digest.head)
        self.lag.heard(digest.node, digest.head)
        st = self.log.origin_state(digest.node)
        if st is not None and st.role is not digest.role:
            self._malformed("digest", f"{digest.node} claims role {digest.role.value}, known as {st.role.value}")
            return
        self._check_gap(digest.node)

    def _check_gap(self, origin: str) -> None:
        if self._log is None:
            return
        st = self._log.origin_state(origin)
        hwm = st.hwm if st else 0
        next_held = self._log.first_held_after(origin, hwm) if st and st.max_seq > hwm else None
        rng = self._catchup.wanted(origin, hwm, next_held)
        if rng is None:
            return
        bus = self._bus
        if bus is None or not bus.connected:
            self._catchup.forget(origin)
            return
        self._counters.gaps_requested += 1
        req = ResendRequest(self.node_id, origin, rng.first, rng.last)
        log.debug("%s: asking %s for %d..%d", self.node_id, origin, rng.first, rng.last)
        self._spawn(self._send_request(bus, req))

    async def _send_request(self, bus: MqttBus, req: ResendRequest) -> None:
        try:
            await bus.publish(self.topics.requests(req.origin, self.node_id), encode_request(req), qos=1)
        except BusDisconnected:
            self._catchup.forget(req.origin)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _storage_probe(self) -> None:
        """While the record log cannot write (a full disk or map), try a small write now and
        then (back-off), so that the node comes back by itself once space is back even when
        no record arrives. A full disk is tried only once it shows free space again."""
        writer = self._writer
        while True:
            if self.storage.ok or not self.storage.failing(RECORD_LOG):
                self._probe_backoff.reset()
                await asyncio.sleep(0.5)
                continue
            await asyncio.sleep(self._probe_backoff.next())
            full = writer.last_full
            if full is not None and full.disk:
                free = free_bytes(self.data_dir)
                if free is not None and free < LOW_SPACE_BYTES:
                    continue
            if await writer.probe():
                log.warning("%s: can store again", self.node_id)

    # -- while connected -------------------------------------------------------------------

    async def _connected(self, bus: MqttBus) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._publisher(bus))
                tg.create_task(self._digests(bus))
                tg.create_task(self._resend_server(bus))
        except* BusDisconnected as eg:
            raise BusDisconnected(str(eg.exceptions[0])) from None

    async def _publisher(self, bus: MqttBus) -> None:
        topic = self.topics.records(self.role, self.node_id)
        c = self._counters
        linger = self._publish_linger
        idle_too = self._publish_linger_idle
        last_publish = 0.0
        while True:
            if self._published_upto >= self._committed_head:
                self._pub_wakeup.clear()
                await self._pub_wakeup.wait()
                continue
            if linger > 0 and (idle_too or time.monotonic() - last_publish < 2 * linger) \
                    and self._committed_head - self._published_upto < self._max_batch_records // 2:
                # under load (we published a moment ago), or always where nothing waits on the
                # first record (publish_linger_idle), wait a little for more records: every
                # publish costs each receiver a message and a commit, far more than a record does
                await asyncio.sleep(linger)
            batch = self._next_batch()
            if not batch:
                await asyncio.sleep(0.01)
                continue
            payload = encode_batch(self.node_id, self.role, (d for _, d in batch))
            self._remember_own_payload(payload)  # before the publish: the echo may come first
            await bus.publish(topic, payload, qos=1)
            self._published_upto = batch[-1][0]
            last_publish = time.monotonic()
            c.published += len(batch)
            c.publishes += 1

    def _next_batch(self) -> list[tuple[int, bytes]]:
        """Own records after ``published_upto``: from the outbox, or LMDB if it was trimmed."""
        outbox = self._outbox
        start = self._published_upto + 1
        while outbox and outbox[0][0] < start:
            outbox.popleft()
        limit, max_bytes = self._max_batch_records, self._max_batch_bytes
        out: list[tuple[int, bytes]] = []
        size = 0
        if outbox and outbox[0][0] == start:
            source: Any = islice(outbox, limit)
        else:
            source = self.log.iter_raw(self.node_id, start, min(self._committed_head, start + limit - 1))
        for seq, data in source:
            if out and size + len(data) > max_bytes:
                break
            out.append((seq, data))
            size += len(data)
        return out

    async def _digests(self, bus: MqttBus) -> None:
        topic = self.topics.digest(self.role, self.node_id)
        while True:
            payload = encode_digest(self.node_id, self.role, self._committed_head, self.log.high_water_marks())
            await bus.publish(topic, payload, qos=0, retain=True)
            # Re-check every held origin: covers requests or resends that were lost.
            for origin, st in self.log.origin_states().items():
                if origin != self.node_id and (st.max_seq > st.hwm or self._catchup.head(origin) > st.hwm):
                    self._check_gap(origin)
            await asyncio.sleep(self._digest_interval)

    async def _resend_server(self, bus: MqttBus) -> None:
        """Answer resend requests, a publish-sized slice at a time (short loop stalls).

        Up to this node's own high-water mark every slice is an "R" (:mod:`replication.wire`)
        covering its whole seq range: the records still held, and the word that every other
        seq of the range was archived (retention removes only records at or below the mark,
        so a seq missing there was archived, not lost). A replica's mark then moves over the
        archived holes instead of stopping at the first one and asking for it for ever. Past
        the mark (only in a log rebuilt from peers with gaps) the records held go as plain
        "B" batches, which claim nothing about the seqs they lack."""
        c = self._counters
        while True:
            req = await self._resend_queue.get()
            try:
                last = min(req.last, self._committed_head, req.first + self._resend_chunk - 1)
                if last < req.first:
                    continue
                topic = self.topics.resends(req.requester, self.node_id)
                own = self.log.origin_state(self.node_id)
                complete_upto = min(last, own.hwm if own is not None else 0)
                first = req.first
                while first <= last:
                    end, chunk = self._resend_slice(first, complete_upto if first <= complete_upto else last)
                    if first <= complete_upto:
                        payload = encode_resend(self.node_id, self.role, first, end, chunk)
                    elif chunk:
                        payload = encode_batch(self.node_id, self.role, chunk)
                    else:
                        break
                    await bus.publish(topic, payload, qos=1)
                    c.publishes += 1
                    c.resent += len(chunk)
                    first = end + 1
                c.resends_served += 1
            finally:
                self._resend_pending.discard((req.requester, req.first, req.last))

    def _resend_slice(self, first: int, last: int) -> tuple[int, list[bytes]]:
        """Own records from ``first`` on, up to ``last``, as many as one publish takes
        (``max_batch_records``, ``max_batch_bytes``, at least one), and the seq the slice
        reaches: ``last`` when every record up to it fitted, else the last record's seq."""
        limit, max_bytes = self._max_batch_records, self._max_batch_bytes
        out: list[bytes] = []
        size = 0
        for seq, data in self.log.iter_raw(self.node_id, first, last):
            if len(out) == limit or (out and size + len(data) > max_bytes):
                break
            out.append(data)
            size += len(data)
            end = seq
        else:
            end = last
        return end, out
