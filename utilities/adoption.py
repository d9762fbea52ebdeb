"""A dead customer utility's orders that no street has answered: a live peer routes them.

Why. A customer utility acknowledges an order once its ORDER record is committed, then hands it
to a street utility (:mod:`utilities.routing`) and repeats until a street record answers. Its
records reach its peers by replication, which does not wait for routing: killed between the two,
the utility leaves an order that was acknowledged to the customer, is held by every peer and the
firm, and that no street was ever asked to send, until the dead utility is started again. Seen in
``tests/e2e/test_e2e_session_failover.py`` (FIX.4.4, one run in five with two busy loops beside
it, and once in CI): ClOrdID FX0 acknowledged PendingNew by cfu1 as cfu1-0.9, its ORDER record
at cfu2 and the firm, no SENT at any street; the customer, failed over to cfu2, never saw it
filled. The customer's own resends do not help: cfu2 holds the order, so no MsgSeqNum is missing.

Rule. Every customer utility keeps its peers' ORDER records that no street record has answered
yet (:class:`PeerOrders`: the answers are :data:`utilities.routing.ANSWERS`, so usually for a few
milliseconds). When a peer is presumed dead on fresh evidence (:mod:`utilities.fencing`) and has
been silent for the command time to live (``TTL_FACTOR`` liveness timeouts, the same bound a
router waits before it moves a command to another street: any command the dead peer sent has
expired at every street by then), the lowest-named live customer utility puts those orders in
its own router as commands *moved* from the peer: the street records a TAKEOVER and asks the
venue first, and sends the order only if the venue never saw it (a command of the peer may have
reached a street whose records are not here yet). A paused peer that wakes up routes nothing
until it has caught up, and routes an order to the street the adopter chose (the choice is a
function of the txn), which holds it already and ignores the repeat.

Only orders: a cancel or replace request left unrouted by a dead utility is answered by nothing,
and the customer may send it again to the successor, which takes it as new.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from replication.record import Record, RecordType
from utilities.routing import ANSWERS

ORDER_ANSWERS = ANSWERS[RecordType.ORDER]


def track(waiting: dict[str, Record], r: Record, *, from_peer: bool) -> None:
    """The rule, for the live view and the snapshot's alike: a peer's ORDER waits (its txn ->
    the record); a street's answer, or the peer's rejection of its own order, ends the wait."""
    t = r.type
    if t is RecordType.ORDER:
        if from_peer:
            waiting.setdefault(r.txn, r)
    elif t in ORDER_ANSWERS or t is RecordType.ORDER_REJECTED:
        waiting.pop(r.txn, None)


def answered(records: Iterable[Record]) -> bool:
    """Whether an order's records (from the log) hold a street's answer or its rejection."""
    return any(s.type in ORDER_ANSWERS or s.type is RecordType.ORDER_REJECTED for s in records)


@dataclass(frozen=True, slots=True)
class Peers:
    """What the adopter knows of its peer customer utilities now (from utilities.liveness and the fence)."""

    alive: Callable[[str], bool]
    presumed_dead: Callable[[str], bool]      # may be taken as dead on fresh evidence
    silent_for: Callable[[str], float]        # seconds since last heard (since this process started if never)


class PeerOrders:
    """The peers' orders waiting for a street's answer, and which to adopt."""

    __slots__ = ("me", "peers", "waiting")

    def __init__(self, me: str, peers: Iterable[str]) -> None:
        self.me = me
        self.peers = frozenset(peers) - {me}
        self.waiting: dict[str, Record] = {}   # txn -> the peer's ORDER record

    def see(self, r: Record) -> None:
        """A record added to the log (live)."""
        track(self.waiting, r, from_peer=r.origin in self.peers)

    def drop(self, txn: str) -> None:
        self.waiting.pop(txn, None)

    def due(self, peers: Peers, ttl_s: float) -> list[Record]:
        """The orders this utility should route now, oldest first: their origin presumed dead and
        silent for ``ttl_s``, and no lower-named customer utility alive to do it."""
        if not self.waiting:
            return []
        live = [p for p in self.peers if peers.alive(p)]
        if any(p < self.me for p in live):
            return []
        gone = {p for p in self.peers if not peers.alive(p) and peers.presumed_dead(p) and peers.silent_for(p) >= ttl_s}
        if not gone:
            return []
        return sorted((r for r in self.waiting.values() if r.origin in gone), key=lambda r: (r.origin, r.seq))
