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

COMMANDS_VERSION = 1

ANSWERS: dict[RecordType, frozenset[RecordType]] = {
    RecordType.ORDER: frozenset({
        RecordType.SENT, RecordType.VENUE_ACK, RecordType.VENUE_REJECT, RecordType.FILL,
        RecordType.CANCELED, RecordType.EXPIRED, RecordType.VENUE_STATUS, RecordType.TAKEOVER,
    }),
    RecordType.CANCEL_REQUEST: frozenset({RecordType.CANCEL_SENT, RecordType.CANCELED, RecordType.CANCEL_REJECTED}),
    RecordType.REPLACE_REQUEST: frozenset({RecordType.REPLACE_SENT, RecordType.REPLACED, RecordType.CANCEL_REJECTED}),
}
FINAL = frozenset({RecordType.CANCELED, RecordType.EXPIRED, RecordType.VENUE_REJECT})


def encode_commands(records: list[bytes]) -> bytes:
    """Several encoded customer records in one MQTT message (one publish per street per turn)."""
    return bytes(msgpack.packb([COMMANDS_VERSION, records]))


def decode_commands(payload: bytes) -> list[bytes]:
    """The encoded records of a command message; MalformedMessage (a ValueError) when it is not one."""
    try:
        v = msgpack.unpackb(payload)
    except Exception as exc:  # noqa: BLE001 - msgpack raises many types; all mean malformed
        raise MalformedMessage(f"not a command message: {exc}") from None
    if not isinstance(v, list) or len(v) != 2 or v[0] != COMMANDS_VERSION or not isinstance(v[1], list) \
            or not all(isinstance(x, bytes) for x in v[1]):
        raise MalformedMessage("not a command message (expected [1, [record bytes...]])")
    return list(v[1])


def request_id(r: Record) -> str:
    """What names a command: the txn for an order, the request's ClOrdID for a request."""
    return r.txn if r.type is RecordType.ORDER else f"{r.txn}|{r.cl_ord_id}"


@dataclass
class Pending:
    record: Record
    street: str = ""
    sent_at: float = -1e18
    attempts: int = 0

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
    pending: dict[str, Pending] = field(default_factory=dict)
    by_txn: dict[str, set[str]] = field(default_factory=dict)

    def add(self, r: Record, street: str = "") -> str:
        rid = request_id(r)
        if rid not in self.pending:
            self.pending[rid] = Pending(r, street)
            self.by_txn.setdefault(r.txn, set()).add(rid)
        return rid

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
            p.street, p.sent_at = street, now
            p.attempts += 1
            yield p, street
