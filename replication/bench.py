"""``fixgw bench replication [--json] [--seconds S] [--data DIR]``.

Three measurements, each bounded in count and time:

1. durable appends/s: ``ReplicationNode.append_fields`` from many concurrent tasks, each
   returning only after its group-committed, synced LMDB transaction (no broker);
2. records/s replicated between two nodes over a real broker (our own mosquitto on a
   free loopback port, or amqtt if mosquitto is not installed, with per-node logins and
   the ACL as ``fixgw up`` runs it): from the first append
   on node A until node B holds all of them durably. B runs in its own process, as
   nodes do in a deployment;
3. replication lag at a fixed 1,000 records/s: from the append on A (the record's HLC
   wall time, taken at commit time) to the moment B's listener sees it committed in B's
   LMDB; p50 and p99. Same machine, so both ends read the same clock.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from replication.auth import (
    BrokerAccess,
    BusLogin,
    new_password,
    node_grant,
    read_secret,
    write_private,
)
from replication.broker import LocalBroker
from replication.node import ReplicationNode
from replication.record import Record, RecordType, Role

LAG_RATE = 1000.0


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much each measurement does (the defaults are the real bench; tests use less)."""

    append_records: int = 200_000
    append_producers: int = 2000
    replicate_records: int = 60_000
    lag_seconds: float = 5.0

    def __post_init__(self) -> None:
        if min(self.append_records, self.append_producers, self.replicate_records) < 1 or self.lag_seconds <= 0:
            raise ValueError(f"bench sizes must be positive: {self}")


DEFAULT_SIZES = Sizes()


_QTY = Decimal(100)
_PRICE = Decimal("12.50")


# an order record as a customer utility hands it over: its terms parsed once from the FIX
# message into a dict of its own, which the log takes over (ReplicationNode.append_fields)
_ORDER_TERMS: dict[str, Any] = {
    "type": RecordType.ORDER, "txn": "", "status": "new", "account": "ACC1", "symbol": "IBM", "side": "1",
    "order_qty": _QTY, "price": _PRICE, "ord_type": "2", "tif": "0", "cl_ord_id": "", "session": "CLIENT1",
}


def _order(txn: str, i: int) -> dict[str, Any]:
    fields = _ORDER_TERMS.copy()
    fields["txn"] = txn
    fields["cl_ord_id"] = f"C{i}"
    return fields


