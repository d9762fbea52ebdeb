"""``fixgw bench replay [--records N] [--data DIR] [--json]``: how fast ``fixgw log replay`` reads.

It builds a customer utility's log as a busy day leaves it (bounded: ``--records``, default
1,000,000): per order its own ORDER and ROUTED records and the street utility's SENT,
VENUE_ACK and FILL (held read-only, as replicated), plus the firm's ACCOUNT records; then
times :func:`utilities.replay.replay_log` over the whole log (decode, fold, books) and once
more as of the middle of the day (``--until``), and reports records/s.

It reports records/s of wall time and per CPU second (this process's and its replay helper's,
``RUSAGE_CHILDREN``) and how many processes replayed (``replay_workers``: 2 only with an idle
core, see :func:`utilities.replay.default_workers`).

Measured on this machine (2 cores shared with other engineers' test runs), paired runs in one
sitting, ``fixgw bench replay --records 1000000 --json``, before and after issue 15's work
(see utilities/replay.py, Speed), 09:01-09:03 UTC: before (commit 25a1e46, load average 5.8,
the machine 92% busy) 29,314 records/s of wall time, 36,230 per CPU second; after (load 3.1,
51% busy, 1 process) 62,852 and 62,905; as of the middle of the day 54,349 and 82,687
records/s. Again at 09:09-09:12 (load 2.6 then 3.0, 80% busy both): before 28,801 and 32,062,
after 50,910 and 60,113. Building the log took 16-26 s. (The figure this docstring gave before, measured
under a load average of 11-15: 3,738 records/s, 16,508 per CPU second.)
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from fixgw import hostcpu
from replication.codec import encode_record
from replication.hlc import Hlc, HybridLogicalClock
from replication.log import RecordLog
from replication.record import Record, RecordType, Role
from utilities.replay import iso_ns, replay_log

RECORDS_PER_ORDER = 5
BATCH_ORDERS = 5000
ACCOUNTS = ("ACC1", "ACC2", "ACC3", "ACC4")
SYMBOLS = ("AAPL", "MSFT", "IBM", "INTC")


def build_log(path: Path, records: int, *, progress: Any = None) -> tuple[int, int]:
    """A customer utility's log of about ``records`` records; returns (records, middle wall ns)."""
    cfu, ssu, firm = "cfu1", "ssu1", "firm"
    clock = HybridLogicalClock(cfu)
    orders = max(1, (records - len(ACCOUNTS)) // RECORDS_PER_ORDER)
    street_seq = 0
    written = 0
    middle = 0
    with RecordLog(path, node_id=cfu, role=Role.CUSTOMER, sync=False) as log:
        with log.write() as b:
            now = time.time_ns()
            b.insert(Role.FIRM, [(r, encode_record(r)) for r in (
                Record(origin=firm, seq=i + 1, txn=f"account:{a}", type=RecordType.ACCOUNT, status="open",
                       hlc=Hlc(now, 0, firm), account=a, extra={"cash": Decimal(10_000_000)})
                for i, a in enumerate(ACCOUNTS))])
        written += len(ACCOUNTS)
        for start in range(0, orders, BATCH_ORDERS):
            street: list[tuple[Record, bytes]] = []
            with log.write(clock) as b:
                for i in range(start, min(orders, start + BATCH_ORDERS)):
                    txn = f"{cfu}-0.{i + 1}"
                    terms: dict[str, Any] = {
                        "account": ACCOUNTS[i % len(ACCOUNTS)], "symbol": SYMBOLS[i % len(SYMBOLS)],
                        "side": "1" if i % 2 else "2", "order_qty": Decimal(100), "price": Decimal("12.50"),
                        "ord_type": "2", "tif": "0", "cl_ord_id": f"C{i}", "venue": "exchange",
                        "session": "CLIENT1"}
                    order = b.append({"type": RecordType.ORDER, "txn": txn, "status": "A", **terms}).record
                    b.append({"type": RecordType.ROUTED, "txn": txn, "status": "A", "extra": {"street": ssu},
                              **terms})
                    wall = order.hlc.wall_ns
                    steps: tuple[tuple[RecordType, dict[str, Any]], ...] = (
                        (RecordType.SENT, {}),
                        (RecordType.VENUE_ACK, {"venue_order_id": f"V{i}"}),
                        (RecordType.FILL, {"venue_order_id": f"V{i}", "exec_id": f"E{i}",
                                           "last_qty": Decimal(100), "last_px": Decimal("12.50"),
                                           "cum_qty": Decimal(100), "avg_px": Decimal("12.50")}))
                    for k, (rtype, more) in enumerate(steps):
                        street_seq += 1
                        status = "2" if rtype is RecordType.FILL else "0"
                        r = Record(origin=ssu, seq=street_seq, txn=txn, type=rtype, status=status,
                                   hlc=Hlc(wall + (k + 1) * 1000, 0, ssu), **terms, **more)
                        street.append((r, encode_record(r)))
                    if i == orders // 2:
                        middle = wall
                b.insert(Role.STREET, street)
            n = (min(orders, start + BATCH_ORDERS) - start) * RECORDS_PER_ORDER
            written += n
            if progress is not None:
                progress(n)
    return written, middle


def run(records: int, data: Path | None = None, *, progress_factory: Any = None) -> dict[str, Any]:
    """Build, replay the whole log, replay as of the middle; the figures as a dict."""
    if records < RECORDS_PER_ORDER + len(ACCOUNTS) or records > 20_000_000:
        raise ValueError(f"--records must be between {RECORDS_PER_ORDER + len(ACCOUNTS)} and 20000000, got {records}")
    tmp = Path(tempfile.mkdtemp(prefix="fixgw-replay-bench-", dir=data))
    try:
        path = tmp / "cfu1"
        t0 = time.perf_counter()
        with _bar(progress_factory, records, "building the log") as tick:
            written, middle = build_log(path, records, progress=tick)
        build_s = time.perf_counter() - t0
        t0, c0, host0 = time.perf_counter(), _cpu(), hostcpu.read()
        with _bar(progress_factory, written, "replay") as tick:
            full = replay_log(path, progress=tick)
        full_s, full_cpu = time.perf_counter() - t0, _cpu() - c0
        host = hostcpu.usage(host0, hostcpu.read())
        t0 = time.perf_counter()
        with _bar(progress_factory, written, "replay --until") as tick:
            half = replay_log(path, until_ns=middle, progress=tick)
        half_s = time.perf_counter() - t0
        return {
            "records": written, "orders": len(full.books.orders()), "build_s": round(build_s, 2),
            "replay_s": round(full_s, 3), "replay_records_per_s": round(written / full_s),
            # CPU time of the replay itself, this process's and its worker processes': on a shared
            # machine the wall clock mostly measures the others (see host_busy_pct / host_steal_pct)
            "replay_cpu_s": round(full_cpu, 3), "replay_records_per_cpu_s": round(written / max(full_cpu, 1e-9)),
            "replay_workers": full.workers,
            "host_busy_pct": host.busy_pct if host else None, "host_steal_pct": host.steal_pct if host else None,
            "until": iso_ns(middle), "until_orders": len(half.books.orders()),
            "until_s": round(half_s, 3), "until_records_per_s": round(written / half_s),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _cpu() -> float:
    """CPU seconds of this process and of its waited-for children (a replay's workers)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


class _NoBar:
    def __enter__(self) -> Any:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _bar(factory: Any, total: int, what: str) -> Any:
    return _NoBar() if factory is None else factory(total, what)


def main(args: argparse.Namespace) -> int:
    from fixgw.progress import progress_bar

    records = args.records or 1_000_000
    factory = None if args.json else (lambda total, what: progress_bar(total, what, unit="records"))
    result = run(records, Path(args.data) if args.data else None, progress_factory=factory)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"replay of {result['records']} records ({result['orders']} orders) by {result['replay_workers']} "
              f"process(es): {result['replay_s']} s, "
              f"{result['replay_records_per_s']} records/s; {result['replay_cpu_s']} s of CPU, "
              f"{result['replay_records_per_cpu_s']} records per CPU second")
        if result["host_busy_pct"] is not None:
            print(f"machine during the replay: {result['host_busy_pct']:.0f}% busy, "
                  f"{result['host_steal_pct']:.0f}% stolen by the hypervisor")
        print(f"replay --until {result['until']} ({result['until_orders']} orders): {result['until_s']} s, "
              f"{result['until_records_per_s']} records/s")
        print(f"(building the log took {result['build_s']} s)")
    return 0
