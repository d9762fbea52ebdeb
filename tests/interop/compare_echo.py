"""fixgw versus QuickFIX as echo acceptors, measured by the same load client in one run.

    .venv/bin/python tests/interop/compare_echo.py [--orders 20000] [--inflight 100] [--rounds 1] [--json]

For each round it starts ``fixgw at-server`` (LMDB store, every commit synced) and then
``tests/interop/quickfix_echo.py`` (QuickFIX FileStore, flushed per message: QuickFIX 1.16 never
fsyncs), each alone on the machine on a free loopback port with a fresh store, and drives it
with ``fixgw bench --connect ... --sender BENCH --target ISLD --begin FIX.4.4 --json`` (the same
orders, the same number in flight). It prints each run, then for each engine the best and the
median orders/s over the rounds and the acceptor's CPU time per order (read from /proc: it hardly
depends on what else runs on the machine, the orders/s do), and the ratios fixgw / QuickFIX.
The load client's own CPU per order is printed too: on a 2-core machine, when client and server
each need a core, the orders/s say as much about the client as about the server.
Exit code 0 when every order was answered in every run, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fixgw.ports import free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BIN = Path(sys.executable).parent


def fixgw_command() -> list[str]:
    exe = BIN / "fixgw"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "fixgw"]


def start_server(cmd: list[str], ready_prefix: str, timeout_s: float = 30.0) -> subprocess.Popen[str]:
    """Start an acceptor and wait for its 'listening' line."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    line = proc.stdout.readline()
    if not line.startswith(ready_prefix) or time.monotonic() > deadline:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise RuntimeError(f"{cmd[0]} did not start: {line.strip()!r} {err.strip()}")
    return proc


def stop_server(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=10)
    return out.strip()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def measured(proc: subprocess.Popen[str], port: int, orders: int, inflight: int, seconds: float) -> dict[str, Any]:
    """The load client's figures plus the server's CPU time per answered order: the CPU figure
    hardly depends on what else the machine runs, the orders/s figure does."""
    before = cpu_seconds(proc.pid)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the load client, once waited for
    res = bench(port, orders, inflight, seconds)
    used = cpu_seconds(proc.pid) - before
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    answered = max(int(res["answered"]), 1)
    res["server_cpu_s"] = round(used, 3)
    res["server_cpu_us_per_order"] = round(used * 1e6 / answered, 1)
    res["client_cpu_us_per_order"] = round(client * 1e6 / answered, 1)
    return res


