"""One owner per customer FIX session: taking a session, handing it over, reserving numbers, fencing.

A customer session (BeginString + client CompID) is owned by one customer utility at a time;
the owner is the only process that sends on it and reports the customer's events on it. The
facts are SESSION records in the log (:mod:`utilities.session_rule`); this module makes them
and acts on them.

Taking a session (:meth:`SessionOwner.acquire`, run when a customer's Logon arrives, before the
FIX session looks at it: ``Application.before_logon``):

- this process owns it already: carry on (the local store has the exact numbers);
- another live customer utility owns it: ask it on the bus (``Topics.sessions(owner)``)
  to hand over; it logs its connection out, writes ``released`` with its exact next numbers
  and stops sending. We wait for that record, for the owner to fall silent (``dead_after_s``,
  the liveness timeout), or for ``dead_after_s`` at most: an owner that does not answer in
  that time is presumed dead;
- then (or when the owner is dead or unknown) take it over: write ``taken`` with the next
  epoch and a first block of numbers above everything any earlier owner reserved
  (:func:`utilities.session_rule.successor_start`), wait until every live peer customer
  utility holds that record, start the local store there, and report the customer's events
  again once it is logged on (:mod:`utilities.customer`).

Numbers are reserved ahead in blocks (``block``, default 20,000), a new block once fewer than
one block is left ahead, so that waiting for the peers (their digests, published every
``heartbeat_s``) is off the path of every message: one record per 20,000 messages. Why that
big: with blocks of 5,000 renewed at half, an overloaded machine (load 19 on 2 cores, acks at
2.4 s p50 in ``fixgw bench --rate 1000``) let replication lag behind by more than the 2,500
numbers left, and the store refused commits (connections closed). A bigger block costs
nothing but a bigger gap-fill after a take-over (one SequenceReset whatever its size).
A number is used only once its block is held by every live peer (their digests' high-water
marks of our log); the store refuses a commit beyond that (:mod:`utilities.session_store`),
which closes the connection rather than risk a number a successor would not know about.
Measured cost: see the README's failover section (bench at --rate 1000, before and after).

Fencing (DESIGN.md): a process paused (SIGSTOP, a stall) or cut off from the broker for longer
than the liveness timeout may have been replaced. The rule and its detector are the street
utilities' own (:class:`utilities.fencing.Fence`, one watchdog per process): once fenced, the
process drops every session it owned at once (connections closed, nothing more sent: the store
refuses every commit from the moment the jump is seen, :meth:`Fence.stalled`) and takes no session
until the fence is lifted (caught up with its peers' records, heard since the wake-up). An owner
that does not answer a handover request is presumed dead only on fresh evidence
(:meth:`Fence.may_presume_dead`: silent while this process ran unfenced and connected), never on
the liveness view a pause froze. Ownership lost any other way (another utility's ``taken`` with a
higher epoch arrives) closes that connection the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgpack

from replication.record import Record, RecordType
from replication.wire import Topics
from utilities.fencing import Fence
from utilities.liveness import Liveness
from utilities.session_rule import (
    FactKind,
    SessionFact,
    SessionKey,
    current_owner,
    fact_of,
    in_seq_of,
    session_txn,
    successor_start,
)

__all__ = ["HandoverRequest", "NotReady", "SessionControl", "SessionOwner", "SessionView", "learn_fact"]

log = logging.getLogger(__name__)
BLOCK = 20_000
_POLL_S = 0.02
_HANDOVER_VERSION = 1


class NotReady(Exception):
    """The session cannot be taken now (peers do not confirm, still catching up): try again."""


@dataclass(frozen=True, slots=True)
class HandoverRequest:
    key: SessionKey
    requester: str
    epoch: int  # the owner's epoch the requester knows

    def encode(self) -> bytes:
        return bytes(msgpack.packb([_HANDOVER_VERSION, self.key.begin_string, self.key.client, self.requester,
                                    self.epoch]))

    @staticmethod
    def decode(data: bytes) -> HandoverRequest:
        try:
            v = msgpack.unpackb(data)
        except Exception as exc:  # noqa: BLE001 - msgpack raises several types
            raise ValueError(f"malformed handover request: {exc}") from None
        if (not isinstance(v, list) or len(v) < 5 or v[0] != _HANDOVER_VERSION
                or not all(isinstance(x, str) for x in v[1:4]) or not isinstance(v[4], int)):
            raise ValueError("not a handover request")
        return HandoverRequest(SessionKey(v[1], v[2]), v[3], v[4])


class SessionControl(Protocol):
    """What the owner needs of the FIX side (the customer utility implements it)."""

    def abort_session(self, key: SessionKey, reason: str) -> None:
        """Close the session's connection at once, sending nothing more."""

    async def log_out_session(self, key: SessionKey, text: str, timeout: float) -> tuple[int, int]:
        """Log the connection out (if any), wait for it to end; the exact next (sender, target)."""

    def start_session_at(self, key: SessionKey, next_sender: int, next_target: int) -> None:
        """A take-over: the session's store starts at these numbers, holding no messages."""

    def session_numbers(self, key: SessionKey) -> tuple[int, int]:
        """The session's next (sender, target) as its store holds them."""


