"""``fixgw log replay`` on a running customer utility's log (the cluster of ``fixgw up``, real processes).

Replays read the live node's LMDB while it takes an order; the node is not disturbed (the order
is acknowledged and filled meanwhile), and a replay as of a moment between two orders shows the
first and not the second, with the books moved by the second order's fill only at the end.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fixgw.config import SessionSettings
from fixgw.engine import Engine
from fixgw.message import Message
from tests.support.cluster import FIXGW, ROOT, Cluster
from tests.support.fixclient import Collector, FixClient, now_ts

pytestmark = pytest.mark.timeout(240)


async def _buy(c: FixClient, qty: str) -> tuple[str, Decimal]:
    """A marketable IBM buy for ACC2; its OrderID (txn) and AvgPx once filled."""
    cl = c.new_order(symbol="IBM", side="1", qty=qty, price="400.00", account="ACC2")
    m = await c.until(lambda m: m.msg_type == b"8" and m.get_str(11) == cl and m.get_str(39) in ("2", "8"),
                      30.0)
    assert m.get_str(39) == "2", m
    avg = m.get_decimal(6)
    assert avg is not None
    return m.get_str(37) or "", avg


def _replay(cluster: Cluster, *args: str) -> dict[str, Any]:
    p = cluster.fixgw("log", "replay", "--data", cluster.node_dirs("cfu1")[0], "--json", *args)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    result: dict[str, Any] = json.loads(p.stdout)
    return result


def test_replay_of_a_live_node(cluster: Cluster) -> None:
    asyncio.run(_scenario(cluster))


async def _scenario(cluster: Cluster) -> None:
    async with FixClient(cluster.ports["cfu2"], "CLIENT2", "FIXGW") as c:
        first, _ = await _buy(c, "10")
        between = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        await asyncio.sleep(0.05)

        # replays of cfu1's log, one after another, while the second order goes through the cluster
        outcomes: list[int] = []
        stop = threading.Event()

        def replays() -> None:
            for _ in range(10):  # bounded
                if stop.is_set():
                    return
                p = subprocess.run([*FIXGW, "log", "replay", "--data", cluster.node_dirs("cfu1")[0], "--json"],
                                   capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
                outcomes.append(p.returncode)

        reader = threading.Thread(target=replays)
        reader.start()
        try:
            second, avg = await _buy(c, "7")
        finally:
            stop.set()
            await asyncio.to_thread(reader.join, 120)
        assert outcomes and set(outcomes) == {0}

    # the second order's fill reaches cfu1's log by replication: wait for it (bounded)
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        end = _replay(cluster)
        if end["orders"].get(second, {}).get("ord_status") == "2":
            break
        assert asyncio.get_running_loop().time() < deadline, end["orders"].get(second)
        await asyncio.sleep(0.2)
    then = _replay(cluster, "--until", between)

    assert then["as_of"] == between
    assert then["orders"][first]["ord_status"] == "2" and then["orders"][first]["cum_qty"] == "10"
    assert second not in then["orders"]
    assert end["orders"][second]["cum_qty"] == "7" and end["orders"][second]["account"] == "ACC2"
    moved = Decimal(end["books"]["ACC2"]["positions"]["IBM"]) - Decimal(then["books"]["ACC2"]["positions"]["IBM"])
    assert moved == 7
    spent = Decimal(then["books"]["ACC2"]["cash"]) - Decimal(end["books"]["ACC2"]["cash"])
    assert spent == 7 * avg

    one = _replay(cluster, "--txn", second)
    assert list(one["orders"]) == [second] and list(one["books"]) == ["ACC2"]


async def _record_at_customer_utility(port: int, logs: Path) -> Path:
    """CLIENT2 on a customer utility, with a FIX log: a resting IBM buy, then its cancel."""
    st = SessionSettings(begin_string="FIX.4.4", sender_comp_id="CLIENT2", target_comp_id="FIXGW",
                         connection_type="initiator", socket_connect_host="127.0.0.1", socket_connect_port=port,
                         heart_bt_int=30, reset_on_logon=True, reconnect_interval=1, file_log_path=logs)
    app = Collector()
    engine = Engine([st], app)
    await engine.start()
    try:
        await engine.wait_logged_on(st.session_id, timeout=15)

        async def report(cl: str, status: str) -> None:
            async with asyncio.timeout(30):
                while not any(m.get_str(11) == cl and m.get_str(39) == status for m in app.all):
                    await app.queue.get()

        cl = f"RP{time.time_ns()}"
        engine.send_to_target(Message.new("D", [(11, cl), (1, "ACC2"), (21, "1"), (55, "IBM"), (54, "1"),
                                                (60, now_ts()), (38, "5"), (40, "2"), (44, "1.00"), (59, "0")]),
                              st.session_id)
        await report(cl, "0")
        engine.send_to_target(Message.new("F", [(41, cl), (11, f"{cl}X"), (55, "IBM"), (54, "1"), (60, now_ts()),
                                                (38, "5")]), st.session_id)
        await report(f"{cl}X", "4")
        await asyncio.sleep(0.5)  # anything after the cancel gets into the recording too
    finally:
        await engine.stop()
    return logs / "FIX.4.4-CLIENT2-FIXGW.messages.log"


def test_fix_replay_against_a_customer_utility(cluster: Cluster, tmp_path: Path) -> None:
    """A session recorded at cfu1, replayed to cfu2: with new ClOrdIDs (--id-suffix) it gets the same
    answers; with the recorded ones it is refused (a ClOrdID is unique within the trading day).

    Paced as recorded, not ``--speed 0``: sent at once, the cancel reaches the utility while the
    order's append is still being committed and is refused as an unknown order (CxlRejReason 1).
    """
    log = asyncio.run(_record_at_customer_utility(cluster.ports["cfu1"], tmp_path / "fixlog"))
    base = ["fix", "replay", str(log), "--connect", f"127.0.0.1:{cluster.ports['cfu2']}", "--sender", "CLIENT2",
            "--target", "FIXGW", "--wait", "10", "--json"]  # paced as recorded: the cancel after the New
    p = cluster.fixgw(*base, "--id-suffix", "~2")
    assert p.stdout, p.stderr
    got = json.loads(p.stdout)
    assert p.returncode == 0 and got["same"], "\n".join(map(str, got["differences"]))
    assert got["sent"] == 2 and got["responses"] == got["recorded_responses"] >= 3

    p = cluster.fixgw(*base)
    got = json.loads(p.stdout)
    assert p.returncode == 1 and not got["same"]
    assert any(d["field"] == "OrdStatus" and d["replayed"] == "8" for d in got["differences"]), got
