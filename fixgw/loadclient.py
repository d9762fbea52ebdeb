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

from fixgw.framing import Framer, Garbled
from fixgw.message import Message, encode
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


def _pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


class _Client:
    def __init__(self, begin: str, sender: str, target: str) -> None:
        self.begin = begin.encode()
        self.sender = sender.encode()
        self.target = target.encode()
        self.seq = 1

    def _msg(self, mt: bytes, body: list[tuple[int, bytes]], now: float) -> bytes:
        header = [(35, mt), (49, self.sender), (56, self.target), (34, b"%d" % self.seq), (52, utc_timestamp(now))]
        self.seq += 1
        return encode(self.begin, header, body)


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
) -> BenchResult:
    if orders < 1 or inflight < 1:
        raise ValueError("orders and inflight must be >= 1")
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, limit=1 << 20), 10)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c = _Client(begin, sender, target)
    framer = Framer()
    writer.write(c._msg(b"A", [(98, b"0"), (108, b"%d" % heartbeat), (141, b"Y")], time.time()))

    async def next_msg(deadline: float) -> object:
        while True:
            item = framer.next()
            if item is not None:
                return item
            data = await asyncio.wait_for(reader.read(1 << 16), max(0.01, deadline - time.monotonic()))
            if not data:
                raise ConnectionError("the acceptor closed the connection")
            framer.feed(data)

    deadline = time.monotonic() + 10
    while True:
        item = await next_msg(deadline)
        if isinstance(item, Garbled):
            continue
        mt = item.msg_type  # type: ignore[attr-defined]
        if mt == b"A":
            break
        if mt == b"5":
            raise ConnectionError(f"logon refused: {item.get_str(58, '')}")  # type: ignore[attr-defined]

    sent_at: dict[bytes, int] = {}
    seq_to_id: dict[bytes, bytes] = {}
    latencies: list[float] = []
    errors = 0
    next_id = 0
    answered = 0
    perf = time.perf_counter_ns
    side = b"1"
    t_end = time.monotonic() + seconds

    def send_orders(n: int) -> None:
        nonlocal next_id
        now = time.time()
        ts = utc_timestamp(now)
        chunks = []
        for _ in range(n):
            next_id += 1
            cid = b"B%d" % next_id
            body = [(11, cid), (21, b"1"), (55, b"IBM"), (54, side), (60, ts), (38, b"100"), (40, b"2"), (44, b"10.5")]
            seq_to_id[b"%d" % c.seq] = cid
            chunks.append(c._msg(b"D", body, now))
            sent_at[cid] = perf()
        writer.write(b"".join(chunks))

    t0 = time.perf_counter()
    send_orders(min(inflight, orders))
    try:
        while answered + errors < orders and time.monotonic() < t_end:
            data = await asyncio.wait_for(reader.read(1 << 16), max(0.01, t_end - time.monotonic()))
            if not data:
                break
            framer.feed(data)
            freed = 0
            while (raw := framer.next_raw()) is not None:
                if type(raw) is Garbled:
                    errors += 1
                    continue
                # lean read of the answer: MsgType is the third field, ClOrdID by search
                i = raw.index(b"\x0135=") + 4  # type: ignore[union-attr]
                mt = raw[i : raw.index(b"\x01", i)]  # type: ignore[index,union-attr]
                if mt == b"D" or mt == b"8":
                    j = raw.find(b"\x0111=")  # type: ignore[union-attr]
                    cid = raw[j + 4 : raw.index(b"\x01", j + 4)] if j >= 0 else None  # type: ignore[index,union-attr]
                    t = sent_at.pop(cid, None) if cid is not None else None
                    if t is not None:
                        latencies.append((perf() - t) / 1000.0)
                        answered += 1
                        freed += 1
                    continue
                item = Message.from_wire(raw)  # type: ignore[arg-type]
                if mt == b"1":
                    writer.write(c._msg(b"0", [(112, item.get(112) or b"")], time.time()))
                elif mt == b"3" or mt == b"j":
                    cid = seq_to_id.get(item.get(45) or b"")
                    if cid is not None and sent_at.pop(cid, None) is not None:
                        errors += 1
                        freed += 1
                elif mt == b"5":
                    t_end = 0.0
                    break
            remaining = orders - next_id
            if freed and remaining > 0:
                send_orders(min(freed, remaining))
    except (TimeoutError, ConnectionError):
        pass
    elapsed = time.perf_counter() - t0
    errors += len(sent_at)  # never answered
    try:
        writer.write(c._msg(b"5", [], time.time()))
        await asyncio.wait_for(writer.drain(), 2)
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 2)
    except (TimeoutError, OSError):
        pass  # the acceptor may already have closed: the figures are what matter
    latencies.sort()
    return BenchResult(
        orders=next_id,
        answered=answered,
        errors=errors,
        seconds=elapsed,
        orders_per_s=answered / elapsed if elapsed > 0 else 0.0,
        p50_us=_pct(latencies, 0.50),
        p99_us=_pct(latencies, 0.99),
        p999_us=_pct(latencies, 0.999),
    )


def main(args: argparse.Namespace) -> int:
    host, _, port_s = (args.connect or "").rpartition(":")
    if not host or not port_s.isdigit():
        print(f"fixgw bench: --connect {args.connect!r}: expected HOST:PORT", file=sys.stderr)
        return 2
    orders = args.orders if args.orders is not None else DEFAULT_ORDERS
    seconds = args.seconds if args.seconds is not None else DEFAULT_SECONDS
    try:
        res = asyncio.run(
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
