"""Where a customer's FIX session continues when another customer utility takes it: a pure rule.

A customer session (one BeginString and client CompID) is replicated state: the customer
utility that owns it writes SESSION records (:class:`replication.record.RecordType.SESSION`)
into its log, replicated to every other customer utility like its order records. This module
reads those records as :class:`SessionFact` and says, with no I/O and no clock:

- who owns the session now (:func:`current_owner`), and
- where a successor starts (:func:`successor_start`): its first MsgSeqNum out, the MsgSeqNum it
  expects in, and its ownership epoch.

Why reservations, not "the last number sent": an owner may die with messages on the wire whose
session records never left it, and a customer answers a MsgSeqNum it has already seen with
Logout ("MsgSeqNum too low"). So an owner sends a number only once a *reservation* covering it
(``taken`` or ``reserved`` with ``upto``) is durable and held by every live peer customer
utility (their digests' high-water marks of its log say so: :mod:`utilities.session_owner`).
Any successor then holds the reservation of every number that was sent, and starting above the
highest ``upto`` it knows is above everything the customer can have received. The numbers in
between are answered with SequenceReset-GapFill when the customer asks for them, and the events
they carried are reported again (PossResend=Y, same ExecID: :mod:`utilities.customer`).
A clean release (``released``, a handover) states the exact next numbers: when it ends the
current epoch, its owner's reservations of that epoch are void and the successor continues
without a gap (any other node's reservation, e.g. of a concurrent take-over, still counts).
The cost is one record per reserved block (a few thousand messages), not one per message.

Sequence numbers in: what the customer sent is known from the records of its requests (each
carries the MsgSeqNum it arrived with, ``in_seq``) and from releases. A successor may expect a
lower number than the customer's next one: the customer then resends (PossDupFlag=Y) and the
resent requests are recognised by ClOrdID. It must never expect a higher one (the customer would
be logged out), so after a sequence reset (ResetSeqNumFlag) only facts stamped after the latest
reset count for the inbound number.

Ownership: each take-over writes ``taken`` with the next epoch (one above the highest known);
the owner is the ``taken`` fact with the highest (epoch, stamp, node), unless that node released
that epoch. Two utilities that take the same epoch at once are ordered by the stamp (a hybrid
logical clock): the loser sees the winner's fact and closes its connection.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from replication.record import Record, RecordType

__all__ = [
    "FactKind",
    "Owner",
    "SessionFact",
    "SessionKey",
    "Start",
    "current_owner",
    "fact_of",
    "in_seq_of",
    "session_txn",
    "successor_start",
]

Stamp = tuple[int, int, str]  # a hybrid logical clock reading: (wall ns, logical, node)


class FactKind(str, enum.Enum):
    TAKEN = "taken"          # an owner took the session (epoch), reserving numbers up to ``upto``
    RESERVED = "reserved"    # the owner reserved more numbers, up to ``upto``
    RELEASED = "released"    # the owner handed the session over: its exact next numbers
    RESET = "reset"          # both sides started again at 1 (ResetSeqNumFlag)
    RECEIVED = "received"    # the customer's message ``next_target - 1`` arrived (a request's record)


@dataclass(frozen=True, slots=True)
class SessionKey:
    begin_string: str
    client: str  # the customer's CompID (our TargetCompID)

    def __str__(self) -> str:
        return f"{self.begin_string}:{self.client}"


def session_txn(key: SessionKey) -> str:
    """The txn under which a session's records are filed (so the log's txn index finds them)."""
    return f"session:{key.begin_string}:{key.client}"


@dataclass(frozen=True, slots=True)
class SessionFact:
    """One fact about a session, from one record."""

    kind: FactKind
    node: str
    stamp: Stamp
    epoch: int = 0
    upto: int = 0          # TAKEN / RESERVED: numbers up to this one may be sent
    next_sender: int = 0   # TAKEN: the first number of the epoch; RELEASED: the next one (0: unknown)
    next_target: int = 0   # RELEASED / RECEIVED: the next number expected from the customer (0: unknown)


@dataclass(frozen=True, slots=True)
class Start:
    """Where a new owner starts."""

    next_sender: int
    next_target: int
    epoch: int


@dataclass(frozen=True, slots=True)
class Owner:
    node: str
    epoch: int
    stamp: Stamp
    released: bool


def _int(v: object) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0


def fact_of(r: Record) -> tuple[SessionKey, SessionFact] | None:
    """The session fact a SESSION record states (None for any other record, or a broken one)."""
    if r.type is not RecordType.SESSION:
        return None
    begin, kind = r.extra.get("begin"), r.extra.get("kind")
    if not isinstance(begin, str) or not r.session or not isinstance(kind, str):
        return None
    try:
        k = FactKind(kind)
    except ValueError:
        return None
    e = r.extra
    return SessionKey(begin, r.session), SessionFact(
        k, r.origin, (r.hlc.wall_ns, r.hlc.logical, r.hlc.node), _int(e.get("epoch")), _int(e.get("upto")),
        _int(e.get("next_sender")), _int(e.get("next_target")),
    )


def in_seq_of(r: Record) -> tuple[SessionKey, SessionFact] | None:
    """A customer request's record (order, cancel, replace, refused order) says which of the
    customer's MsgSeqNums arrived: a RECEIVED fact; None when it does not say."""
    seq = _int(r.extra.get("in_seq"))
    begin = r.extra.get("begin")
    if not seq or not isinstance(begin, str) or not r.session:
        return None
    return SessionKey(begin, r.session), SessionFact(
        FactKind.RECEIVED, r.origin, (r.hlc.wall_ns, r.hlc.logical, r.hlc.node), next_target=seq + 1)


