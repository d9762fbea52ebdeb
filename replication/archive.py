"""A node's archive files: the records retention removed from its live log, one file a day.

Retention (issue 18) takes the records of old, final orders out of every node's live log so
the logs stop growing with history; which orders go is decided elsewhere. This module is the
mechanism: where the removed records are kept, in what form, and the one safe order of
writing and removing (:func:`archive_txns`).

Where
    ``<log dir>/archive/<node>.<YYYY-MM-DD>.fxar``, the log dir being the LMDB directory
    :class:`replication.log.RecordLog` opens (``var/local/cfu1/log``): one file per trading day
    per node, next to the log it came from, so a copy of the directory carries both.

Format
    One zstd frame (level 3, content checksum on: a flipped bit or a cut file is an error,
    never silently fewer records) of a msgpack stream: a header map ``{"archive": 1, "node",
    "role", "day"}``, then one entry per record ``[holding tag, origin role, raw]``: the tag
    ``"a"``/``"r"`` as the log keeps it (authoritative / read-only), the origin's role value,
    and the record's msgpack bytes exactly as :meth:`RecordLog.get_raw` returns them (the
    origin's encoding: ``fixgw log verify`` hashes them like the live records). Entries are in
    the order :meth:`RecordLog.iter_all` reads a log (authoritative first, each by key), so a
    dump of an archive reads like a dump of the log it came from.

Crash safety
    :func:`write_day` writes a temporary file, fsyncs it, renames it over the day's file and
    fsyncs the directory; only then does :func:`archive_txns` remove the records from the log,
    in one LMDB write transaction. A crash between the two leaves the records in both; the
    next pass writes the union of the day's file and what it finds again (by record key, the
    file's entries kept) and removes them then. Readers count a record in both places once.

Speed
    ``python -m replication.archivebench DIR/scale-*/log`` on the customer-utility log of
    ``fixgw bench scale --records 100000 --keep --data DIR`` (100,000 records, 25,250 orders of
    five trading days), each day's orders in one call, on a copy of the log, 2 shared cores
    (load average 0.2-0.5), six runs: 100,000 records archived in 1.15-1.24 s, **81,000-87,000
    records/s** (as many per CPU second: it waits only on a few fsyncs a day), the log empty
    afterwards; the files 15.8 bytes a record (these records repeat a lot). Under cProfile a
    quarter of the time reads the records, a fifth writes the file and nearly half removes
    them (the txn of each read from its msgpack array, not a full decode: 75,000 records/s
    with one).
    The records of a call are held in memory (the day's file is rewritten whole when a call
    adds to it): archive a day in one call, or a few large ones.
"""

from __future__ import annotations

import datetime as dt
import heapq
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import msgpack
import zstandard

from replication.codec import check_node_id, decode_record
from replication.errors import ArchiveError, RecordDecodeError
from replication.log import RecordLog, record_key
from replication.matrix import Holding
from replication.record import Record, Role

ARCHIVE_FORMAT = 1
"""The ``archive`` value of the header this build writes and reads."""

SUFFIX = ".fxar"
DIRECTORY = "archive"
ZSTD_LEVEL = 3
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_READ_CHUNK = 1 << 16  # compressed bytes a read: bounded memory whatever the file's size
_WRITE_CHUNK = 1 << 16  # packed bytes handed to the compressor at once (one C call, not one an entry)
_TAGS: dict[Holding, str] = {Holding.AUTHORITATIVE: "a", Holding.READ_ONLY: "r"}
_HOLDINGS: dict[Any, Holding] = {t: h for h, t in _TAGS.items()}
_ROLES: dict[Any, Role] = {r.value: r for r in Role}


@dataclass(frozen=True, slots=True)
class ArchiveHeader:
    """Whose records a file holds and of which trading day."""

    node: str
    role: Role
    day: dt.date


class ArchivedRecord(NamedTuple):
    """One record of an archive: how the log held it, its origin's role, its key and its bytes."""

    holding: Holding
    origin_role: Role
    origin: str
    seq: int
    raw: bytes  # the origin's msgpack bytes (RecordLog.get_raw)

    def record(self) -> Record:
        """The decoded record (RecordDecodeError if the bytes are not one)."""
        return decode_record(self.raw)


