"""A street utility paused past the liveness timeout during load, twice: it wakes up harmless.

Issue 14 item 3: ssu1 SIGSTOPped past ``dead_after_s`` and resumed used to send hundreds of
orders its peer had taken over to the venue again, and take over its live peer's orders on its
frozen view. Counted at the venue (its own FIX message logs): every NewOrderSingle ClOrdID
arrives once; the bench loses nothing; the woken utility took nothing over.
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
