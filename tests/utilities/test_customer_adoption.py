"""A dead customer utility's orders that no street answered are routed by a live peer
(utilities/adoption.py): the rule as pure logic, then a customer utility on a real record log
(LMDB, no broker) that publishes the adopted command, moved, to the street the txn maps to."""

from __future__ import annotations

import asyncio
import zlib
from decimal import Decimal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from replication.codec import decode_record, encode_record
from replication.node import ReplicationNode
from replication.record import Record, RecordType, Role
from tests.utilities.support_orderrecs import rec
from utilities.adoption import PeerOrders, Peers
from utilities.books import CASH_KEY
from utilities.customer import CustomerUtility
from utilities.liveness import Heartbeat, Liveness
from utilities.routing import decode_commands


def peers(alive: set[str], silent: dict[str, float]) -> Peers:
    return Peers(alive=lambda p: p in alive, presumed_dead=lambda p: p not in alive,
                 silent_for=lambda p: silent.get(p, 0.0))


def test_a_peer_order_waits_until_a_street_answers_it() -> None:
    po = PeerOrders("cfu2", ("cfu1", "cfu2", "cfu3"))
    own = rec(RecordType.ORDER, 0, origin="cfu2", txn="cfu2-0.1")
    a = rec(RecordType.ORDER, 0, origin="cfu1", txn="cfu1-0.1")
    b = rec(RecordType.ORDER, 1, origin="cfu1", txn="cfu1-0.2")
    for r in (own, a, b):
        po.see(r)
    assert set(po.waiting) == {"cfu1-0.1", "cfu1-0.2"}          # its own orders are its router's
    po.see(rec(RecordType.SENT, 2, origin="ssu1", txn="cfu1-0.1"))
    assert set(po.waiting) == {"cfu1-0.2"}
    po.see(rec(RecordType.ORDER_REJECTED, 3, origin="cfu1", txn="cfu1-0.2"))   # superseded by its peer
    assert po.waiting == {}


def test_adopted_only_by_the_lowest_live_utility_once_the_origin_is_dead_past_the_ttl() -> None:
    po = PeerOrders("cfu2", ("cfu1", "cfu3"))
    a = rec(RecordType.ORDER, 0, origin="cfu1", txn="cfu1-0.1")
    po.see(a)
    assert po.due(peers({"cfu1", "cfu3"}, {}), 8.0) == []                    # its origin lives
    assert po.due(peers({"cfu3"}, {"cfu1": 7.9}), 8.0) == []                 # its commands may still act
    assert po.due(peers({"cfu3"}, {"cfu1": 8.0}), 8.0) == [a]
    other = PeerOrders("cfu3", ("cfu1", "cfu2"))
    other.see(a)
    assert other.due(peers({"cfu2"}, {"cfu1": 9.0}), 8.0) == []              # cfu2 lives and is lower
    assert other.due(peers(set(), {"cfu1": 9.0, "cfu2": 9.0}), 8.0) == [a]   # both gone: cfu3 does it
    not_presumed = Peers(alive=lambda p: False, presumed_dead=lambda p: False, silent_for=lambda p: 99.0)
    assert po.due(not_presumed, 8.0) == []                                   # no fresh evidence


@given(st.permutations(range(6)), st.lists(st.integers(0, 5), max_size=4))
def test_what_waits_does_not_depend_on_the_order_records_arrive_in(order: list[int], again: list[int]) -> None:
    """The peer's orders, a street's answer to one, the peer's rejection of another, in any order
    and repeated: an order waits when its answer has not been seen after it. An answer seen
    before its order leaves the order waiting: the adopter checks the log before routing."""
    recs = [rec(RecordType.ORDER, 0, origin="cfu1", txn="cfu1-0.1"),
            rec(RecordType.ORDER, 0, origin="cfu1", txn="cfu1-0.2"),
            rec(RecordType.ORDER, 0, origin="cfu1", txn="cfu1-0.3"),
            rec(RecordType.SENT, 1, origin="ssu1", txn="cfu1-0.1"),
            rec(RecordType.ORDER_REJECTED, 1, origin="cfu1", txn="cfu1-0.2"),
            rec(RecordType.FILL, 2, origin="ssu1", txn="cfu1-0.1", exec_id="E1", last_qty=Decimal(1), last_px=Decimal(10))]
    po = PeerOrders("cfu2", ("cfu1",))
    seen: list[Record] = []
    for i in [*order, *again]:
        po.see(recs[i])
        seen.append(recs[i])
    for txn in ("cfu1-0.1", "cfu1-0.2", "cfu1-0.3"):
        mine = [r.type for r in seen if r.txn == txn]
        if RecordType.ORDER not in mine:
            assert txn not in po.waiting
        elif mine == [RecordType.ORDER] * len(mine):
            assert txn in po.waiting                      # nothing answered it
        elif mine[-1] is not RecordType.ORDER:
            assert txn not in po.waiting, mine            # its answer came last


