"""What one node knew at a moment: ``fixgw log replay``.

The records are the only state (event sourcing): an order's status is the fold of its
records (:func:`utilities.status.fold`) and the books are :meth:`utilities.books.Books.from_records`
over every record, exactly as the firm node and ``fixgw firm books`` fold them. A replay keeps
the records whose hybrid-clock wall time is at or before the moment asked for (``--until``)
and folds them with those same functions: there is no second fold to drift from the first.

Reading a live node
    The log is opened read-only (:class:`replication.log.RecordLog` with ``readonly=True``):
    one LMDB read transaction, a consistent snapshot registered in the reader table, that
    never blocks the node's writer (LMDB's MVCC) and takes no lock of the node's. LMDB keeps
    the pages of that snapshot until the reader ends, so a replay holds them for the few
    seconds it reads; it never writes. A lock-free open (``lock=False``) would be unsafe
    next to a live writer, which is why the reader table is used. A replay in two processes
    (see Speed) reads two snapshots, taken a moment apart: each order's records come from one
    of them, but next to a live node the orders of the second txn range may show a few records
    more than the first snapshot held (an ``--until`` in the past is not affected unless
    records stamped before it were still arriving).

Speed
    The cost is per record, all of it Python. CPU per record after issue 15's work, replaying
    a 100,000-record customer log (orders of five records), best of 3, this shared 2-core
    machine: read and expand 1.3 us, decode 3.1 us, the fold 5.5 us, booking the trades 0.9 us,
    the merge 0.3 us: ~11.3 us, ~88,000 records per CPU second alone. Three changes gave most:
    the garbage collector off while folding (:func:`utilities.gcpause.gc_paused`: a third of the CPU went to
    generation-2 passes over objects that are all still alive), the fold's passes cut to those
    the record types need and its results built without re-checking, and the books split into
    parts and a merge. ``fixgw bench replay --records 1000000 --json``, paired runs in one
    sitting (09:01-09:03 UTC, load average 5.8 then 3.1 on the 2 cores): 29,314 records/s of
    wall time, 36,230 per CPU second before (commit 25a1e46); 62,852 and 62,905 after, one
    process (no idle core for a second); again at 09:09-09:12 (load 2.6 then 3.0, 80% busy
    both): 28,801 and 32,062 before, 50,910 and 60,113 after. At 1,000,000 records the CPU per record is ~13-16 us
    (read and decode 5.0, part 7.0, merge 1.0: more than at 100,000, the caches).

    A log of :data:`PARALLEL_MIN_RECORDS` records or more is split by txn range between this
    process and a helper (``python -c``, its own read-only open, the txn index read with
    ``Cursor.getmulti``) when a core is idle (:func:`default_workers`); each folds and books
    its orders (:class:`utilities.books.BooksPart`) and the parts are merged
    (:meth:`utilities.books.Books.merge`), the same result as one process
    (``tests/utilities/test_replay_parallel.py``). The helper's answer costs ~3.5 us a record
    to pickle and ~2.5 us to load, so the split pays only with a free core: by CPU arithmetic
    ~1.5x the wall speed of one process. Measured on this machine, always busy with other work
    (a 1,000,000-record log, ``replay_log(workers=...)`` alternately, load average 3.8-3.5):
    one process 26.3 s and 25.0 s, two 28.1 s and 14.2 s (70,653 records/s): it pays only
    when the second core is free, which is why it is gated on the load.
    The goal of 200,000 records/s (5 us a record) is NOT met: it needs the decode and the fold
    in compiled code (together ~9 us of the ~11.3), or the fold's results shipped without
    pickling (shared memory of plain arrays) to four or more cores.

Inputs
    A node's data directory (:func:`replay_log`), an export of ``fixgw log export``
    (:func:`replay_export`, JSON lines) or an archive file of retention
    (:func:`replay_archive`, :mod:`replication.archive`): replaying an export or an archive of
    records gives the same result as replaying the log that held them. ``replay_log(...,
    archives=True)`` folds the node's archive files with its live log (a record in both
    once), in one process: an order's records may be split between the two, and the parts of
    a parallel replay are cut by txn over the live log only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import io
import operator
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from replication.archive import read_archive
from replication.codec import decode_record, encode_record
from replication.errors import RecordDecodeError, ReplicationError
from replication.hlc import Hlc
from replication.log import RecordLog
from replication.matrix import Holding
from replication.ops import archived_records, parse_export_line
from replication.record import Record, RecordKey
from utilities.books import Books, BooksPart, Trade, dec_str
from utilities.child_env import child_env
from utilities.firm import books_summary
from utilities.gcpause import gc_paused
from utilities.status import Fill, OrderStatus, PendingRequest

ORD_STATUS_NAMES: Mapping[str, str] = {
    "A": "PendingNew", "0": "New", "1": "PartiallyFilled", "2": "Filled", "4": "Canceled",
    "6": "PendingCancel", "8": "Rejected", "C": "Expired", "E": "PendingReplace",
}
"""FIX OrdStatus (39) values the fold produces, by name (for people)."""

PARALLEL_MIN_RECORDS = 200_000
"""A log at least this big is replayed by :data:`PARALLEL_WORKERS` processes (see Speed)."""

PARALLEL_WORKERS = 2
"""Processes of a parallel replay (this one and the others): the machine has 2 cores."""

PARENT_SHARE = 0.57
"""The share of the records this process folds itself when it has one helper: the helper also
pickles its answer (~3.5 us a record) and this process loads it (~2.5 us) after folding its own
(~13 us a record to read, decode and fold): 0.57 x 13 ~= 0.43 x (13 + 3.5), the two finish together."""

PROGRESS_EVERY = 1 << 14
"""Records between two progress callbacks (a callback per record would cost ~10% of a replay)."""

Progress = Callable[[int], None]
"""Called with the number of records read since the previous call."""


class ReplayError(ValueError):
    """A replay cannot be made (bad time, unreadable input); the message says why."""


def parse_until(text: str) -> int:
    """``--until``: an ISO 8601 time, UTC unless it says otherwise, as ns since the epoch.

    ``2026-12-04T16:00:00Z``, ``2026-12-04T16:00:00.250+00:00``, ``2026-12-04T11:00-05:00``,
    ``2026-12-04`` (midnight UTC). Compared with the records' hybrid-clock wall time.
    """
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ReplayError(f"--until {text!r}: expected an ISO 8601 time such as 2026-12-04T16:00:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    micros = (when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    return micros * 1000


def iso_ns(ns: int) -> str:
    """Nanoseconds since the epoch as ISO 8601 UTC with microseconds and a ``Z``."""
    when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ns // 1000)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Replay:
    """The state rebuilt from a log as of ``as_of_ns``."""

    source: str                      # the data directory or export file
    node: str                        # the node whose log it is ("" for an export)
    role: str
    as_of_ns: int | None             # --until, else the latest record's wall time (None: no records)
    records_read: int
    records_used: int                # at or before as_of
    books: Books
    txn: str | None = None           # the --txn / --account filters of the output
    account: str | None = None
    workers: int = 1                 # processes that read and folded the log

    def orders(self) -> dict[str, OrderStatus]:
        """The orders shown (filters applied), by txn."""
        out = {}
        for txn, st in self.books.orders().items():
            if self.txn is not None and txn != self.txn:
                continue
            if self.account is not None and st.account != self.account:
                continue
            out[txn] = st
        return out

    def accounts(self) -> list[str]:
        """The accounts whose books are shown: all, the one asked for, or the order's."""
        if self.account is not None:
            return [self.account]
        if self.txn is not None:
            return sorted({st.account for st in self.orders().values() if st.account})
        return list(self.books.accounts())


