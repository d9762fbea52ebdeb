"""The successor's rule (utilities.session_rule), by property: whatever subset of an owner's session
records reached the successor before the owner died, its first MsgSeqNum is above every number
the customer can have received, and it never expects a number the customer has not reached."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from replication.hlc import Hlc
from replication.record import Record, RecordType
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

BLOCK = 50


@dataclass
class World:
    """Owners one after the other; every fact, and whether the live peers held it (confirmed)."""

    facts: list[tuple[SessionFact, bool]] = field(default_factory=list)
    sent: int = 0           # highest number sent since the last reset (the customer may have received it)
    customer_next: int = 1  # the customer's next MsgSeqNum
    clock: int = 0

    def stamp(self, node: str) -> tuple[int, int, str]:
        self.clock += 1
        return (self.clock, 0, node)


# one owner's life: what it does between taking the session and dying (or releasing it)
action = st.one_of(
    st.tuples(st.just("send"), st.integers(1, 3 * BLOCK)),
    st.tuples(st.just("reserve"), st.booleans()),      # a new block, held by the peers or not (yet)
    st.tuples(st.just("receive"), st.integers(1, 20)),  # the customer sends; the owner records some
    st.tuples(st.just("reset"), st.booleans()),
)
life = st.tuples(st.lists(action, max_size=12), st.booleans())  # actions, released at the end
subsets = st.integers(0, 2**128 - 1)   # a bit per fact: which unconfirmed facts a successor got


def run_owner(w: World, node: str, seen: list[SessionFact], actions: list[tuple[str, int]], release: bool) -> None:
    start = successor_start(seen)
    upto = start.next_sender + BLOCK - 1
    # the owner sends nothing before its take-over is held by the peers
    w.facts.append((SessionFact(FactKind.TAKEN, node, w.stamp(node), start.epoch, upto, start.next_sender,
                                start.next_target), True))
    confirmed, limit, next_sender = upto, upto, start.next_sender
    for kind, arg in actions:
        if kind == "send":
            n = min(int(arg), confirmed - next_sender + 1)   # never beyond what the peers hold
            if n > 0:
                next_sender += n
                w.sent = max(w.sent, next_sender - 1)
        elif kind == "reserve":
            limit += BLOCK
            held = bool(arg)
            w.facts.append((SessionFact(FactKind.RESERVED, node, w.stamp(node), start.epoch, limit), held))
            if held:
                confirmed = limit
        elif kind == "receive":
            for _ in range(int(arg)):
                seq = w.customer_next
                w.customer_next += 1
                if seq % 3:   # some of the customer's messages leave a record (its requests)
                    w.facts.append((SessionFact(FactKind.RECEIVED, node, w.stamp(node), next_target=seq + 1), False))
        elif kind == "reset" and arg:
            # both sides start again at 1: "too low" is about the numbers of the new sequence
            next_sender = 1
            w.customer_next = 1
            w.sent = 0
            w.facts.append((SessionFact(FactKind.RESET, node, w.stamp(node), start.epoch), False))
    if release:
        w.facts.append((SessionFact(FactKind.RELEASED, node, w.stamp(node), start.epoch, 0, next_sender,
                                    w.customer_next), False))


def visible(w: World, got: int) -> list[SessionFact]:
    return [f for i, (f, held) in enumerate(w.facts) if held or got >> (i % 128) & 1]


@settings(max_examples=200, deadline=None)
@given(st.lists(life, min_size=1, max_size=5), st.lists(subsets, min_size=5, max_size=5))
def test_successor_starts_above_everything_the_customer_can_have_received(lives: list[tuple[list[tuple[str, int]], bool]], subsets_: list[int]) -> None:
    w = World()
    seen: list[SessionFact] = []
    for i, (actions, release) in enumerate(lives):
        run_owner(w, f"cfu{i % 3 + 1}", seen, actions, release)
        seen = visible(w, subsets_[i])
        start = successor_start(seen)
        assert start.next_sender > w.sent
        assert start.epoch > max(f.epoch for f, _ in w.facts)


@settings(max_examples=200, deadline=None)
@given(st.lists(life, min_size=1, max_size=5), st.lists(subsets, min_size=5, max_size=5))
def test_successor_never_expects_more_than_the_customer_sent(lives: list[tuple[list[tuple[str, int]], bool]], subsets_: list[int]) -> None:
    w = World()
    seen: list[SessionFact] = []
    for i, (actions, release) in enumerate(lives):
        run_owner(w, f"cfu{i % 2 + 1}", seen, actions, release)
        # resets reach the successor (their records are batched with the logon's); the rest any subset
        seen = [f for i2, (f, held) in enumerate(w.facts)
                if held or f.kind is FactKind.RESET or subsets_[i] >> (i2 % 128) & 1]
        assert successor_start(seen).next_target <= w.customer_next


def test_owner_is_the_latest_taken_unless_released() -> None:
    a = SessionFact(FactKind.TAKEN, "cfu1", (1, 0, "cfu1"), 1, 100, 1)
    b = SessionFact(FactKind.TAKEN, "cfu2", (5, 0, "cfu2"), 2, 300, 201)
    c = SessionFact(FactKind.TAKEN, "cfu3", (4, 0, "cfu3"), 2, 300, 201)  # the same epoch, earlier stamp: loses
    owner = current_owner([a, b, c])
    assert owner is not None and (owner.node, owner.epoch, owner.released) == ("cfu2", 2, False)
    rel = SessionFact(FactKind.RELEASED, "cfu2", (6, 0, "cfu2"), 2, 0, 250, 40)
    owner = current_owner([a, b, c, rel])
    assert owner is not None and owner.released
    assert current_owner([]) is None
    # cfu2's clean release states its next number; cfu3's reservation of the same epoch still counts
    start = successor_start([a, b, c, rel])
    assert (start.next_sender, start.next_target, start.epoch) == (301, 40, 3)
    start = successor_start([a, b, rel])
    assert (start.next_sender, start.next_target, start.epoch) == (250, 40, 3)   # no gap after a handover


def _record(seq: int, type_: RecordType, extra: dict[str, str | int], session: str = "CLIENT1") -> Record:
    return Record(origin="cfu1", seq=seq, txn="t", type=type_, status="x", hlc=Hlc(10 + seq, 0, "cfu1"),
                  session=session, extra=extra)


def test_facts_from_records() -> None:
    key = SessionKey("FIX.4.4", "CLIENT1")
    got = fact_of(_record(1, RecordType.SESSION, {"begin": "FIX.4.4", "kind": "taken", "epoch": 3, "upto": 900,
                                                   "next_sender": 401, "next_target": 7}))
    assert got == (key, SessionFact(FactKind.TAKEN, "cfu1", (11, 0, "cfu1"), 3, 900, 401, 7))
    assert fact_of(_record(2, RecordType.SESSION, {"begin": "FIX.4.4", "kind": "nonsense"})) is None
    assert fact_of(_record(3, RecordType.ORDER, {"begin": "FIX.4.4", "in_seq": 5})) is None
    got = in_seq_of(_record(4, RecordType.ORDER, {"begin": "FIX.4.4", "in_seq": 5}))
    assert got is not None and got[1].kind is FactKind.RECEIVED and got[1].next_target == 6
    assert in_seq_of(_record(5, RecordType.ORDER, {"begin": "FIX.4.4"})) is None
    assert session_txn(key) == "session:FIX.4.4:CLIENT1"
