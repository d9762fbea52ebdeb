"""The per-node record log in LMDB.

One LMDB environment per node (its data directory), with named databases:

``auth``     records held as authoritative: the node's own and its same-role peers'
``ro``       records held read-only: those of other roles (replication matrix)
``txn_index`` index ``txn -> record`` (dupsort, dupfixed), so all records of an order come
             from one range scan; each entry is 11 bytes: a holding tag (``a``/``r``), the
             origin's number here (2 bytes) and the seq (8 bytes)
``origins``  per origin: its role, its contiguous high-water mark and its highest sequence
``meta``     schema version, this node's id and role, and each origin's number (``o`` + origin)

The txn index is a third of the log's bytes, so its entries are small and of one size: LMDB
stores the duplicates of a fixed size packed, without a node header each. Measured on the
records of ``fixgw bench scale --records 200000`` inserted in time order (as a node does):
61.6 bytes an entry with the record's key as the value (``by_txn``, log format 2), 40.7 with
the 11-byte fixed entries (format 3). A log of format 1 or 2 is rewritten to format 3 the first
time it is opened for writing (one transaction); a read-only open reads either.

A record key is ``origin UTF-8 + NUL + seq as 8 bytes big-endian``, so one origin's records
are contiguous and in sequence order. Values are stored compressed with a trained dictionary
(:mod:`replication.recordzip`: 337 -> 180 bytes a record in the log file, ``fixgw bench scale``
at 1,000,000 records); every read returns the record's msgpack bytes exactly as encoded at the
origin, so the same record reads the same on every node. The LMDB map grows by itself up to
a limit (:mod:`replication.mapsize`), which is why every read passes the map's read gate.

Inserting a key that is already there is a no-op: redelivery is harmless. A key that comes
again with *other* bytes is a conflict (a forged record, or an origin that lost its log and
reused its seqs): the first version stays, and the write reports the conflict (both
versions) for the node to count and log. Writing happens
only through :meth:`RecordLog.write` (one LMDB write transaction per call); the
asyncio side of group commit is :mod:`replication.writer`. Reads work from any thread and
from other processes (``fixgw log dump`` on a running node's directory).

Durability: a commit that holds records of this node (its appends) returns only once data
and LMDB's meta page are on disk. A commit of received records only (replicas) syncs its
data but not the meta page (LMDB's MDB_NOMETASYNC, which keeps the database intact): a
machine crash may undo the last of them, and the replica then asks their origin again, as
for any gap. That saves one of the two disk flushes per replica commit, and the origins'
own commits, which acknowledgements wait for, queue behind fewer flushes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Self

import lmdb
import msgpack

from fixgw.lmdblock import allocate_lock_file
from replication.codec import (
    check_node_id,
    decode_record,
    encode_values,
    make_checked_record,
    record_values,
)
from replication.errors import (
    LogClosedError,
    LogConflictError,
    LogError,
    LogFullError,
    RecordDecodeError,
)
from replication.hlc import Hlc, HybridLogicalClock
from replication.mapsize import MapGrowth, MapUsage, ReadGate, round_up_to_page
from replication.matrix import Holding, holding_for
from replication.record import Record, RecordType, Role
from replication.recordzip import Packer, unpack
from replication.storage_health import is_disk_full

DEFAULT_MAP_SIZE = 4 << 30  # address space only; the file grows with the data
# the map grows by itself up to map_limit (replication.mapsize); without one it stays map_size
# format 2: values may be compressed (replication.recordzip); a build that reads only
# format 1 refuses such a log by name instead of failing on its values
# format 3: the txn index holds fixed-size entries with an origin number (txn_index, not by_txn)
LOG_FORMAT = b"3"
READS_FORMATS = (b"1", b"2", b"3")
_OLD_INDEX_FORMATS = (b"1", b"2")
_ORDINAL = b"o"  # meta key prefix: origin -> its number here (2 bytes, big-endian)
MAX_ORIGINS = 1 << 16
MAX_TXN_BYTES = 400  # LMDB keys are at most 511 bytes; the txn index key is 1 + txn
_SEP = b"\x00"
_GETMULTI_RUN = 1 << 14  # keys per Cursor.getmulti call: bounded memory, few calls
_TAG = {Holding.AUTHORITATIVE: b"a", Holding.READ_ONLY: b"r"}


def key_prefix(origin: str) -> bytes:
    """What every record key of ``origin`` starts with (then its seq, 8 bytes big-endian)."""
    return origin.encode() + _SEP


def record_key(origin: str, seq: int) -> bytes:
    return key_prefix(origin) + seq.to_bytes(8, "big")


def split_key(key: bytes) -> tuple[str, int]:
    return key[:-9].decode(), int.from_bytes(key[-8:], "big")


KeyFilter = Callable[[str, int], bool]
"""Which records a read wants, by key: ``(origin, seq) -> bool``."""


@dataclass(frozen=True, slots=True)
class OriginState:
    """What a log holds of one origin.

    ``hwm``: every seq 1..hwm is held (the contiguous high-water mark), or was archived at
    its origin (a resend answer said so: :meth:`WriteBatch.insert` ``complete``);
    ``max_seq``: the highest seq held (> hwm means there is a gap after hwm), at least hwm.
    """

    role: Role
    hwm: int = 0
    max_seq: int = 0


class Inserted(NamedTuple):
    """A record newly made durable by a write, with its stored bytes."""

    record: Record
    data: bytes
    origin_role: Role
    holding: Holding


_tuple_new = tuple.__new__
_AUTHORITATIVE = Holding.AUTHORITATIVE


@dataclass(frozen=True, slots=True)
class Conflict:
    """A record received under a key this log holds with other bytes: ``kept`` stays."""

    origin: str
    seq: int
    kept: bytes
    received: bytes


@dataclass(slots=True)
class InsertOutcome:
    """What one :meth:`WriteBatch.insert` call did."""

    inserted: list[Inserted] = field(default_factory=list)
    duplicates: int = 0
    rejected: list[str] = field(default_factory=list)  # why records were refused (not held, role clash)
    conflicts: list[Conflict] = field(default_factory=list)  # duplicates whose bytes differ (first kept)


class WriteBatch:
    """The records written in one LMDB write transaction. Obtained from :meth:`RecordLog.write`.

    Puts are buffered and written with ``Cursor.putmulti`` at the end (or before a read
    that needs them): one C call per database instead of one Python call per record,
    ~0.2 us instead of ~1.7 us a put on this machine. Whether a received record is new is
    decided from the in-memory high-water marks (a single writer per log is enforced by a
    lock file), with an LMDB lookup only for seqs inside a known gap.
    """

    def __init__(self, log: RecordLog, txn: lmdb.Transaction, clock: HybridLogicalClock | None) -> None:
        self._log = log
        self._txn = txn
        self._clock = clock
        self._states: dict[str, OriginState] = {}
        self.new: list[Inserted] = []
        self._auth_puts: list[tuple[bytes, bytes]] = []
        self._ro_puts: list[tuple[bytes, bytes]] = []
        self._txn_puts: list[tuple[bytes, bytes]] = []
        # own seq/hwm as plain ints while appending (an OriginState per append costs ~1 us)
        self._own_max = -1
        self._own_hwm = -1
        self._stamps: list[Hlc] = []
        self.own = False  # holds records of this node: fully synced on commit
        self._new_ordinals: dict[str, bytes] = {}  # origins numbered in this transaction

    def ordinal(self, origin: str) -> bytes:
        """``origin``'s number in the txn index (2 bytes): numbered the first time it is written,
        in this transaction (``meta``); the log learns it once the transaction commits."""
        got = self._log._ordinals.get(origin) or self._new_ordinals.get(origin)
        if got is not None:
            return got
        taken = (*self._log._ordinals.values(), *self._new_ordinals.values())
        n = 1 + max((int.from_bytes(b, "big") for b in taken), default=-1)
        if n >= MAX_ORIGINS:
            raise LogError(f"{self._log.path}: more than {MAX_ORIGINS} origins")
        got = n.to_bytes(2, "big")
        self._txn.put(_ORDINAL + origin.encode(), got, db=self._log._meta)
        self._new_ordinals[origin] = got
        return got

    def reserve_stamps(self, n: int) -> None:
        """Take ``n`` HLC stamps at once for the next ``n`` appends (one clock lock, cheap stamps)."""
        if self._clock is not None and n > 0:
            self._stamps = self._clock.now_many(n)
            self._stamps.reverse()  # pop() from the end is O(1)

    def state(self, origin: str) -> OriginState | None:
        if origin == self._log.node_id and self._own_max >= 0:
            return OriginState(self._log.role, self._own_hwm, self._own_max)
        st = self._states.get(origin)
        return st if st is not None else self._log._states.get(origin)

    def append(self, fields: Mapping[str, Any]) -> Inserted:
        """Append a record of this node: next own seq, a fresh HLC timestamp.

        ``fields`` are Record fields other than origin/seq/hlc. Invalid fields raise
        ValueError (or RecordEncodeError) before anything is written, so the rest of the
        batch is unaffected.
        """
        clock = self._clock
        if clock is None:
            raise LogError("this log was opened without a clock: it cannot append")
        log = self._log
        seq = self._own_max
        if seq < 0:
            st = self._states.get(log.node_id) or log._states.get(log.node_id)
            self._own_max, self._own_hwm = (st.max_seq, st.hwm) if st else (0, 0)
            seq = self._own_max
        seq += 1
        stamps = self._stamps
        values = record_values(log.node_id, seq, stamps.pop() if stamps else clock.now(), fields)
        txn_b = values[2].encode()
        if len(txn_b) > MAX_TXN_BYTES:
            raise ValueError(f"Record.txn is longer than {MAX_TXN_BYTES} bytes")
        rec = make_checked_record(values)  # record_values checked every field's type
        data = encode_values(values)
        key = log._own_prefix + seq.to_bytes(8, "big")
        self._auth_puts.append((key, log._pack(data)))
        self._txn_puts.append((b"t" + txn_b, log._own_entry + seq.to_bytes(8, "big")))
        self.own = True
        self._own_max = seq
        if self._own_hwm == seq - 1:
            self._own_hwm = seq
        # tuple.__new__ directly: a NamedTuple's own __new__ is a Python frame (~0.3 us)
        item: Inserted = _tuple_new(Inserted, (rec, data, log.role, _AUTHORITATIVE))
        self.new.append(item)
        return item

    def insert(self, origin_role: Role, items: list[tuple[Record, bytes]], *,
               complete: tuple[str, int, int] | None = None) -> InsertOutcome:
        """Insert received records of one or more origins of ``origin_role``, idempotently.

        ``complete``: ``(origin, first, last)`` of a resend answer (:mod:`replication.wire`,
        "R"): ``items`` hold every record of ``origin`` in ``first..last`` that the origin
        still has, the rest were archived there. Declared in this transaction, after the
        records: if the range starts at or below ``hwm + 1``, the high-water mark moves to
        ``last`` at least (and on over records held after it); a range after an open gap
        moves nothing (catch-up asks from the mark again). ``hwm`` then means "held here or
        archived at the origin"."""
        log = self._log
        out = InsertOutcome()
        node_id = log.node_id
        # Received records come in runs of one origin: its state, holding and key prefix are
        # looked up once per run and its new state is stored when the run ends.
        origin: str | None = None
        hwm = max_seq = 0
        how = Holding.READ_ONLY
        db: Any = None
        puts = self._ro_puts
        tag = prefix = b""
        pack = log._pack
        for rec, data in items:
            if rec.origin != origin:
                if origin is not None:
                    self._set_state(origin, origin_role, hwm, max_seq)
                    origin = None
                o = rec.origin
                st = self.state(o)
                if st is None:
                    hwm = max_seq = 0
                elif st.role is not origin_role:
                    out.rejected.append(f"{o} is a {st.role.value} node here, not {origin_role.value}")
                    continue
                else:
                    hwm, max_seq = st.hwm, st.max_seq
                held = holding_for(node_id, log.role, o, origin_role)
                if held is None:
                    out.rejected.append(f"a {log.role.value} node does not hold records of {origin_role.value} {o}")
                    continue
                origin, how, prefix = o, held, key_prefix(o)
                tag = _TAG[held] + self.ordinal(o)
                db, puts = (log._auth, self._auth_puts) if held is Holding.AUTHORITATIVE else (log._ro, self._ro_puts)
            seq = rec.seq
            key = prefix + seq.to_bytes(8, "big")
            if seq <= max_seq:  # held already, or inside a gap: compare with what is here
                self._flush_puts()
                kept = self._txn.get(key, db=db)
                if kept is not None:
                    out.duplicates += 1
                    kept = unpack(bytes(kept))  # stored compressed: compare the origin's bytes
                    if kept != data:
                        out.conflicts.append(Conflict(origin, seq, kept, data))
                    continue
                if seq <= hwm:  # held once, removed since (RecordLog.remove: archived): not again
                    out.duplicates += 1
                    continue
            txn_b = rec.txn.encode()
            if len(txn_b) > MAX_TXN_BYTES:
                out.rejected.append(f"{origin}#{seq}: txn longer than {MAX_TXN_BYTES} bytes")
                continue
            puts.append((key, pack(data)))
            self._txn_puts.append((b"t" + txn_b, tag + key[-8:]))
            if seq > max_seq:  # noqa: PLR1730 - a compare is cheaper than a call to max() here
                max_seq = seq
            if seq == hwm + 1:
                hwm = seq
                if max_seq > hwm:  # this closed a gap: records after it may already be here
                    hwm = self._scan_contiguous(db, origin, hwm)
            if origin == node_id:
                self.own = True  # our own records coming back (a rebuilt log): as durable as appends
            item: Inserted = _tuple_new(Inserted, (rec, data, origin_role, how))
            out.inserted.append(item)
            self.new.append(item)
        if origin is not None:
            self._set_state(origin, origin_role, hwm, max_seq)
        if complete is not None:
            self._complete(origin_role, *complete, out)
        return out

    def _complete(self, origin_role: Role, origin: str, first: int, last: int, out: InsertOutcome) -> None:
        """Every seq of ``origin`` in first..last not held is archived at the origin (insert)."""
        if first < 1 or last < first:
            raise ValueError(f"{self._log.path}: bad complete range {first}..{last} of {origin}")
        log = self._log
        st = self.state(origin)
        if st is not None and st.role is not origin_role:
            out.rejected.append(f"{origin} is a {st.role.value} node here, not {origin_role.value}")
            return
        held = holding_for(log.node_id, log.role, origin, origin_role)
        if held is None:
            out.rejected.append(f"a {log.role.value} node does not hold records of {origin_role.value} {origin}")
            return
        hwm, max_seq = (st.hwm, st.max_seq) if st is not None else (0, 0)
        if first > hwm + 1 or last <= hwm:
            return  # an earlier gap is still open, or nothing new
        hwm = last
        if max_seq > hwm:  # records held after the range join
            hwm = self._scan_contiguous(log._auth if held is Holding.AUTHORITATIVE else log._ro, origin, hwm)
        self._set_state(origin, origin_role, hwm, max(max_seq, hwm))

    def _set_state(self, origin: str, role: Role, hwm: int, max_seq: int) -> None:
        if origin == self._log.node_id and self._own_max >= 0:
            self._own_hwm, self._own_max = hwm, max_seq
        else:
            self._states[origin] = OriginState(role, hwm, max_seq)

    def _flush_puts(self) -> None:
        log, txn = self._log, self._txn
        for db, puts in ((log._auth, self._auth_puts), (log._ro, self._ro_puts)):
            if puts:
                consumed, added = txn.cursor(db=db).putmulti(puts, overwrite=False)
                if added != consumed:  # only possible if someone else wrote: never overwrite
                    raise LogError(f"{log.path}: {consumed - added} record key(s) were already present")
                puts.clear()
        if self._txn_puts:
            txn.cursor(db=log._txn_index).putmulti(self._txn_puts, dupdata=True)
            self._txn_puts.clear()

    def _scan_contiguous(self, db: Any, origin: str, hwm: int) -> int:
        self._flush_puts()
        cur = self._txn.cursor(db=db)
        if not cur.set_key(record_key(origin, hwm + 1)):
            return hwm
        while True:
            hwm += 1
            if not cur.next() or cur.key() != record_key(origin, hwm + 1):
                return hwm

    def first_held_after(self, origin: str, seq: int) -> int | None:
        """The lowest seq > ``seq`` held for ``origin`` (within this transaction), if any."""
        st = self.state(origin)
        if st is None or st.max_seq <= seq:
            return None
        how = holding_for(self._log.node_id, self._log.role, origin, st.role)
        db = self._log._auth if how is Holding.AUTHORITATIVE else self._log._ro
        self._flush_puts()
        cur = self._txn.cursor(db=db)
        if not cur.set_range(record_key(origin, seq + 1)):
            return None
        o, s = split_key(bytes(cur.key()))
        return s if o == origin else None

    def _finish(self) -> None:
        self._flush_puts()
        if self._own_max >= 0:
            self._states[self._log.node_id] = OriginState(self._log.role, self._own_hwm, self._own_max)
        for origin, st in self._states.items():
            self._txn.put(
                origin.encode(), msgpack.packb([st.role.value, st.hwm, st.max_seq]), db=self._log._origins
            )