@dataclass(frozen=True, slots=True)
class _Part:
    """What one process folded: its books part and what it read."""

    books: BooksPart
    read: int
    used: int
    latest: int | None


def _fold_part(records: Iterable[Record], until_ns: int | None, progress: Progress | None) -> _Part:
    kept: list[Record] = []
    read = 0
    latest: int | None = None
    since = 0
    for rec in records:
        read += 1
        since += 1
        if since == PROGRESS_EVERY and progress is not None:
            progress(since)
            since = 0
        wall = rec.hlc.wall_ns
        if until_ns is not None and wall > until_ns:
            continue
        kept.append(rec)
        if latest is None or wall > latest:
            latest = wall
    if since and progress is not None:
        progress(since)
    return _Part(BooksPart.of(kept), read, len(kept), latest)


def _merged(parts: list[_Part], *, source: str, node: str, role: str, until_ns: int | None, txn: str | None,
            account: str | None) -> Replay:
    books = Books.merge([p.books for p in parts])
    latests = [p.latest for p in parts if p.latest is not None]
    latest = max(latests) if latests else None
    return Replay(source=source, node=node, role=role, as_of_ns=until_ns if until_ns is not None else latest,
                  records_read=sum(p.read for p in parts), records_used=sum(p.used for p in parts), books=books,
                  txn=txn, account=account, workers=len(parts))


