"""The failover figure: seconds from SIGKILL of the customer utility that owns a QuickFIX
customer's session to that customer's logon at the other utility, with the liveness settings
of ``configs/local.toml`` (heartbeat_s 0.5, dead_after_s 3.0) and QuickFIX's failover list
(ReconnectInterval=1). A real ``fixgw up`` per run on free ports, in a temporary directory.

    .venv/bin/python -m tests.e2e.failover_figure [RUNS]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e.qf_customer import QfCustomer
from tests.interop.quickfix_initiator import until
from tests.support.cluster import Cluster


async def once(base: Path) -> float:
    cl = Cluster(base, day_seconds=2.0)
    text = cl.config.read_text()
    cl.config.write_text(text.replace("heartbeat_s = 0.3", "heartbeat_s = 0.5")
                         .replace("dead_after_s = 2.0", "dead_after_s = 3.0"))
    cl.start()
    c = QfCustomer(cl, base / "qf", heartbeat_s=5)
    try:
        c.start()
        await until(c.qf.logged_on, 20, "logon at cfu1")
        c.order("X1", "1", 10, "200.00")
        await until(lambda: "X1" in c.seen() and c.seen()["X1"].ord_status == "2", 20, "a fill at cfu1")
        await asyncio.sleep(1.0)
        cl.kill("cfu1")
        t = time.monotonic()
        await until(lambda: c.logons() >= 2 and c.qf.logged_on(), 30, "logon at cfu2")
        return time.monotonic() - t
    finally:
        c.close()
        cl.stop()


async def main(runs: int) -> None:
    out = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="fixgw-failover-") as d:
            out.append(await once(Path(d)))
        print(f"SIGKILL of cfu1 -> QuickFIX logged on at cfu2: {out[-1]:.2f} s", flush=True)
    print(f"{runs} runs: min {min(out):.2f} s, max {max(out):.2f} s")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
