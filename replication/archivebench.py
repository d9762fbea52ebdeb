"""``python -m replication.archivebench LOG_DIR [--json]``: how fast retention moves records out.

Copies the log in ``LOG_DIR`` (an LMDB record log, e.g. the one ``fixgw bench scale --records
100000 --keep --data DIR`` leaves in ``DIR/scale-*/log``) to a temporary directory, so the
original is never changed, groups its orders by the trading day of their first record (UTC)
and archives every day's orders with :func:`replication.archive.archive_txns`, one call a
day, timed: records archived per second of wall and of CPU time, the archive files' bytes
per record, and the log's record count before and after. Bounded: one pass over a copy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from replication.archive import archive_files, archive_txns
from replication.log import RecordLog


def _days(log: RecordLog) -> dict[dt.date, list[str]]:
    """Every txn of the log by the UTC day of its first record."""
    by_day: dict[dt.date, list[str]] = {}
    with log.reader() as r:
        for txn, records in r.iter_by_txn():
            first = min(rec.hlc.wall_ns for rec in records)
            day = dt.datetime.fromtimestamp(first / 1e9, tz=dt.UTC).date()
            by_day.setdefault(day, []).append(txn)
    return by_day


def run(log_dir: Path) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="fixgw-archivebench-"))
    try:
        copy = work / "log"
        copy.mkdir()
        shutil.copy2(log_dir / "data.mdb", copy / "data.mdb")
        with RecordLog(copy) as log:
            before = log.count()
            days = _days(log)
            archived = kept = 0
            wall0, cpu0 = time.perf_counter(), time.process_time()
            for day in sorted(days):
                result = archive_txns(log, log.node_id, log.role, day, days[day])
                archived += result.archived
                kept += result.kept
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            after = log.count()
        file_bytes = sum(p.stat().st_size for p in archive_files(copy))
        return {
            "records_before": before, "records_after": after, "archived": archived, "kept": kept,
            "days": len(days), "txns": sum(len(t) for t in days.values()),
            "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "records_per_s": round(archived / wall) if wall else None,
            "records_per_cpu_s": round(archived / cpu) if cpu else None,
            "archive_bytes": file_bytes, "archive_bytes_per_record": round(file_bytes / archived, 1) if archived else None,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m replication.archivebench", description=__doc__.splitlines()[0])
    p.add_argument("log_dir", type=Path, metavar="LOG_DIR", help="an LMDB record log directory (holds data.mdb)")
    p.add_argument("--json", action="store_true", help="one JSON object")
    args = p.parse_args(argv)
    if not (args.log_dir / "data.mdb").exists():
        print(f"{args.log_dir}: not a record log (no data.mdb)", file=sys.stderr)
        return 2
    out = run(args.log_dir)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"archived {out['archived']:,} of {out['records_before']:,} records ({out['txns']:,} orders, "
              f"{out['days']} days; {out['kept']} kept) in {out['wall_s']} s: {out['records_per_s']:,} records/s, "
              f"{out['records_per_cpu_s']:,} per CPU second; archive files {out['archive_bytes_per_record']} "
              "bytes a record")
    return 0


if __name__ == "__main__":
    sys.exit(main())
