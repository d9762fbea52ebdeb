"""``utilities.chaos``: the seeded fault schedule and each check, on crafted inputs (no processes)."""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path

import pytest

from utilities.chaos import (
    BROKER,
    ChaosError,
    Fault,
    FaultAction,
    Injected,
    OrderView,
    Target,
    VenueFill,
    VenueNewOrder,
    Verdict,
    check_books,
    check_delivered,
    check_orders,
    check_processes,
    check_resting,
    check_venue_orders,
    inject,
    make_schedule,
    orders_to_check,
    tracebacks_in_logs,
)

V = OrderView

CLUSTER = [Target("broker", "mosquitto"), Target("exchange", "venue"), Target("fund", "venue"),
           Target("cfu1", "customer"), Target("cfu2", "customer"), Target("ssu1", "street"),
           Target("ssu2", "street"), Target("firm", "firm"), Target("gw1", "gateway"),
           Target("dashboard", "dashboard")]


def test_schedule_is_a_function_of_the_seed() -> None:
    a = make_schedule(7, 600, CLUSTER)
    assert a == make_schedule(7, 600, list(reversed(CLUSTER)))   # the targets' order does not matter
    assert a != make_schedule(8, 600, CLUSTER)


@pytest.mark.parametrize("seed", range(12))
def test_schedule_rules(seed: int) -> None:
    seconds = 300.0
    s = make_schedule(seed, seconds, CLUSTER, lead_s=2.0, min_gap_s=3.0, max_gap_s=10.0)
    assert s and s[0].at_s == 2.0
    for f in s:
        assert f.target != "dashboard" and f.end_s <= seconds
        if f.action is FaultAction.STOP:
            assert 1.0 <= f.hold_s <= 8.0
        else:
            assert f.hold_s == 0
    for prev, nxt in itertools.pairwise(s):
        assert 3.0 - 0.011 <= nxt.at_s - prev.end_s <= 10.0 + 0.011   # spaced, never overlapping
        assert nxt.target != prev.target
    # the first three: a kill of a non-broker process, a kill or restart of the broker, a stop
    first = s[:3]
    assert any(f.action is FaultAction.KILL and f.target != BROKER for f in first)
    assert any(f.target == BROKER and f.action in (FaultAction.KILL, FaultAction.RESTART) for f in first)
    assert any(f.action is FaultAction.STOP for f in first)
    assert len({f.target for f in first}) == 3
    # a long run reaches every kind of process and uses every action
    assert {f.action for f in s} == set(FaultAction)
    assert {f.kind for f in s} == {"mosquitto", "venue", "customer", "street", "firm", "gateway"}


def test_short_schedule_still_covers_the_three_kinds() -> None:
    # what the suite's e2e run uses: 10 s of load, faults 1.5-2.5 s apart: every seed fits the
    # three (2 + 2 * 2.5 + 1 <= 10)
    for seed in range(100):
        s = make_schedule(seed, 10.0, CLUSTER, min_gap_s=1.5, max_gap_s=2.5)
        assert len(s) >= 3 and all(f.end_s <= 10.0 for f in s), s
        assert s[2].action is FaultAction.STOP and 1.0 <= s[2].hold_s
        assert any(f.target == BROKER for f in s[:2]) and any(f.action is FaultAction.KILL for f in s[:2])


def test_a_stop_is_cut_to_end_with_the_load_and_dropped_when_no_second_is_left() -> None:
    s = make_schedule(1, 4.0, [Target("cfu1", "customer")], lead_s=2.5, min_gap_s=1, max_gap_s=1)
    assert all(f.end_s <= 4.0 for f in s)
    assert make_schedule(1, 2.0, CLUSTER) == []   # nothing fits after the lead


def test_schedule_refuses_bad_parameters() -> None:
    with pytest.raises(ChaosError):
        make_schedule(1, 60, [Target("dashboard", "dashboard")])
    with pytest.raises(ChaosError):
        make_schedule(1, 60, CLUSTER, min_gap_s=5, max_gap_s=2)
    with pytest.raises(ChaosError):
        Fault(1.0, FaultAction.KILL, "cfu1", "customer", hold_s=2.0)
    with pytest.raises(ChaosError):
        Fault(1.0, FaultAction.STOP, "cfu1", "customer", hold_s=0.0)


def test_orders_check_tells_lost_unsettled_and_disagreeing_apart() -> None:
    d = Decimal
    views = {
        "cfu1": {"A": V("2", d(100)), "B": V("0", d(0)), "C": V("A", d(0)), "D": V("2", d(100))},
        "cfu2": {"A": V("2", d(100)), "B": V("0", d(0)), "C": V("A", d(0)), "D": V("1", d(50))},
    }
    ok = check_orders(["A", "B"], views)
    assert ok.ok and ok.checked == 2
    bad = check_orders(["A", "C", "D", "E"], views)
    assert not bad.ok
    assert bad.lost == (("E", "cfu1"), ("E", "cfu2"))
    assert bad.unsettled == (("C", "cfu1", "A"), ("C", "cfu2", "A"))   # PendingNew: not settled
    assert [cid for cid, _ in bad.disagree] == ["D"]
    # known at one utility only: lost at the other
    assert check_orders(["A"], {"cfu1": views["cfu1"], "cfu2": {}}).lost == (("A", "cfu2"),)