class RecordLog:
    """A node's LMDB record log (see the module docstring for the layout).

    ``node_id``/``role`` are stored at creation and checked on every later open; a
    read-only open (ops tools) takes them from the directory.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        node_id: str | None = None,
        role: Role | None = None,
        map_size: int = DEFAULT_MAP_SIZE,
        map_limit: int | None = None,
        readonly: bool = False,
        sync: bool = True,
    ) -> None:
        """``map_size``: the LMDB map at open; ``map_limit``: the most it may grow to by itself
        (None: it does not grow). A read-only open maps at least what the log holds."""
        self.path = Path(path)
        self.readonly = readonly
        if node_id is not None:
            check_node_id(node_id)
        if map_size <= 0 or (map_limit is not None and map_limit < map_size):
            raise ValueError(f"{self.path}: map_size must be > 0 and map_limit >= map_size, "
                             f"got {map_size} and {map_limit}")
        map_size = round_up_to_page(map_size)
        self._lock_fd: int | None = None
        if not readonly:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock_fd = self._take_writer_lock()
        elif not (self.path / "data.mdb").exists():
            raise LogError(f"{self.path}: not a record log (no data.mdb)")
        try:
            self._env = lmdb.open(
                str(self.path),
                map_size=map_size,
                max_dbs=8,
                subdir=True,
                readonly=readonly,
                sync=sync,
                metasync=False,  # own commits sync the meta page themselves (see the module doc)
                max_readers=256,
            )
        except lmdb.Error as exc:
            self._release_writer_lock()
            raise LogError(f"{self.path}: cannot open the LMDB record log: {exc}") from None
        if not readonly:
            try:
                allocate_lock_file(self.path)  # a full disk later: write errors, not SIGBUS (fixgw.lmdblock)
            except OSError as exc:
                self._env.close()
                self._release_writer_lock()
                raise LogError(f"{self.path}: cannot allocate the LMDB lock file: {exc}") from None
        self._closed = False
        self._sync = sync and not readonly
        self._write_lock = threading.Lock()
        self._gate = ReadGate()
        self._pack = (lambda data: data) if readonly else Packer().pack  # stored values (recordzip)
        self._growth = None if readonly else MapGrowth(
            self._env, self.path, map_size if map_limit is None else map_limit, self._gate)
        try:
            names = {}
            for name in ("auth", "ro", "origins", "meta"):
                names[name] = self._env.open_db(name.encode(), create=not readonly)
            self._auth, self._ro = names["auth"], names["ro"]
            self._origins, self._meta = names["origins"], names["meta"]
            with self._env.begin(db=self._meta) as txn:
                fmt = txn.get(b"format")
            # a read-only open of a format 1 or 2 log reads its by_txn index as it is
            self._fixed_index = not (readonly and fmt in _OLD_INDEX_FORMATS)
            if self._fixed_index:
                self._txn_index = self._env.open_db(b"txn_index", create=not readonly, dupsort=True, dupfixed=True)
            else:
                self._txn_index = self._env.open_db(b"by_txn", create=False, dupsort=True)
        except lmdb.Error as exc:
            self._env.close()
            self._release_writer_lock()
            raise LogError(f"{self.path}: not a fixgw record log (named databases missing): {exc}") from None
        self._ordinals: dict[str, bytes] = {}       # origin -> its number in the txn index
        self._prefixes: dict[bytes, bytes] = {}     # number -> the origin's record key prefix
        self.node_id, self.role = self._check_meta(node_id, role)
        self._own_prefix = key_prefix(self.node_id)
        self._states: dict[str, OriginState] = self._load_states()
        with self._env.begin(db=self._meta) as txn:
            self._load_ordinals(txn)
        own = self._ordinals.get(self.node_id)
        if own is None and not readonly:   # a new log: its own number, once
            with self.write() as batch:
                own = batch.ordinal(self.node_id)
        self._own_entry = b"a" + (own or b"")   # how txn index entries of own records start

    # -- opening -------------------------------------------------------------------------

    def _check_meta(self, node_id: str | None, role: Role | None) -> tuple[str, Role]:
        with self._env.begin(db=self._meta) as txn:
            fmt, node_b, role_b = txn.get(b"format"), txn.get(b"node"), txn.get(b"role")
        if fmt is not None and fmt not in READS_FORMATS:
            self.close()
            raise LogError(f"{self.path}: log format {fmt!r}, this build reads {b', '.join(READS_FORMATS)!r}")
        if fmt is not None and fmt != LOG_FORMAT and not self.readonly:
            self._upgrade_index()  # format 1 values stay readable as they are
        if node_b is None or role_b is None:
            if self.readonly or node_id is None or role is None:
                self.close()
                raise LogError(
                    f"{self.path}: the log has no node id/role yet; open it once with node_id and role"
                )
            with self._env.begin(write=True, db=self._meta) as txn:
                txn.put(b"format", LOG_FORMAT)
                txn.put(b"node", node_id.encode())
                txn.put(b"role", role.value.encode())
            return node_id, role
        stored_node, stored_role = node_b.decode(), Role(role_b.decode())
        if (node_id is not None and node_id != stored_node) or (role is not None and role != stored_role):
            self.close()
            raise LogConflictError(
                f"{self.path} belongs to {stored_role.value} node {stored_node!r}, "
                f"not {role.value if role else stored_role.value} node {node_id or stored_node!r}"
            )
        return stored_node, stored_role

    def _upgrade_index(self) -> None:
        """Rewrite a format 1 or 2 log's txn index (``by_txn``, the record key as the value) as
        format 3's fixed-size entries (``txn_index``), in one transaction with the format."""
        ordinals: dict[bytes, bytes] = {}
        try:
            by_txn = self._env.open_db(b"by_txn", create=False, dupsort=True)
        except lmdb.NotFoundError:
            by_txn = None
        try:
            with self._env.begin(write=True) as txn:
                if by_txn is not None:
                    puts = []
                    for k, tagged in txn.cursor(db=by_txn).iternext(keys=True, values=True):
                        origin, seq = bytes(tagged[1:-9]), bytes(tagged[-8:])
                        n = ordinals.get(origin)
                        if n is None:
                            n = ordinals[origin] = len(ordinals).to_bytes(2, "big")
                            txn.put(_ORDINAL + origin, n, db=self._meta)
                        puts.append((bytes(k), bytes(tagged[:1]) + n + seq))
                    txn.cursor(db=self._txn_index).putmulti(puts, dupdata=True)
                    txn.drop(by_txn, delete=True)
                txn.put(b"format", LOG_FORMAT, db=self._meta)
        except lmdb.Error as exc:
            self.close()
            raise LogError(f"{self.path}: cannot rewrite the txn index as log format {LOG_FORMAT.decode()}: {exc}") from None

    def _load_ordinals(self, txn: lmdb.Transaction) -> None:
        """Every origin's number in the txn index, as ``txn`` (on ``meta``) sees them. Readers
        call it again for a number they do not know: an origin written after they opened."""
        ordinals = dict(self._ordinals)   # numbers never change once given
        cur = txn.cursor(db=self._meta)
        if cur.set_range(_ORDINAL):
            for k, v in cur:
                if bytes(k[:1]) != _ORDINAL:
                    break
                ordinals[bytes(k[1:]).decode()] = bytes(v)
        # copy on write: readers on other threads keep using the dicts they hold
        self._prefixes = {n: key_prefix(o) for o, n in ordinals.items()}
        self._ordinals = ordinals

    def _index_target(self, txn: lmdb.Transaction, tagged: bytes) -> tuple[Any, bytes]:
        """The database and key of the record a txn index entry points at."""
        db = self._auth if tagged[:1] == b"a" else self._ro
        if not self._fixed_index:
            return db, tagged[1:]
        n = tagged[1:3]
        prefix = self._prefixes.get(n)
        if prefix is None and self.readonly:  # numbered after this open (a writer numbers in memory first)
            self._load_ordinals(txn)
            prefix = self._prefixes.get(n)
        if prefix is None:
            raise LogError(f"{self.path}: the txn index names origin number {int.from_bytes(n, 'big')}, "
                           "which the log does not know")
        return db, prefix + tagged[3:]

    def _load_states(self) -> dict[str, OriginState]:
        states = {}
        with self._env.begin(db=self._origins) as txn:
            for k, v in txn.cursor():
                role, hwm, max_seq = msgpack.unpackb(v)
                states[bytes(k).decode()] = OriginState(Role(role), hwm, max_seq)
        return states

    def _take_writer_lock(self) -> int:
        # One writing process per log: the write path trusts its in-memory high-water
        # marks, and LMDB forbids opening one environment twice in a process anyway.
        fd = os.open(self.path / "writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise LogError(
                f"{self.path}: the log is open for writing elsewhere (a running node, or another "
                "open in this process); stop it first or open read-only"
            ) from None
        return fd

    def _release_writer_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._sync:
                with contextlib.suppress(lmdb.Error):
                    self._env.sync(True)  # a clean stop leaves replica commits' meta on disk too
            self._env.close()
            self._release_writer_lock()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------

    def write(self, clock: HybridLogicalClock | None = None) -> _WriteContext:
        """``with log.write(clock) as batch: batch.append(...); batch.insert(...)``.

        One LMDB write transaction, on disk when the block ends if it holds records of this
        node (see the module doc for received ones). If the map or the disk is full the
        transaction is aborted and :class:`LogFullError` raised: nothing of it is durable.
        """
        if self.readonly:
            raise LogError(f"{self.path}: opened read-only")
        if self._closed:
            raise LogClosedError(f"{self.path}: the log is closed")
        return _WriteContext(self, clock)

    def map_usage(self) -> MapUsage:
        """Bytes of the map in use, its size now and its limit (see :mod:`replication.mapsize`)."""
        self._check_open()
        if self._growth is not None:
            return self._growth.usage()
        info = self._env.info()
        size = info["map_size"]
        return MapUsage((info["last_pgno"] + 1) * self._env.stat()["psize"], size, size)

    def _wrap_lmdb_error(self, exc: BaseException) -> LogError:
        if isinstance(exc, lmdb.MapFullError):
            # the transaction is aborted by now: the map may grow, and the caller run it again
            grown = self._growth is not None and self._growth.after_full()
            u = self.map_usage()
            if grown:
                return LogFullError(f"{self.path}: the LMDB map was full; it has grown to {u.size} bytes: "
                                    "write again", map_grown=True)
            if u.size < u.limit:
                return LogFullError(f"{self.path}: the LMDB map is full ({u.used} bytes used of a map of {u.size} "
                                    "bytes) and could not grow now (reads still open): the write was not made "
                                    "durable")
            return LogFullError(
                f"{self.path}: the LMDB map is full ({u.used} bytes used of a map of {u.size} bytes, "
                f"limit {u.limit}): the write was not made durable; raise map_limit (cluster config) "
                "or archive old records"
            )
        if isinstance(exc, lmdb.DiskError) or is_disk_full(exc, self.path):
            # LMDB reports the short write of a full filesystem as EIO (replication.storage_health)
            return LogFullError(f"{self.path}: the disk is full: the write was not made durable ({exc})", disk=True)
        return LogError(f"{self.path}: LMDB write failed: {exc}")

    def probe(self) -> None:
        """One small synced write transaction (a time stamp in ``meta``): whether the log can
        write again after a full disk. LogFullError / LogError as :meth:`write` raises them."""
        if self.readonly:
            raise LogError(f"{self.path}: opened read-only")
        self._check_open()
        with self._write_lock:
            try:
                with self._env.begin(write=True, db=self._meta) as txn:
                    txn.put(b"probe", str(time.time()).encode())
                if self._sync:
                    self._env.sync(True)
            except (lmdb.Error, OSError) as exc:
                raise self._wrap_lmdb_error(exc) from None

    # -- reading -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError(f"{self.path}: the log is closed")

    def origin_states(self) -> dict[str, OriginState]:
        """Every origin this log holds records of (its own included)."""
        return dict(self._states)

    def origin_state(self, origin: str) -> OriginState | None:
        return self._states.get(origin)

    def high_water_marks(self) -> dict[str, int]:
        """Per origin, the highest seq such that every seq 1..hwm is held."""
        return {o: st.hwm for o, st in self._states.items()}

    @property
    def head(self) -> int:
        """The highest own seq appended so far (0 for a new node)."""
        st = self._states.get(self.node_id)
        return st.max_seq if st else 0

    def holding_of(self, origin: str) -> Holding | None:
        st = self._states.get(origin)
        if st is None:
            return None
        return holding_for(self.node_id, self.role, origin, st.role)

    def _db_for(self, origin: str) -> Any:
        how = self.holding_of(origin)
        if how is None:
            return None
        return self._auth if how is Holding.AUTHORITATIVE else self._ro

    def get(self, origin: str, seq: int) -> Record | None:
        raw = self.get_raw(origin, seq)
        return None if raw is None else decode_record(raw)

    def get_raw(self, origin: str, seq: int) -> bytes | None:
        self._check_open()
        db = self._db_for(origin)
        if db is None:
            return None
        with self._gate, self._env.begin(db=db, buffers=False) as txn:
            v = txn.get(record_key(origin, seq))
        return None if v is None else unpack(v)

    def conflicts(self, origin: str, items: list[tuple[int, bytes]]) -> list[Conflict]:
        """Of received ``(seq, bytes)`` of ``origin``, those held here with other bytes (one
        read transaction; for duplicates, which a node otherwise drops unread)."""
        self._check_open()
        db = self._db_for(origin)
        if db is None or not items:
            return []
        out = []
        prefix = key_prefix(origin)
        with self._gate, self._env.begin(db=db) as txn:
            for seq, data in items:
                stored = txn.get(prefix + seq.to_bytes(8, "big"))
                kept = None if stored is None else unpack(stored)  # stored compressed: the origin's bytes
                if kept is not None and kept != data:
                    out.append(Conflict(origin, seq, kept, data))
        return out

    def first_held_after(self, origin: str, seq: int) -> int | None:
        """The lowest seq > ``seq`` held for ``origin``, if any (to size a gap)."""
        self._check_open()
        st = self._states.get(origin)
        if st is None or st.max_seq <= seq:
            return None
        db = self._db_for(origin)
        with self._gate, self._env.begin(db=db) as txn:
            cur = txn.cursor()
            if not cur.set_range(record_key(origin, seq + 1)):
                return None
            o, s = split_key(bytes(cur.key()))
        return s if o == origin else None

    @contextlib.contextmanager
    def reader(self) -> Iterator[LogReader]:
        """``with log.reader() as r:`` one consistent read transaction (:class:`LogReader`)."""
        self._check_open()
        with self._gate, self._env.begin(buffers=False) as txn:
            yield LogReader(self, txn)

    def records_for_txn(self, txn_id: str, want: KeyFilter | None = None) -> list[Record]:
        """Every record of one order (``txn``) held here, in HLC order; ``want``: only those
        whose key ``(origin, seq)`` it accepts (the others are not even read: the txn index
        names them)."""
        self._check_open()
        with self._gate, self._env.begin() as txn:
            return _records_for_txn(self, txn, txn_id, want)

    def raw_for_txns(self, txn_ids: Iterable[str]) -> list[tuple[Holding, str, int, bytes]]:
        """``(holding, origin, seq, bytes)`` of every record of these orders held here (the
        origin's bytes, as :meth:`get_raw`), in one read transaction: what an archive keeps."""
        self._check_open()
        out = []
        with self._gate, self._env.begin() as txn:
            cur = txn.cursor(db=self._txn_index)
            for txn_id in txn_ids:
                if not cur.set_key(b"t" + txn_id.encode()):
                    continue
                for tagged in cur.iternext_dup():
                    db, key = self._index_target(txn, bytes(tagged))
                    raw = txn.get(key, db=db)
                    if raw is not None:
                        how = Holding.AUTHORITATIVE if db is self._auth else Holding.READ_ONLY
                        out.append((how, *split_key(key), unpack(bytes(raw))))
        return out

    def remove(self, keys: Iterable[tuple[str, int]]) -> int:
        """Delete the records with these ``(origin, seq)`` keys and their txn index entries, in
        one write transaction; returns how many were held (keys not held are ignored).

        Only records at or below their origin's contiguous high-water mark may go: catch-up
        asks only for seqs above it, so a removed seq is never asked for again (and a copy
        received again is a duplicate, :meth:`WriteBatch.insert`). A key above it refuses the
        whole call (LogError), nothing removed. Origin states do not change. For
        :mod:`replication.archive`, once the records are durable in an archive file; a crash
        may undo the removal (not the archive), and the next pass removes them again."""
        wanted = sorted(set(keys))
        for origin, seq in wanted:
            st = self._states.get(origin)
            if st is not None and seq > st.hwm:
                raise LogError(f"{self.path}: cannot remove {origin}#{seq}: above {origin}'s contiguous "
                               f"high-water mark {st.hwm} (catch-up would ask for it again); nothing removed")
        removed = 0
        with self.write() as batch:
            txn = batch._txn
            for origin, seq in wanted:
                db = self._db_for(origin)
                if db is None:
                    continue
                key = record_key(origin, seq)
                stored = txn.get(key, db=db)
                if stored is None:
                    continue
                # its txn only (the array's fifth item, codec schema 1): a sixth of decode_record's cost
                try:
                    values = msgpack.unpackb(unpack(bytes(stored)))
                except (ValueError, msgpack.UnpackException):
                    values = None
                if type(values) is not list or len(values) < 4 or type(values[3]) is not str:
                    raise LogError(f"{self.path}: cannot remove {origin}#{seq}: its value is not a record, so its "
                                   "txn index entry is unknown; nothing removed")
                txn_b = values[3].encode()
                n = self._ordinals.get(origin)
                if n is None:
                    raise LogError(f"{self.path}: cannot remove {origin}#{seq}: origin {origin} has no number "
                                   "in the txn index; nothing removed")
                tag = (b"a" if db is self._auth else b"r") + n + key[-8:]
                txn.delete(b"t" + txn_b, tag, db=self._txn_index)
                txn.delete(key, db=db)
                removed += 1
        return removed

    def txn_bounds(self, parts: int, first_share: float | None = None) -> list[str]:
        """``parts - 1`` txns that cut the records into ``parts`` runs by txn (each order's
        records in one run): the split of a replay over processes. The runs are of about equal
        size, or the first holds ``first_share`` of the records and the others share the rest.

        Fewer when the log has fewer distinct txns. Reads only the keys of the txn index
        (~0.1 us an entry)."""
        self._check_open()
        if parts < 2:
            return []
        first = 1 / parts if first_share is None else min(max(first_share, 0.0), 1.0)
        out: list[str] = []
        with self._gate, self._env.begin() as txn:
            total = txn.stat(self._txn_index)["entries"]
            cuts = [total * (first + (1 - first) * i / (parts - 1)) for i in range(parts - 1)]
            cur = txn.cursor(db=self._txn_index)
            prev = None
            for n, k in enumerate(cur.iternext(keys=True, values=False), 1):
                if k != prev and n > cuts[len(out)]:
                    # k starts the next run unless it continues the current txn
                    out.append(bytes(k[1:]).decode())
                    if len(out) == parts - 1:
                        break
                prev = k
        return out

    def iter_txn_range(self, first: str | None, end: str | None) -> Iterator[tuple[bytes, bytes]]:
        """``(key, bytes)`` of every record whose txn ``t`` has ``first <= t < end`` (None: no
        bound), found through the txn index: the authoritative records, then the read-only
        ones, each in key order. The keys are read in runs of :data:`_GETMULTI_RUN`, each run
        in one C call (``Cursor.getmulti`` over sorted keys: about what a scan costs)."""
        self._check_open()
        lo = b"t" + (first or "").encode()
        hi = None if end is None else b"t" + end.encode()
        auth: list[bytes] = []
        ro: list[bytes] = []
        with self._gate, self._env.begin() as txn:
            cur = txn.cursor(db=self._txn_index)
            if cur.set_range(lo):
                target = self._index_target
                auth_db = self._auth
                for k, tagged in cur.iternext(keys=True, values=True):
                    if hi is not None and k >= hi:
                        break
                    db, key = target(txn, tagged)
                    (auth if db is auth_db else ro).append(key)
            for keys, db in ((auth, self._auth), (ro, self._ro)):
                keys.sort()
                for i in range(0, len(keys), _GETMULTI_RUN):
                    for k, v in txn.cursor(db=db).getmulti(keys[i:i + _GETMULTI_RUN]):
                        yield bytes(k), unpack(v)

    def iter_type(self, rtype: RecordType) -> Iterator[Record]:
        """Every record of one type held here. A scan (an index by type would cost ~15% of
        append throughput), with a cheap byte-level filter before decoding."""
        value = RecordType(rtype).value
        needle = msgpack.packb(value)
        for how in (Holding.AUTHORITATIVE, Holding.READ_ONLY):
            for _, raw in self.iter_holding(how):
                if needle in raw:
                    rec = decode_record(raw)
                    if rec.type.value == value:
                        yield rec

    def iter_raw(
        self, origin: str, first: int = 1, last: int | None = None
    ) -> Iterator[tuple[int, bytes]]:
        """``(seq, bytes)`` of one origin's records with first <= seq <= last, in order."""
        self._check_open()
        db = self._db_for(origin)
        if db is None:
            return
        prefix = origin.encode() + _SEP
        with self._gate, self._env.begin(db=db) as txn:
            cur = txn.cursor()
            if not cur.set_range(record_key(origin, max(first, 1))):
                return
            for k, v in cur:
                if not k.startswith(prefix):
                    return
                seq = int.from_bytes(k[-8:], "big")
                if last is not None and seq > last:
                    return
                yield seq, unpack(v)

    def iter_origin(self, origin: str, first: int = 1, last: int | None = None) -> Iterator[Record]:
        for _, raw in self.iter_raw(origin, first, last):
            yield decode_record(raw)

    def iter_holding(self, holding: Holding) -> Iterator[tuple[bytes, bytes]]:
        """``(key, bytes)`` of every record in the authoritative or the read-only database."""
        self._check_open()
        db = self._auth if holding is Holding.AUTHORITATIVE else self._ro
        with self._gate, self._env.begin(db=db) as txn:
            for k, v in txn.cursor():
                yield bytes(k), unpack(v)

    def iter_authoritative(self) -> Iterator[Record]:
        for _, raw in self.iter_holding(Holding.AUTHORITATIVE):
            yield decode_record(raw)

    def iter_read_only(self) -> Iterator[Record]:
        for _, raw in self.iter_holding(Holding.READ_ONLY):
            yield decode_record(raw)

    def iter_all(self) -> Iterator[Record]:
        yield from self.iter_authoritative()
        yield from self.iter_read_only()

    def count(self, holding: Holding | None = None) -> int:
        self._check_open()
        dbs = [self._auth, self._ro] if holding is None else [
            self._auth if holding is Holding.AUTHORITATIVE else self._ro
        ]
        with self._gate, self._env.begin() as txn:
            return sum(txn.stat(db)["entries"] for db in dbs)

    def space(self) -> dict[str, tuple[int, int]]:
        """Per named database (auth, ro, by_txn: the txn index): entries and the bytes of its pages."""
        self._check_open()
        psize = self._env.stat()["psize"]
        out = {}
        with self._gate, self._env.begin() as txn:
            for name, db in (("auth", self._auth), ("ro", self._ro), ("by_txn", self._txn_index)):
                st = txn.stat(db)
                out[name] = (st["entries"], (st["branch_pages"] + st["leaf_pages"] + st["overflow_pages"]) * psize)
        return out

    def decode_errors(self) -> Iterator[tuple[bytes, RecordDecodeError]]:
        """Stored values that do not decode (should be none; for ``log verify``)."""
        for how in (Holding.AUTHORITATIVE, Holding.READ_ONLY):
            for k, raw in self.iter_holding(how):
                try:
                    decode_record(raw)
                except RecordDecodeError as exc:
                    yield k, exc


