"""``fixgw bench --connect HOST:PORT``: a lean FIX load client.

It logs on (ResetSeqNumFlag=Y), keeps ``--inflight`` NewOrderSingles outstanding, and matches
each application answer (an ExecutionReport, or the order echoed back by ``fixgw at-server``) to
its order by ClOrdID (11), measuring the round trip. It answers TestRequests, counts Rejects /
BusinessMessageRejects as errors, and stops after ``--orders`` answers or ``--seconds``.

It is a raw asyncio client (our framer, pre-built message bodies, one socket write per batch)
so that it is not the bottleneck of what it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from dataclasses import dataclass
from typing import cast

from fixgw import eventloop
from fixgw.framing import Framer, Garbled
from fixgw.message import Message, checksum, encode
from fixgw.session import utc_timestamp

DEFAULT_ORDERS = 20000
DEFAULT_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class BenchResult:
    orders: int
    answered: int
    errors: int
    seconds: float
    orders_per_s: float
    p50_us: float
    p99_us: float
    p999_us: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "orders": self.orders,
            "answered": self.answered,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "orders_per_s": round(self.orders_per_s, 1),
            "p50_us": round(self.p50_us, 1),
            "p99_us": round(self.p99_us, 1),
            "p999_us": round(self.p999_us, 1),
        }


def tag_value(raw: bytes, tag: bytes) -> bytes | None:
    """The value of ``tag`` (b"11") in a frame, found without parsing the whole message (the
    load clients read a few tags of every answer; parsing every field costs them CPU that they
    take from what they measure)."""
    i = raw.find(b"\x01" + tag + b"=")
    if i < 0:
        return None
    i += len(tag) + 2
    return raw[i:raw.find(b"\x01", i)]


def percentile(sorted_values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of sorted values, nearest rank; 0.0 for none."""
    if not sorted_values:
        return 0.0
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


class RawSession:
    """The sending side of a FIX session as bytes: header fields and the next MsgSeqNum, no
    state machine (the load clients answer what little they must themselves)."""

    def __init__(self, begin: str, sender: str, target: str) -> None:
        self.begin = begin.encode()
        self.sender = sender.encode()
        self.target = target.encode()
        self.seq = 1

    def message(self, mt: bytes, body: list[tuple[int, bytes]], now: float) -> bytes:
        header = [(35, mt), (49, self.sender), (56, self.target), (34, b"%d" % self.seq), (52, utc_timestamp(now))]
        self.seq += 1
        return encode(self.begin, header, body)


class _Load(asyncio.Protocol):
    """The load itself, driven from data_received: no task wake-up per read, no StreamReader.

    Each answer (the order echoed back, or an ExecutionReport) is matched to its order by
    ClOrdID; as many new orders as answers go out in ONE write per read.
    """

    def __init__(self, c: RawSession, orders: int, inflight: int, heartbeat: int, id_prefix: bytes = b"B") -> None:
        self.c = c
        self.orders = orders
        self.inflight = inflight
        self.heartbeat = heartbeat
        self.framer = Framer()
        self.transport: asyncio.Transport | None = None
        self.logged_on: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent_at: dict[bytes, int] = {}
        self.seq_to_id: dict[bytes, bytes] = {}
        self.latencies: list[float] = []
        self.errors = 0
        self.answered = 0
        self.next_id = 0
        self.t0 = time.perf_counter()
        self.elapsed = 0.0
        # the NewOrderSingle with its variable parts as %-formats: MsgSeqNum, SendingTime,
        # ClOrdID's number, TransactTime (the same bytes as RawSession.message would encode)
        self._head = b"8=" + c.begin + b"\x019="
        self._id = id_prefix.replace(b"%", b"%%") + b"%d"   # ClOrdID: prefix + order number
        self._nos = (
            b"35=D\x0149=" + c.sender.replace(b"%", b"%%") + b"\x0156=" + c.target.replace(b"%", b"%%")
            + b"\x0134=%d\x0152=%s\x0111=" + id_prefix.replace(b"%", b"%%") + b"%d\x0121=1\x0155=IBM\x0154=1\x0160=%s"
            b"\x0138=100\x0140=2\x0144=10.5\x01"
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not asyncio.Transport subclasses: no isinstance check)
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport.write(self.c.message(b"A", [(98, b"0"), (108, b"%d" % self.heartbeat), (141, b"Y")],
                                    time.time()))

    def connection_lost(self, exc: Exception | None) -> None:
        for f in (self.logged_on, self.finished):
            if not f.done():
                f.set_exception(ConnectionError("the acceptor closed the connection"))

    def send_orders(self, n: int) -> None:
        now = time.time()
        ts = utc_timestamp(now)
        c = self.c
        head = self._head
        nos = self._nos
        perf = time.perf_counter_ns
        sent_at = self.sent_at
        seq_to_id = self.seq_to_id
        chunks = []
        seq = c.seq
        k = self.next_id
        for _ in range(n):
            k += 1
            cid = self._id % k
            body = nos % (seq, ts, k, ts)
            data = b"%s%d\x01%s" % (head, len(body), body)
            chunks.append(b"%s10=%03d\x01" % (data, checksum(data)))
            seq_to_id[b"%d" % seq] = cid
            sent_at[cid] = perf()
            seq += 1
        c.seq = seq
        self.next_id = k
        assert self.transport is not None
        self.transport.write(b"".join(chunks))

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.send_orders(min(self.inflight, self.orders))

    def data_received(self, data: bytes) -> None:
        framer = self.framer
        framer.feed(data)
        if not self.logged_on.done():
            while (item := framer.next()) is not None:
                if isinstance(item, Garbled):
                    continue
                if item.msg_type == b"A":
                    self.logged_on.set_result(None)
                    break
                if item.msg_type == b"5":
                    self.logged_on.set_exception(
                        ConnectionError(f"logon refused: {item.get_str(58, '')}"))
                    return
            if not self.logged_on.done():
                return
        if self.finished.done():
            return
        sent_at = self.sent_at
        latencies = self.latencies
        perf = time.perf_counter_ns
        freed = 0
        while (raw := framer.next_raw()) is not None:
            if type(raw) is Garbled:
                self.errors += 1
                continue
            # lean read of the answer: two tags found by search, not a parse of every field
            mt = tag_value(raw, b"35")  # type: ignore[arg-type]
            if mt == b"D" or mt == b"8":
                cid = tag_value(raw, b"11")  # type: ignore[arg-type]
                t = sent_at.pop(cid, None) if cid is not None else None
                if t is not None:
                    latencies.append((perf() - t) / 1000.0)
                    freed += 1
                continue
            item = Message.from_wire(raw)  # type: ignore[arg-type]
            if mt == b"1":
                assert self.transport is not None
                self.transport.write(self.c.message(b"0", [(112, item.get(112) or b"")], time.time()))
            elif mt == b"3" or mt == b"j":
                cid = self.seq_to_id.get(item.get(45) or b"")
                if cid is not None and sent_at.pop(cid, None) is not None:
                    self.errors += 1
                    freed += 1
            elif mt == b"5":
                self._finish()
                return
        self.answered = len(latencies)
        if self.answered + self.errors >= self.orders:
            self._finish()
            return
        remaining = self.orders - self.next_id
        if freed and remaining > 0:
            self.send_orders(min(freed, remaining))

    def _finish(self) -> None:
        self.answered = len(self.latencies)
        self.elapsed = time.perf_counter() - self.t0
        if not self.finished.done():
            self.finished.set_result(None)


