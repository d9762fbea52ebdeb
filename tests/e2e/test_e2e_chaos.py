"""``fixgw chaos``: a short seeded run on a fresh test cluster (fixgw up with supervision, a gateway,
mosquitto, real venues) that kills a customer utility, restarts the broker and SIGSTOPs the other
customer utility past the liveness timeout under load, then checks its verdict piece by piece."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.support.cluster import Cluster

pytestmark = pytest.mark.timeout(150)

# seed 6 on this cluster's processes, 10 s of load, faults 1.5-2.5 s apart (tests/utilities/
# test_chaos.py shows the rules that make every such schedule hold these three):
#   2.00 s cfu2 SIGKILL; 3.50 s broker SIGTERM (restart); 5.66 s cfu1 SIGSTOP, SIGCONT at 9.95 s
SEED = 6


def _kill_leftovers(data: Path) -> None:
    """A run cut short leaves fixgw up's processes behind (each in its own session): end them."""
    try:
        doc = json.loads((data / "processes.json").read_text())
    except (OSError, ValueError):
        return
    for pid in [doc.get("up"), *(c.get("pid") for c in doc.get("children", []))]:
        if isinstance(pid, int):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def test_chaos_run_loses_nothing_and_reports_each_check(tmp_path: Path) -> None:
    c = Cluster(tmp_path, day_seconds=2.0, gateways=("gw1",), restart_children=True)
    try:
        out = c.fixgw("chaos", "--config", str(c.config), "--seconds", "10", "--seed", str(SEED), "--rate", "40",
                      "--min-gap", "1.5", "--max-gap", "2.5", "--settle-timeout", "60", "--json", timeout=140)
    finally:
        _kill_leftovers(c.data)
    assert out.stdout.strip(), out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    # the schedule: what was planned, each fault applied to a live pid
    sched = res["schedule"]
    assert [(f["action"], f["target"]) for f in sched[:3]] == [("kill", "cfu2"), ("restart", "broker"), ("stop", "cfu1")]
    assert all(f["pid"] is not None and f["note"] == "" for f in sched[:3]), sched
    assert res["faults_by_action"]["kill"] >= 1 and res["faults_by_action"]["stop"] >= 1
    assert res["faults_injected"] == len(sched) - res["faults_skipped"] >= 3
    # the load went through the faults: most orders acknowledged, some lost to the faults' windows
    # (not sent while a session was away, or unanswered) but none lost once acknowledged
    assert res["orders"] > 100 and 0 < res["acked"] <= res["orders"], res
    assert res["reconnects"] >= 1, res   # cfu2's sessions logged on again (through the gateway)
    # every order acknowledged or stored by a utility (its ack lost with the connection) is checked
    assert res["orders_checked"] >= res["acked"], res
    assert res["lost"] == 0 and res["unsettled"] == 0 and res["disagree"] == 0, res["examples"]
    # the venue saw each acknowledged order once at most
    assert res["venue_new_orders"] >= res["acked"], res
    assert res["duplicates"] == res["executed_twice"] == res["sent_twice"] == 0, res["examples"]
    # crossing limits fill against the market maker: the firm booked exactly the venue's fills
    assert res["venue_fills"] > 0 and res["books_differ"] == 0, res["examples"]
    assert res["unsent"] == 0, res["examples"]   # no acknowledged order dropped before any venue
    # every 10th order rests at the venue: each of them open there as at the utilities
    assert res["resting"] > 0 and res["resting_venue_differs"] == 0, res["examples"]
    assert res["replicas_converge"] is True and res["dead"] == [], res
    assert res["settled"] is True and 0 <= res["settle_s"] < 60
    assert res["verdict"] == "pass" and res["failures"] == [] and out.returncode == 0, (res, out.stderr[-3000:])
    # the human-readable schedule went to stderr with --json (stdout is the one JSON object)
    assert "SIGSTOP, SIGCONT at" in out.stderr and "cont cfu1" in out.stderr
    # a clean stop at the end: fixgw up removed its process list
    assert not (c.data / "processes.json").exists()
