"""A customer utility on a full filesystem: clear rejects, nothing acknowledged unstored, recovery.

Issue 14 item 5. cfu1's data directory is a small tmpfs of its own (mounted by the test, as
root; unmounted in teardown); a filler file takes every free block while a QuickFIX customer
trades through cfu1. Must show:

- new orders get an ExecutionReport Rejected (OrdRejReason 99) "node cannot store orders: disk
  full", a cancel an OrderCancelReject (CxlRejReason 99) "node cannot store cancels: disk full";
  the customer's session stays up (one logon for the whole test);
- cfu1 says it is degraded, with the reason, in its status file, ``fixgw status`` and its metrics;
- nothing acknowledged (PendingNew) that is not stored: every acknowledged ClOrdID has its ORDER
  record in cfu1's log and in cfu2's; no refused one has;
- the filler removed, cfu1 comes back by itself: no longer degraded, a new order is accepted,
  and every acknowledged order's venue New reaches the customer (the street's records cfu1
  could not store meanwhile are asked again and reported).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from replication.log import RecordLog
from replication.record import RecordType
from tests.e2e.qf_customer import QfCustomer, fields
from tests.interop.quickfix_initiator import until
from tests.support.cluster import Cluster
from tests.support.prometheus import scrape, value
from tests.support.tmpfs import fill, small_tmpfs

pytestmark = pytest.mark.timeout(180)

REST = "150.00"       # a buy at this price rests at the exchange
TMPFS_SIZE = "24m"
MAX_ORDERS = 400      # sent while the disk is full, at most, until one is refused
CANNOT = "node cannot store orders: disk full"


@pytest.fixture
def small_disk_cluster(tmp_path: Path) -> Iterator[Cluster]:
    cl = Cluster(tmp_path, day_seconds=2.0)
    with small_tmpfs(cl.data / "cfu1", TMPFS_SIZE):
        cl.start()
        try:
            yield cl
        finally:
            cl.stop()


def ordered_clordids(log_dir: Path) -> set[str]:
    with RecordLog(log_dir, readonly=True) as lg:
        return {r.cl_ord_id for r in lg.iter_type(RecordType.ORDER)}


def test_customer_utility_on_a_full_disk(small_disk_cluster: Cluster, tmp_path: Path) -> None:
    asyncio.run(_full_disk(small_disk_cluster, tmp_path))


async def _full_disk(cl: Cluster, tmp: Path) -> None:
    c = QfCustomer(cl, tmp / "qf", first="cfu1", then="cfu1")
    pinned = contextlib.ExitStack()   # a reader of cfu1's log, held while the disk is full (below)
    c.start()
    try:
        await until(c.qf.logged_on, 20, "logon to cfu1")

        def answer(cl_ord_id: str) -> dict[int, str] | None:
            for f in c.reports():
                if f.get(11) == cl_ord_id and f.get(150) in ("A", "8"):
                    return f
            return None

        def venue_new(cl_ord_id: str) -> bool:
            return any(f.get(11) == cl_ord_id and f.get(150) == "0" for f in c.reports())

        for i in range(3):
            c.order(f"B{i}", "1", 1, REST)
        await until(lambda: all(venue_new(f"B{i}") for i in range(3)), 20, "trading before the disk fills")

        filler = cl.data / "cfu1" / "filler"
        fill(filler)
        # A reader of cfu1's log, as `fixgw log status` or a replay would hold one: LMDB then
        # reuses no page freed after its snapshot, so every write of cfu1 needs pages the full
        # disk cannot give, and a small one (a cancel) is refused as surely as an order. Without
        # it a cancel could fit in recycled pages run after run (once, 400 orders and as many
        # cancels were all stored in a full run of the suite).
        pin_log = pinned.enter_context(RecordLog(cl.data / "cfu1" / "log", readonly=True))
        pinned.enter_context(pin_log.reader())
        started = time.monotonic()
        acked: list[str] = []
        refused: list[str] = []
        n = 0

        async def burst() -> None:
            nonlocal n
            ids = [f"F{n + k}" for k in range(10)]
            n += len(ids)
            for cl_ord_id in ids:
                c.order(cl_ord_id, "1", 1, REST)
            await until(lambda: all(answer(x) is not None for x in ids), 20, "every order answered")
            for x in ids:
                f = answer(x)
                assert f is not None
                if f[150] == "A":
                    acked.append(x)
                else:
                    assert f.get(39) == "8" and f.get(103) == "99" and CANNOT in f.get(58, ""), f
                    refused.append(x)

        while not refused and n < MAX_ORDERS:
            await burst()
        assert refused, f"no order refused in {n} sent on a full disk"
        print(f"FIGURE full disk: first refusal after {n} orders, {time.monotonic() - started:.1f}s")

        # a cancel it cannot store: OrderCancelReject 102=99 with the reason. The free pages
        # older than the pinned reader's snapshot may still take a few small writes (a cancel
        # stored is rightly accepted): then more orders use them up and the cancels go on,
        # bounded by MAX_ORDERS
        def cancel_answer(cl_ord_id: str) -> tuple[str, dict[int, str]] | None:
            for r in c.qf.app.snapshot()[0]:
                f = fields(r.raw)
                if f.get(11) == cl_ord_id and (r.msg_type == "9" or f.get(150) == "6"):
                    return r.msg_type, f
            return None

        cxl_refused = None
        tried: set[str] = set()
        while cxl_refused is None:
            for orig in [o for o in ["B0", "B1", "B2", *acked] if o not in tried]:
                tried.add(orig)
                cxl = f"X{orig}"
                c.cancel(orig, cxl, "1", 1)
                await until(lambda: cancel_answer(cxl) is not None, 20, f"an answer to {cxl}")  # noqa: B023
                got = cancel_answer(cxl)
                assert got is not None
                if got[0] == "9":
                    cxl_refused = got[1]
                    break
            if cxl_refused is None:
                assert n < MAX_ORDERS, f"every cancel stored after {n} orders sent on a full disk"
                await burst()
        pinned.close()
        assert cxl_refused is not None, "no cancel refused on a full disk"
        assert cxl_refused.get(102) == "99" and "node cannot store cancels: disk full" in cxl_refused.get(58, "")

        # degraded, with the reason, in the status file (written in place) and fixgw status
        await until(lambda: "disk full" in str(cl.status("cfu1").get("degraded") or ""), 10, "cfu1 degraded")
        st = cl.fixgw("status", "--config", str(cl.config), "--json")
        node = next(x for x in json.loads(st.stdout)["nodes"] if x["name"] == "cfu1")
        assert "disk full" in node["degraded"], node
        human = cl.fixgw("status", "--config", str(cl.config)).stdout
        assert "DEGRADED, cannot store" in human and "degraded" in human.split("cfu1", 1)[1].split("\n", 1)[0], human
        assert c.qf.logged_on() and c.logons() == 1, "the customer's session was dropped"
        metrics = f"http://127.0.0.1:{cl.ports['m_cfu1']}/metrics"
        _, samples = scrape(metrics)
        assert value(samples, "fixgw_node_degraded", node="cfu1") == 1
        assert value(samples, "fixgw_storage_write_failures_total", node="cfu1") >= 1

        # space back: cfu1 recovers by itself
        filler.unlink()
        await until(lambda: cl.status("cfu1").get("degraded") is None, 15, "cfu1 no longer degraded")
        assert value(scrape(metrics)[1], "fixgw_node_degraded", node="cfu1") == 0
        c.order("AFTER", "1", 1, REST)
        await until(lambda: venue_new("AFTER"), 15, "a new order accepted after recovery")
        # every acknowledged order's venue New reaches the customer, none is lost
        await until(lambda: all(venue_new(x) for x in acked), 20,
                    f"New for every acknowledged order ({len(acked)})")
        assert c.qf.logged_on() and c.logons() == 1
    finally:
        pinned.close()
        c.close()

    # nothing acknowledged that is not stored, on cfu1 and replicated to cfu2; nothing refused stored
    deadline = time.monotonic() + 10
    while True:
        held1 = ordered_clordids(cl.data / "cfu1" / "log")
        held2 = ordered_clordids(cl.data / "cfu2" / "log")
        if set(acked) <= held1 and set(acked) <= held2 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert set(acked) <= held1, sorted(set(acked) - held1)
    assert set(acked) <= held2, sorted(set(acked) - held2)
    assert not set(refused) & (held1 | held2)
