"""The end-to-end bench of the brokerage (``fixgw bench --config F``), against a running ``fixgw up``.

Several FIX sessions (the config's customers whose CompID starts with ``BENCH``) spread
over the customer utilities send marketable limit orders (buys and sells that cross each
other and the venue's market maker) at a fixed total rate. It measures, per order, the ack
latency (NewOrderSingle out -> ExecutionReport PendingNew in) and the fill latency (-> the
first fill), then asks EVERY customer utility for the status of every order
(OrderStatusRequest) and counts as lost any order that one of them does not know, or that
shows neither a resting nor a terminal status.

It lives with the utilities it measures, next to ``replication/bench.py`` and
``venues/bench.py``; the CLI loads the config and the venues' reference prices (the limit
prices are set from them) and prints the result.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fixgw import hostcpu, proccpu
from fixgw.framing import Framer, Garbled
from fixgw.loadclient import RawSession, percentile, tag_value
from fixgw.message import Message, parse_fields
from fixgw.session import utc_timestamp
from utilities.cluster_config import ClusterConfig, CustomerConfig, NodeConfig
from utilities.cluster_processes import cluster_processes
from utilities.errors import UtilitiesError


class BenchError(UtilitiesError):
    """The bench cannot run: nothing to bench with in the config, or a logon refused."""


RESTING_OR_TERMINAL = {b"0", b"1", b"2", b"4", b"8", b"C"}


@dataclass
class _Conn:
    name: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    client: RawSession
    framer: Framer = field(default_factory=Framer)


async def _logon(host: str, port: int, sender: str, target: str, begin: str) -> _Conn:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, limit=1 << 20), 10)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c = _Conn(f"{sender}@{port}", reader, writer, RawSession(begin, sender, target))
    writer.write(c.client.message(b"A", [(98, b"0"), (108, b"30"), (141, b"Y")], time.time()))
    deadline = time.monotonic() + 10
    while True:
        for item in await _read(c, deadline):
            if item.msg_type == b"A":
                return c
            if item.msg_type == b"5":
                raise BenchError(f"{c.name}: logon refused: {item.get_str(58, '')}")


async def _read_raw(c: _Conn, deadline: float) -> list[bytes]:
    """The next valid frames (at least one), answering TestRequests on the way. The bench's
    readers look at four tags of each: parsing every field of every ExecutionReport was a
    third of the load client's CPU, which it takes from the cluster it measures."""
    out: list[bytes] = []
    while not out:
        while (item := c.framer.next_raw()) is not None:
            if isinstance(item, Garbled):
                continue
            if tag_value(item, b"35") == b"1":
                c.writer.write(c.client.message(b"0", [(112, tag_value(item, b"112") or b"")], time.time()))
                continue
            out.append(item)
        if out:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{c.name}: no answer")
        data = await asyncio.wait_for(c.reader.read(1 << 16), left)
        if not data:
            raise ConnectionError(f"{c.name}: connection closed")
        c.framer.feed(data)
    return out


async def _read(c: _Conn, deadline: float) -> list[Message]:
    """Like _read_raw, parsed."""
    out: list[Message] = []
    for raw in await _read_raw(c, deadline):
        fields = parse_fields(raw)
        if fields is not None:
            out.append(Message(fields, raw))
    return out


async def _logout(c: _Conn) -> None:
    try:
        c.writer.write(c.client.message(b"5", [], time.time()))
        await asyncio.wait_for(c.writer.drain(), 2)
        c.writer.close()
    except (OSError, TimeoutError):
        pass


FILL_QUIET_S = 5.0