async def test_a_customer_utility_routes_a_dead_peers_unanswered_orders_as_moved(tmp_path: Path) -> None:
    """cfu1 recorded two orders (one before cfu2 started, one while it ran) and died before
    routing them: once cfu1 is silent past the command time to live, cfu2 publishes each to the
    street the txn maps to, moved from cfu1 (the street asks the venue before sending); an order
    a street answered is not routed again, and nothing is routed while cfu1 lives."""
    clock = [1000.0]
    published: list[tuple[str, bytes]] = []

    async def publish(topic: str, payload: bytes) -> None:
        published.append((topic, payload))

    def order(seq: int) -> Record:
        return rec(RecordType.ORDER, seq, origin="cfu1", seq=seq, txn=f"cfu1-0.{seq}", cl_ord_id=f"C{seq}",
                   account="ACC1", order_qty=Decimal(10), price=Decimal(190))

    async with ReplicationNode(node_id="cfu2", role=Role.CUSTOMER, cluster="t", data_dir=tmp_path / "log",
                               mqtt=False) as node:
        await node.append(type=RecordType.ACCOUNT, txn="account:ACC1", status="open", account="ACC1",
                          extra={CASH_KEY: "100000000"})
        first, answered_one = order(1), order(2)
        with node.log.write() as batch:
            batch.insert(Role.CUSTOMER, [(r, encode_record(r)) for r in (first, answered_one)])
        liveness = Liveness(2.0, monotonic=lambda: clock[0])
        app = CustomerUtility(node=node, node_name="cfu2", comp_id="FIXGW", cluster="t",
                              customers={"CLIENT1": ("ACC1",)}, passwords={}, symbol_venues={"AAPL": "exchange"},
                              streets={"ssu1": ("exchange",), "ssu2": ("exchange",)}, liveness=liveness,
                              publish=publish, reference_prices={"AAPL": Decimal(190)}, peers=("cfu1",))
        app.load()
        assert set(app.peer_orders.waiting) == {"cfu1-0.1", "cfu1-0.2"}
        sent = rec(RecordType.SENT, 3, origin="ssu1", seq=1, txn="cfu1-0.2")
        with node.log.write() as batch:
            batch.insert(Role.STREET, [(sent, encode_record(sent))])
        app.on_record(sent)
        later = order(3)
        with node.log.write() as batch:
            batch.insert(Role.CUSTOMER, [(later, encode_record(later))])
        app.on_record(later)
        assert set(app.peer_orders.waiting) == {"cfu1-0.1", "cfu1-0.3"}

        def beat(*nodes: str) -> None:
            for n in nodes:
                liveness.saw(Heartbeat(n, "street" if n.startswith("ssu") else "customer", "ready",
                                       ("exchange",) if n.startswith("ssu") else ()))

        beat("cfu1", "ssu1", "ssu2")
        assert app.adopt_orphans() == 0                   # cfu1 lives
        clock[0] += 5.0
        beat("ssu1", "ssu2")
        assert app.adopt_orphans() == 0                   # dead, but its commands may still be acted on (8 s)
        clock[0] += 3.5
        beat("ssu1", "ssu2")
        assert app.adopt_orphans() == 2 and app.counters["adopted"] == 2
        assert app.peer_orders.waiting == {}
        await asyncio.sleep(0.05)                         # the outbox is published on the next loop turn
        commands = [(topic, c) for topic, payload in published for c in decode_commands(payload)]
        assert sorted(decode_record(c.record).txn for _, c in commands) == ["cfu1-0.1", "cfu1-0.3"]
        assert all(c.moved_from == "cfu1" and c.prev_expires > 0 for _, c in commands)
        for topic, c in commands:                         # the same street for a txn on every utility
            txn = decode_record(c.record).txn
            assert topic.endswith("/" + ["ssu1", "ssu2"][zlib.crc32(txn.encode()) % 2])
        assert app.adopt_orphans() == 0                   # once
