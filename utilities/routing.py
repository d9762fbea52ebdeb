"""Customer -> street routing: at least once, idempotent on the transaction number.

A customer utility hands an order (or a cancel/replace request) to a street utility by
publishing the customer record itself on ``fixgw/<cluster>/cmd/<street>``
(``replication.wire.Topics.commands``; ``utilities.node_process`` hands what a street's node
receives there to :meth:`StreetUtility.on_command`). Street utilities
do not hold customer records (the replication matrix), so the command carries everything.
The customer utility repeats a command until a street record answers it (SENT for an order,
CANCEL_SENT / REPLACE_SENT for requests, or anything final), moving to another live street
when the chosen one dies; the street ignores a command whose answer it already holds, so
repeats are harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import msgpack

from replication.record import Record, RecordType
from utilities.errors import MalformedMessage

COMMANDS_VERSION = 2
# Version 2 (issue 14, item 3) adds to each command when it was routed (wall clock) and, for a
# command moved from another street, that street's name and when its command expired. A street
# acts on a command only while it is fresh (``ttl_s``: the liveness timeout), and the customer
# utility moves a command to another street only once the first street's copy has expired: so
# the two never act on one order at once, and the new street still asks the venue first (the
# first street may have sent it, its records not here yet). Measured: a street SIGSTOPped past
# the liveness timeout under bench load, or just lagging seconds behind its commands, sent 253
# (then 466) of 2,400 orders to the venue twice (tests/e2e/test_e2e_fencing.py) before this.
# It assumes the nodes' wall clocks agree to well within the liveness timeout (one host, or NTP).
# The time to live is TTL_FACTOR liveness timeouts: at 1x (2 s in the e2e cluster) a street
# lagging behind its commands on a loaded host (2 cores, 97% busy) refused 1,661 and 3,887 of
# them as stale and 446 of 2,400 orders were not done when the bench ended; the price of a
# longer one is that an unanswered command waits that long before it moves to another street.
TTL_FACTOR = 4

ANSWERS: dict[RecordType, frozenset[RecordType]] = {
    RecordType.ORDER: frozenset({
        RecordType.SENT, RecordType.VENUE_ACK, RecordType.VENUE_REJECT, RecordType.FILL,
        RecordType.CANCELED, RecordType.EXPIRED, RecordType.VENUE_STATUS, RecordType.TAKEOVER,
    }),
    RecordType.CANCEL_REQUEST: frozenset({RecordType.CANCEL_SENT, RecordType.CANCELED, RecordType.CANCEL_REJECTED}),
    RecordType.REPLACE_REQUEST: frozenset({RecordType.REPLACE_SENT, RecordType.REPLACED, RecordType.CANCEL_REJECTED}),
}
FINAL = frozenset({RecordType.CANCELED, RecordType.EXPIRED, RecordType.VENUE_REJECT})


@dataclass(frozen=True, slots=True)
class Command:
    """One command of a command message: the customer record and its routing facts."""

    record: bytes
    moved_from: str = ""        # the street it went to before ("" if none)
    routed_at: float = 0.0      # wall clock when routed (0: unknown, a version 1 message)
    prev_expires: float = 0.0   # wall clock when the copy sent to ``moved_from`` expired

    def stale(self, ttl_s: float, now: float) -> bool:
        """Whether the customer utility may have moved this command elsewhere by ``now``."""
        return ttl_s > 0 and self.routed_at > 0 and now - self.routed_at > ttl_s


def encode_commands(items: list[Command]) -> bytes:
    """Several commands in one MQTT message (one publish per street per turn)."""
    return bytes(msgpack.packb([COMMANDS_VERSION, [c.record for c in items], [c.moved_from for c in items],
                                [c.routed_at for c in items], [c.prev_expires for c in items]]))


def decode_commands(payload: bytes) -> list[Command]:
    """The commands of a command message; MalformedMessage (a ValueError) when it is not one.
    Version 1 messages (records only) are read too."""
    try:
        v = msgpack.unpackb(payload)
    except Exception as exc:  # noqa: BLE001 - msgpack raises many types; all mean malformed
        raise MalformedMessage(f"not a command message: {exc}") from None
    if isinstance(v, list) and len(v) == 2 and v[0] == 1 and isinstance(v[1], list) \
            and all(isinstance(x, bytes) for x in v[1]):
        return [Command(x) for x in v[1]]
    if not isinstance(v, list) or len(v) != 5 or v[0] != COMMANDS_VERSION \
            or not all(isinstance(col, list) and len(col) == len(v[1]) for col in v[1:]) \
            or not all(isinstance(x, bytes) for x in v[1]) or not all(isinstance(x, str) for x in v[2]) \
            or not all(isinstance(x, float | int) for x in v[3] + v[4]):
        raise MalformedMessage("not a command message (expected [2, [record], [moved from], [routed at], [expired at]])")
    return [Command(r, m, float(t), float(e)) for r, m, t, e in zip(v[1], v[2], v[3], v[4], strict=True)]


def request_id(r: Record) -> str:
    """What names a command: the txn for an order, the request's ClOrdID for a request."""
    return r.txn if r.type is RecordType.ORDER else f"{r.txn}|{r.cl_ord_id}"


