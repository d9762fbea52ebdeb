"""The LMDB record log and group commit, on real LMDB files."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from fixgw.commitlane import INLINE_MAX_S, INLINE_PAUSE
from replication.codec import encode_record
from replication.errors import LogConflictError, LogError, LogFullError
from replication.hlc import Hlc, HybridLogicalClock
from replication.log import RecordLog
from replication.matrix import Holding
from replication.record import Record, RecordType, Role
from replication.writer import GroupCommitWriter


def rec(origin: str, seq: int, txn: str = "T", rtype: RecordType = RecordType.NOTE) -> tuple[Record, bytes]:
    r = Record(origin=origin, seq=seq, txn=txn, type=rtype, status="s", hlc=Hlc(seq, 0, origin))
    return r, encode_record(r)


def order_fields(i: int) -> dict[str, object]:
    return {"type": RecordType.ORDER, "txn": f"c1-{i}", "status": "new", "symbol": "IBM",
            "side": "1", "order_qty": Decimal(100), "price": Decimal("1.25")}


def test_append_assigns_contiguous_seqs_and_survives_reopen(tmp_path: Path) -> None:
    clock = HybridLogicalClock("c1")
    with RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER) as log:
        with log.write(clock) as b:
            a1 = b.append(order_fields(1)).record
            a2 = b.append(order_fields(2)).record
        assert (a1.seq, a2.seq) == (1, 2) and a1.hlc < a2.hlc
        assert log.head == 2 and log.high_water_marks() == {"c1": 2}
    with RecordLog(tmp_path, readonly=True) as log:
        assert (log.node_id, log.role) == ("c1", Role.CUSTOMER)
        assert log.get("c1", 2) == a2
        assert log.records_for_txn("c1-1") == [a1]
    with RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER) as log, log.write(clock) as b:
        assert b.append(order_fields(3)).record.seq == 3


READER = """
import json, sys
from replication.log import RecordLog
with RecordLog(sys.argv[1], readonly=True) as log:
    print(json.dumps(sorted(r.origin for r in log.records_for_txn("c1-1"))), flush=True)
    sys.stdin.readline()  # the writer has written more
    print(json.dumps([sorted(r.origin for r in log.records_for_txn("c1-1")),
                      sorted(k.decode("latin-1") for k, _ in log.iter_txn_range("c1-2", None))]), flush=True)
