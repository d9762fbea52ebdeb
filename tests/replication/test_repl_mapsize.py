"""The record log's LMDB map grows by itself up to its limit (real LMDB files, real threads)."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import threading
import time
from collections.abc import Generator
from decimal import Decimal
from pathlib import Path

import pytest

from replication.errors import LogFullError
from replication.hlc import HybridLogicalClock
from replication.log import RecordLog
from replication.mapsize import WARN_AT
from replication.matrix import Holding
from replication.record import RecordType, Role
from replication.writer import GroupCommitWriter

KIB = 1024
COMMIT_PLACES = pytest.mark.parametrize("inline_max_s", [0.002, 0.0], ids=["inline", "thread"])


def big_order(i: int) -> dict[str, object]:
    # random text: the log compresses values (replication.recordzip), and ~1 KB must stay ~1 KB
    return {"type": RecordType.ORDER, "txn": f"c1-{i}", "status": "new", "symbol": "IBM", "side": "1",
            "order_qty": Decimal(100), "price": Decimal("1.25"), "text": base64.b64encode(os.urandom(750)).decode()}


async def fill(writer: GroupCommitWriter, first: int, batches: int, per_batch: int) -> int:
    """Append ``batches`` batches of big records; returns how many were made durable."""
    for b in range(batches):
        base = first + b * per_batch
        await asyncio.gather(*(writer.append(big_order(base + i)) for i in range(per_batch)))
    return batches * per_batch


@COMMIT_PLACES
async def test_a_tiny_map_grows_before_it_fills(tmp_path: Path, inline_max_s: float) -> None:
    log = RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER, map_size=256 * KIB, map_limit=16 << 20)
    writer = GroupCommitWriter(log, HybridLogicalClock("c1"), inline_max_s=inline_max_s)
    writer.start()
    try:
        sizes = []
        durable = 0
        for _ in range(40):  # 40 x 50 records of ~1.1 KB: ~2.5 MB, ten times the first map
            durable += await fill(writer, durable + 1, 1, 50)
            sizes.append(log.map_usage().size)
        u = log.map_usage()
        assert log.head == durable == 2000
        assert sizes == sorted(sizes) and sizes[0] < sizes[-1] and u.size <= u.limit == 16 << 20
        assert u.used > 10 * 256 * KIB and u.used <= u.size
        # it grew ahead: never waited for a full map (a full one would show as a retry)
        assert log._growth is not None and log._growth.grown >= 3
        assert log.get("c1", 2000) is not None and len(log.records_for_txn("c1-1234")) == 1
    finally:
        await writer.close()
        log.close()
    # a restart with the configured (smaller) first map size maps everything it holds
    with RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER, map_size=256 * KIB, map_limit=16 << 20) as again:
        assert again.head == 2000 and again.count() == 2000


@COMMIT_PLACES
async def test_the_limit_is_honoured_and_a_write_past_it_is_a_clear_error(tmp_path: Path, inline_max_s: float) -> None:
    limit = 2 << 20
    log = RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER, map_size=256 * KIB, map_limit=limit)
    writer = GroupCommitWriter(log, HybridLogicalClock("c1"), inline_max_s=inline_max_s)
    writer.start()
    try:
        durable = 0
        with pytest.raises(LogFullError, match=r"map is full .*limit 2097152.*raise map_limit") as info:
            for _ in range(200):  # bounded: 2 MiB holds far fewer than 200 x 50 records of 1 KB
                durable += await fill(writer, durable + 1, 1, 50)
        assert not info.value.map_grown
        assert 500 < durable < 2000
        assert log.map_usage().size == limit  # grew all the way, and not one byte more
        assert log.head == durable  # the failed batch left nothing behind, not even a seq
        assert log.get("c1", durable) is not None and log.get("c1", durable + 1) is None
        # a smaller write still fits where a batch of 50 did not: the log keeps working
        rec = await writer.append({"type": RecordType.NOTE, "txn": "n", "status": "s"})
        assert rec.seq == durable + 1
    finally:
        await writer.close()
        log.close()


@COMMIT_PLACES
async def test_one_transaction_larger_than_the_free_map_is_written_after_growing(
        tmp_path: Path, inline_max_s: float) -> None:
    log = RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER, map_size=256 * KIB, map_limit=64 << 20)
    writer = GroupCommitWriter(log, HybridLogicalClock("c1"), inline_max_s=inline_max_s)
    writer.start()
    try:
        # 3,000 records of ~1.1 KB in one loop turn, one transaction: ~13 times the first map
        await fill(writer, 1, 1, 3000)
        assert log.head == 3000 and log.map_usage().size >= 4 << 20
    finally:
        await writer.close()
        log.close()


def test_the_map_grows_under_readers_of_other_threads(tmp_path: Path) -> None:
    """Readers run while the map is remapped: each read waits for a growth, none crashes or
    sees a record change (LMDB needs no read transaction active during set_mapsize)."""
    log = RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER, map_size=128 * KIB, map_limit=64 << 20)
    clock = HybridLogicalClock("c1")
    with log.write(clock) as b:
        first = b.append(big_order(0)).record
    stop = threading.Event()
    reads = [0]
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                assert log.records_for_txn("c1-0") == [first]
                for n, (_, raw) in enumerate(log.iter_holding(Holding.AUTHORITATIVE)):
                    assert raw
                    if n > 50:
                        break
                reads[0] += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 60
        i = 1
        while log.map_usage().size < 8 << 20 and time.monotonic() < deadline:
            try:
                with log.write(clock) as b:
                    for n in range(100):
                        b.append(big_order(i + n))
                i += 100
            except LogFullError as exc:  # a write of one's own, as the group-commit writer does
                assert exc.map_grown
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert not errors, errors[0]
    assert log.map_usage().size >= 8 << 20 and log._growth is not None and log._growth.grown >= 5
    assert reads[0] > 0 and log.head == i
    log.close()


def test_a_reader_held_open_delays_growth_until_it_ends(tmp_path: Path) -> None:
    log = RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER, map_size=256 * KIB, map_limit=8 << 20)
    clock = HybridLogicalClock("c1")
    i = 0
    while log.map_usage().used <= 128 * KIB and i < 1000:  # just past half of the map
        with log.write(clock) as b:
            for _ in range(5):
                b.append(big_order(i))
                i += 1
    size = log.map_usage().size
    assert size == 256 * KIB and log.map_usage().used > size // 2
    it = log.iter_holding(Holding.AUTHORITATIVE)
    assert isinstance(it, Generator)
    next(it)  # a read transaction is open in this thread
    with log.write(clock) as b:  # the write goes ahead; the map is left alone meanwhile
        b.append(big_order(1000))
    assert log.map_usage().size == size
    it.close()
    with log.write(clock) as b:
        b.append(big_order(1001))
    assert log.map_usage().size > size
    log.close()


def test_a_warning_at_80_percent_of_the_limit(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    limit = 1 << 20
    log = RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER, map_size=256 * KIB, map_limit=limit)
    clock = HybridLogicalClock("c1")
    i = 0
    with caplog.at_level(logging.WARNING, logger="replication.mapsize"):
        while log.map_usage().used < WARN_AT * limit and i < 2000:
            with log.write(clock) as b:
                b.append(big_order(i))
            i += 1
        assert log.map_usage().near_limit and not any("map limit" in r.message for r in caplog.records)
        with log.write(clock) as b:  # the next write sees it
            b.append(big_order(i))
    warnings = [r.message for r in caplog.records if "map limit" in r.message]
    assert len(warnings) == 1 and "raise map_limit" in warnings[0]
    assert log.map_usage().as_dict()["near_limit"] is True
    log.close()


def test_map_sizes_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="map_limit >= map_size"):
        RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER, map_size=1 << 20, map_limit=1 << 19)
