"""``fixgw bench scale --records N``: what a long history costs a customer utility.

A node runs for months and its log only grows (issue 18): this bench grows a customer
utility's log to N records as fast as it can, then measures what grows with it.

1. **Write**: realistic orders of several days (``--days``) from four origins, as a
   customer utility ``cfu1`` holds them: its own ORDER records (appended, with HLC stamps of
   their day), its peer ``cfu2``'s (authoritative copies), and the SENT, VENUE_ACK and FILL
   records of street utilities ``ssu1``/``ssu2`` (read-only copies), every record carrying
   the order's terms as the real ones do. ``--open`` orders of the last day rest at the venue
   (no fill). One synced LMDB transaction per chunk of orders: records/s written.
2. **Size**: the log file's bytes per record, and where they go (record keys and values, the
   txn index, LMDB's page overhead), from LMDB's own page counts.
3. **Restart**: a fresh process opens the log and rebuilds the customer utility
   (``CustomerUtility.load``, what ``fixgw node`` does before accepting customers); restart
   to ready is from the spawn to the end of the load, interpreter start included; then how long
   the account ledger takes to book the orders of the tail (on the event loop, after ready:
   ``ledger_booked_s``); its memory (RSS, anonymous RSS) after that, and the sizes of its
   in-memory views.
4. **Status inquiry**: in that process, OrderStatusRequests (35=H) by OrderID for orders
   picked at random over the whole history, answered by the utility's own handler (the FIX
   send left out): p50/p99; and ``fixgw log status``'s lookup (records of one txn + fold) on
   a read-only open of the log.

Measured (``fixgw bench scale --records 1000000 --json``, 2 cores shared with ~6 other
engineers' test runs, 98% busy): 1,000,000 records (250,250 orders over 5 days, 1,000 open)
written at 1,906 records/s; 180.5 log bytes a record (337 before values were compressed:
record pages 126, txn index 54); restart to ready 660 s wall but 74 s of CPU (a full fold of
the log: what snapshots are for); 355 MiB RSS, 177 MiB anonymous, with 1,000 open orders and
50,050 ClOrdIDs in the views; status inquiry p50 296 us, p99 25 ms (the p99 is the busy
machine's preemption: compare runs only with like ``host_busy_pct``).

With snapshots (utilities.snapshot), paired in one sitting on 2 cores (load average ~1.9): main
(69ea790) folded the whole log, restart 21.8 s (21.1 s CPU), 564 MiB RSS, 385 MiB anonymous;
this branch, from a snapshot of 900,000 records folding the last 100,000 (``--tail``, the
worst case of the default ``snapshot_every_records``), restart 3.4 s (3.4 s CPU), 193 MiB
RSS, 159 MiB anonymous (331 MiB peak while it reads one snapshot and writes the next).
3. (restart) now also takes the snapshot ``--tail`` records before the end, in the writing
process, as the running utility would have (``--no-snapshot``: none).

Bounded: ``--records`` at most 100 million, the write phase stops at ``--seconds`` (default
3600) with what it wrote; progress goes to a terminal only. Nothing but files under
``--data`` (default: a temporary directory, removed afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from fixgw import hostcpu
from replication.codec import encode_values, make_checked_record, record_values
from replication.errors import LogFullError
from replication.hlc import Hlc, HybridLogicalClock
from replication.log import RecordLog
from replication.record import Record, RecordType, Role
from utilities.books import NEW_YORK
from utilities.child_env import child_env

NODE = "cfu1"
PEER = "cfu2"
STREETS = ("ssu1", "ssu2")
CLIENTS = ("BENCH1", "BENCH2", "BENCH3", "BENCH4")
ACCOUNT = "BENCH"
SYMBOLS = ("AAPL", "MSFT", "IBM", "INTC", "GOOG", "AMZN", "ORCL", "CSCO")
PRICES = {s: Decimal(p) for s, p in zip(SYMBOLS, ("189.25", "402.10", "171.55", "43.20", "140.05", "178.90",
                                                 "118.30", "49.85"))}
MAX_RECORDS = 100_000_000
CHUNK_ORDERS = 2500  # orders per synced transaction while writing (~10,000 records)
QUERIES = 2000
POSITION_QUERIES = 20  # RequestForPositions answered after the status inquiries ...
POSITION_SECONDS = 120.0  # ... stopping after this long (each folded the account's whole history before issue 18's ledger)
DEFAULT_TAIL = 100_000  # utilities.snapshot.DEFAULT_EVERY_RECORDS: a node killed just before its next snapshot
SESSION_NS = int(6.5 * 3600e9)  # orders spread over a 6.5 h trading session each day


def _progress(text: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r" + text + "\x1b[K")
        sys.stderr.flush()


class _Origin:
    """Seqs of one inserted origin, and its records of the current chunk."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seq = 0
        self.items: list[tuple[Record, bytes]] = []

    def add(self, wall_ns: int, fields: dict[str, Any]) -> None:
        self.seq += 1
        v = record_values(self.name, self.seq, Hlc(wall_ns, 0, self.name), fields)
        self.items.append((make_checked_record(v), encode_values(v)))


