"""ReplicationNode on a real mosquitto broker, real LMDB files, real sockets."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiomqtt
import msgpack
import pytest

from replication.codec import encode_record
from replication.hlc import Hlc
from replication.node import ReplicationNode
from replication.record import Record, RecordType, Role
from replication.wire import encode_batch
from tests.support.broker import Mosquitto


async def until(pred: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def node(tmp: Path, broker: Mosquitto, node_id: str, role: Role, **kw: Any) -> ReplicationNode:
    return ReplicationNode(node_id=node_id, role=role, cluster="t", data_dir=tmp / node_id,
                           broker_port=broker.port, digest_interval=kw.pop("digest_interval", 0.2),
                           login=broker.login(node_id, role), **kw)


@pytest.mark.timeout(30)
async def test_two_nodes_replicate_with_listeners_once_and_nodelay(tmp_path: Path, mosquitto: Mosquitto) -> None:
    async with node(tmp_path, mosquitto, "c1", Role.CUSTOMER) as a, \
            node(tmp_path, mosquitto, "f1", Role.FIRM) as f:
        await a.wait_connected(5)
        await f.wait_connected(5)
        for n in (a, f):
            sock = n.mqtt_socket()
            assert sock is not None and sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        seen_a: list[Record] = []
        seen_f: list[Record] = []
        a.add_listener(seen_a.append)
        f.add_listener(seen_f.append)
        recs = await asyncio.gather(*(a.append(type=RecordType.ORDER, txn=f"c1-{i % 50}", status="new")
                                      for i in range(1000)))
        assert sorted(r.seq for r in recs) == list(range(1, 1001))
        assert len(seen_a) == 1000  # own records: listeners ran before append returned
        await until(lambda: len(seen_f) >= 1000, timeout=20, what="firm to receive 1000 records")
        await a.flush(10)  # every PUBACK is in (the firm may have had the records before that)
        await asyncio.sleep(0.3)
        assert len(seen_f) == 1000 and len({(r.origin, r.seq) for r in seen_f}) == 1000
        assert f.log.high_water_marks()["c1"] == 1000
        assert [r.seq for r in f.log.records_for_txn("c1-7")] == [r.seq for r in a.log.records_for_txn("c1-7")]
        assert f.log.count() == 1000 and len(list(f.log.iter_read_only())) == 1000
        assert f.clock.now() > recs[-1].hlc  # the firm's clock observed what it received
        st = a.stats
        assert st.published == 1000 and st.publishes < 1000 and st.connected  # several per publish
        assert f.stats.received == 1000 and f.stats.malformed == 0


@pytest.mark.timeout(30)
@pytest.mark.parametrize("idle_too", [False, True])
async def test_publish_linger_idle_sends_records_appended_apart_in_one_message(
        tmp_path: Path, mosquitto: Mosquitto, idle_too: bool) -> None:
    """Two records appended 20 ms apart on an idle node: one publish with publish_linger_idle
    (the first waits the linger for more), two without (the first goes at once)."""
    async with node(tmp_path, mosquitto, "s1", Role.STREET, publish_linger=0.2, publish_linger_idle=idle_too) as s, \
            node(tmp_path, mosquitto, "f1", Role.FIRM) as f:
        await s.wait_connected(5)
        await f.wait_connected(5)
        await s.append(type=RecordType.SENT, txn="c1-1", status="sent")
        await asyncio.sleep(0.02)
        await s.append(type=RecordType.VENUE_ACK, txn="c1-1", status="0")
        await until(lambda: f.log.high_water_marks().get("s1") == 2, what="the firm to hold both")
        await s.flush(5)
        assert s.stats.published == 2
        assert s.stats.publishes == (1 if idle_too else 2)


@pytest.mark.timeout(30)
async def test_malformed_payloads_are_counted_and_survived(tmp_path: Path, mosquitto: Mosquitto) -> None:
    async with node(tmp_path, mosquitto, "c2", Role.CUSTOMER) as b:
        await b.wait_connected(5)
        good = Record(origin="c1", seq=1, txn="t", type=RecordType.NOTE, status="s", hlc=Hlc(1, 0, "c1"))
        c1 = mosquitto.login("c1", Role.CUSTOMER)  # c1 itself gone wrong: the broker lets it publish there
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="evil", username=c1.username,
                                  password=c1.password) as raw:
            for payload in (b"\x00garbage", msgpack.packb([1, "B", "c1", "customer", [b"\x93bad"]]),
                            encode_batch("c9", Role.CUSTOMER, [encode_record(good)]),  # wrong topic
                            msgpack.packb([1, "B", "c1", "customer", [encode_record(good)]])):
                await raw.publish("fixgw/t/rec/customer/c1", payload, qos=1)
        await until(lambda: b.log.high_water_marks().get("c1") == 1, what="the good batch")
        assert b.stats.malformed == 3


@pytest.mark.timeout(30)
async def test_a_gap_is_filled_from_the_origin_log(tmp_path: Path, mosquitto: Mosquitto) -> None:
    # Digests every 60 s: only the gap seen on a live record can trigger the catch-up here.
    async with node(tmp_path, mosquitto, "s1", Role.STREET, digest_interval=60) as a:
        await a.wait_connected(5)
        for i in range(5):  # nobody subscribed yet: lost for s2
            await a.append(type=RecordType.FILL, txn=f"t{i}", status="filled")
        await a.flush(5)
        async with node(tmp_path, mosquitto, "s2", Role.STREET, digest_interval=60) as b:
            await b.wait_connected(5)
            await asyncio.sleep(0.2)
            assert b.log.high_water_marks().get("s1", 0) == 0
            await a.append(type=RecordType.FILL, txn="t5", status="filled")
            await until(lambda: b.log.high_water_marks().get("s1") == 6, what="s2 to catch up 1..6")
            assert b.stats.gaps_requested >= 1 and a.stats.resends_served >= 1


@pytest.mark.timeout(30)
async def test_digest_catches_a_silently_lost_tail(tmp_path: Path, mosquitto: Mosquitto) -> None:
    async with node(tmp_path, mosquitto, "c1", Role.CUSTOMER) as a:
        await a.wait_connected(5)
        for i in range(20):
            await a.append(type=RecordType.ORDER, txn=f"t{i}", status="new")
        await a.flush(5)
        # c2 never subscribed before: nothing was queued for it. Only the digest tells it.
        async with node(tmp_path, mosquitto, "c2", Role.CUSTOMER) as b:
            await until(lambda: b.log.high_water_marks().get("c1") == 20, what="c2 to fetch 1..20")
            assert b.log.get("c1", 20) == a.log.get("c1", 20)


@pytest.mark.timeout(30)
async def test_a_long_backlog_is_fetched_in_bounded_chunks(tmp_path: Path, mosquitto: Mosquitto) -> None:
    async with node(tmp_path, mosquitto, "c1", Role.CUSTOMER, resend_chunk=40, max_batch_records=15) as a:
        await a.wait_connected(5)
        await asyncio.gather(*(a.append(type=RecordType.ORDER, txn=f"t{i}", status="new") for i in range(300)))
        await a.flush(5)
        async with node(tmp_path, mosquitto, "c2", Role.CUSTOMER, resend_chunk=40) as b:
            await until(lambda: b.log.high_water_marks().get("c1") == 300, what="c2 to fetch 300 records")
            assert b.stats.gaps_requested >= 300 // 40
            # a counts a resent chunk once the broker has acknowledged it, which can be after b
            # has already committed it: wait for the count rather than race the PUBACK
            await until(lambda: a.stats.resent >= 300 and a.stats.publishes >= 300 // 15,
                        what="c1 to count every record it resent")


@pytest.mark.timeout(40)
async def test_appends_continue_while_the_broker_is_down(tmp_path: Path, mosquitto: Mosquitto) -> None:
    # outbox_limit=10: most records appended meanwhile are published from LMDB, not memory
    async with node(tmp_path, mosquitto, "c1", Role.CUSTOMER, backoff_max=0.3, outbox_limit=10) as a, \
            node(tmp_path, mosquitto, "c2", Role.CUSTOMER, backoff_max=0.3) as b:
        await a.wait_connected(5)
        await b.wait_connected(5)
        await a.append(type=RecordType.ORDER, txn="before", status="new")
        await until(lambda: b.log.high_water_marks().get("c1") == 1)
        mosquitto.kill()
        await until(lambda: not a.connected, what="a to notice the broker is gone")
        for i in range(50):
            await a.append(type=RecordType.ORDER, txn=f"during{i}", status="new")  # durable meanwhile
        assert a.log.head == 51
        mosquitto.start()
        await until(lambda: b.log.high_water_marks().get("c1") == 51, timeout=20, what="catch-up after restart")
        assert a.stats.connects >= 2
        assert [r.txn for r in b.log.iter_origin("c1")] == ["before"] + [f"during{i}" for i in range(50)]


@pytest.mark.timeout(30)
async def test_a_node_starts_and_appends_without_a_broker_then_catches_up(tmp_path: Path) -> None:
    broker = Mosquitto()  # not started yet
    try:
        async with node(tmp_path, broker, "s1", Role.STREET, backoff_max=0.2) as a:
            for i in range(10):
                await a.append(type=RecordType.FILL, txn=f"t{i}", status="filled")
            assert not a.connected and a.log.head == 10
            broker.start()
            async with node(tmp_path, broker, "f1", Role.FIRM) as f:
                await until(lambda: f.log.high_water_marks().get("s1") == 10, what="the firm to get s1's records")
                assert a.connected
    finally:
        broker.close()


async def test_listener_replay_without_a_broker(tmp_path: Path) -> None:
    async with ReplicationNode(node_id="c1", role=Role.CUSTOMER, cluster="t", data_dir=tmp_path, mqtt=False) as n:
        for i in range(3):
            await n.append(type=RecordType.ORDER, txn=f"t{i}", status="new")
    async with ReplicationNode(node_id="c1", role=Role.CUSTOMER, cluster="t", data_dir=tmp_path, mqtt=False) as n:
        seen: list[int] = []
        n.add_listener(lambda r: seen.append(r.seq), replay=True)
        assert seen == [1, 2, 3]
        assert (await n.append(type=RecordType.ORDER, txn="t3", status="new")).seq == 4
        assert seen == [1, 2, 3, 4] and not n.connected


@pytest.mark.timeout(30)
async def test_a_node_whose_log_was_lost_notices(tmp_path: Path, mosquitto: Mosquitto) -> None:
    async with node(tmp_path, mosquitto, "c1", Role.CUSTOMER) as a, node(tmp_path, mosquitto, "c2", Role.CUSTOMER) as b:
        await a.wait_connected(5)
        await b.wait_connected(5)
        for i in range(3):
            await a.append(type=RecordType.ORDER, txn=f"t{i}", status="new")
        await until(lambda: b.log.high_water_marks().get("c1") == 3)
    # c1 comes back with an empty data directory: c2's digest tells it
    async with node(tmp_path / "lost", mosquitto, "c1", Role.CUSTOMER) as a2, \
            node(tmp_path, mosquitto, "c2", Role.CUSTOMER):
        await until(lambda: a2.stats.behind_peers, what="c1 to notice that c2 holds more of its records")


async def test_append_fields_takes_the_whole_record_as_one_dict(tmp_path: Path) -> None:
    async with ReplicationNode(node_id="c1", role=Role.CUSTOMER, cluster="t", data_dir=tmp_path, mqtt=False) as n:
        a = await n.append(type=RecordType.ORDER, txn="t1", status="new", account="A", price=Decimal("1.50"))
        b = await n.append_fields({"type": RecordType.ORDER, "txn": "t2", "status": "new", "account": "A",
                                   "price": Decimal("1.50")})
        assert (b.seq, b.txn) == (a.seq + 1, "t2")
        assert b.replace(seq=a.seq, txn="t1", hlc=a.hlc) == a
        assert [r.seq for r in n.log.records_for_txn("t2")] == [b.seq]
        with pytest.raises(ValueError, match="required"):
            await n.append_fields({"txn": "t3", "status": "new"})
        assert n.log.head == b.seq  # a refused record takes no seq
