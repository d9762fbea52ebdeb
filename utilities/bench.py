"""The end-to-end bench of the brokerage (``fixgw bench --config F``), against a running ``fixgw up``.

Several FIX sessions (the config's customers whose CompID starts with ``BENCH``) spread
over the customer utilities send marketable limit orders (buys and sells that cross each
other and the venue's market maker) at a fixed total rate. It measures, per order, the ack
latency (NewOrderSingle out -> ExecutionReport PendingNew in) and the fill latency (-> the
first fill), then asks for the status of every order (OrderStatusRequest) over the SAME
sessions, still logged on, so at the utility that owns each session. It counts apart:
refused (an ExecutionReport Rejected, e.g. a throttle reject), unacked (never answered),
pending (known, but neither resting nor final yet: the cluster is still working it) and lost
(the owning utility does not know it). That the other utilities hold the same records is
checked through the nodes' status files: every node's lag behind every origin back to 0
(``replicas_agree``), with the largest lag seen during the run. It samples each process's
resident memory (/proc) during the run too: start, peak, end.

Why not ask every customer utility, as it once did: logging on with a bench session at another
utility moves the session's ownership there (``utilities.session_owner``); each move waits for
the peers to hold the backlog. At 20,000 orders at --rate 0 (2 sessions, a loaded 2-core
machine) that run reported 8,251 orders "lost", most of them only still pending, and a
250,000-order run died with "connection closed" when a second connection for a session still
in use was refused (issue 19).

It lives with the utilities it measures, next to ``replication/bench.py`` and
``venues/bench.py``; the CLI loads the config and the venues' reference prices (the limit
prices are set from them) and prints the result.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fixgw import hostcpu, proccpu
from fixgw.framing import Framer, Garbled
from fixgw.loadclient import RawSession, percentile, tag_value
from fixgw.message import Message, parse_fields
from fixgw.session import utc_timestamp
from utilities.cluster_config import ClusterConfig
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
    closed: bool = False          # the utility closed it (its reader saw the end)


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
    except (OSError, TimeoutError, RuntimeError):   # RuntimeError: uvloop, a transport already closed
        pass


FILL_QUIET_S = 5.0
RECONNECT_MAX_DELAY_S = 2.0   # between two logon attempts of a session whose utility is away


@dataclass
class OrderLedger:
    """Which orders ended how, by ClOrdID, for a caller that checks them itself (``fixgw chaos``
    compares every acknowledged order at every customer utility)."""

    sent: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    skipped: int = 0     # orders not sent: their session was logged off (its utility away)


async def run(cfg: ClusterConfig, prices: Mapping[str, Decimal], *, sessions: int, orders: int, rate: float,
              seconds: float, begin: str = "FIX.4.4", window: int = 200, via: tuple[str, int] | None = None,
              ack_wait_s: float | None = None, quiet_s: float | None = None, verify: bool = True,
              ledger: OrderLedger | None = None, resting_every: int = 0) -> dict[str, Any]:
    """Run the bench against the cluster of ``cfg`` (``prices``: reference price per symbol).
    At ``rate`` 0 it sends as fast as the cluster takes orders: each session leaves at most
    ``window`` orders unacknowledged (a closed loop, as a client engine does).

    ``via``: every session logs on at this address (a gateway) instead of at a customer utility
    of its own. ``ack_wait_s``: the longest wait for acks and fills after the last order (default
    ``max(30, seconds)``); ``quiet_s``: stop waiting once no ack, fill or reject came for that
    long, even with orders unanswered (a caller that knows some never will). ``verify=False`` skips
    the status requests and the wait for the replicas (a caller that checks them itself).
    ``ledger`` receives each order's outcome. ``resting_every`` k > 0: every k-th order is a
    passive limit that rests at the venue (so that a venue restart has open orders to keep).

    A session whose connection drops (its utility killed or fenced) logs on again in the
    background, retrying up to every ``RECONNECT_MAX_DELAY_S``; the orders that fall to it
    meanwhile are not sent (``skipped``), and those written into a connection that then dropped
    end as unacked: both are "refused while away", never lost.
    """
    if window < 1:
        raise BenchError(f"the window must be at least 1 order per session, not {window}")
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
    # passive limits, 5% away on the wrong side of the market: they rest at the venue
    passive = {(sym, side): str((prices[sym] * (Decimal("0.95") if side == b"1" else Decimal("1.05")))
                                .quantize(Decimal("0.01"))).encode()
               for sym in symbols for side in (b"1", b"2")}

    def where(i: int) -> tuple[str, int, str]:
        cfu = cfus[i % len(cfus)]
        return (via[0], via[1], cfu.comp_id) if via is not None else (cfu.host, int(cfu.port or 0), cfu.comp_id)

    conns = [await _logon(*where(i)[:2], bench_clients[i].comp_id, where(i)[2], begin) for i in range(sessions)]
    sent_at: dict[bytes, int] = {}
    acked: dict[bytes, float] = {}
    filled: dict[bytes, float] = {}
    owner: dict[bytes, tuple[str, str]] = {}   # ClOrdID -> (account, symbol/side), for status requests
    rejects: list[str] = []
    refused: set[bytes] = set()                # ExecutionReport Rejected (e.g. throttled)
    status: dict[bytes, bytes] = {}            # ClOrdID -> OrdStatus of a status answer, b"?" unknown
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
                    if et == b"I":
                        known = tag_value(raw, b"103") != b"5"
                        status[cid] = (tag_value(raw, b"39") or b"") if known else b"?"
                    elif et == b"A" and cid not in acked:
                        acked[cid] = (now - t) / 1000.0
                        last_ack[0] = now
                    elif et in (b"F", b"1", b"2") and cid not in filled:
                        filled[cid] = (now - t) / 1000.0
                        last_fill[0] = now
                    elif et == b"8":
                        rejects.append((tag_value(raw, b"58") or b"").decode("latin-1"))
                        refused.add(cid)
        except (ConnectionError, OSError):
            c.closed = True
            return

    readers = [asyncio.create_task(reader(c)) for c in conns]
    reconnects = [0]

    relogons: dict[int, asyncio.Task[None]] = {}

    async def relogon(i: int) -> None:
        """Log session i on again, at the SAME utility (or ``via``), retrying with a growing
        pause until it works; cancelled when the bench ends."""
        pause = 0.2
        while True:
            host, port, target = where(i)
            try:
                c = await _logon(host, port, bench_clients[i].comp_id, target, begin)
            except (OSError, TimeoutError, BenchError):   # refused, silent (a stopped process), logon refused
                await asyncio.sleep(pause)
                pause = min(RECONNECT_MAX_DELAY_S, pause * 2)
                continue
            conns[i] = c
            readers.append(asyncio.create_task(reader(c)))
            reconnects[0] += 1
            return

    def connected(i: int) -> _Conn | None:
        """Session i's connection, or None while it is logged off (an overloaded utility that
        stood still past the liveness timeout drops its sessions: utilities.session_owner's
        fencing; a killed one drops them all): a logon again is then under way."""
        c = conns[i]
        if not c.closed and not c.writer.is_closing():
            return c
        task = relogons.get(i)
        if task is None or task.done():
            relogons[i] = asyncio.create_task(relogon(i))
        return None

    async def live(i: int) -> _Conn:
        """Session i's connection, waiting (bounded) for a logon again if it dropped."""
        c = connected(i)
        if c is not None:
            return c
        await asyncio.wait_for(asyncio.shield(relogons[i]), 30)
        return conns[i]
    run_id = b"%x" % (time.time_ns() // 1_000_000 % 0xFFFFFFF)   # ClOrdIDs unique across runs
    procs = cluster_processes(cfg)
    pids = {name: pid for name, (_kind, pid) in procs.items()}
    proc_before = proccpu.snapshot(pids)
    samples = _Samples(pids)
    sampler = asyncio.create_task(samples.run(cfg, done))
    cpu_before = hostcpu.read()
    t0_ns = perf()
    t0 = time.perf_counter()
    t_end = time.monotonic() + seconds
    n = 0
    skipped = 0
    interval = 0.002
    try:
        while n < orders and time.monotonic() < t_end:
            if rate <= 0:
                # as fast as the cluster takes them, with at most `window` orders of a session
                # unacknowledged: writing all of them at once (as this bench did) timed the
                # bench's own socket buffers, 50,000 orders deep, not the cluster (issue 19)
                # (orders skipped while their session was away take no room in the window)
                target = min(orders, len(acked) + len(refused) + skipped + window * sessions)
            else:
                target = min(orders, int((time.perf_counter() - t0) * rate) + 1)
            batch: dict[int, list[bytes]] = {}
            while n < target:
                i = n % sessions
                maybe = connected(i)
                if maybe is None:
                    n += 1
                    skipped += 1
                    continue
                c = maybe
                sym = symbols[(n // 2) % len(symbols)]
                side = b"1" if n % 2 == 0 else b"2"
                px = (passive if resting_every and n % resting_every == resting_every - 1 else limit)[(sym, side)]
                cid = b"E%s.%d" % (run_id, n)
                now = time.time()
                body = [(11, cid), (1, b"BENCH"), (21, b"1"), (55, sym.encode()), (54, side), (60, utc_timestamp(now)),
                        (38, b"100"), (40, b"2"), (44, px), (59, b"0")]
                batch.setdefault(i, []).append(c.client.message(b"D", body, now))
                sent_at[cid] = perf()
                owner[cid] = (sym, side.decode())
                n += 1
            for i, chunks in batch.items():
                c = conns[i]
                try:
                    c.writer.write(b"".join(chunks))
                except (OSError, RuntimeError):   # closed under us: these end as unacked
                    c.closed = True
            await asyncio.sleep(interval if rate > 0 else 0)
            if rate <= 0 and n >= target:
                await asyncio.sleep(0.002)   # the window is full: wait for acknowledgements
        send_elapsed = time.perf_counter() - t0
        # wait (bounded) for every ack, and for fills until none has come for FILL_QUIET_S
        # after the last ack: an overloaded cluster acknowledges first and fills seconds later
        wait_end = time.monotonic() + (max(30.0, seconds) if ack_wait_s is None else ack_wait_s)
        last_fills, quiet_since = -1, time.monotonic()
        progress, progress_at = (-1, -1, -1), time.monotonic()
        while time.monotonic() < wait_end:
            now_progress = (len(acked), len(filled), len(refused))
            if now_progress != progress:
                progress, progress_at = now_progress, time.monotonic()
            elif quiet_s is not None and time.monotonic() - progress_at > quiet_s:
                break
            answered = len(acked) + len(refused - acked.keys())
            if len(filled) != last_fills or answered < len(sent_at):
                last_fills, quiet_since = len(filled), time.monotonic()
            if answered >= len(sent_at) and (len(filled) + len(refused) >= len(sent_at)
                                             or time.monotonic() - quiet_since > FILL_QUIET_S):
                break
            await asyncio.sleep(0.05)
        ack_elapsed = time.perf_counter() - t0
        host = hostcpu.usage(cpu_before, hostcpu.read())
        proc_spent = proccpu.spent(proc_before, proccpu.snapshot(pids))
        # the status of every order not refused, over the bench's own sessions (their owners)
        asked = [cid for cid in owner if cid not in refused]
        agreed: bool | None = None
        if verify:
            await _ask_status(live, asked, owner, status, sessions)
            agreed = await _replicated(cfg, 60.0)
    finally:
        done.set()
        for t in [*readers, *relogons.values()]:
            t.cancel()
        for c in conns:
            await _logout(c)
        await sampler
    unacked = [cid for cid in owner if cid not in acked and cid not in refused]
    if ledger is not None:
        ledger.sent.update(cid.decode("latin-1") for cid in owner)
        ledger.acked.update(cid.decode("latin-1") for cid in acked)
        ledger.refused.update(cid.decode("latin-1") for cid in refused)
        ledger.skipped += skipped
    # lost: acknowledged (PendingNew received), yet unknown to the session's owner; an order
    # never acknowledged and unknown was never accepted: it counts as unacked
    lost = sum(1 for cid in asked if status.get(cid) == b"?" and cid in acked)
    unanswered = sum(1 for cid in asked if cid not in status) if verify else 0
    pending = sum(1 for cid in asked if status.get(cid, b"?") not in RESTING_OR_TERMINAL and status.get(cid) != b"?"
                  and cid in status)
    run_s = max((last_fill[0] - t0_ns) / 1e9, send_elapsed, 1e-9)
    acks = sorted(acked.values())
    fills = sorted(filled.values())
    # each process's CPU over the load phase, per acknowledged order (issue 13)
    per_order = {name: round(sec * 1e6 / max(1, len(acked)), 1) for name, sec in sorted(proc_spent.items())}
    return {
        "orders": len(sent_at),
        "skipped": skipped,
        "acked": len(acked),
        "filled": len(filled),
        "rejected": len(rejects),
        # how each order ended (issue 19): refused by the cluster (throttle rejects among them),
        # never answered, known but still being worked when the bench asked, unknown (lost), or
        # no answer to the status request
        "refused": len(refused),
        "throttled": sum(1 for t in rejects if t.startswith("throttled")),
        "reconnects": reconnects[0],     # sessions the utility closed, logged on again there
        "unacked": len(unacked),
        "pending": pending,
        "status_unanswered": unanswered,
        # the OrdStatus (39) answers by value ("?": unknown order), for what "pending" holds
        "status_counts": dict(sorted(Counter((status.get(cid) or b"-").decode("latin-1") for cid in asked).items())),
        "sessions": sessions,
        "seconds": round(ack_elapsed, 3),
        "offered_rate": rate,
        "window": window if rate <= 0 else None,
        # sustained throughput: orders acknowledged per second, from the first order sent to
        # the last acknowledgement (an overloaded system acknowledges late, and this shows it)
        "orders_per_s": round(len(acked) / max((last_ack[0] - t0_ns) / 1e9, send_elapsed, 1e-9), 1),
        # the whole pipeline (customer, street, venue and back): first fills per second
        "filled_per_s": round(len(filled) / run_s, 1),
        # the same two named for what they are: sustained over the whole run (first order sent
        # to last ack / last fill), not a burst
        "acked_per_s": round(len(acked) / max((last_ack[0] - t0_ns) / 1e9, send_elapsed, 1e-9), 1),
        "sustained_fills_per_s": round(len(filled) / run_s, 1),
        "fill_run_s": round(run_s, 3),
        "ack_p50_us": round(percentile(acks, 0.5), 1),
        "ack_p99_us": round(percentile(acks, 0.99), 1),
        "fill_p50_us": round(percentile(fills, 0.5), 1),
        "fill_p99_us": round(percentile(fills, 0.99), 1),
        "lost": lost,
        # the nodes' lag behind each origin (records), sampled from their status files every
        # half second during the run; agreed: every ready node back to 0 within 60 s after it
        "replication_lag_max": samples.lag_max,
        "replicas_agree": agreed,
        # resident memory of each process of the cluster (/proc, kB): first sample, peak, last
        "rss_kb_by_process": {name: {"start": v[0], "peak": v[1], "end": v[2]}
                              for name, v in sorted(samples.rss.items())},
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


class _Samples:
    """Samples, every half second while the bench runs: the largest replication lag any node
    reports (records behind one origin), and each process's resident memory."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self.lag_max = 0
        self.rss: dict[str, list[int]] = {}   # name -> [start, peak, end] kB

    def sample(self, cfg: ClusterConfig) -> None:
        from utilities.node_status import cluster_status

        for n in cluster_status(cfg)["nodes"]:
            self.lag_max = max(self.lag_max, *(int(v) for v in n.get("lag", {}).values()), 0)
        for name, pid in self.pids.items():
            kb = rss_kb(pid)
            if kb is None:
                continue
            v = self.rss.setdefault(name, [kb, kb, kb])
            v[1], v[2] = max(v[1], kb), kb

    async def run(self, cfg: ClusterConfig, done: asyncio.Event) -> None:
        while True:
            self.sample(cfg)
            if done.is_set():
                return
            try:
                await asyncio.wait_for(done.wait(), 0.5)
            except TimeoutError:
                pass


def rss_kb(pid: int) -> int | None:
    """A process's resident set (VmRSS, kB) from /proc; None when it is gone or not on Linux."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


async def _replicated(cfg: ClusterConfig, timeout: float) -> bool:
    """Wait (bounded) until no ready node lags behind another's records (their status files say
    so); True when they got there."""
    from utilities.node_status import cluster_status

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nodes = cluster_status(cfg)["nodes"]
        if all(sum(n.get("lag", {}).values()) == 0 for n in nodes if n.get("state") == "ready"):
            return True
        await asyncio.sleep(0.5)
    return False


async def _ask_status(live: Callable[[int], Awaitable[_Conn]], cids: list[bytes], owner: dict[bytes, tuple[str, str]],
                      status: dict[bytes, bytes], sessions: int) -> None:
    """Ask for the status of each order over the session that sent it (still logged on: its
    reader task collects the answers into ``status``), again for those not yet resting or final,
    a few times a second apart, bounded."""
    pending = set(cids)
    for _attempt in range(5):
        if not pending:
            return
        for cid in pending:
            status.pop(cid, None)
        by_session: dict[int, list[bytes]] = {}
        for cid in sorted(pending):
            by_session.setdefault(int(cid.rsplit(b".", 1)[1]) % sessions, []).append(cid)
        for i, group in by_session.items():
            for k in range(0, len(group), 500):
                c: _Conn | None = None
                try:
                    c = await live(i)
                    c.writer.write(b"".join(c.client.message(
                        b"H", [(11, cid), (55, owner[cid][0].encode()), (54, owner[cid][1].encode())], time.time())
                        for cid in group[k:k + 500]))
                    await asyncio.wait_for(c.writer.drain(), 20)
                except (ConnectionError, OSError, RuntimeError, TimeoutError):
                    if c is not None:
                        c.closed = True   # asked again at the next attempt, over a new connection
                    break
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(cid not in status for cid in pending):
            await asyncio.sleep(0.05)
        pending = {cid for cid in pending if status.get(cid, b"?") not in RESTING_OR_TERMINAL}
        if pending:
            await asyncio.sleep(1.0)   # still being worked (or replication catching up)