def write_history(data: Path, records: int, days: int, open_orders: int, seconds: float,
                  map_limit: int = 1 << 40, pause_at: int | None = None,
                  pause: Callable[[RecordLog], None] | None = None) -> dict[str, Any]:
    """Grow the log in ``data`` to about ``records`` records; returns what was written.
    ``pause(log)`` is called once, when ``pause_at`` records are written (the bench's snapshot)."""
    per_order = 4  # ORDER, SENT, VENUE_ACK, FILL; an open order has no FILL
    orders = max(1, (records + open_orders) // per_order)
    open_orders = min(open_orders, orders)
    today = dt.datetime.now(NEW_YORK).date()
    first_day = today - dt.timedelta(days=days - 1)
    per_day = -(-orders // days)
    wall = [0]
    clock = HybridLogicalClock(NODE, physical=lambda: wall[0])
    peer = _Origin(PEER)
    streets = [_Origin(s) for s in STREETS]
    value_bytes = 0
    written = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    cl_counter: dict[str, int] = {}
    with RecordLog(data, node_id=NODE, role=Role.CUSTOMER, map_size=1 << 30, map_limit=map_limit) as log:
        k = 0
        while k < orders and time.perf_counter() < deadline:
            chunk_end = min(orders, k + CHUNK_ORDERS)
            own: list[tuple[int, dict[str, Any]]] = []
            for i in range(k, chunk_end):
                day_index, in_day = divmod(i, per_day)
                day = first_day + dt.timedelta(days=day_index)
                open_at = dt.datetime.combine(day, dt.time(9, 30), NEW_YORK)
                t = int(open_at.timestamp() * 1e9) + in_day * (SESSION_NS // per_day)
                symbol = SYMBOLS[i % len(SYMBOLS)]
                client = CLIENTS[i % len(CLIENTS)]
                n = cl_counter[client] = cl_counter.get(client, 0) + 1
                price = PRICES[symbol]
                qty = Decimal(100 * (1 + i % 5))
                mine = i % 2 == 0
                txn = f"{NODE if mine else PEER}-0.{i // 2 + 1}"
                order = {"type": RecordType.ORDER, "txn": txn, "status": "A", "account": ACCOUNT, "symbol": symbol,
                         "side": "1" if i % 3 else "2", "order_qty": qty, "price": price, "ord_type": "2",
                         "tif": "0", "cl_ord_id": f"{day:%Y%m%d}-{client}-{n}", "venue": "exchange",
                         "session": client, "extra": {"begin": "FIX.4.4"}}
                if mine:
                    own.append((t, order))
                else:
                    peer.add(t, order)
                street = streets[i % len(streets)]
                terms = {key: order[key] for key in ("account", "symbol", "side", "order_qty", "price", "ord_type",
                                                     "tif", "cl_ord_id", "venue", "session")}
                street.add(t + 1_000_000, {**terms, "type": RecordType.SENT, "txn": txn, "status": "A", "extra": {
                    "street": street.name, "venue_cl_ord_id": txn, "begin": "FIX.4.4"}})
                vid = f"EXCH-{i + 1}"
                street.add(t + 2_000_000, {**terms, "type": RecordType.VENUE_ACK, "txn": txn, "status": "0",
                                           "venue_order_id": vid, "cum_qty": Decimal(0), "avg_px": Decimal(0),
                                           "extra": {"street": street.name, "leaves_qty": qty}})
                if i < orders - open_orders:
                    street.add(t + 3_000_000, {**terms, "type": RecordType.FILL, "txn": txn, "status": "2",
                                               "venue_order_id": vid, "exec_id": f"EXCH-E{i + 1}", "last_qty": qty,
                                               "last_px": price, "cum_qty": qty, "avg_px": price,
                                               "extra": {"street": street.name, "leaves_qty": Decimal(0)}})
            while True:
                own_bytes = 0
                try:
                    with log.write(clock) as batch:
                        for t, fields in own:
                            wall[0] = t
                            own_bytes += len(batch.append(fields).data)
                        batch.insert(Role.CUSTOMER, peer.items)
                        batch.insert(Role.STREET, [it for s in streets for it in s.items])
                    break
                except LogFullError as exc:
                    if not exc.map_grown:
                        raise  # the map grew meanwhile: the same chunk again
            value_bytes += own_bytes + sum(len(d) for o in (peer, *streets) for _, d in o.items)
            written += len(own) + len(peer.items) + sum(len(s.items) for s in streets)
            for o in (peer, *streets):
                o.items.clear()
            k = chunk_end
            if pause is not None and pause_at is not None and written >= pause_at:
                pause(log)
                pause = None
            elapsed = time.perf_counter() - t0
            _progress(f"writing: {written:,} records, {written / elapsed:,.0f}/s")
        write_s = time.perf_counter() - t0
        stats: dict[str, int] = {}
        for name, (entries, size) in log.space().items():
            stats[f"{name}_entries"], stats[f"{name}_bytes"] = entries, size
        count = log.count()
    _progress("")
    return {"records": count, "orders": k, "open_orders": max(0, k - (orders - open_orders)), "days": days,
            "write_s": write_s, "records_per_s": written / write_s if write_s else 0.0,
            "value_bytes": value_bytes, **stats}


def _sample(orders: int, n: int, seed: int = 18) -> list[str]:
    rnd = random.Random(seed)
    picks = [rnd.randrange(orders) for _ in range(n)]
    return [f"{NODE if i % 2 == 0 else PEER}-0.{i // 2 + 1}" for i in picks]


def _percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))] if s else float("nan")