class NodeLike(Protocol):
    """What the owner uses of the replication node."""

    @property
    def connected(self) -> bool: ...
    def append(self, *, type: RecordType, txn: str, status: str, **fields: Any) -> asyncio.Future[Record]: ...
    def peer_digests(self) -> dict[str, Any]: ...
    @property
    def log(self) -> Any: ...


@dataclass(slots=True)
class _Owned:
    epoch: int
    limit: int                                   # highest number reserved (appended)
    confirmed: int                               # highest number reserved and held by the live peers
    pending: list[tuple[int, int]] = field(default_factory=list)  # (record seq, upto) not yet confirmed
    used: int = 0                                # highest number committed
    reserving: bool = False


@dataclass(slots=True)
class SessionView:
    """What the log says of one session: its facts (RECEIVED ones pruned), for its current owner
    and a successor's numbers; a customer utility's snapshot keeps them (utilities.snapshot)."""

    facts: list[SessionFact] = field(default_factory=list)
    received: list[SessionFact] = field(default_factory=list)  # RECEIVED facts, Pareto-pruned

    def all(self) -> Iterable[SessionFact]:
        yield from self.facts
        yield from self.received

    def add_received(self, f: SessionFact) -> None:
        # keep only facts no other one beats on both stamp and number (resets need the stamps)
        kept = [g for g in self.received if not (f.stamp >= g.stamp and f.next_target >= g.next_target)]
        if not any(g.stamp >= f.stamp and g.next_target >= f.next_target for g in kept):
            kept.append(f)
        self.received = kept


def learn_fact(views: dict[SessionKey, SessionView], r: Record) -> tuple[SessionKey, SessionFact] | None:
    """Add the session fact of record ``r`` (if any) to ``views``; the fact, or None."""
    got = fact_of(r) if r.type is RecordType.SESSION else in_seq_of(r)
    if got is None:
        return None
    key, f = got
    view = views.get(key)
    if view is None:
        view = views[key] = SessionView()
    if f.kind is FactKind.RECEIVED:
        view.add_received(f)
    else:
        view.facts.append(f)
    return got


