"""A full disk under a real LMDB record log: refused writes say so, the node is degraded, it recovers.

Real LMDB on a real full filesystem (a 2 MiB tmpfs of the test's own), real writer thread, and
for the replication side two nodes on a real mosquitto; the pure parts (back-off, the health
ledger) with no I/O.
"""

from __future__ import annotations

import asyncio
import errno
import os
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from replication.errors import LogFullError
from replication.hlc import HybridLogicalClock
from replication.log import RecordLog
from replication.node import ReplicationNode
from replication.record import RecordType, Role
from replication.storage_health import FIX_STORE, RECORD_LOG, Backoff, StorageHealth, is_disk_full
from replication.writer import GroupCommitWriter, full_reason
from tests.support.broker import Mosquitto
from tests.support.tmpfs import fill, small_tmpfs


def test_backoff_doubles_up_to_its_most_and_starts_over() -> None:
    b = Backoff(first=0.2, most=1.0)
    assert [b.next() for _ in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]
    b.reset()
    assert b.next() == 0.2
    with pytest.raises(ValueError):
        Backoff(first=0.0)


def test_health_is_degraded_while_any_part_fails() -> None:
    h = StorageHealth(clock=lambda: 100.0)
    assert h.ok and h.degraded is None and not h.recovered(RECORD_LOG)
    h.failed(RECORD_LOG, "disk full")
    h.failed(FIX_STORE, "disk full")
    assert not h.ok and h.since == 100.0 and h.failing(RECORD_LOG)
    assert h.degraded == "FIX message store: disk full; record log: disk full"
    assert h.recovered(RECORD_LOG) and not h.ok and h.degraded == "FIX message store: disk full"
    assert h.recovered(FIX_STORE) and h.ok and h.degraded is None and h.since is None
    assert h.as_dict() == {"degraded": None, "degraded_since": None, "parts": {}, "write_failures": 2,
                           "recoveries": 1}


def test_disk_full_is_recognised_from_errno_or_text(tmp_path: Path) -> None:
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"), tmp_path)
    assert is_disk_full(Exception("mdb_txn_commit: No space left on device"), tmp_path)
    # LMDB's EIO counts only where the filesystem is short of space (this one is not)
    assert not is_disk_full(Exception("mdb_txn_commit: Input/output error"), tmp_path)
    assert not is_disk_full(ValueError("bad field"), tmp_path)


def order(i: int) -> dict[str, object]:
    return {"type": RecordType.ORDER, "txn": f"c1-{i}", "status": "new", "symbol": "IBM", "side": "1",
            "order_qty": Decimal(100), "price": Decimal("1.25"), "text": os.urandom(300).hex()}


def test_a_full_disk_refuses_appends_degrades_and_recovers_by_itself(tmp_path: Path) -> None:
    asyncio.run(_full_disk(tmp_path / "mnt"))


async def _full_disk(mnt: Path) -> None:
    with small_tmpfs(mnt, "2m"):
        log = RecordLog(mnt / "log", node_id="c1", role=Role.CUSTOMER, map_size=1 << 20, map_limit=16 << 20)
        health = StorageHealth()
        writer = GroupCommitWriter(log, HybridLogicalClock("c1"), health=health)
        writer.start()
        try:
            stored = [await writer.append(order(i)) for i in range(5)]
            fill(mnt / "filler")
            refused: LogFullError | None = None
            for i in range(5, 2000):   # LMDB reuses free pages for a while: append until one is refused
                try:
                    stored.append(await writer.append(order(i)))
                except LogFullError as exc:
                    refused = exc
                    break
            assert refused is not None and refused.disk, "no append refused on a full disk"
            assert full_reason(refused) == "disk full"
            assert health.degraded == "record log: disk full" and health.write_failures >= 1
            # still short of space: a probe that gets through on LMDB's free pages does not end it
            await writer.probe()
            assert not health.ok
            (mnt / "filler").unlink()
            assert await writer.probe() and health.ok and health.recoveries == 1
            more = await writer.append(order(9999))
            assert more.seq == stored[-1].seq + 1   # the refused append took no sequence number
        finally:
            await writer.close()
            log.close()
        with RecordLog(mnt / "log", readonly=True) as ro:
            assert [r.seq for r in ro.iter_type(RecordType.ORDER)] == [r.seq for r in stored] + [more.seq]


@pytest.mark.timeout(60)
async def test_records_a_full_replica_could_not_store_are_fetched_again(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """The replication side: a street's records reach a customer node whose disk is full; the
    batches it cannot insert are counted (not stored), and once space is back the catch-up
    (digest heads, resend requests) brings every one of them in, without any restart."""
    def make(node_id: str, role: Role, data: Path) -> ReplicationNode:
        return ReplicationNode(node_id=node_id, role=role, cluster="t", data_dir=data, broker_port=mosquitto.port,
                               digest_interval=0.2, login=mosquitto.login(node_id, role))

    async def until(pred: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
            await asyncio.sleep(0.02)

    mnt = tmp_path / "mnt"
    with small_tmpfs(mnt, "2m"):
        async with make("s1", Role.STREET, tmp_path / "s1") as street, make("c1", Role.CUSTOMER, mnt / "c1") as cust:
            await street.wait_connected(5)
            await cust.wait_connected(5)
            await asyncio.gather(*(street.append(type=RecordType.FILL, txn=f"c9-{i}", status="2") for i in range(20)))
            await until(lambda: cust.log.high_water_marks().get("s1") == 20, "the first records")
            fill(mnt / "filler")
            n = 20
            while cust.stats.not_stored == 0 and n < 20_000:   # free LMDB pages take some batches first
                await asyncio.gather(*(street.append(type=RecordType.FILL, txn=f"c9-{n + i}", status="2",
                                                     text=os.urandom(200).hex()) for i in range(100)))
                n += 100
                await asyncio.sleep(0.05)
            assert cust.stats.not_stored > 0, "no batch refused by the full disk"
            await until(lambda: cust.storage.degraded is not None, "the replica degraded")
            assert "disk full" in (cust.stats.degraded or "")
            held = cust.log.high_water_marks().get("s1", 0)
            assert held < n
            (mnt / "filler").unlink()
            await until(lambda: cust.log.high_water_marks().get("s1") == n, f"all {n} records at the replica")
            await until(lambda: cust.storage.ok, "the replica no longer degraded")
            assert cust.stats.gaps_requested > 0