async def _append_as_fast_as_possible(node: ReplicationNode, total: int, producers: int, deadline: float) -> int:
    """Concurrent producers, each awaiting its own durable append; returns records appended."""
    done = 0
    per = max(1, total // producers)
    # txns as a customer utility issues them (utilities/txn.py): "<node>-<epoch>.<counter>",
    # the epoch being the log's head seq at start, the counter shared by all sessions
    prefix = f"{node.node_id}-{node.log.head}."
    counter = itertools.count(1)

    async def producer(p: int) -> None:
        nonlocal done
        for j in range(per):
            if time.monotonic() > deadline:
                return
            await node.append_fields(_order(f"{prefix}{next(counter)}", j))
            done += 1

    await asyncio.gather(*(producer(p) for p in range(producers)))
    return done


async def bench_appends(data: Path, budget: float, sizes: Sizes = DEFAULT_SIZES) -> dict[str, float]:
    async with ReplicationNode(node_id="bench-a", role=Role.CUSTOMER, cluster="bench",
                               data_dir=data / "appends", mqtt=False) as node:
        await _append_as_fast_as_possible(node, 5000, 500, time.monotonic() + budget)  # warm-up
        t0 = time.perf_counter()
        n = await _append_as_fast_as_possible(node, sizes.append_records, sizes.append_producers,
                                              time.monotonic() + budget)
        elapsed = time.perf_counter() - t0
        commits = node.stats.commits
    return {"durable_appends_per_s": n / elapsed, "appends": n, "append_commits": commits}


class _Peer:
    """Node B in its own process (as in a deployment): no GIL shared with node A."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, data: Path, broker: LocalBroker, node_id: str, origin: str, expect: int,
                    measure_from: int, timeout: float) -> _Peer:
        secret = data / f"{node_id}.password"  # never on a command line
        assert broker.access is not None
        write_private(secret, broker.access.login(node_id).password + "\n")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "replication.bench", "peer", _loop_name(), str(data / node_id), str(broker.port), node_id,
            origin, str(expect), str(measure_from), str(timeout), str(secret),
            stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
        peer = cls(proc)
        line = await asyncio.wait_for(peer._line(), 20)
        if line.get("ready") is not True:
            raise RuntimeError(f"bench peer did not start: {line}")
        return peer

    async def _line(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        raw = await self.proc.stdout.readline()
        if not raw:
            raise RuntimeError("bench peer exited early")
        return json.loads(raw)  # type: ignore[no-any-return]

    async def result(self, timeout: float) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(self._line(), timeout)
        finally:
            if self.proc.returncode is None:
                try:
                    await asyncio.wait_for(self.proc.wait(), 5)
                except TimeoutError:
                    self.proc.kill()
                    await self.proc.wait()


async def _peer(data: str, port: str, node_id: str, origin: str, expect: str, measure_from: str, timeout: str,
                secret: str) -> None:
    lags: list[int] = []
    first_from = int(measure_from)
    done = asyncio.Event()
    target = int(expect)

    login = BusLogin(node_id, read_secret(Path(secret), "the bench peer's password"))
    async with ReplicationNode(node_id=node_id, role=Role.CUSTOMER, cluster="bench", data_dir=Path(data),
                               broker_port=int(port), digest_interval=0.5, login=login) as node:
        def on_record(rec: Record) -> None:
            if rec.origin == origin:
                if rec.seq >= first_from:
                    lags.append(time.time_ns() - rec.hlc.wall_ns)
                if node.log.high_water_marks().get(origin, 0) >= target:
                    done.set()

        node.add_listener(on_record)
        await node.wait_connected(10)
        _settle_gc()
        print(json.dumps({"ready": True}), flush=True)
        try:
            await asyncio.wait_for(done.wait(), float(timeout))
        except TimeoutError:
            pass
        done_ns = time.time_ns()
        print(json.dumps({"done_ns": done_ns, "hwm": node.log.high_water_marks().get(origin, 0),
                          **_percentiles(lags)}), flush=True)


def _percentiles(lags_ns: list[int]) -> dict[str, float]:
    if not lags_ns:
        return {"lag_p50_ms": float("nan"), "lag_p99_ms": float("nan"), "lag_max_ms": float("nan"), "lag_samples": 0}
    lags_ns.sort()
    n = len(lags_ns)
    return {"lag_p50_ms": lags_ns[n // 2] / 1e6, "lag_p99_ms": lags_ns[min(n - 1, int(n * 0.99))] / 1e6,
            "lag_max_ms": lags_ns[-1] / 1e6, "lag_samples": n}


async def _node_a(data: Path, broker: LocalBroker, tag: str) -> ReplicationNode:
    assert broker.access is not None
    a = ReplicationNode(node_id=f"{tag}-a", role=Role.CUSTOMER, cluster="bench", data_dir=data / f"{tag}-a",
                        broker_port=broker.port, digest_interval=0.5, login=broker.access.login(f"{tag}-a"))
    await a.start()
    await a.wait_connected(10)
    return a


async def bench_replication(data: Path, broker: LocalBroker, budget: float,
                            sizes: Sizes = DEFAULT_SIZES) -> dict[str, float]:
    a = await _node_a(data, broker, "repl")
    try:
        deadline = time.monotonic() + budget
        warm = 2000
        records = sizes.replicate_records
        peer = await _Peer.start(data, broker, "repl-b", a.node_id, warm + records, warm + 1, budget + 10)
        await _append_as_fast_as_possible(a, warm, 200, deadline)  # warm-up
        t0 = time.time_ns()
        # out of time: fewer than asked; the peer's result says how many arrived
        n = await _append_as_fast_as_possible(a, records, 500, deadline)
        res = await peer.result(budget + 15)
        got = min(res["hwm"], warm + n) - warm
        elapsed = (res["done_ns"] - t0) / 1e9
        return {"replicated_per_s": got / elapsed, "replicated": got, "replicate_appended": n,
                "publishes": a.stats.publishes}
    finally:
        await a.close()


async def bench_lag(data: Path, broker: LocalBroker, seconds: float) -> dict[str, float]:
    a = await _node_a(data, broker, "lag")
    warm = 200
    total = int(LAG_RATE * seconds)
    try:
        peer = await _Peer.start(data, broker, "lag-b", a.node_id, warm + total, warm + 1, seconds + 30)
        for i in range(warm):  # warm-up, not measured
            await a.append_fields(_order(f"w{i}", i))
        await asyncio.sleep(0.2)
        pending: set[asyncio.Future[Record]] = set()
        t0 = time.monotonic()
        sent = 0
        while sent < total:
            due = min(total, int((time.monotonic() - t0) * LAG_RATE) + 1)
            while sent < due:  # a fixed rate, whatever the append latency
                fut = asyncio.ensure_future(a.append_fields(_order(f"l{sent}", sent)))
                pending.add(fut)
                fut.add_done_callback(pending.discard)
                sent += 1
            await asyncio.sleep(max(0.0, t0 + sent / LAG_RATE - time.monotonic()))
        if pending:
            await asyncio.gather(*pending)
        res = await peer.result(30)
        return {k: res[k] for k in ("lag_p50_ms", "lag_p99_ms", "lag_max_ms", "lag_samples")} | {
            "lag_rate_per_s": LAG_RATE}
    finally:
        await a.close()


def _settle_gc() -> None:
    # as a node process does once it is ready (fixgw.eventloop.settle_gc): start-up objects
    # frozen, fewer young collections
    gc.collect()
    gc.freeze()
    gc.set_threshold(20000, 50, 50)


async def run(data: Path, seconds: float, sizes: Sizes = DEFAULT_SIZES) -> dict[str, Any]:
    _settle_gc()
    result: dict[str, Any] = {}
    result.update(await bench_appends(data, min(15.0, seconds * 0.3), sizes))
    # the broker as `fixgw up` runs it: per-node logins, each node publishing only under its name
    access = BrokerAccess(tuple(node_grant("bench", f"{tag}-{x}", Role.CUSTOMER, new_password())
                                for tag in ("repl", "lag") for x in "ab"))
    with LocalBroker(access=access) as broker:
        result["broker"] = broker.kind
        result.update(await bench_replication(data, broker, min(20.0, seconds * 0.35), sizes))
        result.update(await bench_lag(data, broker, min(sizes.lag_seconds, seconds * 0.15)))
    return result


def _loop_name() -> str:
    """The running loop's kind, for the peer process to run on the same."""
    return "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else "asyncio"


def _runner(loop: str) -> asyncio.Runner:
    """A runner on ``loop``: "uvloop" (as fixgw's nodes when it is installed; the fixgw CLI
    passes its choice as args.loop) or "asyncio"."""
    if loop == "uvloop":
        import uvloop

        return asyncio.Runner(loop_factory=uvloop.new_event_loop)
    return asyncio.Runner()


def main(args: argparse.Namespace, sizes: Sizes = DEFAULT_SIZES) -> int:
    seconds = float(getattr(args, "seconds", None) or 60.0)
    given = getattr(args, "data", None)
    data = Path(given) if given else Path(tempfile.mkdtemp(prefix="fixgw-bench-"))
    if given and data.exists() and any(data.iterdir()):
        data = Path(tempfile.mkdtemp(prefix="replication-", dir=data))
    try:
        with _runner(getattr(args, "loop", None) or "asyncio") as runner:
            result = runner.run(run(data, seconds, sizes))
    finally:
        if not given:
            shutil.rmtree(data, ignore_errors=True)
    if getattr(args, "json", False):
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in result.items()}))
    else:
        print(f"durable appends (group commit, synced): {result['durable_appends_per_s']:>10,.0f} /s "
              f"({result['appends']} records, {result['append_commits']} commits)")
        print(f"replicated between two nodes ({result['broker']}): {result['replicated_per_s']:>10,.0f} /s "
              f"({result['replicated']} records, {result['publishes']} publishes)")
        print(f"replication lag at {LAG_RATE:,.0f}/s: p50 {result['lag_p50_ms']:.2f} ms, "
              f"p99 {result['lag_p99_ms']:.2f} ms, max {result.get('lag_max_ms', float('nan')):.2f} ms "
              f"({result['lag_samples']} samples)")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":  # the peer process of the replication measurements
    if len(sys.argv) == 11 and sys.argv[1] == "peer" and sys.argv[2] in ("asyncio", "uvloop"):
        with _runner(sys.argv[2]) as peer_runner:
            peer_runner.run(_peer(*sys.argv[3:]))
    else:
        sys.exit("usage: fixgw bench replication [--json] (python -m replication.bench peer ... is internal)")