def test_venue_check_counts_executions_and_plain_resends_not_possdup() -> None:
    def o(cid: str, possdup: bool = False, accepted: bool = True, venue: str = "exchange") -> VenueNewOrder:
        return VenueNewOrder(venue, "FIXGW", cid, possdup, accepted)

    clean = check_venue_orders([o("t1"), o("t2"), o("t2", possdup=True, accepted=False)])
    assert clean.ok and clean.duplicates == 0 and clean.possdup_resends == 1 and clean.new_orders == 3
    # sent again without PossDup: the simulator refused it (not accepted), a venue that does not
    # check would have executed it twice
    sent = check_venue_orders([o("t1"), o("t1", accepted=False)])
    assert sent.sent_twice == ("exchange/FIXGW/t1",) and sent.executed_twice == () and sent.duplicates == 1
    both = check_venue_orders([o("t1"), o("t1", possdup=True)])
    assert both.executed_twice == ("exchange/FIXGW/t1",) and both.sent_twice == () and not both.ok
    # the same ClOrdID at two venues is two orders
    assert check_venue_orders([o("t1"), o("t1", venue="fund")]).ok


def test_orders_checked_are_the_acknowledged_and_the_stored() -> None:
    d = Decimal
    views = {"cfu1": {"A": V("2", d(100)), "B": V("0", d(0))}, "cfu2": {"A": V("2", d(100))}}
    ids = orders_to_check(["A", "C"], views)
    assert ids == {"A", "B", "C"}
    r = check_orders(ids, views)
    # B stored at cfu1 (its ack never reached the client) but missing at cfu2; C acked, stored nowhere
    assert r.lost == (("B", "cfu2"), ("C", "cfu1"), ("C", "cfu2"))


def test_resting_check_finds_orders_the_venue_forgot_or_ended() -> None:
    d = Decimal
    views = {"cfu1": {"A": V("0", d(0), "t1"), "B": V("1", d(40), "t2"), "C": V("2", d(100), "t3"),
                      "D": V("0", d(0), "t4")},
             "cfu2": {}}
    venue = {"t1": ("0", d(0)), "t2": ("1", d(40)), "t4": ("4", d(0))}
    r = check_resting(["A", "B", "C", "D"], views, venue)
    assert r.resting == 3 and [cid for cid, _ in r.venue_differs] == ["D"] and not r.ok
    assert "venue 4/0" in r.venue_differs[0][1]
    gone = check_resting(["A"], views, {})
    assert gone.venue_differs == (("A", "utilities 0/0, venue unknown (txn t1)"),)
    assert check_resting(["C"], views, {}).ok   # filled: the books check's business


def test_delivery_check_finds_acknowledged_orders_that_never_reached_a_venue() -> None:
    d = Decimal
    views = {"cfu1": {"A": V("8", d(0), "t1", "unknown order t1"), "B": V("8", d(0), "t2", "price band"),
                      "C": V("4", d(0), "t3", "canceled by the venue"), "D": V("2", d(100), "t4"),
                      "E": V("0", d(0), "t5")}}
    r = check_delivered(["A", "B", "C", "D", "E", "F"], views, {"t2", "t4"})
    # B was rejected by the venue itself (it reached it); D filled; E resting (the resting check's);
    # F unknown (the orders check's)
    assert r.unsent == (("A", "8: unknown order t1"), ("C", "4: canceled by the venue")) and not r.ok
    assert check_delivered(["B", "D"], views, {"t2", "t4"}).ok


def test_books_check_compares_quantity_and_notional_per_order() -> None:
    d = Decimal
    fills = [VenueFill("exchange", "t1", "e1", d(60), d("10.00")), VenueFill("exchange", "t1", "e2", d(40), d("10.50"))]
    assert check_books({"t1": (d(100), d("1020.00"))}, fills).ok
    off = check_books({"t1": (d(100), d("1000.00")), "t9": (d(5), d(50))}, fills)
    assert [t for t, _, _ in off.differ] == ["t1", "t9"]
    missing = check_books({}, fills)
    assert missing.differ == (("t1", "0/0", "100/1020.00"),) and missing.venue_fills == 2


