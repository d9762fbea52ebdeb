"""The group-commit writer's insert linger (replication.writer): received records of a node
nothing waits on (the firm, a street's copy of its peer) wait for more before their synced
commit; own records never wait. Real LMDB files in tmp_path."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from replication.codec import encode_record
from replication.hlc import Hlc, HybridLogicalClock
from replication.log import RecordLog
from replication.record import Record, RecordType, Role
from replication.writer import GroupCommitWriter


def street_rec(seq: int) -> tuple[Record, bytes]:
    r = Record(origin="s1", seq=seq, txn=f"c1-{seq}", type=RecordType.FILL, status="2", hlc=Hlc(seq, 0, "s1"))
    return r, encode_record(r)


def firm_writer(tmp_path: Path, linger: float) -> tuple[RecordLog, GroupCommitWriter]:
    log = RecordLog(tmp_path, node_id="f1", role=Role.FIRM)
    writer = GroupCommitWriter(log, HybridLogicalClock("f1"), insert_linger_s=linger)
    writer.start()
    return log, writer


async def test_received_records_of_several_loop_turns_share_one_commit(tmp_path: Path) -> None:
    log, writer = firm_writer(tmp_path, 0.2)
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        futs = []
        for seq in range(1, 11):           # ten batches, each in a loop turn of its own
            futs.append(writer.insert(Role.STREET, [street_rec(seq)]))
            await asyncio.sleep(0.005)
        assert writer.commits == 0 and not any(f.done() for f in futs)
        outs = await asyncio.gather(*futs)
        assert loop.time() - t0 >= 0.19     # they waited for the linger
        assert writer.commits == 1 and sum(len(o.inserted) for o in outs) == 10
        assert log.high_water_marks()["s1"] == 10
    finally:
        await writer.close()
        log.close()


async def test_an_own_record_never_waits_and_takes_the_lingering_ones_along(tmp_path: Path) -> None:
    log, writer = firm_writer(tmp_path, 30.0)
    try:
        ins = writer.insert(Role.STREET, [street_rec(1)])
        await asyncio.sleep(0.01)
        assert not ins.done()
        own = writer.append({"type": RecordType.NOTE, "txn": "f1-1", "status": "s"})
        rec = await asyncio.wait_for(own, 5)       # at the end of its loop turn, not in 30 s
        out = await asyncio.wait_for(ins, 5)
        assert rec.seq == 1 and len(out.inserted) == 1 and writer.commits == 1
    finally:
        await writer.close()
        log.close()


async def test_many_lingering_batches_are_committed_at_once(tmp_path: Path) -> None:
    # a catch-up (resends of thousands of records) is not slowed: past a bound it commits now
    log, writer = firm_writer(tmp_path, 30.0)
    try:
        futs = [writer.insert(Role.STREET, [street_rec(seq)]) for seq in range(1, 301)]
        await asyncio.wait_for(asyncio.gather(*futs), 5)
        assert log.high_water_marks()["s1"] == 300
    finally:
        await writer.close()
        log.close()


async def test_close_commits_what_lingers_and_no_linger_commits_each_turn(tmp_path: Path) -> None:
    log, writer = firm_writer(tmp_path / "a", 30.0)
    fut = writer.insert(Role.STREET, [street_rec(1)])
    await writer.close()
    assert fut.done() and len(fut.result().inserted) == 1
    log.close()
    reopened = RecordLog(tmp_path / "a", node_id="f1", role=Role.FIRM)
    assert reopened.high_water_marks()["s1"] == 1
    reopened.close()

    log, writer = firm_writer(tmp_path / "b", 0.0)
    try:
        for seq in range(1, 4):
            await writer.insert(Role.STREET, [street_rec(seq)])
        assert writer.commits == 3
    finally:
        await writer.close()
        log.close()
    with pytest.raises(ValueError, match="insert_linger_s must be >= 0"):
        GroupCommitWriter(log, HybridLogicalClock("f1"), insert_linger_s=-1)