def replay_records(records: Iterable[Record], *, source: str, node: str = "", role: str = "",
                   until_ns: int | None = None, txn: str | None = None, account: str | None = None,
                   progress: Progress | None = None) -> Replay:
    """Fold ``records`` as of ``until_ns`` (None: every record)."""
    with gc_paused():
        part = _fold_part(records, until_ns, progress)
        return _merged([part], source=source, node=node, role=role, until_ns=until_ns, txn=txn, account=account)


def count_records(data_dir: Path) -> int:
    """How many records a log holds (the total of a progress bar)."""
    with RecordLog(data_dir, readonly=True) as log:
        return log.count()


def _decoded(log: RecordLog, raws: Iterable[tuple[bytes, bytes]]) -> Iterable[Record]:
    for key, raw in raws:
        try:
            yield decode_record(raw)
        except RecordDecodeError as exc:
            raise ReplayError(f"{log.path}: record {key!r} does not decode: {exc}") from None


def _held(log: RecordLog) -> Iterable[tuple[bytes, bytes]]:
    for how in (Holding.AUTHORITATIVE, Holding.READ_ONLY):
        yield from log.iter_holding(how)


def _replay_range(data_dir: Path, first: str | None, end: str | None, until_ns: int | None) -> _Part:
    """Fold the orders whose txn is in ``[first, end)`` (its own read-only open of the log)."""
    with gc_paused(), RecordLog(data_dir, readonly=True) as log:
        return _fold_part(_decoded(log, log.iter_txn_range(first, end)), until_ns, None)


# -- the worker's answer on the wire --------------------------------------------------------
# A part is ~6 frozen dataclasses an order (status, fills, trades, clocks, record keys). Pickled
# the default way (the dataclass's Python __getstate__, fields() per object) they cost ~6.7 us a
# record to dump and ~4 us to load, as much as folding them (cProfile, 50,000 records); as a
# tuple of their slots (attrgetter, in C) and set back through the slots' descriptors, ~6x less.
_WIRE_CLASSES: tuple[type, ...] = (OrderStatus, Fill, PendingRequest, Trade, Hlc, RecordKey)
_WIRE_INDEX = {cls: i for i, cls in enumerate(_WIRE_CLASSES)}
_WIRE_SLOTS: list[tuple[str, ...]] = [tuple(cls.__dict__["__slots__"]) for cls in _WIRE_CLASSES]
_WIRE_GET = [operator.attrgetter(*slots) for slots in _WIRE_SLOTS]
_WIRE_SET = [tuple(cls.__dict__[name].__set__ for name in slots) for cls, slots in zip(_WIRE_CLASSES, _WIRE_SLOTS, strict=True)]


def _rebuild(i: int, values: tuple[Any, ...]) -> Any:
    obj: Any = object.__new__(_WIRE_CLASSES[i])
    for put, v in zip(_WIRE_SET[i], values, strict=True):
        put(obj, v)
    return obj


def _reducer(i: int) -> Callable[[Any], tuple[Any, ...]]:
    get = _WIRE_GET[i]

    def reduce(obj: Any) -> tuple[Any, ...]:
        return _rebuild, (i, get(obj))
    return reduce


# a dispatch table, not reducer_override: that would be a Python call for every object pickled
# (each Decimal, date, frozenset), this one only for the classes above
_WIRE_DISPATCH = {cls: _reducer(i) for i, cls in enumerate(_WIRE_CLASSES)}


def _dumps(value: object) -> bytes:
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _WIRE_DISPATCH
    pickler.dump(value)
    return buf.getvalue()


def worker_main() -> None:
    """The other process of a parallel replay: arguments pickled on stdin, its part on stdout.

    A plain ``python -c`` child rather than :mod:`multiprocessing`: spawn re-runs the caller's
    main module (a script without a ``__main__`` guard would start again), and fork copies a
    process whose other threads (a progress bar's) may hold locks."""
    gc.disable()  # a process of its own that ends when it has answered (see utilities.gcpause)
    data_dir, first, end, until_ns = pickle.load(sys.stdin.buffer)
    try:
        part = _replay_range(data_dir, first, end, until_ns)
        # records travel as their msgpack bytes (a Record's extra is a read-only mapping, not picklable)
        firm = [encode_record(r) for r in part.books.firm_records]
        books = dataclasses.replace(part.books, firm_records=())
        out: tuple[str, Any] = ("ok", (dataclasses.replace(part, books=books), firm))
    except (ReplayError, ReplicationError) as exc:
        out = ("error", str(exc))
    sys.stdout.buffer.write(_dumps(out))
    sys.stdout.buffer.flush()