"""


def test_the_txn_index_finds_every_origin_across_reopens_and_for_a_reader_opened_before_it(tmp_path: Path) -> None:
    """Txn index entries name their origin by a number the log gives it (format 3): records of
    origins first written after a reader (another process) opened, or after a transaction that
    failed, are found."""
    clock = HybridLogicalClock("c1")
    with RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER) as log:
        with log.write(clock) as b:
            b.append(order_fields(1))
            b.insert(Role.STREET, [rec("s1", 1, "c1-1")])
        reader = subprocess.Popen([sys.executable, "-c", READER, str(tmp_path)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
        try:
            assert reader.stdout is not None and reader.stdin is not None
            assert json.loads(reader.stdout.readline()) == ["c1", "s1"]
            with pytest.raises(RuntimeError), log.write(clock) as b:  # aborted: s2's number is not kept
                b.insert(Role.STREET, [rec("s2", 1, "c1-1")])
                raise RuntimeError("abort")
            with log.write(clock) as b:  # new origins after the reader opened
                b.insert(Role.STREET, [rec("s3", 1, "c1-1"), rec("s3", 2, "c1-2")])
                b.insert(Role.CUSTOMER, [rec("c2", 1, "c1-2")])
            reader.stdin.write("go\n")
            reader.stdin.flush()
            origins, keys = json.loads(reader.stdout.readline())
            assert origins == ["c1", "s1", "s3"]
            assert keys == ["c2\x00" + "\x00" * 7 + "\x01", "s3\x00" + "\x00" * 7 + "\x02"]
        finally:
            reader.kill()
            reader.wait(timeout=10)
        assert sorted(r.origin for r in log.records_for_txn("c1-2")) == ["c2", "s3"]
    with RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER) as log:
        with log.write(clock) as b:
            b.insert(Role.STREET, [rec("s2", 1, "c1-2")])
            b.append(order_fields(2))
        assert sorted(r.origin for r in log.records_for_txn("c1-2")) == ["c1", "c2", "s2", "s3"]
        assert sorted(r.origin for r in log.records_for_txn("c1-1")) == ["c1", "s1", "s3"]
        assert log.space()["by_txn"][0] == 7


def test_authoritative_and_read_only_are_kept_apart(tmp_path: Path) -> None:
    with RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER) as log:
        with log.write(HybridLogicalClock("c1")) as b:
            b.append(order_fields(1))
            b.insert(Role.CUSTOMER, [rec("c2", 1, "c1-1")])
            b.insert(Role.STREET, [rec("s1", 1, "c1-1", RecordType.FILL)])
            b.insert(Role.FIRM, [rec("f1", 1)])
        auth = sorted((r.origin, r.seq) for r in log.iter_authoritative())
        ro = sorted((r.origin, r.seq) for r in log.iter_read_only())
        assert auth == [("c1", 1), ("c2", 1)]
        assert ro == [("f1", 1), ("s1", 1)]
        assert log.holding_of("s1") is Holding.READ_ONLY and log.holding_of("c2") is Holding.AUTHORITATIVE
        assert [(r.origin, r.type) for r in log.records_for_txn("c1-1")] == [
            ("c2", RecordType.NOTE), ("s1", RecordType.FILL), ("c1", RecordType.ORDER)]  # HLC order
        assert [r.origin for r in log.iter_type(RecordType.FILL)] == ["s1"]
        assert log.count() == 4 and log.count(Holding.READ_ONLY) == 2


def test_a_street_node_refuses_customer_records(tmp_path: Path) -> None:
    with RecordLog(tmp_path, node_id="s1", role=Role.STREET) as log:
        with log.write() as b:
            out = b.insert(Role.CUSTOMER, [rec("c1", 1)])
        assert out.inserted == [] and "does not hold" in out.rejected[0]
        assert log.count() == 0


def test_duplicates_are_no_ops_and_gaps_hold_the_high_water_mark(tmp_path: Path) -> None:
    with RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER) as log:
        with log.write() as b:
            out = b.insert(Role.CUSTOMER, [rec("c2", 1), rec("c2", 2), rec("c2", 2), rec("c2", 5)])
        assert len(out.inserted) == 3 and out.duplicates == 1
        st = log.origin_state("c2")
        assert st is not None and (st.hwm, st.max_seq) == (2, 5)
        assert log.first_held_after("c2", 2) == 5
        with log.write() as b:
            again = b.insert(Role.CUSTOMER, [rec("c2", 5), rec("c2", 1)])
            assert again.duplicates == 2 and not again.inserted
            b.insert(Role.CUSTOMER, [rec("c2", 4), rec("c2", 3)])
        assert log.high_water_marks()["c2"] == 5
        assert [s for s, _ in log.iter_raw("c2", 2, 4)] == [2, 3, 4]


def _state(log: RecordLog, origin: str) -> tuple[int, int]:
    st = log.origin_state(origin)
    assert st is not None, f"no state of {origin}"
    return st.hwm, st.max_seq


def test_a_complete_range_moves_the_high_water_mark_over_archived_holes(tmp_path: Path) -> None:
    with RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER) as log:
        with log.write() as b:  # 1..10 answered: 3, 4 and 8 are all the origin still holds
            out = b.insert(Role.CUSTOMER, [rec("c2", 3), rec("c2", 4), rec("c2", 8)], complete=("c2", 1, 10))
        assert len(out.inserted) == 3 and not out.rejected
        assert _state(log, "c2") == (10, 10)
        assert [s for s, _ in log.iter_raw("c2")] == [3, 4, 8]
        with log.write() as b:  # a range of holes only
            b.insert(Role.CUSTOMER, [], complete=("c2", 11, 20))
        assert _state(log, "c2") == (20, 20)
    with RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER) as log:
        assert _state(log, "c2") == (20, 20)  # durable with the records


def test_a_complete_range_after_an_open_gap_moves_nothing_but_its_records_are_stored(tmp_path: Path) -> None:
    with RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER) as log:
        with log.write() as b:
            b.insert(Role.CUSTOMER, [rec("c2", 1), rec("c2", 2)])
            b.insert(Role.CUSTOMER, [rec("c2", 6), rec("c2", 9)], complete=("c2", 5, 10))  # 3..4 still open
        assert _state(log, "c2") == (2, 9)
        assert [s for s, _ in log.iter_raw("c2")] == [1, 2, 6, 9]
        assert log.first_held_after("c2", 2) == 6
        with log.write() as b:  # the open gap answered: the mark runs on through the range above
            b.insert(Role.CUSTOMER, [rec("c2", 4)], complete=("c2", 3, 4))
        assert _state(log, "c2") == (4, 9)  # 5 and 7..8 were archived, but no answer said so for 5
        with log.write() as b:
            b.insert(Role.CUSTOMER, [], complete=("c2", 5, 10))
        assert _state(log, "c2") == (10, 10)


def test_a_complete_range_joins_the_records_held_after_it(tmp_path: Path) -> None:
    with RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER) as log:
        with log.write() as b:
            b.insert(Role.CUSTOMER, [rec("c2", s) for s in (1, 11, 12, 13, 15)])  # live records after a gap
        assert _state(log, "c2") == (1, 15)
        with log.write() as b:
            out = b.insert(Role.CUSTOMER, [rec("c2", 5)], complete=("c2", 2, 10))
        assert len(out.inserted) == 1
        assert _state(log, "c2") == (13, 15)  # 11..13 joined; 14 is a gap nobody answered for
        assert log.first_held_after("c2", 13) == 15


def test_a_complete_range_starting_below_the_mark_and_one_already_covered(tmp_path: Path) -> None:
    with RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER) as log:
        with log.write() as b:
            b.insert(Role.CUSTOMER, [rec("c2", s) for s in (1, 2, 3)])
        with log.write() as b:  # records held already: duplicates, and the range still counts
            out = b.insert(Role.CUSTOMER, [rec("c2", 2), rec("c2", 3)], complete=("c2", 2, 7))
        assert out.duplicates == 2 and not out.inserted
        assert _state(log, "c2") == (7, 7)
        with log.write() as b:  # inside the mark: nothing moves back
            b.insert(Role.CUSTOMER, [], complete=("c2", 1, 4))
        assert _state(log, "c2") == (7, 7)


def test_a_complete_range_of_an_origin_not_held_or_of_another_role_is_refused(tmp_path: Path) -> None:
    with RecordLog(tmp_path, node_id="s1", role=Role.STREET) as log:
        with log.write() as b:
            out = b.insert(Role.CUSTOMER, [], complete=("c1", 1, 5))
            b.insert(Role.STREET, [rec("s2", 1)])
            clash = b.insert(Role.FIRM, [], complete=("s2", 1, 5))
        assert "does not hold records of customer c1" in out.rejected[0]
        assert "s2 is a street node here, not firm" in clash.rejected[0]
        assert log.origin_state("c1") is None and _state(log, "s2") == (1, 1)
        with pytest.raises(ValueError, match="bad complete range 3..2 of s2"), log.write() as b:
            b.insert(Role.STREET, [], complete=("s2", 3, 2))


async def test_the_writer_refuses_a_bad_complete_range_before_queuing_it(tmp_path: Path) -> None:
    with RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER) as log:
        w = GroupCommitWriter(log, HybridLogicalClock("c1"))
        w.start()
        try:
            with pytest.raises(ValueError, match="bad complete range 0..4 of c2"):
                w.insert(Role.CUSTOMER, [], complete=("c2", 0, 4))
            out = await w.insert(Role.CUSTOMER, [rec("c2", 2)], complete=("c2", 1, 4))
            assert len(out.inserted) == 1 and _state(log, "c2") == (4, 4)
        finally:
            await w.close()


def test_origin_with_another_role_is_refused(tmp_path: Path) -> None:
    with RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER) as log:
        with log.write() as b:
            b.insert(Role.CUSTOMER, [rec("x", 1)])
            out = b.insert(Role.FIRM, [rec("x", 2)])
        assert "is a customer node here" in out.rejected[0]


def test_one_writer_per_log_and_the_node_id_is_checked(tmp_path: Path) -> None:
    with RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER), \
            pytest.raises(LogError, match="open for writing elsewhere"):
        RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER)
    with pytest.raises(LogConflictError, match="belongs to customer node 'c1'"):
        RecordLog(tmp_path, node_id="c9", role=Role.CUSTOMER)
    with pytest.raises(LogConflictError):
        RecordLog(tmp_path, node_id="c1", role=Role.STREET)
    with pytest.raises(LogError, match="not a record log"):
        RecordLog(tmp_path / "nothing", readonly=True)


# in the loop while commits are quick (the default), and always in the writer thread
COMMIT_PLACES = pytest.mark.parametrize("inline_max_s", [INLINE_MAX_S, 0.0], ids=["inline", "thread"])


@COMMIT_PLACES
async def test_group_commit_one_transaction_per_loop_turn(tmp_path: Path, inline_max_s: float) -> None:
    log = RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER)
    seen: list[int] = []
    writer = GroupCommitWriter(log, HybridLogicalClock("c1"), on_commit=lambda new: seen.extend(i.record.seq for i in new),
                               inline_max_s=inline_max_s)
    writer.start()
    try:
        futs = [writer.append(order_fields(i)) for i in range(100)]  # all in this loop turn
        assert not any(f.done() for f in futs)
        recs = await asyncio.gather(*futs)
        assert [r.seq for r in recs] == list(range(1, 101))
        assert writer.commits == 1
        assert seen == list(range(1, 101))  # the commit listener ran before the futures resolved
        # a bad append fails alone and takes no seq
        bad = writer.append({"type": RecordType.ORDER, "txn": "x", "status": "new", "price": 1.5})
        good = writer.append(order_fields(101))
        with pytest.raises(ValueError, match="Record.price must be Decimal or None, got float"):
            await bad
        assert (await good).seq == 101
        # every field is type-checked: receivers could not decode a record with an int account
        with pytest.raises(ValueError, match="Record.account must be str, got int"):
            await writer.append({**order_fields(1), "account": 5})
        with pytest.raises(ValueError, match="is not a RecordType"):
            await writer.append({**order_fields(1), "type": "teleport"})
        assert (await writer.append({**order_fields(1), "type": "fill"})).type is RecordType.FILL
        with pytest.raises(ValueError, match="assigned by the log"):
            await writer.append({**order_fields(1), "seq": 7})
        with pytest.raises(ValueError, match="no field"):
            await writer.append({"type": RecordType.ORDER, "txn": "x", "status": "new", "colour": "red"})
    finally:
        await writer.close()
        log.close()


@COMMIT_PLACES
async def test_a_full_map_fails_the_append_clearly(tmp_path: Path, inline_max_s: float) -> None:
    log = RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER, map_size=256 * 1024)
    writer = GroupCommitWriter(log, HybridLogicalClock("c1"), inline_max_s=inline_max_s)
    writer.start()
    try:
        durable = 0
        with pytest.raises(LogFullError, match="map is full"):
            for i in range(200):  # bounded: 256 KiB holds far fewer than 200 x 50 big records
                await asyncio.gather(*(writer.append({**order_fields(i), "text": "x" * 1000}) for _ in range(50)))
                durable += 50
        assert 0 < durable < 10_000
        assert log.head == durable  # the failed batch left nothing behind, not even a seq
        assert log.get("c1", durable) is not None
    finally:
        await writer.close()
        log.close()


async def test_slow_inline_commits_hand_the_next_batches_to_the_thread(tmp_path: Path) -> None:
    log = RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER)
    seen: list[int] = []
    # any real commit takes longer than a nanosecond: each inline one counts as slow
    writer = GroupCommitWriter(log, HybridLogicalClock("c1"), on_commit=lambda new: seen.extend(i.record.seq for i in new),
                               inline_max_s=1e-9)
    writer.start()
    try:
        assert (await writer.append(order_fields(0))).seq == 1
        assert (writer.commits, writer.inline_commits) == (1, 1)
        for i in range(INLINE_PAUSE):  # one batch per loop turn, each to the thread
            assert (await writer.append(order_fields(i))).seq == i + 2
        assert (writer.commits, writer.inline_commits) == (1 + INLINE_PAUSE, 1)
        await writer.append(order_fields(99))  # the pause is over: inline again
        assert writer.inline_commits == 2
        # batches overlapping a thread commit keep their order: none jumps ahead inline
        futs = []
        for i in range(3 * INLINE_PAUSE):
            futs.append(writer.append(order_fields(i)))
            await asyncio.sleep(0)
        recs = await asyncio.gather(*futs)
        assert [r.seq for r in recs] == list(range(INLINE_PAUSE + 3, 4 * INLINE_PAUSE + 3))
        assert seen == list(range(1, 4 * INLINE_PAUSE + 3))
    finally:
        await writer.close()
        log.close()
    reopened = RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER)
    assert reopened.head == 4 * INLINE_PAUSE + 2
    reopened.close()


class _CountingEnv:
    """The real LMDB environment, counting explicit full syncs."""

    def __init__(self, env: object) -> None:
        self._env = env
        self.syncs = 0

    def sync(self, force: bool = False) -> None:
        self.syncs += 1
        self._env.sync(force)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._env, name)


def test_own_records_are_fully_synced_and_replica_only_commits_are_not(tmp_path: Path) -> None:
    clock = HybridLogicalClock("c1")
    log = RecordLog(tmp_path / "a", node_id="c1", role=Role.CUSTOMER)
    counting = _CountingEnv(log._env)
    log._env = counting  # type: ignore[assignment]
    with log.write(clock) as b:  # received records only: data synced, meta page not
        b.insert(Role.STREET, [rec("s1", 1, "c1-1", RecordType.FILL)])
    assert counting.syncs == 0
    with log.write(clock) as b:  # an append: an acknowledgement may wait on it
        b.append(order_fields(1))
        b.insert(Role.STREET, [rec("s1", 2, "c1-1", RecordType.FILL)])
    assert counting.syncs == 1
    log._env = counting._env  # type: ignore[assignment]
    log.close()  # a clean close syncs what replica commits left
    # our own records coming back from a peer (a rebuilt log) are as durable as appends
    rebuilt = RecordLog(tmp_path / "b", node_id="c1", role=Role.CUSTOMER)
    counting = _CountingEnv(rebuilt._env)
    rebuilt._env = counting  # type: ignore[assignment]
    with rebuilt.write(clock) as b:
        b.insert(Role.CUSTOMER, [rec("c1", 1, "c1-1")])
    assert counting.syncs == 1
    rebuilt._env = counting._env  # type: ignore[assignment]
    rebuilt.close()
    with RecordLog(tmp_path / "a", readonly=True) as again:
        assert again.high_water_marks() == {"c1": 1, "s1": 2}
