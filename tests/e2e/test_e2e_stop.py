"""Ctrl-C on ``fixgw up`` stops the cluster cleanly, in order: customer utilities first (no new
orders), then the street utilities and the firm, then the venues, and the broker last, so
that no node loses its broker while it is still stopping."""

from __future__ import annotations

import datetime as dt
import signal
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


def test_ctrl_c_stops_every_process_in_order(own_cluster: Cluster) -> None:
    up = own_cluster.up
    assert up is not None
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
        assert not [ln for ln in log if "unavailable" in ln], (path, log[-10:])
    customers_done = max(stopped[n] for n, r in NODES.items() if r == "customer")
    assert all(stopping[n] >= customers_done for n, r in NODES.items() if r != "customer"), (stopping, stopped)
