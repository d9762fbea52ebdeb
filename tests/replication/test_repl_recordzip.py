"""Record values compressed in the log with the shipped dictionary (real LMDB files)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import lmdb
import msgpack
import pytest
from hypothesis import given, settings

from replication.codec import encode_record
from replication.errors import RecordDecodeError
from replication.hlc import Hlc, HybridLogicalClock
from replication.log import RecordLog
from replication.matrix import Holding
from replication.record import Record, RecordType, Role
from replication.recordzip import Packer, unpack
from tests.replication.strategies_repl import records

PACKER = Packer()


@given(records())
@settings(max_examples=200, deadline=None)
def test_any_record_comes_back_byte_for_byte(rec: Record) -> None:
    data = encode_record(rec)
    stored = PACKER.pack(data)
    assert unpack(stored) == data
    assert len(stored) <= len(data)  # never larger: kept as it is when compressing does not pay
    assert stored == data or stored[:1] == b"\x01"


def fill_record(seq: int) -> Record:
    """A fill as a street utility records it: the order's terms, the venue's ids and prices."""
    return Record(origin="ssu1", seq=seq, txn=f"cfu1-0.{seq}", type=RecordType.FILL, status="2",
                  hlc=Hlc(1_796_000_000_000_000_000 + seq, 0, "ssu1"), account="ACC1", symbol="AAPL", side="1",
                  order_qty=Decimal(100), price=Decimal("189.25"), ord_type="2", tif="0",
                  cl_ord_id=f"ORD-{seq}", venue="exchange", session="CLIENT1", venue_order_id=f"EXCH-{seq}",
                  exec_id=f"EXCH-E{seq}", last_qty=Decimal(100), last_px=Decimal("189.25"), cum_qty=Decimal(100),
                  avg_px=Decimal("189.25"), extra={"street": "ssu1", "leaves_qty": Decimal(0)})


def test_a_typical_record_is_stored_in_half_its_bytes_or_less(tmp_path: Path) -> None:
    data = encode_record(fill_record(12345))
    stored = Packer().pack(data)
    assert stored[:1] == b"\x01" and len(stored) * 2 <= len(data), (len(stored), len(data))


def test_a_corrupted_stored_value_is_a_decode_error() -> None:
    stored = bytearray(Packer().pack(encode_record(fill_record(7))))
    stored[5] ^= 0xFF
    with pytest.raises(RecordDecodeError):
        unpack(bytes(stored))


def write_old_log(path: Path, fmt: bytes, recs: list[Record], compressed: set[int]) -> None:
    """A log as a build of log format ``fmt`` (1 or 2) wrote it, straight into LMDB: the txn
    index ``by_txn`` with each record's key as the value; the values of the seqs in
    ``compressed`` stored compressed (format 2), the others as plain msgpack (format 1)."""
    env = lmdb.open(str(path), max_dbs=8, subdir=True)
    env.open_db(b"auth")
    ro, origins, meta = env.open_db(b"ro"), env.open_db(b"origins"), env.open_db(b"meta")
    by_txn = env.open_db(b"by_txn", dupsort=True)
    with env.begin(write=True) as txn:
        for r in recs:
            key = b"ssu1\x00" + r.seq.to_bytes(8, "big")
            data = encode_record(r)
            txn.put(key, PACKER.pack(data) if r.seq in compressed else data, db=ro)
            txn.put(b"t" + r.txn.encode(), b"r" + key, db=by_txn)
        top = max(r.seq for r in recs)
        txn.put(b"ssu1", msgpack.packb(["street", top, top]), db=origins)
        for k, v in ((b"format", fmt), (b"node", b"c1"), (b"role", b"customer")):
            txn.put(k, v, db=meta)
    env.close()


def stored_format(path: Path) -> tuple[bytes | None, bool]:
    """The log's format and whether it still has the format 1/2 txn index."""
    env = lmdb.open(str(path), max_dbs=8, subdir=True, readonly=True)
    try:
        meta = env.open_db(b"meta", create=False)
        with env.begin() as txn:
            fmt = txn.get(b"format", db=meta)
        try:
            env.open_db(b"by_txn", create=False)
            old_index = True
        except lmdb.NotFoundError:
            old_index = False
        return fmt, old_index
    finally:
        env.close()


@pytest.mark.parametrize("fmt", [b"1", b"2"])
def test_an_older_log_reads_as_written_and_a_writable_open_upgrades_its_txn_index(tmp_path: Path, fmt: bytes) -> None:
    recs = [fill_record(s) for s in (1, 2, 3)]
    write_old_log(tmp_path, fmt, recs, compressed={1, 2} if fmt == b"2" else set())

    def reads_every_way(log: RecordLog, recs: list[Record]) -> None:
        want = [encode_record(r) for r in recs]
        seqs = [r.seq for r in recs]
        assert [log.get_raw("ssu1", s) for s in seqs] == want
        assert [log.records_for_txn(r.txn) for r in recs] == [[r] for r in recs]
        assert [raw for _, raw in log.iter_raw("ssu1")] == want
        assert [raw for _, raw in log.iter_holding(Holding.READ_ONLY)] == want
        assert [raw for _, raw in log.iter_txn_range("cfu1-0.2", None)] == want[1:]
        assert [r.seq for r in log.iter_type(RecordType.FILL)] == seqs

    with RecordLog(tmp_path, readonly=True) as log:  # read as it is, not changed
        reads_every_way(log, recs)
    assert stored_format(tmp_path) == (fmt, True)
    with RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER) as log:  # a writable open upgrades the index
        reads_every_way(log, recs)
        with log.write(HybridLogicalClock("c1")) as b:
            b.insert(Role.STREET, [(fill_record(4), encode_record(fill_record(4)))])
        reads_every_way(log, [*recs, fill_record(4)])
    assert stored_format(tmp_path) == (b"3", False)
    with RecordLog(tmp_path, readonly=True) as log:
        reads_every_way(log, [*recs, fill_record(4)])
        assert log.space()["by_txn"][0] == 4
