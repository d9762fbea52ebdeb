"""Record values as the LMDB log stores them: compressed with a trained zstd dictionary.

Why: records are denormalised on purpose (every record of an order repeats its account,
symbol, side, quantity, price, ClOrdID, venue and session, and the field names of
``extra``), so most of a record's ~150-160 msgpack bytes say what the records of the same
kind all say. A general compressor cannot find that in one record, but one primed with a
dictionary of typical records can. Measured with a 16 KiB dictionary at zstd level 3: the
records of a test cluster's logs that the dictionary was not trained on (``fixgw bench
--config`` against ``fixgw up``) average 156 bytes of msgpack and 65 stored; about 7 us to
compress and 3 us to expand a record on this (loaded) machine, against 47 us to decode one
(zlib with a preset dictionary compresses as well but costs ~1 ms a record to set up). With
the log's other overheads (key, page, txn index) the log file went from 337 to 180 bytes a
record (``fixgw bench scale --records 1000000``; 152 at 200,000 records since the txn index's
entries are fixed-size: :mod:`replication.log`); CPU per record, measured on 5,000 fills: 4.5
us to compress against 11 us to encode, 2.4 us to expand against 17.5 us to decode.

Only the log's storage changes: the wire, the codec and every read API keep the record's
msgpack bytes exactly as encoded at its origin (what :meth:`RecordLog.get_raw` returns,
what ``log verify`` hashes), so two nodes still agree byte for byte whatever their zstd
version. A stored value is either

* ``0x01`` + a zstd frame (magic-less, no checksum, content size written) against
  dictionary 1 (``replication/dicts/records-1.zdict``), or
* the msgpack bytes themselves, when compressing does not make them smaller (and every
  value written before this module existed): a record is a msgpack array, whose first
  byte is 0x90-0x9f, 0xdc or 0xdd, never 0x01.

A dictionary, once shipped, never changes: a better one takes the next tag, and the old one
stays to read what it wrote. ``python -m replication.recordzip train OUT LOGDIR...`` makes one
from the records of existing logs (the shipped one: 8,744 records of four test clusters' logs,
with takeovers, cancels and replaces, and 4,000 of ``fixgw bench scale``).
"""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

import lmdb
import zstandard

from replication.errors import RecordDecodeError

DICT_DIR = Path(__file__).resolve().parent / "dicts"
TAG_DICT_1 = 0x01
LEVEL = 3
DICT_SIZE = 16 * 1024


def _load(tag: int) -> zstandard.ZstdCompressionDict:
    path = DICT_DIR / f"records-{tag}.zdict"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RuntimeError(f"{path}: the record dictionary is missing ({exc.strerror}): reinstall fixgw") from None
    return zstandard.ZstdCompressionDict(data)


_dicts: dict[int, zstandard.ZstdCompressionDict] = {}
_dicts_lock = threading.Lock()
_local = threading.local()


def _dict(tag: int) -> zstandard.ZstdCompressionDict:
    d = _dicts.get(tag)
    if d is None:
        with _dicts_lock:
            d = _dicts.get(tag)
            if d is None:
                d = _dicts[tag] = _load(tag)
    return d


def _params() -> zstandard.ZstdCompressionParameters:
    return zstandard.ZstdCompressionParameters.from_level(
        LEVEL, format=zstandard.FORMAT_ZSTD1_MAGICLESS, write_checksum=0, write_dict_id=0, write_content_size=1)


class Packer:
    """Compresses record values for one writer (not thread-safe: the log's write lock holds it)."""

    def __init__(self) -> None:
        d = _dict(TAG_DICT_1)
        d.precompute_compress(level=LEVEL)
        self._compress = zstandard.ZstdCompressor(dict_data=d, compression_params=_params()).compress
        self._tag = bytes([TAG_DICT_1])

    def pack(self, data: bytes) -> bytes:
        z = self._compress(data)
        return self._tag + z if len(z) + 1 < len(data) else data


def unpack(stored: bytes) -> bytes:
    """The record's msgpack bytes from a stored value (any thread)."""
    if stored[:1] != b"\x01":
        return stored
    try:
        decompress = _local.decompress
    except AttributeError:
        dctx = zstandard.ZstdDecompressor(dict_data=_dict(TAG_DICT_1), format=zstandard.FORMAT_ZSTD1_MAGICLESS)
        decompress = _local.decompress = dctx.decompress
    try:
        out: bytes = decompress(stored[1:])
    except zstandard.ZstdError as exc:
        raise RecordDecodeError(f"a stored record value does not decompress: {exc}") from None
    return out


def train(samples: list[bytes], size: int = DICT_SIZE) -> bytes:
    """A dictionary for record values from typical ones (a few thousand, every type)."""
    given: list[bytes | bytearray | memoryview] = list(samples)
    return bytes(zstandard.train_dictionary(size, given, level=LEVEL).as_bytes())


def _samples(dirs: Iterable[Path], limit: int, seed: int = 18) -> list[bytes]:
    # straight from LMDB (the log's two record databases): replication.log uses this module
    found: list[bytes] = []
    for d in dirs:
        env = lmdb.open(str(d), readonly=True, max_dbs=8, subdir=True, lock=False)
        try:
            for name in (b"auth", b"ro"):
                db = env.open_db(name, create=False)
                with env.begin(db=db) as txn:
                    found.extend(unpack(bytes(v)) for _, v in txn.cursor())
        finally:
            env.close()
    rnd = random.Random(seed)
    return rnd.sample(found, min(limit, len(found)))


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "train":
        out, dirs = Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]]
        samples = _samples(dirs, 20_000)
        out.write_bytes(train(samples))
        print(f"{out}: dictionary of {out.stat().st_size} bytes from {len(samples)} records")
    else:
        sys.exit("usage: python -m replication.recordzip train OUT.zdict LOGDIR...")
