"""A customer utility SIGKILLed and started again loads its snapshot, folds only the records
after it, and answers an OrderStatusRequest at once (utilities.snapshot; issue 18 item 1).

A real cluster (``fixgw up``: broker, venues, both customer utilities, streets, firm) with
``snapshot_every_records = 40``; a QuickFIX customer on cfu1 sends resting orders, cfu1 writes
snapshots as their records come in; more orders, then SIGKILL (no snapshot at stop), a restart
by hand: its status file says it started from a snapshot and folded fewer records than its log
holds, and the customer's status request for its first order is answered from the restarted node.
Then the same of a street utility (utilities.street_snapshot): killed, restarted from its snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.qf_customer import QfCustomer
from tests.support.cluster import Cluster
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(150)


@pytest.fixture
def snap_cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, cluster_extra="snapshot_every_records = 40")
    c.start()
    try:
        yield c
    finally:
        c.stop()


def test_a_killed_customer_utility_restarts_from_its_snapshot_and_answers_a_status_request(
        snap_cluster: Cluster, tmp_path: Path) -> None:
    cl = snap_cluster
    qf = QfCustomer(cl, tmp_path / "qf", first="cfu1", then="cfu1")
    qf.start()
    try:
        wait_for("the customer's logon", lambda: qf.logons() >= 1)
        for i in range(20):
            qf.order(f"S{i}", "1", 1, "150.00")
        wait_for("20 orders resting", lambda: sum(s.ord_status == "0" for s in qf.seen().values()) >= 20)
        wait_for("a snapshot at cfu1", lambda: cl.status("cfu1")["counters"].get("snapshots", 0) >= 1)
        for i in range(20, 25):   # records after the last snapshot: the tail a restart folds
            qf.order(f"S{i}", "1", 1, "150.00")
        wait_for("25 orders resting", lambda: sum(s.ord_status == "0" for s in qf.seen().values()) >= 25)
        first = qf.seen()["S0"].order_id
        logons = qf.logons()

        cl.kill("cfu1")
        cl.start_node("cfu1")
        st = cl.status("cfu1")
        startup = st["startup"]
        held = sum(int(v) for v in st["hwm"].values())
        assert startup["snapshot"] is True and startup["snapshot_ignored"] == "", startup
        # it folded only the records since its last snapshot (one every 40 records), not its ~80
        assert startup["snapshot_records"] >= 40 and startup["folded"] <= 40, startup
        assert startup["snapshot_records"] + startup["folded"] <= held, (startup, held)
        log = (cl.base / "cfu1.restart.log").read_text()
        assert "loaded from a snapshot of" in log, log[-3000:]

        wait_for("the customer's logon to the restarted cfu1", lambda: qf.logons() > logons)
        qf.status("S0", "1")
        answer = wait_for("the status answer", lambda: qf.status_answers().get("S0"))
        assert answer[37] == first and answer[39] == "0" and answer[150] == "I", answer

        # a street utility too (utilities.street_snapshot), with the same setting: its records of
        # the 25 orders (SENT, VENUE_ACK, its own and its peer's) made at least one snapshot
        wait_for("a snapshot at ssu1", lambda: cl.status("ssu1")["counters"].get("snapshots", 0) >= 1)
        cl.kill("ssu1")
        cl.start_node("ssu1")
        startup = cl.status("ssu1")["startup"]
        assert startup["snapshot"] is True and startup["snapshot_ignored"] == "", startup
        assert startup["snapshot_records"] >= 40 and startup["folded"] <= 40, startup
        assert "loaded from a snapshot of" in (cl.base / "ssu1.restart.log").read_text()
    finally:
        qf.close()