@dataclass(slots=True)
class Archive:
    """An archive file being read: its header, then its entries (read as they are iterated).

    The entries come from the file as it is read; a file cut short or corrupt raises
    :class:`ArchiveError` when the reading gets there (the frame's checksum is checked at its end).
    """

    path: Path
    header: ArchiveHeader
    entries: Iterator[ArchivedRecord]

    def records(self) -> Iterator[tuple[ArchivedRecord, Record]]:
        """The entries with their records decoded; one that does not decode names this file."""
        for e in self.entries:
            try:
                yield e, e.record()
            except RecordDecodeError as exc:
                raise ArchiveError(f"{self.path}: record {e.origin}#{e.seq} does not decode: {exc}") from None


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    """What one :func:`archive_txns` did."""

    path: Path       # the day's archive file
    archived: int    # records written to it by this call and removed from the log
    kept: int        # records of those txns left in the log: above their origin's high-water mark


def archive_dir(log_dir: Path | str) -> Path:
    """Where the archive files of the log in ``log_dir`` are."""
    return Path(log_dir) / DIRECTORY


def archive_path(log_dir: Path | str, node: str, day: dt.date) -> Path:
    """The file of ``node``'s records of trading day ``day``."""
    return archive_dir(log_dir) / f"{check_node_id(node)}.{day.isoformat()}{SUFFIX}"


def _day_of(path: Path) -> dt.date | None:
    stem = path.name[: -len(SUFFIX)]
    _, _, day = stem.rpartition(".")
    try:
        return dt.date.fromisoformat(day)
    except ValueError:
        return None


def archive_files(log_dir: Path | str) -> list[Path]:
    """The archive files of the log in ``log_dir``, by day (none: an empty list)."""
    found = []
    directory = archive_dir(log_dir)
    if directory.is_dir():
        for p in directory.iterdir():
            if p.name.endswith(SUFFIX) and not p.name.startswith("."):
                day = _day_of(p)
                if day is not None:
                    found.append((day, p.name, p))
    return [p for _, _, p in sorted(found)]


def is_archive(path: Path | str) -> bool:
    """Whether the file starts as an archive does (a zstd frame); an unreadable one is not."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == ZSTD_MAGIC
    except OSError:
        return False


# -- reading -------------------------------------------------------------------------------


def _objects(path: Path, progress: Callable[[int], None] | None) -> Iterator[Any]:
    """The msgpack objects of the file's zstd frame, as the file is read."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - held by the generator until it ends
    except OSError as exc:
        raise ArchiveError(f"{path}: cannot read the archive: {exc.strerror or exc}") from None
    with f:
        chunk = f.read(_READ_CHUNK)
        if chunk[:4] != ZSTD_MAGIC:
            raise ArchiveError(f"{path}: not a fixgw archive file (expected a zstd frame, "
                               f"the file starts with {chunk[:4].hex() or 'nothing'})")
        dobj = zstandard.ZstdDecompressor().decompressobj()
        unpacker = msgpack.Unpacker(raw=False, use_list=True)
        fed = 0
        while chunk:
            if progress is not None:
                progress(len(chunk))
            try:
                out = dobj.decompress(chunk)
            except zstandard.ZstdError as exc:
                raise ArchiveError(f"{path}: corrupt archive: {exc}") from None
            try:
                unpacker.feed(out)
                fed += len(out)
                yield from unpacker
            except msgpack.BufferFull:
                raise ArchiveError(f"{path}: corrupt archive: an entry larger than msgpack's buffer") from None
            except (ValueError, msgpack.UnpackException) as exc:
                raise ArchiveError(f"{path}: corrupt archive: the msgpack stream does not decode ({exc})") from None
            if dobj.eof:
                if dobj.unused_data or f.read(1):
                    raise ArchiveError(f"{path}: corrupt archive: data after its zstd frame")
                break
            chunk = f.read(_READ_CHUNK)
        if not dobj.eof:
            raise ArchiveError(f"{path}: truncated archive: its zstd frame ends early "
                               f"({path.stat().st_size} bytes; the file was cut short or is being written)")
        if unpacker.tell() != fed:
            raise ArchiveError(f"{path}: truncated archive: the last entry is cut short")


def _header(path: Path, obj: Any) -> ArchiveHeader:
    if type(obj) is not dict or "archive" not in obj:
        raise ArchiveError(f"{path}: not a fixgw archive file (no archive header: expected a map with "
                           "archive, node, role, day)")
    if obj["archive"] != ARCHIVE_FORMAT:
        raise ArchiveError(f"{path}: archive format {obj['archive']!r}, this build reads {ARCHIVE_FORMAT}")
    role, day = obj.get("role"), obj.get("day")
    try:
        node = check_node_id(obj.get("node"), "the node id")
    except ValueError as exc:
        raise ArchiveError(f"{path}: the header's node: {exc}") from None
    if role not in _ROLES:
        raise ArchiveError(f"{path}: the header's role is {role!r}, expected one of {sorted(_ROLES)}")
    try:
        when = dt.date.fromisoformat(day) if type(day) is str and len(day) == 10 else None
    except ValueError:
        when = None
    if when is None:
        raise ArchiveError(f"{path}: the header's day is {day!r:.40}, expected YYYY-MM-DD")
    return ArchiveHeader(node, _ROLES[role], when)


