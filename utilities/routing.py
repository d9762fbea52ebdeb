"""Customer -> street routing: at least once, idempotent on the transaction number.

A customer utility hands an order (or a cancel/replace request) to a street utility by
publishing the customer record itself on ``fixgw/<cluster>/cmd/<street>``. Street utilities
do not hold customer records (the replication matrix), so the command carries everything.
The customer utility repeats a command until a street record answers it (SENT for an order,
CANCEL_SENT / REPLACE_SENT for requests, or anything final), moving to another live street
when the chosen one dies; the street ignores a command whose answer it already holds, so
repeats are harmless.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from replication.record import Record, RecordType

ANSWERS: dict[RecordType, frozenset[RecordType]] = {
    RecordType.ORDER: frozenset({
        RecordType.SENT, RecordType.VENUE_ACK, RecordType.VENUE_REJECT, RecordType.FILL,
        RecordType.CANCELED, RecordType.EXPIRED, RecordType.VENUE_STATUS, RecordType.TAKEOVER,
    }),
    RecordType.CANCEL_REQUEST: frozenset({RecordType.CANCEL_SENT, RecordType.CANCELED, RecordType.CANCEL_REJECTED}),
    RecordType.REPLACE_REQUEST: frozenset({RecordType.REPLACE_SENT, RecordType.REPLACED, RecordType.CANCEL_REJECTED}),
}
FINAL = frozenset({RecordType.CANCELED, RecordType.EXPIRED, RecordType.VENUE_REJECT})


def command_topic(cluster: str, street: str) -> str:
    return f"fixgw/{cluster}/cmd/{street}"


def request_id(r: Record) -> str:
    """What names a command: the txn for an order, the request's ClOrdID for a request."""
    return r.txn if r.type is RecordType.ORDER else f"{r.txn}|{r.cl_ord_id}"


@dataclass
class Pending:
    record: Record
    street: str = ""
    sent_at: float = -1e18
    attempts: int = 0


@dataclass
class Router:
    """Which commands still wait for a street's answer, and where to (re)send them."""

    retry_s: float = 1.0
    monotonic: Callable[[], float] = time.monotonic
    pending: dict[str, Pending] = field(default_factory=dict)

    def add(self, r: Record, street: str = "") -> None:
        self.pending.setdefault(request_id(r), Pending(r, street))

    def answered_by(self, r: Record) -> list[str]:
        """Drop the commands a street record answers; returns their ids."""
        done: list[str] = []
        for rid, p in list(self.pending.items()):
            if p.record.txn != r.txn:
                continue
            kinds = ANSWERS.get(p.record.type, frozenset())
            if p.record.type is RecordType.ORDER:
                hit = r.type in kinds
            else:
                hit = (r.type in kinds and r.cl_ord_id == p.record.cl_ord_id) or r.type in FINAL
            if hit:
                done.append(rid)
                del self.pending[rid]
        return done

    def due(self, choose: Callable[[Pending], str | None]) -> Iterable[tuple[Pending, str]]:
        """Commands to (re)send now, with the street to send each to."""
        now = self.monotonic()
        for p in list(self.pending.values()):
            if now - p.sent_at < self.retry_s:
                continue
            street = choose(p)
            if street is None:
                continue
            p.street, p.sent_at = street, now
            p.attempts += 1
            yield p, street
