"""A customer session moves between live customer utilities (handover), and away from a paused one.

Handover: the customer leaves cfu1 (alive) and logs on at cfu2; cfu1 hands the session over on
the bus and stops sending on it. Pause: cfu1 is SIGSTOPped past the liveness timeout, the customer
moves to cfu2 by its failover list, cfu1 is SIGCONTed: it finds it lost the session and sends
nothing more. Either way the customer sees no Logout and no sequence reset, and keeps trading.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.qf_customer import QfCustomer
from tests.e2e.test_e2e_session_failover import CROSS, REST, session_at
from tests.interop.quickfix_initiator import until
from tests.support.cluster import Cluster

pytestmark = pytest.mark.timeout(300)


def status(cl: Cluster) -> dict:  # type: ignore[type-arg]
    out = cl.fixgw("status", "--config", str(cl.config), "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


async def trade_a_little(c: QfCustomer, tag: str) -> None:
    """A crossing order fills and a resting one is canceled, on whichever utility holds the session."""
    c.order(f"{tag}X", "1", 10, CROSS)
    c.order(f"{tag}R", "1", 10, REST)
    await until(lambda: c.seen().get(f"{tag}X") is not None and c.seen()[f"{tag}X"].ord_status == "2"
                and c.seen().get(f"{tag}R") is not None and c.seen()[f"{tag}R"].ord_status == "0", 30, f"{tag} trading")
    c.cancel(f"{tag}R", f"{tag}C", "1", 10)
    await until(lambda: c.seen().get(f"{tag}C") is not None and c.seen()[f"{tag}C"].ord_status == "4", 30,
                f"{tag} cancel")


def test_handover_from_a_live_customer_utility(own_cluster: Cluster, tmp_path: Path) -> None:
    asyncio.run(_handover(own_cluster, tmp_path))


async def _handover(cl: Cluster, tmp: Path) -> None:
    c = QfCustomer(cl, tmp / "qf")
    c.start()
    try:
        await until(c.qf.logged_on, 20, "logon at cfu1")
        await trade_a_little(c, "A")
        c.qf.drop()              # the customer goes away without a Logout ...
    finally:
        c.close()
    # ... and comes back at cfu2 (its own failover list in the other order), cfu1 alive all along
    c2 = QfCustomer(cl, tmp / "qf", first="cfu2", then="cfu1")
    c2.start()
    try:
        await until(c2.qf.logged_on, 20, "logon at cfu2")
        await until(lambda: session_at(cl, "cfu2", "FIX.4.4") and not session_at(cl, "cfu1", "FIX.4.4"), 10,
                    "the session is at cfu2 only")
        await trade_a_little(c2, "B")
        st = status(cl)
        mine = [s for s in st["sessions"] if s["client"] == "CLIENT1"]
        assert [s["owner"] for s in mine] == ["cfu2"], st["sessions"]
        assert mine[0]["state"] == "logged_on" and mine[0]["next_sender_seq"] > 1 and mine[0]["next_target_seq"] > 1
        assert {"client", "owner", "state", "next_sender_seq", "next_target_seq"} <= set(mine[0])
        assert {e["kind"] for e in st["entry_points"]} >= {"customer", "venue"}
        assert cl.status("cfu1")["session_counters"]["handed_over"] == 1
        assert cl.status("cfu2")["session_counters"]["taken"] == 1
        assert not c2.logouts(), c2.logouts()
        assert not c2.sequence_resets(), c2.sequence_resets()
        # the events of the first half reached the customer once each, by ExecID
        assert not c2.exec_ids_consistent()
    finally:
        c2.close()


def test_paused_customer_utility_loses_the_session_and_sends_nothing(own_cluster: Cluster, tmp_path: Path) -> None:
    asyncio.run(_pause(own_cluster, tmp_path))


async def _pause(cl: Cluster, tmp: Path) -> None:
    c = QfCustomer(cl, tmp / "qf")
    c.start()
    pid = cl.pid("cfu1")
    stopped = False
    try:
        await until(c.qf.logged_on, 20, "logon at cfu1")
        await trade_a_little(c, "A")
        os.kill(pid, signal.SIGSTOP)
        stopped = True
        # QuickFIX notices the silence (HeartBtInt=1), fails over to cfu2, which takes over
        await until(lambda: c.logons() >= 2 and c.qf.logged_on(), 40, "QuickFIX logged on at cfu2")
        await until(lambda: session_at(cl, "cfu2", "FIX.4.4"), 10, "the session is at cfu2")
        await trade_a_little(c, "B")
        received_before = len(c.qf.app.snapshot()[0]) + len(c.admin_in())
        os.kill(pid, signal.SIGCONT)
        stopped = False
        resumed = time.monotonic()
        resumed_wall = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H:%M:%S.%f")
        # cfu1 notices its pause, drops the session, and says so in its status
        await until(lambda: cl.status("cfu1").get("session_counters", {}).get("fenced", 0) >= 1
                    and not cl.status("cfu1").get("sessions"), 20, "cfu1 fenced itself")
        await trade_a_little(c, "C")
        assert time.monotonic() - resumed < 60
        assert len(c.qf.app.snapshot()[0]) + len(c.admin_in()) > received_before
        assert not c.logouts(), c.logouts()
        assert not c.sequence_resets(), c.sequence_resets()
        # the status files are written every second: a bounded wait, not a snapshot
        await until(lambda: session_at(cl, "cfu2", "FIX.4.4") and not session_at(cl, "cfu1", "FIX.4.4"), 10,
                    "the session at cfu2 only")
        # nothing went out of cfu1 on the session after it was resumed (its FIX message log)
        sent_after = []
        for f in (cl.data / "cfu1" / "fixlog").glob("FIX.4.4-FIXGW-CLIENT1.messages*"):
            for line in f.read_text(errors="replace").splitlines():
                stamp, _, rest = line.partition(" ")
                if rest.startswith("OUT ") and stamp >= resumed_wall:
                    sent_after.append(line)
        assert not sent_after, sent_after
        assert cl.status("cfu1")["session_counters"]["lost"] >= 1
    finally:
        if stopped:
            os.kill(pid, signal.SIGCONT)
        c.close()