def bench(port: int, orders: int, inflight: int, seconds: float) -> dict[str, Any]:
    cmd = fixgw_command() + [
        "bench", "--connect", f"127.0.0.1:{port}", "--sender", "BENCH", "--target", "ISLD",
        "--begin", "FIX.4.4", "--orders", str(orders), "--inflight", str(inflight),
        "--seconds", str(seconds), "--json",
    ]
    done = subprocess.run(
        cmd, check=False, capture_output=True, text=True, timeout=seconds + 60, cwd=ROOT,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"fixgw bench printed no result (exit {done.returncode}): {done.stderr.strip()}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def run_fixgw(work: Path, orders: int, inflight: int, seconds: float) -> dict[str, Any]:
    port = free_port()
    proc = start_server(
        fixgw_command() + ["at-server", "--port", str(port), "--store", str(work / "fixgw-store")],
        "fixgw at-server listening",
    )
    try:
        return measured(proc, port, orders, inflight, seconds)
    finally:
        stop_server(proc)


def run_quickfix(work: Path, orders: int, inflight: int, seconds: float) -> dict[str, Any]:
    port = free_port()
    proc = start_server(
        [sys.executable, str(HERE / "quickfix_echo.py"), "--port", str(port), "--target", "BENCH",
         "--store", str(work / "quickfix-store")],
        "quickfix-echo listening",
    )
    try:
        return measured(proc, port, orders, inflight, seconds)
    finally:
        stop_server(proc)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--orders", type=int, default=20000, help="orders per run (default 20000)")
    p.add_argument("--inflight", type=int, default=100, help="orders outstanding (default 100)")
    p.add_argument("--rounds", type=int, default=1, help="runs of each engine, alternating (default 1)")
    p.add_argument("--seconds", type=float, default=120.0, help="upper bound per run (default 120)")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = p.parse_args(argv)
    if args.orders < 1 or args.inflight < 1 or args.rounds < 1:
        p.error("--orders, --inflight and --rounds must be >= 1")

    runs: dict[str, list[dict[str, Any]]] = {"fixgw": [], "quickfix": []}
    with tempfile.TemporaryDirectory(prefix="compare-echo-") as tmp:
        for r in range(args.rounds):
            for name, fn in (("fixgw", run_fixgw), ("quickfix", run_quickfix)):
                work = Path(tmp) / f"{name}-{r}"
                work.mkdir()
                res = fn(work, args.orders, args.inflight, args.seconds)
                runs[name].append(res)
                if not args.json:
                    print(f"round {r + 1} {name:8s}: {res['orders_per_s']:9.1f} orders/s "
                          f"(answered {res['answered']}/{res['orders']}, errors {res['errors']}, "
                          f"p50 {res['p50_us'] / 1000:.1f} ms, p99 {res['p99_us'] / 1000:.1f} ms; "
                          f"CPU per order: server {res['server_cpu_us_per_order']:.0f} us, "
                          f"load client {res['client_cpu_us_per_order']:.0f} us)",
                          flush=True)
    best = {k: max(v, key=lambda x: float(x["orders_per_s"])) for k, v in runs.items()}
    ratio = float(best["fixgw"]["orders_per_s"]) / max(float(best["quickfix"]["orders_per_s"]), 1e-9)
    median = {k: statistics.median(float(x["orders_per_s"]) for x in v) for k, v in runs.items()}
    cpu = {k: statistics.median(float(x["server_cpu_us_per_order"]) for x in v) for k, v in runs.items()}
    cpu_ratio = cpu["quickfix"] / max(cpu["fixgw"], 1e-9)
    complete = all(x["answered"] == x["orders"] == args.orders and x["errors"] == 0
                   for v in runs.values() for x in v)
    summary = {
        "orders": args.orders, "inflight": args.inflight, "rounds": args.rounds,
        "fixgw_orders_per_s": best["fixgw"]["orders_per_s"],
        "quickfix_orders_per_s": best["quickfix"]["orders_per_s"],
        "ratio": round(ratio, 3),
        "fixgw_median_orders_per_s": median["fixgw"], "quickfix_median_orders_per_s": median["quickfix"],
        "median_ratio": round(median["fixgw"] / max(median["quickfix"], 1e-9), 3),
        "fixgw_cpu_us_per_order": cpu["fixgw"], "quickfix_cpu_us_per_order": cpu["quickfix"],
        "cpu_ratio": round(cpu_ratio, 3), "complete": complete, "runs": runs,
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"fixgw at-server (LMDB, fsync): best {best['fixgw']['orders_per_s']:.1f} orders/s, "
              f"median {median['fixgw']:.1f}, server CPU {cpu['fixgw']:.0f} us/order")
        print(f"QuickFIX echo (FileStore):     best {best['quickfix']['orders_per_s']:.1f} orders/s, "
              f"median {median['quickfix']:.1f}, server CPU {cpu['quickfix']:.0f} us/order")
        print(f"ratio fixgw / QuickFIX:        {ratio:.2f} (best), "
              f"{median['fixgw'] / max(median['quickfix'], 1e-9):.2f} (median), "
              f"{cpu_ratio:.2f} (CPU per order, QuickFIX / fixgw)  (goal >= 1.5)"
              + ("" if complete else "  [some orders unanswered]"))
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