@dataclass
class Pending:
    record: Record
    street: str = ""
    sent_at: float = -1e18
    attempts: int = 0
    moved_from: str = ""   # the street this command went to before the current one (it may have acted)
    routed_at: float = 0.0     # wall clock of the last send
    prev_expires: float = 0.0  # wall clock when the copy at ``moved_from`` expired

    def command(self, encoded: bytes) -> Command:
        return Command(encoded, self.moved_from, self.routed_at, self.prev_expires)

    def next_at(self, retry_s: float, max_retry_s: float) -> float:
        if self.attempts == 0:
            return -1e18
        # back off: a busy street answers late, and repeats only add to its load
        return self.sent_at + min(max_retry_s, retry_s * float(2 ** (self.attempts - 1)))


@dataclass
class Router:
    """Which commands still wait for a street's answer, and where to (re)send them."""

    retry_s: float = 1.0
    max_retry_s: float = 8.0
    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    ttl_s: float = 0.0      # a street acts on a command this long (0: for ever); moved only after
    pending: dict[str, Pending] = field(default_factory=dict)
    by_txn: dict[str, set[str]] = field(default_factory=dict)

    def add(self, r: Record, street: str = "") -> str:
        rid = request_id(r)
        if rid not in self.pending:
            self.pending[rid] = Pending(r, street)
            self.by_txn.setdefault(r.txn, set()).add(rid)
        return rid

    def forget(self, rid: str) -> bool:
        """Stop routing a command (it will never be answered: superseded); True if it was pending."""
        if rid not in self.pending:
            return False
        self._drop(rid)
        return True

    def _drop(self, rid: str) -> None:
        p = self.pending.pop(rid)
        rids = self.by_txn.get(p.record.txn)
        if rids is not None:
            rids.discard(rid)
            if not rids:
                del self.by_txn[p.record.txn]

    def answered_by(self, r: Record) -> list[str]:
        """Drop the commands a street record answers; returns their ids."""
        done: list[str] = []
        for rid in list(self.by_txn.get(r.txn, ())):
            p = self.pending[rid]
            kinds = ANSWERS.get(p.record.type, frozenset())
            if p.record.type is RecordType.ORDER:
                hit = r.type in kinds
            else:
                hit = (r.type in kinds and r.cl_ord_id == p.record.cl_ord_id) or r.type in FINAL
            if hit:
                done.append(rid)
                self._drop(rid)
        return done

    def due(self, choose: Callable[[Pending], str | None], only: Iterable[str] | None = None
            ) -> Iterable[tuple[Pending, str]]:
        """Commands to (re)send now, with the street to send each to: new ones, ones whose
        street died, and unanswered ones once their back-off has passed."""
        now = self.monotonic()
        ids = list(self.pending) if only is None else [i for i in only if i in self.pending]
        for rid in ids:
            p = self.pending[rid]
            street = choose(p)
            if street is None:
                continue
            if street == p.street and now < p.next_at(self.retry_s, self.max_retry_s):
                continue
            wall = self.wall()
            if p.street and p.street != street:
                expires = p.routed_at + self.ttl_s
                if wall < expires:
                    continue    # the first street may still act on its copy: move it once expired
                p.moved_from, p.prev_expires = p.street, expires
            p.street, p.sent_at, p.routed_at = street, now, wall
            p.attempts += 1
            yield p, street
