"""Archive files of records removed from a node's live log, and ``RecordLog.remove``, on real LMDB files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import msgpack
import pytest
import zstandard

from replication.archive import (
    ArchivedRecord,
    archive_files,
    archive_path,
    archive_txns,
    read_archive,
    write_day,
)
from replication.codec import encode_record
from replication.errors import ArchiveError, LogError
from replication.hlc import Hlc
from replication.log import RecordLog
from replication.matrix import Holding
from replication.record import Record, RecordType, Role

DAY = dt.date(2026, 12, 4)


def _rec(origin: str, seq: int, txn: str, rtype: RecordType = RecordType.NOTE) -> tuple[Record, bytes]:
    r = Record(origin=origin, seq=seq, txn=txn, type=rtype, status="s", hlc=Hlc(1_000 * seq, 0, origin),
               symbol="IBM", text=f"{origin} {seq}")
    return r, encode_record(r)


def _log(path: Path) -> Path:
    """cfu1's log: its own records and cfu2's (authoritative), ssu1's (read-only) with a gap at 5."""
    own = [_rec("cfu1", 1, "cfu1-0.1"), _rec("cfu1", 2, "cfu1-0.1"), _rec("cfu1", 3, "cfu1-0.2"),
           _rec("cfu1", 4, "cfu1-0.3")]
    peer = [_rec("cfu2", 1, "cfu2-0.1"), _rec("cfu2", 2, "cfu1-0.1")]
    street = [_rec("ssu1", 1, "cfu1-0.1"), _rec("ssu1", 2, "cfu1-0.2"), _rec("ssu1", 3, "cfu1-0.2"),
              _rec("ssu1", 4, "cfu2-0.1"), _rec("ssu1", 6, "cfu1-0.2")]  # 5 never arrived: 6 is above the hwm
    with RecordLog(path, node_id="cfu1", role=Role.CUSTOMER) as log, log.write() as b:
        for role, items in ((Role.CUSTOMER, own + peer), (Role.STREET, street)):
            out = b.insert(role, items)
            assert not out.rejected
    return path


def _entry(origin: str, seq: int, txn: str, how: Holding = Holding.AUTHORITATIVE,
           role: Role = Role.CUSTOMER) -> ArchivedRecord:
    return ArchivedRecord(how, role, origin, seq, _rec(origin, seq, txn)[1])


def test_round_trip(tmp_path: Path) -> None:
    entries = [_entry("ssu1", 2, "T1", Holding.READ_ONLY, Role.STREET), _entry("cfu1", 10, "T1"),
               _entry("cfu1", 9, "T2"), _entry("cfu10", 1, "T3")]
    path = write_day(tmp_path, "cfu1", Role.CUSTOMER, DAY, entries)
    assert path == tmp_path / "archive" / "cfu1.2026-12-04.fxar" == archive_path(tmp_path, "cfu1", DAY)
    assert not list((tmp_path / "archive").glob(".*"))  # no temporary file left
    arch = read_archive(path)
    assert (arch.header.node, arch.header.role, arch.header.day) == ("cfu1", Role.CUSTOMER, DAY)
    got = list(arch.entries)
    # in the order RecordLog.iter_all reads a log: authoritative first, each by key
    assert [(e.origin, e.seq) for e in got] == [("cfu1", 9), ("cfu1", 10), ("cfu10", 1), ("ssu1", 2)]
    assert set(got) == set(entries)  # holding, origin role, key and bytes, exactly
    assert got[3].holding is Holding.READ_ONLY and got[3].origin_role is Role.STREET
    assert got[0].record() == _rec("cfu1", 9, "T2")[0]
    # the file is the documented format: a zstd frame with a checksum, a header, entries
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes())
    objs = _unpack_all(raw)
    assert objs[0] == {"archive": 1, "node": "cfu1", "role": "customer", "day": "2026-12-04"}
    assert objs[1] == ["a", "customer", entries[2].raw]
    assert zstandard.get_frame_parameters(path.read_bytes()).has_checksum


def _unpack_all(raw: bytes) -> list[object]:
    u = msgpack.Unpacker(raw=False)
    u.feed(raw)
    return list(u)