def _records_for_txn(log: RecordLog, txn: lmdb.Transaction, txn_id: str, want: KeyFilter | None = None) -> list[Record]:
    """Every record of one order in ``txn`` (a read transaction of ``log``), in HLC order."""
    out = []
    cur = txn.cursor(db=log._txn_index)
    if cur.set_key(b"t" + txn_id.encode()):
        for tagged in cur.iternext_dup():
            db, key = log._index_target(txn, bytes(tagged))
            if want is not None and not want(*split_key(key)):
                continue
            raw = txn.get(key, db=db)
            if raw is not None:
                out.append(decode_record(unpack(bytes(raw))))
    out.sort(key=lambda r: r.hlc)
    return out


class LogReader:
    """One consistent read of the log (a single LMDB read transaction): what it holds of each
    origin and the records after a position, as of one instant, from any thread.

    A customer utility's snapshot (:mod:`utilities.snapshot`) is the fold of exactly the records
    at or below the per-origin high-water marks read here, and its start-up folds only the
    records above them (:meth:`iter_after`): per origin a range scan from a key, not a
    scan of the whole log. Obtained from :meth:`RecordLog.reader`.
    """

    def __init__(self, log: RecordLog, txn: lmdb.Transaction) -> None:
        self._log = log
        self._txn = txn
        states = {}
        for k, v in txn.cursor(db=log._origins):
            role, hwm, max_seq = msgpack.unpackb(v)
            states[bytes(k).decode()] = OriginState(Role(role), hwm, max_seq)
        self.states: dict[str, OriginState] = states

    def high_water_marks(self) -> dict[str, int]:
        return {o: st.hwm for o, st in self.states.items()}

    def holding_of(self, origin: str) -> Holding | None:
        """How this log holds ``origin``'s records (None: not at all), as :meth:`RecordLog.holding_of`."""
        st = self.states.get(origin)
        if st is None:
            return None
        return holding_for(self._log.node_id, self._log.role, origin, st.role)

    def _db(self, origin: str) -> Any:
        st = self.states.get(origin)
        if st is None:
            return None
        how = holding_for(self._log.node_id, self._log.role, origin, st.role)
        if how is None:
            return None
        return self._log._auth if how is Holding.AUTHORITATIVE else self._log._ro

    def iter_after(self, after: Mapping[str, int], upto: Mapping[str, int] | None = None) -> Iterator[Record]:
        """Every record with ``after[origin] < seq <= upto[origin]`` (``after`` missing: 0;
        ``upto`` None: no bound), authoritative origins first, each origin in seq order: with
        ``after`` empty and ``upto`` None, the order of :meth:`RecordLog.iter_all`."""
        log = self._log
        for db in (log._auth, log._ro):
            for origin in sorted(self.states, key=lambda o: o.encode()):
                if self._db(origin) is not db:
                    continue
                last = None if upto is None else upto.get(origin, 0)
                first = after.get(origin, 0) + 1
                if last is not None and first > last:
                    continue
                prefix = key_prefix(origin)
                cur = self._txn.cursor(db=db)
                if not cur.set_range(prefix + first.to_bytes(8, "big")):
                    continue
                for k, v in cur:
                    key = bytes(k)
                    if not key.startswith(prefix):
                        break
                    if last is not None and int.from_bytes(key[-8:], "big") > last:
                        break
                    yield decode_record(unpack(bytes(v)))

    def records_for_txn(self, txn_id: str, want: KeyFilter | None = None) -> list[Record]:
        """Every record of one order as of this read, in HLC order (RecordLog.records_for_txn)."""
        return _records_for_txn(self._log, self._txn, txn_id, want)

    def iter_by_txn(self, upto: Mapping[str, int] | None = None) -> Iterator[tuple[str, list[Record]]]:
        """Every txn of the log with its records (those with ``seq <= upto[origin]``; None: all),
        one txn at a time in the txn index's order: a fold that needs each order whole, at
        the cost of a read by key for each record (the records are filed by origin)."""
        log, txn = self._log, self._txn
        cur = txn.cursor(db=log._txn_index)
        current: bytes | None = None
        out: list[Record] = []
        for k, tagged in cur.iternext(keys=True, values=True):
            if k != current:
                if current is not None and out:
                    yield current[1:].decode(), out
                current, out = bytes(k), []
            db, key = log._index_target(txn, bytes(tagged))
            if upto is not None:
                origin, seq = split_key(key)
                if seq > upto.get(origin, 0):
                    continue
            raw = txn.get(key, db=db)
            if raw is not None:
                out.append(decode_record(unpack(bytes(raw))))
        if current is not None and out:
            yield current[1:].decode(), out


