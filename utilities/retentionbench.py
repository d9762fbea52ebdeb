"""``python -m utilities.retentionbench LOG_DIR [--keep-days N] [--json]``: what a retention
pass costs a customer utility, on a log of ``fixgw bench scale`` (``DIR/scale-*/log``).

The scale log holds orders of several days but nothing of the firm, so on a copy of it (the
original is never changed) this first writes what the firm would have: the account's opening
(an ACCOUNT record before the first day), a SETTLED record for every fill settled before today
(stamped 09:00 New York on its settlement date) and the carry forward of the balances to the
retention cutoff (:func:`utilities.books.carry_extra`). Then one :meth:`Retention.run_once`,
timed in its two parts: the plan (reading each origin up to the cutoff and folding the orders
found) and the archiving (the day files written, the records removed). Bounded: one pass over a
copy, removed afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from replication.archive import archive_files, archive_txns
from replication.codec import encode_record
from replication.hlc import Hlc
from replication.log import RecordLog
from replication.record import Record, RecordType, Role
from utilities.books import (
    NEW_YORK,
    Books,
    account_record,
    carry_extra,
    new_york_today,
    settled_record,
    settlements_due,
    trade_date_of,
)
from utilities.retention import cutoff_day, plan

FIRM = "firm"


def _ny(day: dt.date, hour: int, n: int = 0) -> Hlc:
    at = dt.datetime.combine(day, dt.time(hour), NEW_YORK)
    return Hlc(int(at.timestamp()) * 1_000_000_000 + n, 0, FIRM)


def add_firm_records(log: RecordLog, cutoff: dt.date) -> dict[str, int]:
    """The firm's records a real cluster would hold by now (see the module doc)."""
    today = new_york_today()
    fills = list(log.iter_type(RecordType.FILL))
    accounts = sorted({r.account for r in fills if r.account})
    first = min((trade_date_of(r.hlc) for r in fills), default=today)
    seq = 0
    out: list[Record] = []
    for acct in accounts:
        seq += 1
        out.append(account_record(origin=FIRM, seq=seq, hlc=_ny(first - dt.timedelta(days=1), 8, seq), account=acct,
                                  cash=Decimal(10) ** 12, positions={}, txn=f"account:{acct}"))
    due = [s for s in settlements_due(fills, today - dt.timedelta(days=1)) if s.settle_date < today]
    due.sort(key=lambda s: (s.settle_date, s.ref))
    for n, s in enumerate(due):
        seq += 1
        out.append(settled_record(s, origin=FIRM, seq=seq, hlc=_ny(s.settle_date, 9, n)))
    books = Books.from_records(out + [r for r in fills if trade_date_of(r.hlc) <= cutoff])
    stamp = Hlc(time.time_ns(), 0, FIRM)
    for acct in accounts:
        seq += 1
        out.append(Record(origin=FIRM, seq=seq, txn=f"account:{acct}", type=RecordType.ACCOUNT, status="open",
                          hlc=Hlc(stamp.wall_ns + seq, 0, FIRM), account=acct,
                          extra=carry_extra(books, acct, cutoff)))
    with log.write() as batch:
        batch.insert(Role.FIRM, [(r, encode_record(r)) for r in out])
    return {"firm_records": len(out), "settled": len(due)}


def run(log_dir: Path, keep_days: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="fixgw-retentionbench-"))
    try:
        copy = work / "log"
        copy.mkdir()
        shutil.copy2(log_dir / "data.mdb", copy / "data.mdb")
        cutoff = cutoff_day(new_york_today(), keep_days)
        with RecordLog(copy) as log:
            firm = add_firm_records(log, cutoff)
            before = log.count()
            w0, c0 = time.perf_counter(), time.process_time()
            got = plan(log, cutoff)
            w1, c1 = time.perf_counter(), time.process_time()
            archived = 0
            for day, txns in sorted(got.by_day.items()):
                archived += archive_txns(log, log.node_id, log.role, day, txns).archived
            w2, c2 = time.perf_counter(), time.process_time()
            after = log.count()
        file_bytes = sum(p.stat().st_size for p in archive_files(copy))
        return {
            "cutoff": cutoff.isoformat(), "keep_days": keep_days, **firm,
            "records_before": before, "records_after": after, "records_archived": archived,
            "orders_archived": got.orders, "orders_kept": got.kept, "records_scanned": got.scanned,
            "plan_s": round(w1 - w0, 2), "plan_cpu_s": round(c1 - c0, 2),
            "archive_s": round(w2 - w1, 2), "archive_cpu_s": round(c2 - c1, 2),
            "records_per_s": round(archived / (w2 - w0)) if archived else 0,
            "archive_bytes_per_record": round(file_bytes / archived, 1) if archived else None,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m utilities.retentionbench", description=__doc__.split("\n\n")[0])
    p.add_argument("log_dir", type=Path, help="a record log directory (e.g. DIR/scale-*/log of fixgw bench scale)")
    p.add_argument("--keep-days", type=int, default=2, help="closed trading days kept (default 2)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if not (args.log_dir / "data.mdb").exists():
        print(f"{args.log_dir}: no record log (data.mdb) there", file=sys.stderr)
        return 2
    r = run(args.log_dir, args.keep_days)
    if args.json:
        print(json.dumps(r))
    else:
        for k, v in r.items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