def test_a_second_write_of_the_same_day_is_the_union(tmp_path: Path) -> None:
    first = [_entry("cfu1", 1, "T1"), _entry("cfu1", 3, "T2")]
    write_day(tmp_path, "cfu1", Role.CUSTOMER, DAY, first)
    other_bytes = ArchivedRecord(Holding.AUTHORITATIVE, Role.CUSTOMER, "cfu1", 3, _rec("cfu1", 3, "OTHER")[1])
    second = [_entry("cfu1", 2, "T1"), other_bytes, _entry("cfu1", 1, "T1")]
    path = write_day(tmp_path, "cfu1", Role.CUSTOMER, DAY, second)
    got = list(read_archive(path).entries)
    assert [(e.origin, e.seq) for e in got] == [("cfu1", 1), ("cfu1", 2), ("cfu1", 3)]
    assert got[2] == first[1]  # the file's entry is kept, not the one written again
    write_day(tmp_path, "cfu1", Role.CUSTOMER, dt.date(2026, 12, 3), [_entry("cfu1", 9, "T9")])
    assert [p.name for p in archive_files(tmp_path)] == ["cfu1.2026-12-03.fxar", "cfu1.2026-12-04.fxar"]
    with pytest.raises(ArchiveError, match=r"cfu1\.2026-12-04\.fxar: holds customer node cfu1's .* not street"):
        write_day(tmp_path, "cfu1", Role.STREET, DAY, [_entry("cfu1", 7, "T7")])


def _good(tmp_path: Path) -> bytes:
    path = write_day(tmp_path / "src", "cfu1", Role.CUSTOMER, DAY,
                     [_entry("cfu1", i, f"T{i}") for i in range(1, 200)])
    return path.read_bytes()


def _zstd(*objs: object) -> bytes:
    packed = b"".join(msgpack.packb(o, use_bin_type=True) for o in objs)
    return zstandard.ZstdCompressor(level=3, write_checksum=True).compress(packed)