def _start_worker(data_dir: Path, first: str | None, end: str | None, until_ns: int | None) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", "import utilities.replay as r; r.worker_main()"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
    assert proc.stdin is not None
    proc.stdin.write(pickle.dumps((data_dir, first, end, until_ns)))
    proc.stdin.close()
    proc.stdin = None  # sent: communicate() must not flush it again
    return proc


def _worker_result(proc: subprocess.Popen[bytes], data_dir: Path) -> _Part:
    out, err = proc.communicate()
    if proc.returncode != 0 or not out:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise ReplayError(f"{data_dir}: a replay worker failed (exit {proc.returncode}): {tail[0]}")
    status, value = pickle.loads(out)
    if status != "ok":
        raise ReplayError(str(value))
    part, firm = value
    assert isinstance(part, _Part)
    books = dataclasses.replace(part.books, firm_records=tuple(decode_record(b) for b in firm))
    return dataclasses.replace(part, books=books)


def default_workers(records: int, *, cores: int | None = None, load: float | None = None) -> int:
    """Processes for a replay of ``records`` records: more than one only where they pay.

    That is: a log of at least :data:`PARALLEL_MIN_RECORDS`, and a core idle for the helper (the
    1-minute load average at most ``cores - 1``). A helper costs ~6 us a record of pickling more
    CPU in all; on a machine whose cores are busy it gets no core of its own and the replay is
    no faster for it (500,000 records, load average 3 on 2 cores: 8.7 s alone, 8.9 s with it)."""
    cores = len(os.sched_getaffinity(0)) if cores is None else cores
    load = os.getloadavg()[0] if load is None else load
    if records < PARALLEL_MIN_RECORDS or cores < 2 or load > cores - 1:
        return 1
    return min(PARALLEL_WORKERS, cores)


def _with_archives(log: RecordLog) -> Iterable[Record]:
    yield from _decoded(log, _held(log))
    for rec, _, _ in archived_records(log):
        yield rec


def replay_log(data_dir: Path, *, until_ns: int | None = None, txn: str | None = None,
               account: str | None = None, progress: Progress | None = None, workers: int | None = None,
               archives: bool = False) -> Replay:
    """Replay a node's log (read-only: safe next to the running node).

    ``workers``: processes that read and fold (None: :func:`default_workers`). With more than
    one, each folds the orders of one txn range of the log (its own read-only open) and the
    parts are merged (:meth:`utilities.books.Books.merge`): the same result as one process.
    ``archives``: the node's archive files too, each record once (one process).
    """
    with RecordLog(data_dir, readonly=True) as log:
        node, role = log.node_id, log.role.value
        if archives:
            with gc_paused():
                part = _fold_part(_with_archives(log), until_ns, progress)
            return _merged([part], source=str(data_dir), node=node, role=role, until_ns=until_ns, txn=txn,
                           account=account)
        n = workers if workers is not None else default_workers(log.count())
        bounds = log.txn_bounds(n, PARENT_SHARE if n == 2 else None) if n > 1 else []
        if not bounds:
            with gc_paused():
                part = _fold_part(_decoded(log, _held(log)), until_ns, progress)
            return _merged([part], source=str(data_dir), node=node, role=role, until_ns=until_ns, txn=txn,
                           account=account)
    ranges = list(zip([None, *bounds], [*bounds, None], strict=True))
    procs = [_start_worker(data_dir, first, end, until_ns) for first, end in ranges[1:]]
    try:
        with gc_paused():  # loading the workers' parts too: millions of objects, no cycles
            with RecordLog(data_dir, readonly=True) as log:
                mine = _fold_part(_decoded(log, log.iter_txn_range(*ranges[0])), until_ns, progress)
            parts = [mine]
            for proc in procs:
                part = _worker_result(proc, data_dir)
                if progress is not None:
                    progress(part.read)
                parts.append(part)
            return _merged(parts, source=str(data_dir), node=node, role=role, until_ns=until_ns, txn=txn,
                           account=account)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _parsed(lines: Iterable[str], name: str) -> Iterable[Record]:
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            _, rec = parse_export_line(line)
        except RecordDecodeError as exc:
            raise ReplayError(f"{name}:{lineno}: not a record of `fixgw log export`: {exc}") from None
        yield rec


def replay_export(lines: Iterable[str], *, name: str, until_ns: int | None = None, txn: str | None = None,
                  account: str | None = None, progress: Progress | None = None) -> Replay:
    """Replay the JSON lines of ``fixgw log export`` (``name`` is for messages)."""
    return replay_records(_parsed(lines, name), source=name, until_ns=until_ns, txn=txn, account=account,
                          progress=progress)


