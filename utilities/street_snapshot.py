"""A street utility's snapshot: its rebuilt state at a log position, so a restart folds only the tail.

Start-up used to index the street's whole log (``StreetUtility.load``), and every logon to a
venue and every takeover pass scanned it again to find the open orders; both grew with history.
On a street log of 1,016,600 records (340,000 orders, 1% open; 2 shared cores) the load took
15-19 s; from this snapshot it takes 0.4 s, 1.4-1.9 s with 100,000 records after it. The
snapshot was 15 MB; taking it from nothing 32 s of its process, then 4 s per 100,000 records.

What a snapshot holds: the :class:`utilities.street_state.StreetState` (cancel/replace requests
by venue ClOrdID, recent fill ExecIDs, the sent (client, ClOrdID)s of two days, the open orders
folded, none left dirty) and the **position** it is the fold of: per origin a high-water mark
read in the same LMDB read transaction as the records (:class:`replication.log.LogReader`), so
the snapshot is exactly the fold of every record with ``seq <= hwm[origin]``, and a start-up
folds exactly the records above (a range scan per origin). Records held above a gap are left to
the tail, as in the customer utility's snapshot (:mod:`utilities.snapshot`), whose file machinery
it shares (:mod:`utilities.snapshot_file`: magic, format, fingerprint of the modules below,
SHA-256, pickle, atomic write). The open orders' folds in a snapshot read every record of a txn
held at the time, some above the position; those records are in the tail, so the start-up marks
their txns dirty again and folds them again: the same answer (:mod:`utilities.open_orders`).

A snapshot that fails a check (format, fingerprint: another build wrote it, checksum, node, a
position beyond the log) is ignored with a warning and the street folds the whole log, then
writes a fresh one.

Written (``<node dir>/snapshot/street.snap``): after a start-up that folded many records, every
``[cluster] snapshot_every_records`` records, and at a clean stop, by a process of its own
(``python -m utilities.street_snapshot``, the log opened read-only) that reads the newest
snapshot, folds the records since into it and writes it: the street's event loop is not held
(the customer utility measured a worker thread holding its loop up to 97 ms at a time).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from replication.record import Record
from utilities.record_node import RecordSource
from utilities.snapshot_file import (
    SnapshotError,
    SnapshotKind,
    Taken,
    check_node_and_position,
    read_bytes,
    write_file,
)
from utilities.snapshot_file import decode as decode_file
from utilities.snapshot_file import encode as encode_file
from utilities.street_state import StreetState, authoritative_only

SNAPSHOT_FORMAT = 1
MAGIC = b"fixgw street snapshot\n"
FILE_NAME = "street.snap"
# the modules whose objects a snapshot holds, or whose rules made them: another build, another fingerprint
_SOURCES = ("utilities/street_snapshot.py", "utilities/street_state.py", "utilities/open_orders.py",
            "utilities/status.py", "utilities/books.py", "replication/record.py", "replication/hlc.py")
KIND = SnapshotKind("street", MAGIC, SNAPSHOT_FORMAT, _SOURCES)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A snapshot read back: the state, the position it is the fold of, and what it says of itself."""

    state: StreetState
    position: dict[str, int]
    records: int        # records at or below the position (what a start-up does not fold)
    taken_at: float     # time.time() when written


def encode(node: str, state: StreetState, position: dict[str, int], records: int) -> bytes:
    """The file's bytes (see the module doc)."""
    return encode_file(KIND, {"node": node, "position": dict(position), "records": records,
                              "taken_at": time.time(), "state": state})


def decode(data: bytes, *, node: str, held: dict[str, int] | None = None) -> Snapshot:
    """Check and read a snapshot; ``held``: the log's high-water marks (a position beyond them
    is refused). Raises SnapshotError."""
    d = decode_file(KIND, data)
    state = d.get("state")
    if not isinstance(state, StreetState):
        raise SnapshotError("unreadable payload: not a street state")
    position = check_node_and_position(d, node=node, held=held)
    return Snapshot(state, position, int(d.get("records", 0)), float(d.get("taken_at", 0.0)))


def read_file(path: Path, *, node: str, held: dict[str, int]) -> tuple[Snapshot | None, str]:
    """The snapshot at ``path`` if it passes its checks, else None and why ("" when there is none)."""
    data, why = read_bytes(path)
    if data is None:
        return None, why
    try:
        return decode(data, node=node, held=held), ""
    except SnapshotError as exc:
        return None, f"{path}: {exc}"


def take(node_log: RecordSource, path: Path, *, me: str) -> Taken:
    """A new snapshot: the newest valid one (else nothing) plus the records since, its open
    orders folded, written to ``path``. Blocking (a process of its own: :func:`main`)."""
    t0 = time.perf_counter()
    with node_log.reader() as rd:
        held = rd.high_water_marks()
        snap, why = read_file(path, node=me, held=held)
        state = snap.state if snap is not None else StreetState()
        after = snap.position if snap is not None else {}
        folded = state.fold_from(rd, after, held)
        want = authoritative_only(rd.holding_of)

        def records_for_txn(txn: str) -> list[Record]:
            return rd.records_for_txn(txn, want)
        state.open_orders.settle(records_for_txn)
    records = (snap.records if snap is not None else 0) + folded
    data = encode(me, state, held, records)
    write_file(path, data)
    return Taken(records, folded, len(data), time.perf_counter() - t0, why)


def take_command(log_dir: Path, path: Path, *, me: str) -> list[str]:
    """The command line of a process that takes a snapshot (:func:`main`)."""
    return [sys.executable, "-m", "utilities.street_snapshot", str(log_dir), str(path), me]


def main(argv: list[str]) -> int:
    """``python -m utilities.street_snapshot LOG_DIR PATH NODE``: :func:`take` on a read-only open
    of the log (the street may be writing it); prints what it did as JSON."""
    from replication.log import RecordLog

    log_dir, path, me = Path(argv[0]), Path(argv[1]), argv[2]
    with RecordLog(log_dir, readonly=True) as node_log:
        taken = take(node_log, path, me=me)
    print(json.dumps({f.name: getattr(taken, f.name) for f in dataclasses.fields(taken)}), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python -m utilities.street_snapshot LOG_DIR PATH NODE (internal: a street utility's)")
    # run through the module's own name: a state pickled from ``__main__`` would name its classes there
    import importlib

    sys.exit(importlib.import_module("utilities.street_snapshot").main(sys.argv[1:]))