class SessionOwner:
    """Ownership of customer sessions on one customer utility (see the module docstring)."""

    def __init__(
        self,
        *,
        node: NodeLike,
        me: str,
        peers: Iterable[str],
        liveness: Liveness,
        dead_after_s: float,
        heartbeat_s: float,
        cluster: str,
        publish: Callable[[str, bytes], Awaitable[None]],
        block: int = BLOCK,
        monotonic: Callable[[], float] = time.monotonic,
        fence: Fence | None = None,
    ) -> None:
        """``fence``: the process's stall detector (:mod:`utilities.fencing`, its watchdog run by
        the caller); None: one of its own, whose watchdog nobody runs (tests)."""
        if block < 2:
            raise ValueError("block must be >= 2")
        self.node = node
        self.me = me
        self.peers = tuple(p for p in peers if p != me)
        self.liveness = liveness
        self.dead_after_s = dead_after_s
        self.heartbeat_s = heartbeat_s
        self.cluster = cluster
        self.topics = Topics(cluster)
        self.publish = publish
        self.block = block
        self._monotonic = monotonic
        self.views: dict[SessionKey, SessionView] = {}
        self.owned: dict[SessionKey, _Owned] = {}
        self.report_again: set[SessionKey] = set()   # taken over: report the events again after logon
        self.control: SessionControl | None = None
        self.fence = fence if fence is not None else Fence(me, node, dead_after_s=dead_after_s,
                                                           heartbeat_s=heartbeat_s, monotonic=monotonic)
        self.fence.on_fence(self._drop_all)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._locks: dict[SessionKey, asyncio.Lock] = {}
        self.counters = {"taken": 0, "handed_over": 0, "lost": 0, "fenced": 0, "reserved": 0, "refused": 0}

    # ------------------------------------------------------------------ facts
    def load(self, records: Iterable[Record]) -> None:
        """The facts of the log at start-up (this run owns nothing yet)."""
        for r in records:
            self._learn(r)

    def on_record(self, r: Record) -> None:
        """A record committed here (own or a peer's): learn its fact, notice a lost session."""
        got = self._learn(r)
        if got is not None:
            self.on_fact(*got)

    def on_fact(self, key: SessionKey, f: SessionFact) -> None:
        """A fact learnt (into :attr:`views`) from a record committed here: notice a lost session."""
        own = self.owned.get(key)
        if own is None or f.kind is not FactKind.TAKEN or f.node == self.me:
            return
        owner = current_owner(self.views[key].all())
        if owner is not None and owner.node != self.me:
            self._lose(key, f"{f.node} took the session (epoch {f.epoch})")

    def _learn(self, r: Record) -> tuple[SessionKey, SessionFact] | None:
        return learn_fact(self.views, r)

    def restore_views(self, views: dict[SessionKey, SessionView]) -> None:
        """The facts of the log up to a snapshot and its tail (start-up, utilities.snapshot)."""
        self.views = views

    def facts(self, key: SessionKey) -> list[SessionFact]:
        view = self.views.get(key)
        return list(view.all()) if view is not None else []

    def owns(self, key: SessionKey) -> bool:
        return key in self.owned

    def owned_clients(self) -> tuple[str, ...]:
        """Client CompIDs whose sessions this process owns (for the heartbeat)."""
        return tuple(sorted({k.client for k in self.owned}))

    # ------------------------------------------------------------------ the store's questions
    def may_send(self, key: SessionKey, last_seq: int) -> str | None:
        """None when numbers up to ``last_seq`` may go out on this session from here."""
        if self.fence.stalled():
            self.counters["refused"] += 1
            return "this process was paused or cut off: it may have been replaced"
        own = self.owned.get(key)
        if own is None:
            self.counters["refused"] += 1
            return f"{self.me} does not own the session"
        own.used = max(own.used, last_seq)
        if last_seq > own.confirmed:
            self._update_confirmed(own)
            if last_seq > own.confirmed:
                self._call_soon(self._reserve_ahead, key)
                self.counters["refused"] += 1
                # what this batch held is lost with it: report everything again at the next logon
                self.report_again.add(key)
                return f"MsgSeqNum {last_seq} is beyond the replicated reservation ({own.confirmed})"
        if own.limit - own.used < self.block and not own.reserving:
            self._call_soon(self._reserve_ahead, key)
        return None

    def reset_happened(self, key: SessionKey) -> None:
        if key in self.owned:
            self._call_soon(self._append_reset, key)

    def _call_soon(self, fn: Callable[[SessionKey], None], key: SessionKey) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            loop.call_soon(fn, key)
        else:  # the engine's store thread
            loop.call_soon_threadsafe(fn, key)

    def _append_reset(self, key: SessionKey) -> None:
        self._spawn(self._append(key, FactKind.RESET, epoch=self.owned[key].epoch if key in self.owned else 0))

    # ------------------------------------------------------------------ reservations
    def _acked_by_peers(self) -> int | None:
        """Our highest record held by every live peer customer utility (None: no live peer)."""
        digests = self.node.peer_digests()
        acked: int | None = None
        for p in self.peers:
            if not self.liveness.alive(p):
                continue
            d = digests.get(p)
            held = int(d.hwms.get(self.me, 0)) if d is not None else 0
            acked = held if acked is None else min(acked, held)
        return acked

    def _update_confirmed(self, own: _Owned) -> None:
        if not own.pending:
            return
        acked = self._acked_by_peers()
        keep: list[tuple[int, int]] = []
        for seq, upto in own.pending:
            if acked is None or seq <= acked:
                own.confirmed = max(own.confirmed, upto)
            else:
                keep.append((seq, upto))
        own.pending = keep

    def _reserve_ahead(self, key: SessionKey) -> None:
        own = self.owned.get(key)
        if own is None or own.reserving or own.limit - own.used >= self.block:
            return
        own.reserving = True
        self._spawn(self._reserve(key, own))

    async def _reserve(self, key: SessionKey, own: _Owned) -> None:
        try:
            upto = max(own.limit, own.used) + self.block
            rec = await self._append(key, FactKind.RESERVED, epoch=own.epoch, upto=upto)
            own.limit = max(own.limit, upto)
            own.pending.append((rec.seq, upto))
            self.counters["reserved"] += 1
        finally:
            own.reserving = False

    async def _append(self, key: SessionKey, kind: FactKind, **extra: int) -> Record:
        e: dict[str, Any] = {"begin": key.begin_string, "kind": kind.value}
        e.update(extra)
        return await self.node.append(type=RecordType.SESSION, txn=session_txn(key), status=kind.value,
                                      session=key.client, extra=e)

    async def _wait_confirmed(self, own: _Owned, need: int, timeout: float) -> bool:
        deadline = self._monotonic() + timeout
        while True:
            self._update_confirmed(own)
            if own.confirmed >= need:
                return True
            if self._monotonic() >= deadline:
                return False
            await asyncio.sleep(_POLL_S)

    # ------------------------------------------------------------------ taking a session
    async def acquire(self, key: SessionKey) -> bool:
        """Make this process the session's owner (see the module docstring); True when it took
        the session over (its events are to be reported again), False when it owned it already.
        Raises NotReady when it cannot now (the customer tries again)."""
        self._loop = asyncio.get_running_loop()
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            return await self._acquire(key)

    async def _acquire(self, key: SessionKey) -> bool:
        await self._caught_up()
        own = self.owned.get(key)
        control = self.control
        if own is not None:
            sender, _ = control.session_numbers(key) if control is not None else (1, 1)
            if own.limit - max(own.used, sender) < self.block:
                self._reserve_ahead(key)
            if not await self._wait_confirmed(own, sender + 1, self._patience()):
                raise NotReady("sequence numbers not yet replicated to the peer customer utilities")
            return False
        owner = current_owner(self.facts(key))
        if owner is not None and owner.node != self.me and not owner.released:
            if self.liveness.alive(owner.node):
                await self._ask_handover(key, owner.node, owner.epoch)
            elif not self.fence.may_presume_dead(self.liveness.silent_for(owner.node)):
                raise NotReady(f"{owner.node} owns the session and cannot be presumed dead yet "
                               "(no fresh evidence of its silence)")
        if not self.fence.may_act():
            raise NotReady("this process was paused or cut off meanwhile")
        start = successor_start(self.facts(key))
        upto = start.next_sender + self.block - 1
        rec = await self._append(key, FactKind.TAKEN, epoch=start.epoch, upto=upto,
                                 next_sender=start.next_sender, next_target=start.next_target)
        own = _Owned(start.epoch, upto, 0, [(rec.seq, upto)], start.next_sender - 1)
        if not await self._wait_confirmed(own, start.next_sender + 1, self._patience()):
            raise NotReady("the take-over is not yet replicated to the peer customer utilities")
        later = current_owner(self.facts(key))
        if later is not None and later.node != self.me:
            raise NotReady(f"{later.node} took the session meanwhile")
        if control is not None:
            control.start_session_at(key, start.next_sender, start.next_target)
        self.owned[key] = own
        self.report_again.add(key)
        self.counters["taken"] += 1
        log.info("%s: took session %s (epoch %d) from %s: next out %d, next in %d", self.me, key, start.epoch,
                 owner.node if owner is not None else "nobody", start.next_sender, start.next_target)
        return True

    def _patience(self) -> float:
        return self.dead_after_s + 4 * self.heartbeat_s

    async def _ask_handover(self, key: SessionKey, owner: str, epoch: int) -> None:
        """Ask the live owner to hand over; back when it released, fell silent, or did not answer
        within the liveness timeout (then presumed dead)."""
        try:
            await self.publish(self.topics.sessions(owner), HandoverRequest(key, self.me, epoch).encode())
        except Exception as exc:  # noqa: BLE001 - the broker is away: the owner cannot be asked, nor heard
            log.warning("%s: handover request for %s to %s not sent: %s", self.me, key, owner, exc)
        deadline = self._monotonic() + self.dead_after_s
        while self._monotonic() < deadline:
            now = current_owner(self.facts(key))
            if now is None or now.node != owner or now.epoch != epoch or now.released:
                return
            if not self.liveness.alive(owner):
                break
            await asyncio.sleep(_POLL_S)
        # silent or unanswering: presumed dead only on fresh evidence (this process ran unfenced
        # and connected the whole time), never on a view a pause froze
        if not self.fence.may_presume_dead(None if self.liveness.alive(owner) else self.liveness.silent_for(owner)):
            raise NotReady(f"{owner} did not hand session {key} over, and this process cannot tell whether "
                           "it is alive (paused or cut off meanwhile)")
        log.warning("%s: %s did not hand session %s over within %.1fs: presumed dead", self.me, owner, key,
                    self.dead_after_s)

    async def on_handover_request(self, req: HandoverRequest) -> None:
        """A peer wants a session we may own: log its connection out, write ``released``."""
        own = self.owned.get(req.key)
        if own is None:
            # not ours in this run: release the epoch the requester saw, if it was ours
            owner = current_owner(self.facts(req.key))
            if owner is not None and owner.node == self.me and owner.epoch == req.epoch and not owner.released:
                await self._append(req.key, FactKind.RELEASED, epoch=req.epoch)
            return
        sender, target = (1, 1)
        if self.control is not None:
            sender, target = await self.control.log_out_session(req.key, f"session moved to {req.requester}", 2.0)
        if self.owned.get(req.key) is not own:
            return
        del self.owned[req.key]   # from here the store refuses every commit of the session
        self.counters["handed_over"] += 1
        await self._append(req.key, FactKind.RELEASED, epoch=own.epoch, next_sender=sender, next_target=target)
        log.info("%s: handed session %s over to %s at out %d, in %d", self.me, req.key, req.requester, sender, target)

    def on_handover_message(self, payload: bytes) -> None:
        try:
            req = HandoverRequest.decode(payload)
        except ValueError as exc:
            log.warning("%s: %s", self.me, exc)
            return
        self._spawn(self.on_handover_request(req))

    def _lose(self, key: SessionKey, why: str) -> None:
        if self.owned.pop(key, None) is None:
            return
        self.counters["lost"] += 1
        log.warning("%s: lost session %s: %s; its connection is closed", self.me, key, why)
        if self.control is not None:
            self.control.abort_session(key, why)

    # ------------------------------------------------------------------ fencing
    def _drop_all(self, why: str) -> None:
        """Fenced (utilities.fencing): drop every session now; take none until the fence is lifted."""
        self.counters["fenced"] += 1
        log.warning("%s: %s: dropping %d session(s) until caught up with the peers", self.me, why, len(self.owned))
        for key in list(self.owned):
            self._lose(key, why)

    async def _caught_up(self) -> None:
        """Return once not fenced (the fence is lifted once caught up with the peers); NotReady if
        that takes longer than the customer should wait for its Logon's answer."""
        deadline = self._monotonic() + self._patience()
        while not self.fence.may_act():
            if self._monotonic() >= deadline:
                raise NotReady("still catching up with the peers after a pause")
            await asyncio.sleep(_POLL_S)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: session task failed: %r", self.me, task.exception())
