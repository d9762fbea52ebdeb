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


def test_the_log_returns_the_origins_bytes_and_reads_uncompressed_values_of_older_logs(tmp_path: Path) -> None:
    recs = [fill_record(s) for s in (1, 2, 3)]
    with RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER) as log, log.write(HybridLogicalClock("c1")) as b:
        b.insert(Role.STREET, [(r, encode_record(r)) for r in recs[:2]])
    # a value written by a build before compression: plain msgpack, in a format 1 log
    env = lmdb.open(str(tmp_path), max_dbs=8, subdir=True)
    ro, by_txn, meta = env.open_db(b"ro"), env.open_db(b"by_txn", dupsort=True), env.open_db(b"meta")
    origins = env.open_db(b"origins")
    with env.begin(write=True) as txn:
        stored = txn.get(b"ssu1\x00" + (1).to_bytes(8, "big"), db=ro)
        assert stored is not None and stored[:1] == b"\x01"  # compressed on disk
        key3 = b"ssu1\x00" + (3).to_bytes(8, "big")
        txn.put(key3, encode_record(recs[2]), db=ro)
        txn.put(b"tcfu1-0.3", b"r" + key3, db=by_txn)
        txn.put(b"ssu1", msgpack.packb(["street", 3, 3]), db=origins)
        txn.put(b"format", b"1", db=meta)
    env.close()
    with RecordLog(tmp_path, readonly=True) as log:
        assert [log.get_raw("ssu1", s) for s in (1, 2, 3)] == [encode_record(r) for r in recs]
        assert log.records_for_txn("cfu1-0.3") == [recs[2]] and log.records_for_txn("cfu1-0.1") == [recs[0]]
        assert [raw for _, raw in log.iter_raw("ssu1")] == [encode_record(r) for r in recs]
        assert [raw for _, raw in log.iter_holding(Holding.READ_ONLY)] == [encode_record(r) for r in recs]
        assert [r.seq for r in log.iter_type(RecordType.FILL)] == [1, 2, 3]
    with RecordLog(tmp_path, node_id="c1", role=Role.CUSTOMER) as log:  # a writable open upgrades the format
        assert log.get("ssu1", 3) == recs[2]
    env = lmdb.open(str(tmp_path), max_dbs=8, subdir=True, readonly=True)
    meta = env.open_db(b"meta", create=False)
    with env.begin() as txn:
        assert txn.get(b"format", db=meta) == b"2"
    env.close()