def _memory() -> dict[str, float]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024  # kB -> MiB
    return {"rss_mb": out.get("VmRSS", 0.0), "anon_mb": out.get("RssAnon", 0.0), "peak_rss_mb": out.get("VmHWM", 0.0)}


def snapshot_path(data: Path) -> Path:
    """Where the bench's customer utility keeps its snapshot (beside its log, as a node does)."""
    from utilities.snapshot import FILE_NAME

    return data.parent / "snapshot" / FILE_NAME


def take_snapshot(log: RecordLog) -> dict[str, Any]:
    """The snapshot a running customer utility would have written (utilities.snapshot.take)."""
    from utilities.books import new_york_today
    from utilities.snapshot import take

    taken = take(log, snapshot_path(log.path), me=NODE, reference_prices=dict(PRICES), today=new_york_today())
    return {"snapshot_taken_records": taken.records, "snapshot_bytes": taken.bytes, "snapshot_take_s": taken.seconds}


async def _restart(data: Path, txns: list[str], spawned_at: float) -> dict[str, Any]:
    """In the child process: rebuild the customer utility, then time status inquiries."""
    from fixgw import eventloop
    from fixgw.config import SessionID
    from fixgw.message import Message
    from replication.node import ReplicationNode
    from utilities.customer import CustomerUtility
    from utilities.liveness import Liveness

    t_imported = time.time()

    async def no_publish(topic: str, payload: bytes) -> None:
        return None

    async with ReplicationNode(node_id=NODE, role=Role.CUSTOMER, cluster="bench", data_dir=data, mqtt=False,
                               map_size=1 << 30, map_limit=1 << 40) as node:
        app = CustomerUtility(
            node=node, node_name=NODE, comp_id="FIXGW", cluster="bench",
            customers={c: (ACCOUNT,) for c in CLIENTS}, passwords={},
            symbol_venues={s: "exchange" for s in SYMBOLS}, streets={s: ("exchange",) for s in STREETS},
            liveness=Liveness(3.0), publish=no_publish, reference_prices=PRICES,
            # no snapshot written by this restart: a utility writes the next one after its load, in a
            # process of its own (utilities.customer.load), which would run beside the inquiries timed here
            snapshot_path=snapshot_path(data), snapshot_every=1 << 40,
        )
        t_load = time.time()
        app.load()
        eventloop.settle_gc()
        t_ready = time.time()
        cpu_ready = time.process_time()  # this process's CPU since it started: less noisy on a busy host
        while app.inquiries.accounts.backlog:   # the tail's orders booked into the account ledger, after the load
            await asyncio.sleep(0.001)
        t_booked = time.time()
        mem = _memory()
        views = {"open_in_view": len(app.risk.open), "clordids": len(app.clids), "routed_pending": len(app.router.pending),
                 "used_snapshot": app.startup["snapshot"], "folded": app.startup["folded"],
                 "snapshot_ignored": app.startup["snapshot_ignored"]}
        lat: list[float] = []
        found = 0
        for txn in txns:
            recs = node.log.records_for_txn(txn)
            owner = recs[0].session if recs else CLIENTS[0]
            sid = SessionID("FIX.4.4", "FIXGW", owner)
            msg = Message.new("H", [(37, txn), (11, "NONE"), (55, "IBM"), (54, "1"), (790, "Q")])
            t = time.perf_counter_ns()
            await app.on_status(msg, sid)
            lat.append((time.perf_counter_ns() - t) / 1e3)
            found += bool(recs)
        # RequestForPositions (35=AN) of the account every order is booked to, answered by the
        # utility's own handler (the FIX send left out): bounded in count and in time
        pos_lat: list[float] = []
        deadline = time.perf_counter() + POSITION_SECONDS
        for i in range(POSITION_QUERIES):
            if time.perf_counter() > deadline:
                break
            msg = Message.new("AN", [(710, f"P{i}"), (724, "0"), (263, "0"), (1, ACCOUNT), (581, "1"),
                                     (715, "20240305"), (60, "20240305-15:00:00.000")])
            t = time.perf_counter_ns()
            await app.on_request_for_positions(msg, SessionID("FIX.4.4", "FIXGW", CLIENTS[0]))
            pos_lat.append((time.perf_counter_ns() - t) / 1e3)
    return {"restart_s": t_ready - spawned_at, "load_s": t_ready - t_load, "start_s": t_imported - spawned_at,
            "ledger_booked_s": t_booked - t_ready,
            "restart_cpu_s": cpu_ready,
            **mem, **views, "status_p50_us": _percentile(lat, 0.5), "status_p99_us": _percentile(lat, 0.99),
            "status_queries": len(lat), "status_found": found,
            "positions_p50_us": _percentile(pos_lat, 0.5), "positions_max_us": max(pos_lat, default=0.0),
            "positions_queries": len(pos_lat)}


