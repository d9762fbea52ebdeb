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
    next to a live writer, which is why the reader table is used.

Speed
    The cost is per record, all of it Python: reading (~1.5 us of CPU a record), decoding
    (msgpack and a frozen dataclass, ~10 us), the fold (~30 us a record for orders of five
    records) and the books (~10 us more); figures of CPU time on this shared 2-core machine
    under a load average of 10-15, where a plain Python loop runs 4x slower than idle (so
    perhaps a quarter of that alone). ``fixgw bench replay --records 1000000``
    (``utilities/replay_bench.py``): 16,500 records per CPU second, 3,700 records/s of wall
    time with the machine 98% busy. The goal of 200,000 records/s is NOT met: it needs
    about 5 us a record all in, i.e. the fold in compiled code or spread over processes;
    the fold is the one used by every node, so speeding it up speeds them up too.

Inputs
    A node's data directory (:func:`replay_log`) or an export of ``fixgw log export``
    (:func:`replay_export`, JSON lines): replaying an export of a log gives the same result as
    replaying the log.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from replication.codec import decode_record
from replication.errors import RecordDecodeError
from replication.log import RecordLog
from replication.matrix import Holding
from replication.ops import parse_export_line
from replication.record import Record
from utilities.books import Books, dec_str
from utilities.firm import books_summary
from utilities.status import OrderStatus

ORD_STATUS_NAMES: Mapping[str, str] = {
    "A": "PendingNew", "0": "New", "1": "PartiallyFilled", "2": "Filled", "4": "Canceled",
    "6": "PendingCancel", "8": "Rejected", "C": "Expired", "E": "PendingReplace",
}
"""FIX OrdStatus (39) values the fold produces, by name (for people)."""

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


def replay_records(records: Iterable[Record], *, source: str, node: str = "", role: str = "",
                   until_ns: int | None = None, txn: str | None = None, account: str | None = None,
                   progress: Progress | None = None) -> Replay:
    """Fold ``records`` as of ``until_ns`` (None: every record)."""
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
    books = Books.from_records(kept)
    return Replay(source=source, node=node, role=role, as_of_ns=until_ns if until_ns is not None else latest,
                  records_read=read, records_used=len(kept), books=books, txn=txn, account=account)


def count_records(data_dir: Path) -> int:
    """How many records a log holds (the total of a progress bar)."""
    with RecordLog(data_dir, readonly=True) as log:
        return log.count()


def _decoded(log: RecordLog) -> Iterable[Record]:
    for how in (Holding.AUTHORITATIVE, Holding.READ_ONLY):
        for key, raw in log.iter_holding(how):
            try:
                yield decode_record(raw)
            except RecordDecodeError as exc:
                raise ReplayError(f"{log.path}: record {key!r} does not decode: {exc}") from None


def replay_log(data_dir: Path, *, until_ns: int | None = None, txn: str | None = None,
               account: str | None = None, progress: Progress | None = None) -> Replay:
    """Replay a node's log (read-only: safe next to the running node)."""
    with RecordLog(data_dir, readonly=True) as log:
        return replay_records(_decoded(log), source=str(data_dir), node=log.node_id, role=log.role.value,
                              until_ns=until_ns, txn=txn, account=account, progress=progress)


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