async def run(cfg: ClusterConfig, prices: Mapping[str, Decimal], *, sessions: int, orders: int, rate: float,
              seconds: float, begin: str = "FIX.4.4") -> dict[str, Any]:
    """Run the bench against the cluster of ``cfg`` (``prices``: reference price per symbol)."""
    bench_clients = [c for c in cfg.customers.values() if c.comp_id.startswith("BENCH")]
    cfus = cfg.nodes_with_role("customer")
    if not bench_clients:
        raise BenchError(f"{cfg.source}: no [[customers]] entry with a comp_id starting with BENCH to bench with")
    if not cfus:
        raise BenchError(f"{cfg.source}: no customer utility to connect to")
    sessions = max(1, min(sessions, len(bench_clients)))
    symbols = [s for s in ("AAPL", "MSFT") if s in prices] or sorted(prices)[:1]
    # marketable limits: buys 1% above the reference price, sells 1% below
    limit = {(sym, side): str((prices[sym] * (Decimal("1.01") if side == b"1" else Decimal("0.99")))
                              .quantize(Decimal("0.01"))).encode()
             for sym in symbols for side in (b"1", b"2")}
    conns = [await _logon(cfus[i % len(cfus)].host, int(cfus[i % len(cfus)].port or 0),
                          bench_clients[i].comp_id, cfus[i % len(cfus)].comp_id, begin) for i in range(sessions)]
    sent_at: dict[bytes, int] = {}
    acked: dict[bytes, float] = {}
    filled: dict[bytes, float] = {}
    owner: dict[bytes, tuple[str, str]] = {}   # ClOrdID -> (account, symbol/side), for status requests
    rejects: list[str] = []
    perf = time.perf_counter_ns
    last_ack = [0]
    last_fill = [0]
    done = asyncio.Event()

    async def reader(c: _Conn) -> None:
        try:
            while not done.is_set():
                try:
                    frames = await _read_raw(c, time.monotonic() + 0.5)
                except TimeoutError:
                    continue
                now = perf()
                for raw in frames:
                    mt = tag_value(raw, b"35")
                    if mt != b"8":
                        if mt in (b"3", b"j"):
                            rejects.append((tag_value(raw, b"58") or b"").decode("latin-1"))
                        continue
                    cid = tag_value(raw, b"11") or b""
                    t = sent_at.get(cid)
                    if t is None:
                        continue
                    et = tag_value(raw, b"150")
                    if et == b"A" and cid not in acked:
                        acked[cid] = (now - t) / 1000.0
                        last_ack[0] = now
                    elif et in (b"F", b"1", b"2") and cid not in filled:
                        filled[cid] = (now - t) / 1000.0
                        last_fill[0] = now
                    elif et == b"8":
                        rejects.append((tag_value(raw, b"58") or b"").decode("latin-1"))
                        acked.setdefault(cid, (now - t) / 1000.0)
        except (ConnectionError, OSError):
            return

    readers = [asyncio.create_task(reader(c)) for c in conns]
    run_id = b"%x" % (time.time_ns() // 1_000_000 % 0xFFFFFFF)   # ClOrdIDs unique across runs
    procs = cluster_processes(cfg)
    pids = {name: pid for name, (_kind, pid) in procs.items()}
    proc_before = proccpu.snapshot(pids)
    cpu_before = hostcpu.read()
    t0_ns = perf()
    t0 = time.perf_counter()
    t_end = time.monotonic() + seconds
    n = 0
    interval = 0.002
    try:
        while n < orders and time.monotonic() < t_end:
            target = orders if rate <= 0 else min(orders, int((time.perf_counter() - t0) * rate) + 1)
            batch: dict[int, list[bytes]] = {}
            while n < target:
                i = n % sessions
                c = conns[i]
                sym = symbols[(n // 2) % len(symbols)]
                side = b"1" if n % 2 == 0 else b"2"
                px = limit[(sym, side)]
                cid = b"E%s.%d" % (run_id, n)
                now = time.time()
                body = [(11, cid), (1, b"BENCH"), (21, b"1"), (55, sym.encode()), (54, side), (60, utc_timestamp(now)),
                        (38, b"100"), (40, b"2"), (44, px), (59, b"0")]
                batch.setdefault(i, []).append(c.client.message(b"D", body, now))
                sent_at[cid] = perf()
                owner[cid] = (sym, side.decode())
                n += 1
            for i, chunks in batch.items():
                conns[i].writer.write(b"".join(chunks))
            await asyncio.sleep(interval if rate > 0 else 0)
            if rate <= 0 and len(sent_at) - len(acked) > 200 * sessions:
                await asyncio.sleep(0.005)
        send_elapsed = time.perf_counter() - t0
        # wait (bounded) for every ack, and for fills until none has come for FILL_QUIET_S
        # after the last ack: an overloaded cluster acknowledges first and fills seconds later
        wait_end = time.monotonic() + 30
        last_fills, quiet_since = -1, time.monotonic()
        while time.monotonic() < wait_end:
            if len(filled) != last_fills or len(acked) < n:
                last_fills, quiet_since = len(filled), time.monotonic()
            if len(acked) >= n and (len(filled) >= n or time.monotonic() - quiet_since > FILL_QUIET_S):
                break
            await asyncio.sleep(0.05)
        ack_elapsed = time.perf_counter() - t0
        host = hostcpu.usage(cpu_before, hostcpu.read())
        proc_spent = proccpu.spent(proc_before, proccpu.snapshot(pids))
    finally:
        done.set()
        for t in readers:
            t.cancel()
        for c in conns:
            await _logout(c)
    await _replicated(cfg, 60.0)
    lost = await _count_lost(cfus, bench_clients[:sessions], owner, begin, sessions)
    acks = sorted(acked.values())
    fills = sorted(filled.values())
    # each process's CPU over the load phase, per acknowledged order (issue 13)
    per_order = {name: round(sec * 1e6 / max(1, len(acked)), 1) for name, sec in sorted(proc_spent.items())}
    return {
        "orders": n,
        "acked": len(acked),
        "filled": len(filled),
        "rejected": len(rejects),
        "sessions": sessions,
        "seconds": round(ack_elapsed, 3),
        "offered_rate": rate,
        # sustained throughput: orders acknowledged per second, from the first order sent to
        # the last acknowledgement (an overloaded system acknowledges late, and this shows it)
        "orders_per_s": round(len(acked) / max((last_ack[0] - t0_ns) / 1e9, send_elapsed, 1e-9), 1),
        # the whole pipeline (customer, street, venue and back): first fills per second
        "filled_per_s": round(len(filled) / max((last_fill[0] - t0_ns) / 1e9, send_elapsed, 1e-9), 1),
        "ack_p50_us": round(percentile(acks, 0.5), 1),
        "ack_p99_us": round(percentile(acks, 0.99), 1),
        "fill_p50_us": round(percentile(fills, 0.5), 1),
        "fill_p99_us": round(percentile(fills, 0.99), 1),
        "lost": lost,
        # the whole machine over the load phase (cluster, bench and anything else; Linux only):
        # percentiles taken with the CPUs busy or stolen are not comparable with quiet ones
        "host_busy_pct": host.busy_pct if host else None,
        "host_steal_pct": host.steal_pct if host else None,
        "host_cpus": host.cpus if host else None,
        # every process of this cluster on this machine (processes.json of fixgw up, the nodes'
        # status files): CPU seconds over the load phase and microseconds per acknowledged order
        "cpu_s_by_process": {name: round(sec, 3) for name, sec in sorted(proc_spent.items())},
        "cpu_kind_by_process": {name: procs[name][0] for name in sorted(proc_spent)},
        "cpu_us_per_order_by_process": per_order,
        "cpu_us_per_order": round(sum(per_order.values()), 1),
        "cluster_processes": len(proc_spent),
        "cluster_cpu_s": round(sum(proc_spent.values()), 3),
        "cluster_cpu_ms_per_order": round(sum(proc_spent.values()) * 1000 / max(1, len(acked)), 4),
    }


async def _replicated(cfg: ClusterConfig, timeout: float) -> None:
    """Wait (bounded) until no node lags behind another's records (their status files say so).

    Asking each customer utility in turn moves each session to it (one owner per session,
    utilities.session_owner), and a move waits for the peers to hold the new owner's records:
    right after a burst that is behind the whole backlog, so the count waits for it first."""
    from utilities.node_status import cluster_status

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nodes = cluster_status(cfg)["nodes"]
        if all(sum(n.get("lag", {}).values()) == 0 for n in nodes if n.get("state") == "ready"):
            return
        await asyncio.sleep(0.5)


async def _count_lost(cfus: list[NodeConfig], clients: list[CustomerConfig], owner: dict[bytes, tuple[str, str]],
                      begin: str, sessions: int) -> int:
    """Ask every customer utility for every order's status; an order is lost when any of them
    does not know it or shows it neither resting nor terminal after a grace period."""
    lost: set[bytes] = set()
    for cfu in cfus:
        by_session: dict[int, list[bytes]] = {}
        for cid in owner:
            by_session.setdefault(int(cid.rsplit(b".", 1)[1]) % sessions, []).append(cid)
        for i, cids in by_session.items():
            c = await _logon(cfu.host, int(cfu.port or 0), clients[i].comp_id, cfu.comp_id, begin)
            try:
                pending = set(cids)
                for attempt in range(5):
                    if not pending:
                        break
                    answers: dict[bytes, bytes] = {}
                    chunks = [c.client.message(b"H", [(11, cid), (55, owner[cid][0].encode()), (54, owner[cid][1].encode())],
                                            time.time()) for cid in sorted(pending)]
                    for k in range(0, len(chunks), 500):
                        c.writer.write(b"".join(chunks[k:k + 500]))
                        await c.writer.drain()
                    deadline = time.monotonic() + 20
                    while len(answers) < len(pending) and time.monotonic() < deadline:
                        try:
                            for m in await _read(c, deadline):
                                if m.msg_type == b"8" and m.get(150) == b"I":
                                    known = m.get(103) != b"5"
                                    answers[m.get(11) or b""] = (m.get(39) or b"") if known else b"?"
                        except TimeoutError:
                            break
                    pending = {cid for cid in pending if answers.get(cid, b"?") not in RESTING_OR_TERMINAL}
                    if pending:
                        await asyncio.sleep(1.0)   # replication may still be catching up
                lost |= pending
            finally:
                await _logout(c)
    return len(lost)
