"""``fixgw bench gateway --config F``: what the gateway adds, against a running ``fixgw up``.

The same FIX load (``fixgw.loadclient`` as BENCH1, FIX 4.4: NewOrderSingles, ``--inflight``
outstanding, each answered by the customer utility) runs alternately through the config's
first gateway and straight to the customer utility that gateway chose, ``--rounds`` times, each run with fresh ClOrdIDs. Reported:

- the round-trip percentiles both ways: the difference is the latency the gateway adds;
- the gateway process's CPU per relayed message: its CPU time (``/proc/<pid>/schedstat``, in
  ns) during a run through it, less its CPU while idle (heartbeats, status file) at the rate
  measured during the direct run just after, under the same machine load; divided by the
  messages of the bench session in both directions, counted in the customer utility's FIX
  message log.

With ``--inflight 1`` every message is a read and a write of its own (the worst case for a
relay); with more in flight, one read carries several messages and the cost per message falls.
Bounded: ``--orders`` per run (default 2,000), ``--seconds`` per run (default 60).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path
from typing import Any

from fixgw.loadclient import run_bench
from utilities.cluster_config import ClusterConfig, GatewayConfig
from utilities.errors import UtilitiesError
from utilities.node_status import read_status

SENDER = "BENCH1"
TARGET = "FIXGW"
BEGIN = "FIX.4.4"


def _cpu_ns(pid: int) -> int:
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


class GatewayBenchError(UtilitiesError):
    """The gateway cannot be benched (not running); the message says what to do."""


def _message_log_lines(cfg: ClusterConfig) -> int:
    """Messages of the bench session in every customer utility's FIX message log (one a line)."""
    total = 0
    for n in cfg.nodes_with_role("customer"):
        path = cfg.node_data_dir(n.name) / "fixlog" / f"{BEGIN}-{n.comp_id}-{SENDER}.messages.log"
        try:
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    total += chunk.count(b"\n")
        except OSError:
            pass
    return total


async def _watch_route(gw_dir: Path, seen: set[str], stop: asyncio.Event) -> None:
    """The utility the gateway connected the bench to (from its status file)."""
    while not stop.is_set():
        conns = (read_status(gw_dir) or {}).get("connections", {})
        seen.update(n for n, k in conns.items() if k)
        await asyncio.sleep(0.1)


async def run(cfg: ClusterConfig, gw: GatewayConfig, *, orders: int = 2000, inflight: int = 1, rounds: int = 3,
              seconds: float = 60.0) -> dict[str, Any]:
    """Bench ``gw`` of the running cluster ``cfg``: see the module's docstring."""
    gw_dir = cfg.data_dir / gw.name
    pid = (read_status(gw_dir) or {}).get("pid")
    try:
        if not isinstance(pid, int):
            raise ProcessLookupError
        os.kill(pid, 0)
    except OSError:
        raise GatewayBenchError(f"gateway {gw.name} is not running (no live pid in {gw_dir}/status.json): start "
                                f"the cluster with `fixgw up --config {cfg.source}`") from None
    out: list[dict[str, Any]] = []
    stamp = int(time.time())
    for i in range(rounds):
        seen: set[str] = set()
        stop = asyncio.Event()
        watcher = asyncio.create_task(_watch_route(gw_dir, seen, stop))
        m0, c0, t0 = _message_log_lines(cfg), _cpu_ns(pid), time.monotonic()
        via = await run_bench(gw.host, gw.port, sender=SENDER, target=TARGET, begin=BEGIN, orders=orders,
                              inflight=inflight, seconds=seconds, id_prefix=f"G{stamp}r{i}n")
        await asyncio.sleep(0.3)    # the last answers logged, the logout relayed
        m1, c1, t1 = _message_log_lines(cfg), _cpu_ns(pid), time.monotonic()
        stop.set()
        await watcher
        node = min(seen) if seen else cfg.nodes_with_role("customer")[0].name
        upstream = cfg.node(node)
        assert upstream.port is not None   # a customer utility always has its acceptor port
        c2, t2 = _cpu_ns(pid), time.monotonic()
        direct = await run_bench(upstream.host, upstream.port, sender=SENDER, target=TARGET, begin=BEGIN,
                                 orders=orders, inflight=inflight, seconds=seconds, id_prefix=f"D{stamp}r{i}n")
        await asyncio.sleep(0.3)
        c3, t3 = _cpu_ns(pid), time.monotonic()
        idle_ns_per_s = (c3 - c2) / (t3 - t2)
        relay_ns = max(0.0, (c1 - c0) - idle_ns_per_s * (t1 - t0))
        messages = m1 - m0
        out.append({
            "utility": node, "messages": messages,
            "via_gateway": via.as_dict(), "direct": direct.as_dict(),
            "gateway_idle_us_per_s": round(idle_ns_per_s / 1000, 1),
            "relay_cpu_us_per_message": round(relay_ns / 1000 / messages, 2) if messages else None,
            "relay_cpu_us_per_order": round(relay_ns / 1000 / max(1, via.answered), 2),
            "added_p50_us": round(via.p50_us - direct.p50_us, 1),
            "added_p99_us": round(via.p99_us - direct.p99_us, 1),
        })

    def median(key: str) -> float | None:
        vals = [r[key] for r in out if r[key] is not None]
        return round(statistics.median(vals), 2) if vals else None

    return {"gateway": gw.name, "orders_per_run": orders, "inflight": inflight, "rounds": out,
            "median_relay_cpu_us_per_message": median("relay_cpu_us_per_message"),
            "median_relay_cpu_us_per_order": median("relay_cpu_us_per_order"),
            "median_added_p50_us": median("added_p50_us"), "median_added_p99_us": median("added_p99_us")}