def current_owner(facts: Iterable[SessionFact]) -> Owner | None:
    """The latest ``taken`` fact by (epoch, stamp, node), and whether its node released it."""
    best: SessionFact | None = None
    released: set[tuple[str, int]] = set()
    for f in facts:
        if f.kind is FactKind.TAKEN:
            if best is None or (f.epoch, f.stamp, f.node) > (best.epoch, best.stamp, best.node):
                best = f
        elif f.kind is FactKind.RELEASED:
            released.add((f.node, f.epoch))
    if best is None:
        return None
    return Owner(best.node, best.epoch, best.stamp, (best.node, best.epoch) in released)


def successor_start(facts: Iterable[SessionFact]) -> Start:
    """Where a new owner starts, from whatever facts it holds (see the module docstring).

    next_sender: above every reserved number and every released next number; when the current
    owner released its epoch stating its next number, that number exactly (its own reservations
    of that epoch no longer count; everyone else's still do).
    next_target: the highest next number expected stated after the latest reset (1 if none).
    epoch: one above every epoch known.
    """
    facts = list(facts)
    # a clean handover of the current epoch states the exact next number: its owner's own
    # reservations of that epoch are void (it sent nothing at or above that number, and sends
    # nothing more), so the successor continues without a gap
    owner = current_owner(facts)
    exact: tuple[str, int] | None = None
    top_sent = 0
    if owner is not None and owner.released:
        stated = [f.next_sender for f in facts if f.kind is FactKind.RELEASED and f.node == owner.node
                  and f.epoch == owner.epoch and f.next_sender]
        if stated:
            exact = (owner.node, owner.epoch)
            top_sent = max(stated) - 1
    epoch = 0
    reset_at: Stamp | None = None
    targets: list[tuple[Stamp, int]] = []
    for f in facts:
        epoch = max(epoch, f.epoch)
        k = f.kind
        if k is FactKind.TAKEN or k is FactKind.RESERVED:
            if (f.node, f.epoch) != exact:
                top_sent = max(top_sent, f.upto, f.next_sender - 1)
        elif k is FactKind.RELEASED:
            top_sent = max(top_sent, f.next_sender - 1)
            if f.next_target:
                targets.append((f.stamp, f.next_target))
        elif k is FactKind.RECEIVED:
            targets.append((f.stamp, f.next_target))
        elif k is FactKind.RESET and (reset_at is None or f.stamp > reset_at):
            reset_at = f.stamp
    target = max((t for s, t in targets if reset_at is None or s > reset_at), default=1)
    return Start(top_sent + 1, max(1, target), epoch + 1)


def facts_by_key(records: Iterable[Record]) -> Mapping[SessionKey, list[SessionFact]]:
    """Every session fact in ``records``, by session (a helper for tools and tests)."""
    out: dict[SessionKey, list[SessionFact]] = {}
    for r in records:
        got = fact_of(r) or in_seq_of(r)
        if got is not None:
            out.setdefault(got[0], []).append(got[1])
    return out