class _WriteContext:
    def __init__(self, log: RecordLog, clock: HybridLogicalClock | None) -> None:
        self._log = log
        self._clock = clock
        self._txn: lmdb.Transaction | None = None
        self.batch: WriteBatch | None = None

    def __enter__(self) -> WriteBatch:
        log = self._log
        log._write_lock.acquire()
        try:
            if log._growth is not None:
                log._growth.before_write()  # no transaction of ours is open: the map may grow
            self._txn = log._env.begin(write=True)
        except lmdb.Error as exc:
            log._write_lock.release()
            raise log._wrap_lmdb_error(exc) from None
        self.batch = WriteBatch(log, self._txn, self._clock)
        return self.batch

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        log = self._log
        txn, batch = self._txn, self.batch
        assert txn is not None and batch is not None
        try:
            if et is not None:
                txn.abort()
                if isinstance(e, (lmdb.Error, OSError)):
                    raise log._wrap_lmdb_error(e) from None
                return
            try:
                batch._finish()
                txn.commit()
                if batch.own and log._sync:
                    log._env.sync(True)  # the meta page too: an acknowledgement may wait on this
            except BaseException as exc:
                with contextlib.suppress(lmdb.Error):
                    txn.abort()  # a failed commit has already ended the transaction
                if isinstance(exc, (lmdb.Error, OSError)):
                    raise log._wrap_lmdb_error(exc) from None
                raise
            # Only now, with the data durable, does the in-memory view move on. Copy on
            # write: readers on other threads iterate the old dict, never one being changed.
            if batch._states:
                states = dict(log._states)
                states.update(batch._states)
                log._states = states
            if batch._new_ordinals:
                ordinals = {**log._ordinals, **batch._new_ordinals}
                log._prefixes = {**log._prefixes, **{n: key_prefix(o) for o, n in batch._new_ordinals.items()}}
                log._ordinals = ordinals
        finally:
            log._write_lock.release()
