"""Replicas catch up over records their origin archived (issue 18, item 2): real mosquitto,
real LMDB files.

Retention removes old, final orders from the origin's own log, so a replica that was away
asks for ranges with holes; the origin's "R" answers say which ranges they cover whole, and
the replica's high-water mark must move over the holes, reach the origin's head and stop
asking.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from replication.codec import encode_record
from replication.hlc import Hlc
from replication.log import RecordLog
from replication.node import ReplicationNode
from replication.record import Record, RecordType, Role
from replication.wire import encode_resend
from tests.support.broker import Mosquitto
from tests.support.waiting import until

DIGEST_S = 0.2


def node(tmp: Path, broker: Mosquitto, node_id: str, **kw: Any) -> ReplicationNode:
    return ReplicationNode(node_id=node_id, role=Role.CUSTOMER, cluster="t", data_dir=tmp / node_id,
                           broker_port=broker.port, digest_interval=kw.pop("digest_interval", DIGEST_S),
                           login=broker.login(node_id, Role.CUSTOMER), **kw)


def archive(data_dir: Path, origin: str, seqs: Iterable[int]) -> None:
    """Remove records of ``origin`` from a stopped node's log, as retention does after
    archiving them (:meth:`RecordLog.remove`)."""
    wanted = list(seqs)
    with RecordLog(data_dir) as log:
        removed = log.remove([(origin, seq) for seq in wanted])
    assert removed == len(wanted), f"{data_dir}: {len(wanted) - removed} of those records were not there"


async def append(n: ReplicationNode, count: int) -> None:
    await asyncio.gather(*(n.append(type=RecordType.ORDER, txn=f"t{i % 40}", status="new") for i in range(count)))


def held(n: ReplicationNode, origin: str, first: int = 1) -> list[tuple[int, bytes]]:
    return list(n.log.iter_raw(origin, first))


async def settles(n: ReplicationNode, origin: str, seconds: float) -> None:
    """``n`` asks ``origin`` for nothing more over ``seconds`` (many digest and retry periods)."""
    asked = n.stats.gaps_requested
    await asyncio.sleep(seconds)
    assert n.stats.gaps_requested == asked, f"{n.node_id} kept asking {origin}: {asked} -> {n.stats.gaps_requested}"


@pytest.mark.timeout(40)
async def test_an_empty_replica_reaches_the_head_of_an_origin_with_archived_holes(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    async with node(tmp_path, mosquitto, "c1") as a:
        await append(a, 300)
    # holes at the start (the replica's first request finds nothing), in the middle, a
    # range longer than a publish, single seqs, and the tail up to the head itself
    gone = {*range(1, 51), 100, *range(120, 200), 233, *range(250, 301)}
    archive(tmp_path / "c1", "c1", gone)
    async with node(tmp_path, mosquitto, "c1", resend_chunk=40, max_batch_records=15) as a:
        assert a.log.head == 300 and len(held(a, "c1")) == 300 - len(gone)
        async with node(tmp_path, mosquitto, "c2", resend_chunk=40) as b:
            await until(lambda: b.log.high_water_marks().get("c1") == 300, what="c2 to reach c1's head 300")
            assert held(b, "c1") == held(a, "c1")
            st = b.log.origin_state("c1")
            assert st is not None and st.max_seq == 300
            assert b.stats.gaps_requested >= 300 // 40 and b.stats.malformed == 0
            await settles(b, "c1", 8 * DIGEST_S + 2.0)
            assert a.stats.resent >= 300 - len(gone) and a.stats.resends_served >= 300 // 40


@pytest.mark.timeout(40)
async def test_a_replica_that_was_away_catches_up_over_holes_and_joins_the_live_records(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    async with node(tmp_path, mosquitto, "c1") as a, node(tmp_path, mosquitto, "c2") as b:
        await a.wait_connected(5)
        await b.wait_connected(5)
        await append(a, 100)
        await until(lambda: b.log.high_water_marks().get("c1") == 100, what="c2 to hold c1's first 100")
    async with node(tmp_path, mosquitto, "c1") as a:  # c2 is away meanwhile
        await append(a, 200)
    archive(tmp_path / "c1", "c1", [*range(1, 30), *range(101, 151), *range(170, 181), 299])
    # digests once a minute: only the live records' gap can start the catch-up here
    async with node(tmp_path, mosquitto, "c1", digest_interval=60) as a, \
            node(tmp_path, mosquitto, "c2", digest_interval=60) as b:
        await a.wait_connected(5)
        await b.wait_connected(5)
        await asyncio.sleep(0.2)  # both subscribed: the next records are live for c2
        await append(a, 10)   # 301..310
        await until(lambda: b.log.high_water_marks().get("c1") == 310, what="c2 to reach 310 over the holes")
        assert held(b, "c1", 101) == held(a, "c1", 101)
        assert len(held(b, "c1")) == 100 + len(held(a, "c1", 101))  # what it had before stays
        await settles(b, "c1", 2.5)


@pytest.mark.timeout(40)
async def test_a_resend_answer_is_dropped_anywhere_but_the_nodes_own_resend_topic(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    async with node(tmp_path, mosquitto, "c2", digest_interval=60) as b:
        await b.wait_connected(5)
        r = Record(origin="c1", seq=3, txn="t", type=RecordType.NOTE, status="s", hlc=Hlc(1, 0, "c1"))
        c1 = mosquitto.login("c1", Role.CUSTOMER)
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="c1-raw", username=c1.username,
                                  password=c1.password) as raw:
            # on c1's record topic: it could make every replica skip 1..9
            await raw.publish("fixgw/t/rec/customer/c1", encode_resend("c1", Role.CUSTOMER, 1, 9, [encode_record(r)]),
                              qos=1)
            await until(lambda: b.stats.malformed == 1, what="the answer on the record topic to be dropped")
            assert b.log.origin_state("c1") is None
            # on c2's own resend topic, from c1: taken
            await raw.publish("fixgw/t/resend/c2/c1", encode_resend("c1", Role.CUSTOMER, 1, 9, [encode_record(r)]),
                              qos=1)
            await until(lambda: b.log.high_water_marks().get("c1") == 9, what="the answer to c2 to be taken")
        assert [s for s, _ in b.log.iter_raw("c1")] == [3] and b.stats.malformed == 1