async def run_bench(
    host: str,
    port: int,
    *,
    sender: str,
    target: str,
    begin: str = "FIX.4.4",
    orders: int = DEFAULT_ORDERS,
    inflight: int = 100,
    seconds: float = DEFAULT_SECONDS,
    heartbeat: int = 30,
    id_prefix: str = "B",
) -> BenchResult:
    if orders < 1 or inflight < 1:
        raise ValueError("orders and inflight must be >= 1")
    loop = asyncio.get_running_loop()
    c = RawSession(begin, sender, target)
    transport, load = await asyncio.wait_for(
        loop.create_connection(lambda: _Load(c, orders, inflight, heartbeat, id_prefix.encode()), host, port), 10
    )
    try:
        await asyncio.wait_for(asyncio.shield(load.logged_on), 10)
        load.start()
        try:
            await asyncio.wait_for(asyncio.shield(load.finished), seconds)
        except (TimeoutError, ConnectionError):
            load._finish()
        elapsed = load.elapsed
        errors = load.errors + len(load.sent_at)  # never answered
        if not transport.is_closing():  # the acceptor may already have closed
            transport.write(c.message(b"5", [], time.time()))
    finally:
        transport.close()
    latencies = sorted(load.latencies)
    return BenchResult(
        orders=load.next_id,
        answered=len(latencies),
        errors=errors,
        seconds=elapsed,
        orders_per_s=len(latencies) / elapsed if elapsed > 0 else 0.0,
        p50_us=percentile(latencies, 0.50),
        p99_us=percentile(latencies, 0.99),
        p999_us=percentile(latencies, 0.999),
    )


def main(args: argparse.Namespace) -> int:
    host, _, port_s = (args.connect or "").rpartition(":")
    if not host or not port_s.isdigit():
        print(f"fixgw bench: --connect {args.connect!r}: expected HOST:PORT", file=sys.stderr)
        return 2
    orders = args.orders if args.orders is not None else DEFAULT_ORDERS
    seconds = args.seconds if args.seconds is not None else DEFAULT_SECONDS
    try:
        res = eventloop.run(  # uvloop when installed: the client must not be the bottleneck
            run_bench(
                host, int(port_s), sender=args.sender, target=args.target, begin=args.begin,
                orders=orders, inflight=args.inflight, seconds=seconds,
            )
        )
    except (TimeoutError, OSError, ConnectionError, ValueError) as exc:
        print(f"fixgw bench: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(res.as_dict()))
    else:
        print(
            f"{res.answered} of {res.orders} orders answered in {res.seconds:.2f} s: "
            f"{res.orders_per_s:.0f} orders/s; round trip p50 {res.p50_us:.0f} us, "
            f"p99 {res.p99_us:.0f} us, p99.9 {res.p999_us:.0f} us; errors {res.errors}"
        )
    return 0 if res.errors == 0 and res.answered > 0 else 1