def test_processes_check_and_verdict() -> None:
    assert check_processes(["cfu1", "broker"], ["broker", "cfu1", "up"]).ok
    dead = check_processes(["cfu1", "broker"], ["cfu1"])
    assert dead.dead == ("broker",)
    d = Decimal
    orders = check_orders(["A"], {"cfu1": {"A": V("2", d(100))}})
    resting = check_resting(["A"], {"cfu1": {"A": V("2", d(100))}}, {})
    venues = check_venue_orders([VenueNewOrder("exchange", "FIXGW", "t1", False, True)])
    books = check_books({"t1": (d(1), d(1))}, [VenueFill("exchange", "t1", "e", d(1), d(1))])
    kill = Fault(2.0, FaultAction.KILL, "cfu1", "customer")
    faults = (Injected(kill, 123, 2.01), Injected(Fault(5.0, FaultAction.STOP, "ssu1", "street", 2.0), None, 5.0))
    delivered = check_delivered(["A"], {"cfu1": {"A": V("2", d(100), "t1")}}, {"t1"})
    good = Verdict(orders, venues, books, check_processes(["cfu1"], ["cfu1"]), resting, delivered, True, (), True,
                   1.5, faults, {"orders": 3, "acked": 2})
    doc = good.to_json()
    assert good.ok and doc["verdict"] == "pass" and doc["failures"] == []
    assert doc["faults_injected"] == 1 and doc["faults_skipped"] == 1 and doc["faults_by_action"] == {"kill": 1}
    assert doc["faults_by_target"] == {"cfu1": 1}
    assert doc["orders"] == 3 and doc["acked"] == 2 and doc["orders_checked"] == 1
    assert doc["lost"] == doc["duplicates"] == 0
    assert doc["schedule"][0]["pid"] == 123 and doc["schedule"][1]["pid"] is None
    forgot = check_resting(["A"], {"cfu1": {"A": V("0", d(0), "t1")}}, {})
    unsent = check_delivered(["A"], {"cfu1": {"A": V("8", d(0), "t1", "unknown order t1")}}, set())
    bad = Verdict(check_orders(["A", "B"], {"cfu1": {"A": V("2", d(100))}}), venues, books, dead, forgot, unsent,
                  False, ("origin x: DIFFERS",), False, 180.0, faults)
    fails = " | ".join(bad.failures)
    for word in ("lost: 1", "unsent: 1", "resting: 1", "replicas differ", "dead: broker", "did not settle"):
        assert word in fails
    assert bad.to_json()["verdict"] == "fail" and bad.to_json()["lost"] == 1


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_inject_stops_continues_and_kills_real_processes() -> None:
    import asyncio
    import subprocess
    import sys
    import time

    a = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    b = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        schedule = [Fault(0.1, FaultAction.STOP, "a", "customer", 0.5), Fault(0.7, FaultAction.KILL, "b", "street"),
                    Fault(0.8, FaultAction.RESTART, "gone", "street")]
        seen: list[str] = []

        async def main() -> list[Injected]:
            t0 = time.monotonic()
            task = asyncio.create_task(inject(schedule, lambda: {"a": a.pid, "b": b.pid}, t0, seen.append))
            await asyncio.sleep(0.35)
            seen.append(f"state a {_state(a.pid)}")   # stopped in the middle of its hold
            return await asyncio.wait_for(task, 5)

        done = asyncio.run(main())
        assert "state a T" in seen, seen
        assert _state(a.pid) in ("S", "R")            # continued
        assert b.wait(5) == -9                         # SIGKILL
        assert [i.pid for i in done] == [a.pid, b.pid, None] and done[2].note == "not running: skipped"
        assert done[0].at_s >= 0.1 and done[1].at_s >= 0.7
        assert any(line.endswith(f"cont a (pid {a.pid})") for line in seen), seen
    finally:
        for p in (a, b):
            p.kill()
            p.wait()


def test_inject_continues_a_stopped_process_when_cancelled() -> None:
    import asyncio
    import subprocess
    import sys
    import time

    a = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        async def main() -> None:
            task = asyncio.create_task(inject([Fault(0.0, FaultAction.STOP, "a", "customer", 20.0)],
                                              lambda: {"a": a.pid}, time.monotonic()))
            await asyncio.sleep(0.3)
            assert _state(a.pid) == "T"
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        assert _state(a.pid) in ("S", "R")
    finally:
        a.kill()
        a.wait()


def test_tracebacks_in_logs_names_each_exception(tmp_path: Path) -> None:
    (tmp_path / "cfu1.log").write_text("ready\nTraceback (most recent call last):\n  File \"x.py\", line 1\n"
                                       "    boom()\nOSError: [Errno 9] Bad file descriptor\nstill running\n")
    (tmp_path / "ssu1.log").write_text("all quiet\n")
    (tmp_path / "cut.log").write_text("Traceback (most recent call last):\n  File \"y.py\", line 2\n")
    assert tracebacks_in_logs(tmp_path) == {"cfu1": ["OSError: [Errno 9] Bad file descriptor"], "cut": ["(truncated)"]}
    assert tracebacks_in_logs(tmp_path / "none") == {}