def _entry(path: Path, n: int, obj: Any) -> ArchivedRecord:
    if type(obj) is not list or len(obj) != 3:
        raise ArchiveError(f"{path}: entry {n} is not [holding tag, origin role, record bytes]")
    tag, role, raw = obj
    holding = _HOLDINGS.get(tag)
    if holding is None:
        raise ArchiveError(f"{path}: entry {n}: holding tag {tag!r:.20}, expected 'a' or 'r'")
    origin_role = _ROLES.get(role)
    if origin_role is None:
        raise ArchiveError(f"{path}: entry {n}: origin role {role!r:.20}, expected one of {sorted(_ROLES)}")
    if type(raw) is not bytes:
        raise ArchiveError(f"{path}: entry {n}: the record is a {type(raw).__name__}, expected msgpack bytes")
    try:
        values = msgpack.unpackb(raw, raw=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise ArchiveError(f"{path}: entry {n}: the record bytes are not msgpack ({exc})") from None
    if type(values) is not list or len(values) < 3 or type(values[1]) is not str or type(values[2]) is not int:
        raise ArchiveError(f"{path}: entry {n}: the record bytes are not a record (no origin and seq)")
    return ArchivedRecord(holding, origin_role, values[1], values[2], raw)


def _entries(path: Path, objects: Iterator[Any]) -> Iterator[ArchivedRecord]:
    for n, obj in enumerate(objects, 1):
        yield _entry(path, n, obj)


def read_archive(path: Path | str, progress: Callable[[int], None] | None = None) -> Archive:
    """Open an archive file: its header now, its entries as they are iterated.

    ``progress`` is called with the compressed bytes read, a chunk at a time (a progress bar
    whose total is the file's size). A file that is not an archive, is cut short or corrupt
    raises :class:`ArchiveError` naming the file (the header's problems at once, the entries'
    when the reading reaches them)."""
    p = Path(path)
    objects = _objects(p, progress)
    try:
        first = next(objects)
    except StopIteration:
        raise ArchiveError(f"{p}: not a fixgw archive file (an empty msgpack stream, no header)") from None
    return Archive(p, _header(p, first), _entries(p, objects))


def find_txn(log_dir: Path | str, txn: str) -> tuple[Path, list[Record]] | None:
    """The archived records of one order and the file that holds them (an order's records are
    archived together, in the file of the day it closed), or None. Newest file first; a record
    is decoded only when its bytes hold the txn (msgpack's encoding of it): about a second a
    day file of a busy day, for ``fixgw log status`` on an order no longer in the live log."""
    needle = msgpack.packb(txn)
    for path in reversed(archive_files(log_dir)):
        found = [r for e in read_archive(path).entries if needle in e.raw and (r := e.record()).txn == txn]
        if found:
            return path, found
    return None


# -- writing -------------------------------------------------------------------------------


def _order(e: ArchivedRecord) -> bytes:
    """Where an entry goes in a file: as RecordLog.iter_all reads (authoritative first, by key)."""
    return (b"a" if e.holding is Holding.AUTHORITATIVE else b"r") + record_key(e.origin, e.seq)


def _union(path: Path, existing: Iterator[ArchivedRecord], new: Sequence[ArchivedRecord]) -> Iterator[ArchivedRecord]:
    """Both runs merged in file order, each key once (the file's entry kept when both have it)."""
    prev: bytes | None = None
    # the file's entries before the new ones of the same key: heapq.merge is stable
    tagged_existing = ((_order(e), 0, e) for e in existing)
    tagged_new = ((_order(e), 1, e) for e in new)
    for k, _, e in heapq.merge(tagged_existing, tagged_new, key=lambda t: (t[0], t[1])):
        if prev is not None and k <= prev:
            if k == prev:
                continue  # the same record again: the first (the file's) stays
            # the new entries are sorted here: the file's are not
            raise ArchiveError(f"{path}: entries out of order near {e.origin}#{e.seq} (not written by "
                               "write_day): cannot add to it")
        prev = k
        yield e


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_day(log_dir: Path | str, node: str, role: Role, day: dt.date,
              entries: Iterable[ArchivedRecord]) -> Path:
    """Write ``entries`` as ``node``'s archive of ``day`` in ``log_dir``'s archive directory.

    Atomic and durable: a temporary file, fsynced, renamed over the day's file, the directory
    fsynced; when this returns the records are on disk. If the day's file exists, the new file
    is the union of both by record key (the existing entries kept): a retention pass that
    stopped after writing the file and before removing the records just runs again. Nothing
    new and the file there: it is left as it is."""
    try:
        check_node_id(node)
    except ValueError as exc:
        raise ArchiveError(f"{log_dir}: archive of {node!r:.80}: {exc}") from None
    directory = archive_dir(log_dir)
    path = archive_path(log_dir, node, day)
    new = sorted(entries, key=_order)
    try:
        if not directory.is_dir():
            directory.mkdir(parents=True, exist_ok=True)
            _fsync_dir(directory.parent)  # the new directory's name is durable too
    except OSError as exc:
        raise ArchiveError(f"{directory}: cannot create the archive directory: {exc.strerror or exc}") from None
    existing: Iterator[ArchivedRecord] = iter(())
    if path.exists():
        if not new:
            return path
        arch = read_archive(path)
        want = ArchiveHeader(node, role, day)
        if arch.header != want:
            raise ArchiveError(f"{path}: holds {arch.header.role.value} node {arch.header.node}'s records of "
                               f"{arch.header.day}, not {role.value} node {node}'s of {day}: not adding to it")
        existing = arch.entries
    tmp = directory / f".{path.name}.{os.getpid()}.tmp"
    header = {"archive": ARCHIVE_FORMAT, "node": node, "role": role.value, "day": day.isoformat()}
    try:
        with open(tmp, "wb") as f:
            compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True)
            with compressor.stream_writer(f, closefd=False) as zw:
                pack = msgpack.Packer(use_bin_type=True).pack
                buf = bytearray(pack(header))
                for e in _union(path, existing, new):
                    buf += pack([_TAGS[e.holding], e.origin_role.value, e.raw])
                    if len(buf) >= _WRITE_CHUNK:
                        zw.write(buf)
                        buf.clear()
                zw.write(buf)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(directory)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ArchiveError(f"{path}: cannot write the archive: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# -- archiving records of a live log -------------------------------------------------------


REMOVE_CHUNK = 20_000
"""Records removed per LMDB write transaction: a running node's own appends (whose
acknowledgements wait on their commit) take the write lock between two chunks, not after a
whole day of removals (~0.25 s a chunk at ~85,000 records/s)."""


def archive_txns(log: RecordLog, node: str, role: Role, day: dt.date, txns: Iterable[str]) -> ArchiveResult:
    """Move every record of ``txns`` that ``log`` holds into ``node``'s archive of ``day``.

    Both holdings; only records at or below their origin's contiguous high-water mark (the
    others stay in the log, counted as ``kept``: a later pass takes them once the gap before
    them is filled). The day's file is written and made durable first (:func:`write_day`),
    then the records are removed from the log, :data:`REMOVE_CHUNK` to a transaction
    (:meth:`RecordLog.remove`). ``log`` is open for writing (the node's own open, when it runs)."""
    _check_writable(log, node, role)
    return _move(log, node, role, day, log.raw_for_txns(sorted(set(txns))))


def archive_keys(log: RecordLog, node: str, role: Role, day: dt.date, keys: Iterable[tuple[str, int]]) -> ArchiveResult:
    """:func:`archive_txns` for records named by key (the firm's records that a later one
    supersedes share their txn with the one that stays)."""
    _check_writable(log, node, role)

    def held() -> Iterator[tuple[Holding, str, int, bytes]]:
        for origin, seq in sorted(set(keys)):
            how = log.holding_of(origin)
            raw = log.get_raw(origin, seq)
            if how is not None and raw is not None:
                yield how, origin, seq, raw
    return _move(log, node, role, day, held())


def _check_writable(log: RecordLog, node: str, role: Role) -> None:
    if log.readonly:
        raise ArchiveError(f"{log.path}: opened read-only: cannot archive its records")
    if node != log.node_id or role is not log.role:
        raise ArchiveError(f"{log.path} is {log.role.value} node {log.node_id}'s log, not {role.value} node {node}'s")


def _move(log: RecordLog, node: str, role: Role, day: dt.date,
          records: Iterable[tuple[Holding, str, int, bytes]]) -> ArchiveResult:
    states = log.origin_states()
    entries: list[ArchivedRecord] = []
    kept = 0
    for holding, origin, seq, raw in records:
        st = states.get(origin)
        if st is None or seq > st.hwm:
            kept += 1
            continue
        entries.append(ArchivedRecord(holding, st.role, origin, seq, raw))
    path = write_day(log.path, node, role, day, entries)
    keys = [(e.origin, e.seq) for e in entries]
    for i in range(0, len(keys), REMOVE_CHUNK):
        log.remove(keys[i:i + REMOVE_CHUNK])
    return ArchiveResult(path, len(entries), kept)
