"""``fixgw bench disk [--data DIR] [--rate R] [--seconds S] [--json]``: the floor a disk sets
under every acknowledgement.

A customer utility acknowledges an order only once the order's record is durable in LMDB, so
no acknowledgement can come back sooner than one synced commit of the record log: on a given
disk that commit's latency is the least an ack can take, before any CPU is spent on FIX or
routing. This bench measures that floor where the nodes keep their logs (the role
PostgreSQL's ``pg_test_fsync`` plays for its WAL). Two series on the same disk, one after the
other, each paced at ``--rate`` operations/s (default 1,000, the end-to-end bench's rate) for
``--seconds`` (default 5), so both are bounded in count and time:

1. ``fdatasync``: a 512-byte write into a preallocated file, then ``fdatasync``: the device's
   own flush, what any durable store pays at least once;
2. ``commit``: one order record appended to a real :class:`RecordLog` in its own transaction,
   synced as an own record is (the data pages, then the meta page): what an ack waits for
   when orders arrive one at a time.

Nothing else runs meanwhile, so the figures are the disk's, not the cluster's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from replication.hlc import HybridLogicalClock
from replication.log import RecordLog
from replication.record import RecordType, Role

DEFAULT_RATE = 1000.0
DEFAULT_SECONDS = 5.0
_BLOCK = 512
_SLOTS = 1024  # the 512-byte writes cycle over a preallocated 512 KiB: no file growth, no metadata


def paced(op: Callable[[int], None], rate: float, seconds: float, *,
          monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
          timer: Callable[[], int] = time.perf_counter_ns) -> list[int]:
    """Run ``op(i)`` about ``rate`` times a second for ``seconds``; each call's duration (ns).

    A call that starts late (the previous one was slow, or the process was not scheduled) is
    not made up for with a burst: starts are at least one interval apart, so every sample is
    one sync with the disk left alone since the last.
    """
    if rate <= 0 or seconds <= 0:
        raise ValueError(f"rate and seconds must be positive (rate={rate}, seconds={seconds})")
    interval = 1.0 / rate
    limit = int(rate * seconds)
    samples: list[int] = []
    start = monotonic()
    deadline = start + seconds
    next_at = start
    for i in range(limit):
        now = monotonic()
        if max(now, next_at) >= deadline:  # no call starts after the deadline
            break
        if next_at > now:
            sleep(next_at - now)
        began = monotonic()
        t = timer()
        op(i)
        samples.append(timer() - t)
        next_at = max(next_at, began) + interval
    return samples


def percentiles(samples_ns: list[int], name: str) -> dict[str, float | int]:
    """p50/p90/p99/p99.9/max in microseconds, keyed ``<name>_p50_us`` and so on."""
    s = sorted(samples_ns)
    n = len(s)
    if n == 0:
        raise ValueError(f"{name}: no samples")

    def at(q: float) -> float:
        return s[min(n - 1, int(n * q))] / 1000

    return {f"{name}_p50_us": at(0.50), f"{name}_p90_us": at(0.90), f"{name}_p99_us": at(0.99),
            f"{name}_p999_us": at(0.999), f"{name}_max_us": s[-1] / 1000, f"{name}_samples": n}


def bench_fdatasync(directory: Path, rate: float, seconds: float) -> list[int]:
    path = directory / "fdatasync.dat"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.pwrite(fd, bytes(_BLOCK * _SLOTS), 0)
        os.fsync(fd)
        block = b"x" * _BLOCK

        def op(i: int) -> None:
            os.pwrite(fd, block, (i % _SLOTS) * _BLOCK)
            os.fdatasync(fd)

        return paced(op, rate, seconds)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)


# an order as a customer utility appends it (the fields the end-to-end path fills in)
_ORDER: dict[str, Any] = {
    "type": RecordType.ORDER, "status": "new", "account": "ACC1", "symbol": "IBM", "side": "1",
    "order_qty": Decimal(100), "price": Decimal("12.50"), "ord_type": "2", "tif": "0", "session": "CLIENT1",
}


def bench_commit(directory: Path, rate: float, seconds: float) -> list[int]:
    node = "diskbench"
    clock = HybridLogicalClock(node)
    with RecordLog(directory / "log", node_id=node, role=Role.CUSTOMER) as log:

        def op(i: int) -> None:
            with log.write(clock) as batch:
                batch.append({**_ORDER, "txn": f"{node}-0.{i + 1}", "cl_ord_id": f"C{i}"})

        return paced(op, rate, seconds)


def run(data: Path, rate: float, seconds: float) -> dict[str, Any]:
    return {"rate": rate,
            **percentiles(bench_fdatasync(data, rate, seconds), "fdatasync"),
            **percentiles(bench_commit(data, rate, seconds), "commit")}


def _ms(us: float) -> str:
    return f"{us / 1000:.2f} ms"


def main(args: argparse.Namespace) -> int:
    rate = float(getattr(args, "rate", None) or DEFAULT_RATE)
    seconds = float(getattr(args, "seconds", None) or DEFAULT_SECONDS)
    given = getattr(args, "data", None)
    parent = Path(given) if given else Path.cwd()
    parent.mkdir(parents=True, exist_ok=True)
    # a fresh directory on the disk under test, removed afterwards
    data = Path(tempfile.mkdtemp(prefix="fixgw-diskbench-", dir=parent))
    try:
        result = {"data": str(parent.resolve()), **run(data, rate, seconds)}
    finally:
        shutil.rmtree(data, ignore_errors=True)
    if getattr(args, "json", False):
        print(json.dumps({k: (round(v, 1) if isinstance(v, float) else v) for k, v in result.items()}))
    else:
        print(f"disk under {parent.resolve()}, {rate:,.0f} operations/s, {seconds:g} s each")
        for name, what in (("fdatasync", "512-byte write + fdatasync"), ("commit", "record log commit, synced")):
            print(f"{what:>28}: p50 {_ms(result[f'{name}_p50_us'])}, p90 {_ms(result[f'{name}_p90_us'])}, "
                  f"p99 {_ms(result[f'{name}_p99_us'])}, p99.9 {_ms(result[f'{name}_p999_us'])}, "
                  f"max {_ms(result[f'{name}_max_us'])} ({result[f'{name}_samples']} samples)")
        print("no acknowledgement can come back sooner than one synced record log commit")
    sys.stdout.flush()
    return 0
