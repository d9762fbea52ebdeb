"""A street or customer utility paused past the liveness timeout during load: it wakes up harmless.

Issue 14 item 3: ssu1 SIGSTOPped past ``dead_after_s`` and resumed used to send hundreds of
orders its peer had taken over to the venue again, and take over its live peer's orders on its
frozen view. Counted at the venue (its own FIX message logs): every NewOrderSingle ClOrdID
arrives once; the bench loses nothing; the woken utility took nothing over. The customer
utilities follow the same rule (one ``utilities.fencing.Fence``): cfu1 paused while its
customer fails over to cfu2, and woken with that customer's orders still queued in its socket.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from fixgw.fixlog import read_message_log
from fixgw.message import Message
from replication.log import RecordLog
from replication.record import RecordType
from tests.e2e.qf_customer import QfCustomer
from tests.support.cluster import FIXGW, ROOT, Cluster

pytestmark = pytest.mark.timeout(300)

PAUSE_S = 4.5   # the cluster's dead_after_s is 2.0: well past it


def venue_new_orders(venue_dir: Path) -> Counter[str]:
    """ClOrdIDs of the NewOrderSingles the venue received (session resends, 43=Y, left out)."""
    seen: Counter[str] = Counter()
    for path in sorted((venue_dir / "log").glob("*.messages.log")):
        for rec in read_message_log(path):
            if b"\x0135=D\x01" not in rec.raw or rec.kind != "IN":
                continue
            m = Message.from_wire(rec.raw)
            if m.get_str(43) == "Y":
                continue
            seen[m.require_str(11)] += 1
    return seen


def wait_for(cond: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():  # type: ignore[operator]
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}")


def test_street_paused_past_liveness_twice_sends_nothing_twice(own_cluster: Cluster) -> None:
    cl = own_cluster
    bench = subprocess.Popen(FIXGW + ["bench", "--config", str(cl.config), "--orders", "2400", "--rate", "150",
                                      "--sessions", "2", "--seconds", "150", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        pid = cl.pid("ssu1")
        time.sleep(3.0)
        for round_ in (1, 2):
            before = cl.status("ssu1")["counters"]
            sent_before = int(before["sent"])
            os.kill(pid, signal.SIGSTOP)
            time.sleep(PAUSE_S)
            os.kill(pid, signal.SIGCONT)
            # the woken utility notices, and acts again only once caught up with its peers
            n = round_
            wait_for(lambda: cl.status("ssu1")["counters"]["fence_fenced"] >= n, 20, f"ssu1 fenced ({n})")  # noqa: B023
            wait_for(lambda: cl.status("ssu1")["counters"]["fence_lifted"] >= n and not cl.status("ssu1")["fenced"],  # noqa: B023
                     30, f"ssu1 caught up ({n})")
            # it took nothing over on its stale view (its peer looked silent for the whole pause)
            assert cl.status("ssu1")["counters"]["takeovers"] == before["takeovers"]
            # and goes back to work: it sends orders again (the load is still running)
            wait_for(lambda: int(cl.status("ssu1")["counters"]["sent"]) > sent_before, 30,  # noqa: B023
                     f"ssu1 sends again ({round_})")
        out, err = bench.communicate(timeout=200)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
    assert bench.returncode == 0, out + err
    res = json.loads(out.strip().splitlines()[-1])
    assert res["orders"] == res["acked"] == 2400 and res["lost"] == 0, res

    # at the venue: every order arrived once
    seen = venue_new_orders(cl.data / "exchange")
    assert sum(seen.values()) >= 2400 * 9 // 10, len(seen)
    twice = {k: n for k, n in seen.items() if n > 1}
    assert twice == {}, f"{len(twice)} orders reached the venue more than once: {list(twice.items())[:10]}"


def customer_orders(log_dir: Path) -> dict[str, tuple[str, str]]:
    """txn -> (client CompID, its ClOrdID) of every order a customer utility's log holds (its own
    and its peers'): what the venue's ClOrdIDs (the txns) stand for."""
    with RecordLog(log_dir, readonly=True) as lg:
        return {r.txn: (r.session, r.cl_ord_id) for r in lg.iter_type(RecordType.ORDER)}


def test_customer_paused_past_liveness_sends_nothing_twice(own_cluster: Cluster, tmp_path: Path) -> None:
    """cfu1 SIGSTOPped past the liveness timeout while two QuickFIX customers trade (CLIENT1 on cfu1,
    failing over to cfu2; CLIENT2 on cfu2), and woken with CLIENT1's orders still queued in its
    socket: cfu2 takes CLIENT1's session over while cfu1 stands still; the woken cfu1 is fenced
    (drops its sessions, records and routes nothing) until caught up. Every order the customers
    sent ends working at the venue (lost 0: those cfu1 never answered were sent again by QuickFIX
    to cfu2), and at the venue no customer order arrives twice (neither one txn twice nor one
    customer ClOrdID under two txns)."""
    cl = own_cluster
    c1 = QfCustomer(cl, tmp_path / "qf1", client="CLIENT1", first="cfu1", then="cfu2")
    c2 = QfCustomer(cl, tmp_path / "qf2", client="CLIENT2", first="cfu2", then="cfu1")
    sent: dict[str, list[str]] = {"CLIENT1": [], "CLIENT2": []}

    def trickle(seconds: float, rate: float = 40.0) -> None:
        """Each customer sends resting buys at ``rate`` orders/s for ``seconds`` (bounded)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for c, client, symbol in ((c1, "CLIENT1", "AAPL"), (c2, "CLIENT2", "IBM")):
                cl_ord_id = f"{client[-1]}-{len(sent[client])}"
                c.order(cl_ord_id, "1", 1, "10.00" if symbol == "IBM" else "150.00", symbol=symbol)
                sent[client].append(cl_ord_id)
            time.sleep(1.0 / rate)

    c1.start()
    c2.start()
    try:
        wait_for(lambda: c1.qf.logged_on() and c2.qf.logged_on(), 20, "QuickFIX customers logged on")
        trickle(1.5)
        pid = cl.pid("cfu1")
        os.kill(pid, signal.SIGSTOP)
        try:
            trickle(PAUSE_S + 1.0)   # CLIENT1's first orders queue in cfu1's socket, then go to cfu2
        finally:
            os.kill(pid, signal.SIGCONT)
        trickle(1.5)
        wait_for(lambda: cl.status("cfu1")["counters"]["fence_fenced"] >= 1, 20, "cfu1 fenced")
        wait_for(lambda: cl.status("cfu1")["counters"]["fence_lifted"] >= 1 and not cl.status("cfu1")["fenced"],
                 30, "cfu1 caught up")
        assert c1.logons() >= 2 and c1.qf.logged_on(), "CLIENT1 did not move to cfu2"
        for c, client in ((c1, "CLIENT1"), (c2, "CLIENT2")):
            wait_for(lambda: all(c.seen().get(x) is not None and c.seen()[x].ord_status == "0"  # noqa: B023
                                 for x in sent[client]), 40, f"every order of {client} working (lost 0)")  # noqa: B023
            assert c.exec_ids_consistent() == []
    finally:
        c1.close()
        c2.close()
    n = len(sent["CLIENT1"]) + len(sent["CLIENT2"])
    print(f"FIGURE customer pause: {n} orders, CLIENT1 moved to cfu2, lost 0")

    # at the venue: every order arrived once, counted by txn and by the customer's own ClOrdID
    seen = venue_new_orders(cl.data / "exchange")
    twice = {k: m for k, m in seen.items() if m > 1}
    assert twice == {}, f"{len(twice)} txns reached the venue more than once: {list(twice.items())[:10]}"
    orders = customer_orders(cl.data / "cfu2" / "log")
    per_customer_order = Counter(orders[txn] for txn in seen if txn in orders)
    again = {k: m for k, m in per_customer_order.items() if m > 1}
    assert again == {}, f"{len(again)} customer orders reached the venue under two txns: {list(again.items())[:10]}"
    assert set(per_customer_order) == {(client, x) for client, xs in sent.items() for x in xs}