def _child(argv: list[str]) -> int:
    data, sample_file, spawned_at = Path(argv[0]), Path(argv[1]), float(argv[2])
    from fixgw import eventloop

    txns = json.loads(sample_file.read_text())
    result = eventloop.run(_restart(data, txns, spawned_at))
    print(json.dumps(result), flush=True)
    return 0


def measure_restart(data: Path, txns: list[str], timeout: float = 1800.0) -> dict[str, Any]:
    sample_file = data.parent / "status-sample.json"
    sample_file.write_text(json.dumps(txns))
    spawned_at = time.time()
    out = subprocess.run([sys.executable, "-m", "utilities.scalebench", "restart", str(data), str(sample_file),
                          repr(spawned_at)], capture_output=True, text=True, timeout=timeout, env=child_env(), check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the restarted customer utility failed ({out.returncode}): {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure_log_status(data: Path, txns: list[str]) -> dict[str, Any]:
    """``fixgw log status``'s lookup: the records of one txn from a read-only open, folded."""
    from utilities.status import fold

    lat: list[float] = []
    t0 = time.perf_counter()
    with RecordLog(data, readonly=True) as log:
        open_s = time.perf_counter() - t0
        for txn in txns:
            t = time.perf_counter_ns()
            st = fold(log.records_for_txn(txn))
            lat.append((time.perf_counter_ns() - t) / 1e3)
            if st is None:
                raise RuntimeError(f"no records of {txn} in the bench log")
    return {"log_status_open_ms": open_s * 1e3, "log_status_p50_us": _percentile(lat, 0.5),
            "log_status_p99_us": _percentile(lat, 0.99)}


def run(data: Path, records: int, days: int, open_orders: int, seconds: float, queries: int,
        tail: int = 0, snapshot: bool = True) -> dict[str, Any]:
    """``tail``: records written after the snapshot (what the restart folds); ``snapshot``
    False: no snapshot, the restart folds the whole log."""
    logdir = data / "log"
    taken: dict[str, Any] = {}

    def pause(log: RecordLog) -> None:
        _progress("taking a snapshot ...")
        taken.update(take_snapshot(log))

    w = write_history(logdir, records, days, open_orders, seconds, pause_at=max(0, records - tail) if snapshot else None,
                      pause=pause)
    w.update(taken)
    size = (logdir / "data.mdb").stat().st_size
    n = max(1, w["records"])
    result: dict[str, Any] = {**w, "log_bytes": size, "bytes_per_record": size / n}
    for name in ("auth", "ro", "by_txn"):
        result[f"{name}_bytes_per_record"] = w[f"{name}_bytes"] / n
    result["value_bytes_per_record"] = w["value_bytes"] / n
    txns = _sample(w["orders"], queries)
    _progress("restarting the customer utility ...")
    before = hostcpu.read()
    result.update(measure_restart(logdir, txns))
    host = hostcpu.usage(before, hostcpu.read())
    result["host_busy_pct"] = host.busy_pct if host else None  # compare runs only with like figures
    result.update(measure_log_status(logdir, txns))
    _progress("")
    return result


def main(args: argparse.Namespace) -> int:
    given_records = getattr(args, "records", None)
    records = 1_000_000 if given_records is None else int(given_records)
    if not 1 <= records <= MAX_RECORDS:
        raise SystemExit(f"fixgw bench scale: --records must be 1..{MAX_RECORDS:,}, got {records}")
    days = int(getattr(args, "days", None) or 5)
    given_open = getattr(args, "open", None)
    open_orders = 1000 if given_open is None else int(given_open)
    seconds = float(getattr(args, "seconds", None) or 3600.0)
    given = getattr(args, "data", None)
    data = Path(tempfile.mkdtemp(prefix="scale-", dir=given)) if given else Path(tempfile.mkdtemp(prefix="fixgw-scale-"))
    given_tail = getattr(args, "tail", None)
    tail = DEFAULT_TAIL if given_tail is None else int(given_tail)
    if tail < 0:
        raise SystemExit(f"fixgw bench scale: --tail must be >= 0, got {tail}")
    try:
        result = run(data, records, days, open_orders, seconds, QUERIES, tail=min(tail, records),
                     snapshot=not getattr(args, "no_snapshot", False))
    finally:
        if not getattr(args, "keep", False):
            shutil.rmtree(data, ignore_errors=True)
    if getattr(args, "json", False):
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in result.items()}))
        return 0
    r = result
    print(f"log: {r['records']:,} records ({r['orders']:,} orders over {r['days']} days, {r['open_orders']:,} open), "
          f"written at {r['records_per_s']:,.0f} records/s")
    print(f"log file: {r['log_bytes'] / 2**20:,.1f} MiB, {r['bytes_per_record']:.0f} bytes/record "
          f"(values {r['value_bytes_per_record']:.0f}; pages: records {r['auth_bytes_per_record'] + r['ro_bytes_per_record']:.0f}, "
          f"txn index {r['by_txn_bytes_per_record']:.0f})")
    how = (f"from a snapshot of {r.get('snapshot_taken_records', 0):,} records, folding {r['folded']:,} after it"
           if r["used_snapshot"] else f"no snapshot: the whole log folded, {r['folded']:,} records")
    print(f"customer utility restart to ready ({how}): {r['restart_s']:.2f} s (log load {r['load_s']:.2f} s; "
          f"{r['restart_cpu_s']:.2f} s of CPU; machine {r['host_busy_pct']}% busy meanwhile); "
          f"memory {r['rss_mb']:.0f} MiB RSS, {r['anon_mb']:.0f} MiB anonymous; views: {r['open_in_view']:,} open orders, "
          f"{r['clordids']:,} ClOrdIDs, {r['routed_pending']:,} to route; the tail's orders booked into the "
          f"account ledger {r['ledger_booked_s']:.2f} s after ready (on the event loop, a slice per turn)")
    print(f"status inquiry (35=H, {r['status_queries']} random orders): p50 {r['status_p50_us']:.0f} us, "
          f"p99 {r['status_p99_us']:.0f} us; fixgw log status lookup: p50 {r['log_status_p50_us']:.0f} us, "
          f"p99 {r['log_status_p99_us']:.0f} us")
    print(f"position inquiry (35=AN, the account of every order, {r['positions_queries']} asked): "
          f"p50 {r['positions_p50_us']:,.0f} us, max {r['positions_max_us']:,.0f} us")
    return 0


if __name__ == "__main__":  # the restarted customer utility (internal)
    if len(sys.argv) == 5 and sys.argv[1] == "restart":
        sys.exit(_child(sys.argv[2:]))
    sys.exit("usage: fixgw bench scale --records N (python -m utilities.scalebench restart ... is internal)")
