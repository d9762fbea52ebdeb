"""The web dashboard (issue 15, item 4) in a real headless chromium: ``fixgw up`` serves it at
the ``dashboard_url`` of ``fixgw status --json``; the page shows every node of the cluster,
an order the test places (by its OrderID, with its status from the fold) within seconds,
the books of its account, the FIX sessions, and it keeps updating (server-sent events)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from tests.support.browser import Chromium
from tests.support.cluster import Cluster
from tests.support.fixclient import FixClient

pytestmark = pytest.mark.timeout(300)

PAGE_STATE = """JSON.stringify({
  ticks: window.dashboardTicks || 0,
  nodes: [...document.querySelectorAll('#nodes tbody tr')].map(r => [r.dataset.node, r.dataset.alive]),
  orders: Object.fromEntries([...document.querySelectorAll('#orders tbody tr')].map(
      r => [r.dataset.txn, [r.dataset.status, r.cells[4].textContent]])),
  books: Object.fromEntries([...document.querySelectorAll('#books tbody tr')].map(
      r => [r.dataset.account, r.cells[3].textContent])),
  sessions: [...document.querySelectorAll('#sessions tbody tr')].map(r => r.dataset.session),
  lines: [...document.querySelectorAll('#lag-chart polyline')].map(
      p => [p.dataset.node, p.getAttribute('points').split(' ').length]),
  updated: document.getElementById('updated')?.textContent ?? '',
  last_sample: window.dashboardState?.lag_history?.at(-1)?.t ?? 0,
})"""


def page_until(browser: Chromium, check: Any, what: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state: dict[str, Any] = json.loads(browser.evaluate(PAGE_STATE))
        if check(state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"the page did not show {what} within {timeout}s; it shows {state}")
        time.sleep(0.25)


async def _place_order(cl: Cluster) -> str:
    async with FixClient(cl.ports["cfu1"], "BENCH2", "FIXGW") as c:
        cl_ord_id = c.new_order(symbol="MSFT", side="1", qty="7", price="500.00", account="BENCH")
        while True:
            m = await c.until(lambda m: m.msg_type == b"8" and m.get_str(11) == cl_ord_id, 30)
            if m.get_str(39) == "2":
                return m.get_str(37) or ""


def test_dashboard_in_headless_chromium(cluster: Cluster) -> None:
    r = cluster.fixgw("status", "--config", str(cluster.config), "--json")
    assert r.returncode == 0, r.stderr
    url = json.loads(r.stdout)["dashboard_url"]
    assert url == f"http://127.0.0.1:{cluster.ports['dashboard']}/"
    assert f"fixgw: dashboard on {url}" in (cluster.base / "up.log").read_text()

    with Chromium(url) as browser:
        every = {"cfu1", "cfu2", "ssu1", "ssu2", "firm"}
        first = page_until(browser, lambda s: {n for n, alive in s["nodes"] if alive == "true"} == every,
                           "every node alive")
        assert sorted(n for n, _ in first["nodes"]) == sorted(every)
        # the street utilities' sessions to the venues are listed
        page_until(browser, lambda s: any("FIXGW-SSU1->EXCH" in x for x in s["sessions"]), "the FIX sessions")

        started = time.monotonic()
        txn = asyncio.run(_place_order(cluster))
        assert txn.startswith("cfu1-")
        shown = page_until(browser, lambda s: s["orders"].get(txn, [""])[0] == "2", f"order {txn} filled",
                           timeout=15)
        assert shown["orders"][txn][1] == "Filled"
        assert "MSFT" in shown["books"]["BENCH"]
        assert time.monotonic() - started < 45

        # it keeps updating: more events arrive, the lag chart grows, every node has a line
        later = page_until(browser, lambda s: s["ticks"] >= shown["ticks"] + 3, "further updates", timeout=15)
        assert later["updated"] != shown["updated"]
        assert {n for n, _ in later["lines"]} == every
        assert min(points for _, points in later["lines"]) >= 2
        assert later["last_sample"] > shown["last_sample"] > first["last_sample"]