@pytest.mark.parametrize(("name", "make", "expected"), [
    ("truncated", lambda good: good[: len(good) // 2], "truncated archive"),
    ("garbage", lambda good: bytes(range(256)) * 4, "not a fixgw archive file"),
    ("wrong magic", lambda good: b'{"origin": "cfu1"}\n', "not a fixgw archive file"),
    ("empty", lambda good: b"", "not a fixgw archive file"),
    ("flipped byte", lambda good: good[:-6] + bytes([good[-6] ^ 0x40]) + good[-5:], "corrupt archive"),
    ("trailing data", lambda good: good + b"more", "data after its zstd frame"),
    ("no header", lambda good: _zstd(["a", "customer", b"x"]), "no archive header"),
    ("future format", lambda good: _zstd({"archive": 2, "node": "n", "role": "firm", "day": "2026-12-04"}),
     "archive format 2, this build reads 1"),
    ("bad entry", lambda good: _zstd({"archive": 1, "node": "n", "role": "firm", "day": "2026-12-04"},
                                     ["x", "firm", b""]), "entry 1: holding tag 'x'"),
    ("not a record", lambda good: _zstd({"archive": 1, "node": "n", "role": "firm", "day": "2026-12-04"},
                                        ["a", "firm", b"\x01"]), "entry 1: the record bytes are not a record"),
])
def test_a_bad_file_raises_archive_error_naming_it(tmp_path: Path, name: str, make: object, expected: str) -> None:
    assert callable(make)
    path = tmp_path / "cfu1.2026-12-04.fxar"
    path.write_bytes(make(_good(tmp_path)))
    with pytest.raises(ArchiveError) as info:
        list(read_archive(path).entries)
    assert str(info.value).startswith(f"{path}: ") and expected in str(info.value), name


def test_remove_refuses_a_key_above_the_hwm_and_removes_nothing(tmp_path: Path) -> None:
    with RecordLog(_log(tmp_path / "log")) as log:
        before = (log.count(), log.origin_states())
        with pytest.raises(LogError, match=r"cannot remove ssu1#6: above ssu1's contiguous high-water mark 4"):
            log.remove([("ssu1", 1), ("cfu1", 1), ("ssu1", 6)])
        assert (log.count(), log.origin_states()) == before
        assert log.get("ssu1", 1) is not None and log.get("cfu1", 1) is not None
        assert len(log.records_for_txn("cfu1-0.1")) == 4


def test_remove_deletes_records_and_index_entries_idempotently(tmp_path: Path) -> None:
    with RecordLog(_log(tmp_path / "log")) as log:
        states = log.origin_states()
        assert log.remove([("cfu1", 1), ("ssu1", 1), ("cfu1", 1), ("nobody", 3)]) == 2
        assert log.remove([("cfu1", 1), ("ssu1", 1)]) == 0  # gone already: ignored
        assert log.origin_states() == states and log.count() == 11 - 2
        assert [(r.origin, r.seq) for r in log.records_for_txn("cfu1-0.1")] == [("cfu1", 2), ("cfu2", 2)]
        assert [(o, s) for _, o, s, _ in log.raw_for_txns(["cfu1-0.1"])] == [("cfu1", 2), ("cfu2", 2)]
    with RecordLog(tmp_path / "log", readonly=True) as log, log.reader() as r:
        index = {txn: sorted((x.origin, x.seq) for x in recs) for txn, recs in r.iter_by_txn()}
        assert index["cfu1-0.1"] == [("cfu1", 2), ("cfu2", 2)]


def test_archive_txns_moves_records_out_of_the_log_into_the_file(tmp_path: Path) -> None:
    path = _log(tmp_path / "log")
    txns = ["cfu1-0.1", "cfu1-0.2"]
    with RecordLog(path) as log:
        raw_before = {(o, s): (h, raw) for h, o, s, raw in log.raw_for_txns(txns)}
        total = log.count()
        result = archive_txns(log, "cfu1", Role.CUSTOMER, DAY, txns)
        assert result.path == path / "archive" / "cfu1.2026-12-04.fxar"
        assert (result.archived, result.kept) == (7, 1)  # ssu1#6 is above ssu1's hwm: it stays
        assert [(r.origin, r.seq) for r in log.records_for_txn("cfu1-0.2")] == [("ssu1", 6)]
        assert log.records_for_txn("cfu1-0.1") == []
        assert log.count() == total - 7
        live = {(r.origin, r.seq) for r in log.iter_all()}
        assert live == {("cfu1", 4), ("cfu2", 1), ("ssu1", 4), ("ssu1", 6)}
        assert log.high_water_marks() == {"cfu1": 4, "cfu2": 2, "ssu1": 4}  # states unchanged
    with RecordLog(path, readonly=True) as log, log.reader() as r:
        assert {txn for txn, _ in r.iter_by_txn()} == {"cfu1-0.2", "cfu1-0.3", "cfu2-0.1"}  # the txn index
    arch = read_archive(result.path)
    got = {(e.origin, e.seq): (e.holding, e.raw) for e in arch.entries}
    del raw_before[("ssu1", 6)]
    assert got == raw_before  # byte for byte, with the holding the log kept them in
    assert got[("ssu1", 1)][0] is Holding.READ_ONLY and got[("cfu2", 2)][0] is Holding.AUTHORITATIVE


def test_a_pass_that_stopped_before_removing_just_runs_again(tmp_path: Path) -> None:
    path = _log(tmp_path / "log")
    with RecordLog(path) as log:
        entries = [ArchivedRecord(h, Role.CUSTOMER, o, s, raw) for h, o, s, raw in log.raw_for_txns(["cfu1-0.3"])]
        write_day(path, "cfu1", Role.CUSTOMER, DAY, entries)  # ... and the process died here
        result = archive_txns(log, "cfu1", Role.CUSTOMER, DAY, ["cfu1-0.3", "cfu2-0.1"])
        assert (result.archived, result.kept) == (3, 0)
        assert log.count() == 11 - 3
        assert archive_txns(log, "cfu1", Role.CUSTOMER, DAY, ["cfu1-0.3"]).archived == 0  # nothing left
    keys = [(e.origin, e.seq) for e in read_archive(result.path).entries]
    assert keys == [("cfu1", 4), ("cfu2", 1), ("ssu1", 4)]  # each once


def test_a_removed_record_received_again_stays_out(tmp_path: Path) -> None:
    path = _log(tmp_path / "log")
    with RecordLog(path) as log:
        archive_txns(log, "cfu1", Role.CUSTOMER, DAY, ["cfu1-0.1"])
        with log.write() as b:
            out = b.insert(Role.STREET, [_rec("ssu1", 1, "cfu1-0.1"), _rec("ssu1", 5, "cfu1-0.2")])
        assert out.duplicates == 1 and [(i.record.origin, i.record.seq) for i in out.inserted] == [("ssu1", 5)]
        assert log.get("ssu1", 1) is None and log.high_water_marks()["ssu1"] == 6


def test_archive_txns_wants_the_logs_own_node_and_a_writable_open(tmp_path: Path) -> None:
    path = _log(tmp_path / "log")
    with RecordLog(path) as log, pytest.raises(ArchiveError, match="customer node cfu1's log, not customer node cfu2"):
        archive_txns(log, "cfu2", Role.CUSTOMER, DAY, ["cfu1-0.1"])
    with RecordLog(path, readonly=True) as log, pytest.raises(ArchiveError, match="opened read-only"):
        archive_txns(log, "cfu1", Role.CUSTOMER, DAY, ["cfu1-0.1"])
    assert archive_files(path) == []


def test_the_bench_archives_every_day_of_a_copy(tmp_path: Path) -> None:
    from replication.archivebench import main, run

    path = _log(tmp_path / "log")
    out = run(path)
    assert (out["records_before"], out["archived"], out["kept"], out["records_after"]) == (11, 10, 1, 1)
    assert out["days"] == 1 and out["txns"] == 4 and out["archive_bytes"] > 0
    with RecordLog(path, readonly=True) as log:
        assert log.count() == 11 and archive_files(path) == []  # the original is left as it was
    assert main([str(tmp_path / "nothing")]) == 2
