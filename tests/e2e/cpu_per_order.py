"""Cluster CPU per order: ``fixgw up`` from a source tree, ``fixgw bench --config`` against it, and
the utime+stime of every process of the cluster (``/proc/PID/stat``, sampled every 0.25 s) over
the bench's load phase (from 1 s after it starts, for the ``seconds`` it reports).

    .venv/bin/python -m tests.e2e.cpu_per_order TREE CONFIG [RATE] [ORDERS]

TREE is the source tree whose ``fixgw`` runs (e.g. a checkout of main, to compare a branch with);
CONFIG a copy of ``configs/local.toml`` with its own ports and data directory. Prints one JSON
object: ``cpu_ms_per_order_load`` (the figure), ``cpu_ms_per_order_whole_bench`` (load plus the
bench's status round over every customer utility), and the bench's own figures.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")


def tree_pids(root: int) -> set[int]:
    out, todo = set(), [root]
    while todo:
        p = todo.pop()
        out.add(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                todo += [int(x) for x in Path(f"/proc/{p}/task/{t}/children").read_text().split()]
        except OSError:
            pass
    return out


def cpu_seconds(pids: set[int]) -> float:
    total = 0
    for p in pids:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / TICK


def measure(tree: str, config: str, rate: str, orders: str) -> dict[str, Any]:
    py = sys.executable
    up_log = Path(config + ".up.log")
    with up_log.open("wb") as log:
        up = subprocess.Popen([py, "-m", "fixgw", "up", "--config", config], cwd=tree, stdout=log,
                              stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while b"fixgw: ready" not in up_log.read_bytes():
                if up.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"fixgw up did not get ready: see {up_log}")
                time.sleep(0.1)
            time.sleep(3)
            pids = tree_pids(up.pid)
            samples: list[tuple[float, float]] = []
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    samples.append((time.monotonic(), cpu_seconds(pids)))
                    time.sleep(0.25)

            th = threading.Thread(target=sample)
            th.start()
            t0 = time.monotonic()
            b = subprocess.run([py, "-m", "fixgw", "bench", "--config", config, "--rate", rate, "--orders", orders,
                                "--json"], cwd=tree, capture_output=True, text=True, timeout=900, check=False)
            stop.set()
            th.join()
            if not b.stdout.strip():
                raise RuntimeError(f"the bench failed: {b.stderr[-2000:]}")
            res = json.loads(b.stdout.strip().splitlines()[-1])
            start, end = t0 + 1.0, t0 + 1.0 + float(res["seconds"])
            c0 = min(samples, key=lambda s: abs(s[0] - start))[1]
            c1 = min(samples, key=lambda s: abs(s[0] - end))[1]
            n = int(res["orders"])
            return {"tree": tree, "orders": n, "acked": res["acked"], "lost": res["lost"],
                    "orders_per_s": res["orders_per_s"], "seconds": res["seconds"],
                    "cpu_ms_per_order_load": round(1000 * (c1 - c0) / n, 3),
                    "cpu_ms_per_order_whole_bench": round(1000 * (samples[-1][1] - samples[0][1]) / n, 3),
                    "host_busy_pct": res.get("host_busy_pct"), "ack_p50_us": res["ack_p50_us"]}
        finally:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(30)
            except subprocess.TimeoutExpired:
                up.kill()


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) < 2:
        raise SystemExit(__doc__)
    print(json.dumps(measure(a[0], a[1], a[2] if len(a) > 2 else "1000", a[3] if len(a) > 3 else "10000")))
