"""``fixgw up`` supervises its children, and Ctrl-C stops the cluster cleanly.

Supervision: the broker and a venue SIGKILLed are started again by ``up`` (logged, with
back-off), the nodes reconnect, and an order trades across both. Stop: customer utilities
first (no new orders), then the street utilities and the firm, then the venues, and the broker
last, so that no node loses its broker while it is still stopping."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import Cluster

pytestmark = pytest.mark.timeout(120)

NODES = {"cfu1": "customer", "cfu2": "customer", "ssu1": "street", "ssu2": "street", "firm": "firm"}


def _stamp(line: str) -> dt.datetime:
    return dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")


def _line(log: list[str], text: str, path: Path) -> str:
    found = [ln for ln in log if ln.endswith(text)]
    assert len(found) == 1, f"{path}: expected one line ending {text!r}, got {found}"
    return found[0]


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, day_seconds=2.0, restart_children=True)
    c.start()
    try:
        yield c
    finally:
        c.stop()


def _pids(cl: Cluster) -> dict[str, int]:
    listed = json.loads((cl.data / "processes.json").read_text())
    return {p["name"]: p["pid"] for p in listed["children"]}


def test_up_restarts_what_dies_then_ctrl_c_stops_every_process_in_order(supervised: Cluster) -> None:
    own_cluster = supervised
    up = own_cluster.up
    assert up is not None
    before = _pids(own_cluster)
    for name in ("broker", "exchange"):
        os.kill(before[name], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not all(f"fixgw: {n} restarted" in (own_cluster.base / "up.log").read_text() for n in ("broker", "exchange")):
        assert time.monotonic() < deadline, (own_cluster.base / "up.log").read_text()
        time.sleep(0.2)
    out = (own_cluster.base / "up.log").read_text()
    assert "fixgw: broker exited with code -9; restarting it in 1 s (restart 1)" in out, out
    after = _pids(own_cluster)   # processes.json follows the restarts (fixgw bench reads it)
    assert after["broker"] != before["broker"] and after["exchange"] != before["exchange"]
    assert after["cfu1"] == before["cfu1"]
    # the nodes reconnect to the new broker and the street to the new venue: an order crosses
    # the market maker's offer, so it needs both
    deadline = time.monotonic() + 40
    while True:
        order = own_cluster.fixgw("order", "--config", str(own_cluster.config), "--sender", "CLIENT1",
                                  "--account", "ACC1", "buy", "10", "MSFT", "--price", "1000", "--wait", "10")
        if "OrdStatus 2 " in order.stdout:   # filled
            break
        assert time.monotonic() < deadline, order.stdout + order.stderr
    restarted = dt.datetime.now()

    up.send_signal(signal.SIGINT)
    assert up.wait(30) == 0
    out = (own_cluster.base / "up.log").read_text()
    assert "fixgw: stopping..." in out and "fixgw: stopped" in out, out
    assert "did not stop in time" not in out, out

    stopping: dict[str, dt.datetime] = {}
    stopped: dict[str, dt.datetime] = {}
    for name, role in NODES.items():
        path = own_cluster.data / "logs" / f"{name}.log"
        log = path.read_text().splitlines()
        stopping[name] = _stamp(_line(log, f"{name} ({role}) stopping", path))
        stopped[name] = _stamp(_line(log, f"{name} ({role}) stopped", path))
        # the broker outlived the node: it never saw the broker go while stopping
        assert not [ln for ln in log if "unavailable" in ln and _stamp(ln) > restarted], (path, log[-10:])
    customers_done = max(stopped[n] for n, r in NODES.items() if r == "customer")
    assert all(stopping[n] >= customers_done for n, r in NODES.items() if r != "customer"), (stopping, stopped)