def replay_archive(path: Path, *, until_ns: int | None = None, txn: str | None = None, account: str | None = None,
                   progress: Progress | None = None) -> Replay:
    """Replay the records of one archive file (``progress``: compressed bytes read)."""
    arch = read_archive(path, progress)
    records = (rec for _, rec in arch.records())
    return replay_records(records, source=str(path), node=arch.header.node, role=arch.header.role.value,
                          until_ns=until_ns, txn=txn, account=account)


# -- output -------------------------------------------------------------------------------


def _opt(d: Any) -> str | None:
    return None if d is None else dec_str(d)


def order_json(st: OrderStatus) -> dict[str, Any]:
    """One order's status as JSON values (decimals as strings)."""
    return {
        "ord_status": st.ord_status, "ord_status_name": ORD_STATUS_NAMES.get(st.ord_status, st.ord_status),
        "cum_qty": dec_str(st.cum_qty), "leaves_qty": dec_str(st.leaves_qty), "avg_px": dec_str(st.avg_px),
        "order_qty": _opt(st.order_qty), "cash_order_qty": _opt(st.cash_order_qty), "price": _opt(st.price),
        "account": st.account, "symbol": st.symbol, "side": st.side, "ord_type": st.ord_type, "tif": st.tif,
        "cl_ord_id": st.cl_ord_id, "venue": st.venue, "session": st.session, "street": st.street,
        "pending": [p.kind for p in st.pending], "last_update": iso_ns(st.last_hlc.wall_ns),
        "records": st.record_count,
    }


def to_json(replay: Replay) -> dict[str, Any]:
    """``{"as_of", "orders": {txn: {...}}, "books": {account: {"cash", "positions"}}, ...}``."""
    summary = books_summary(replay.books)
    books = {a: summary.get(a, {"cash": "0", "cash_settled": "0", "buying_power": "0", "positions": {}})
             for a in replay.accounts()}
    return {
        "as_of": None if replay.as_of_ns is None else iso_ns(replay.as_of_ns),
        "source": replay.source, "node": replay.node, "role": replay.role,
        "records_read": replay.records_read, "records_used": replay.records_used,
        "orders": {txn: order_json(st) for txn, st in replay.orders().items()},
        "books": books,
        "anomalies": list(replay.books.anomalies),
    }


def _side(side: str) -> str:
    return {"1": "BUY", "2": "SELL", "5": "SELL SHORT"}.get(side, side or "?")


def format_text(replay: Replay) -> str:
    """A blotter of the orders and the books per account, for people."""
    as_of = "no records" if replay.as_of_ns is None else iso_ns(replay.as_of_ns)
    who = f"node {replay.node} ({replay.role})" if replay.node else "export"
    orders = replay.orders()
    head = (f"{replay.source}: {who} as of {as_of}: {replay.records_used} of {replay.records_read} records, "
            f"{len(orders)} order(s)")
    lines = [head, ""]
    if orders:
        lines.append(f"{'TXN':<16} {'ACCOUNT':<8} {'SIDE':<5} {'QTY':>10} {'SYMBOL':<7} {'PRICE':>10} "
                     f"{'STATUS':<15} {'CUM':>10} {'LEAVES':>10} {'AVGPX':>10}")
        for txn, st in orders.items():
            qty = dec_str(st.order_qty) if st.order_qty is not None else f"${_opt(st.cash_order_qty)}"
            price = dec_str(st.price) if st.price is not None else "MKT"
            lines.append(f"{txn:<16} {st.account:<8} {_side(st.side):<5} {qty:>10} {st.symbol:<7} {price:>10} "
                         f"{ORD_STATUS_NAMES.get(st.ord_status, st.ord_status):<15} {dec_str(st.cum_qty):>10} "
                         f"{dec_str(st.leaves_qty):>10} {dec_str(st.avg_px):>10}")
        lines.append("")
    summary = books_summary(replay.books)
    for acct in replay.accounts():
        b = summary.get(acct)
        if b is None:
            lines.append(f"account {acct}: no records")
            continue
        lines.append(f"account {acct}: cash {b['cash']} (settled {b['cash_settled']}), "
                     f"buying power {b['buying_power']}")
        for sym, qty in b["positions"].items():
            lines.append(f"  {sym:<8} {qty:>12}")
    for a in replay.books.anomalies:
        lines.append(f"anomaly: {a}")
    return "\n".join(lines) + "\n"


def read_export(path: str) -> IO[str]:
    """Open an export for :func:`replay_export`; a clear error when it cannot be read."""
    try:
        return open(path, encoding="utf-8")
    except OSError as exc:
        raise ReplayError(f"--from {path}: cannot read the export: {exc.strerror or exc}") from None
