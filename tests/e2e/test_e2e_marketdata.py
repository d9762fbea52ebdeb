"""Market data for customers through the whole cluster (issue 16 item 5): QuickFIX customers
(data dictionary on: QuickFIX validates every W, X and Y before handing it over; our own
dictionary checks them again, ``invalid``) on BOTH customer utilities, FIX 4.4 and 4.2, all
subscribed to the same symbol; the venue holds ONE subscription for it (its metrics say so),
made by one street utility whatever the number of customers.

Shown: snapshots of an uncrossed book, an X at every subscriber after an order moves the
book, unsubscribe (no more X), the rejects (duplicate MDReqID, unknown symbol, unsupported
entry type), and the venue's subscription ending once every customer logged out.
Runs on the session's shared cluster (tests/e2e/conftest.py): no cluster start of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from fixgw.message import Message
from tests.support.cluster import Cluster
from tests.support.prometheus import scrape
from tests.venues.test_marketdata_quickfix import entries, send_v
from tests.venues.vfix_support import SPEC_DIR, QuickfixClients, now_ts

pytestmark = pytest.mark.timeout(120)
SYMBOL = "AAPL"
# (sender, FIX version, customer utility): several customers, both utilities, both versions
CUSTOMERS = (("CLIENT1", "FIX.4.4", "cfu1"), ("CLIENT2", "FIX.4.4", "cfu2"), ("BENCH1", "FIX.4.4", "cfu2"),
             ("BENCH2", "FIX.4.2", "cfu1"))


def venue_subscriptions(cl: Cluster, symbol: str) -> float:
    _, samples = scrape(f"http://127.0.0.1:{cl.ports['m_exchange']}/metrics")
    return sum(v for (n, labels), v in samples.items()
               if n == "fixgw_venue_md_subscriptions" and ("symbol", symbol) in labels)


async def until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s: {what}")
        await asyncio.sleep(0.05)


def is_(msg_type: bytes, req_id: str) -> Callable[[Message], bool]:
    return lambda m: m.msg_type == msg_type and m.get_str(262) == req_id


def has_level(side: str, price: Decimal, size: Decimal | None = None) -> Callable[[Message], bool]:
    def pred(m: Message) -> bool:
        return m.msg_type == b"X" and any(
            e.get(269) == side and Decimal(e[270]) == price and (size is None or Decimal(e[271]) == size)
            for e in entries(m))
    return pred


def settings(cl: Cluster, tmp: Path) -> Path:
    text = ("[DEFAULT]\nConnectionType=initiator\nSocketConnectHost=127.0.0.1\nHeartBtInt=30\n"
            "ReconnectInterval=1\nStartTime=00:00:00\nEndTime=00:00:00\nResetOnLogon=Y\n"
            f"FileStorePath={tmp / 'store'}\nFileLogPath={tmp / 'log'}\nUseDataDictionary=Y\nTargetCompID=FIXGW\n")
    for sender, begin, node in CUSTOMERS:
        dd = SPEC_DIR / ("FIX44.xml" if begin == "FIX.4.4" else "FIX42.xml")
        text += (f"[SESSION]\nBeginString={begin}\nSenderCompID={sender}\nSocketConnectPort={cl.ports[node]}\n"
                 f"DataDictionary={dd}\n")
    path = tmp / "qf.cfg"
    path.write_text(text)
    return path


def test_customers_on_both_utilities_share_one_venue_subscription(cluster: Cluster, tmp_path: Path) -> None:
    asyncio.run(_scenario(cluster, tmp_path))


async def _scenario(cl: Cluster, tmp: Path) -> None:
    clients = QuickfixClients(settings(cl, tmp))
    clients.start()
    try:
        sessions = [clients.by_sender[s] for s, _, _ in CUSTOMERS]
        await until(lambda: all(s.logged_on() for s in sessions), 30, "every customer logged on")
        for s in sessions:
            send_v(s, f"md-{s.begin_string}", "1", [SYMBOL], ["0", "1", "2"])
        snaps = [await s.expect(is_(b"W", f"md-{s.begin_string}"), "snapshot", timeout=15) for s in sessions]
        for w in snaps:
            es = entries(w)
            bids = [Decimal(e[270]) for e in es if e[269] == "0"]
            offers = [Decimal(e[270]) for e in es if e[269] == "1"]
            assert w.get_str(55) == SYMBOL and bids and offers, es
            assert bids == sorted(bids, reverse=True) and offers == sorted(offers), es
            assert bids[0] < offers[0], f"crossed book {es}"
        # one street utility subscribed once at the venue for all four customers
        await until(lambda: venue_subscriptions(cl, SYMBOL) == 1, 10, "one venue subscription")

        # a bid resting well below the market maker's levels (which requote every second): a new
        # level of its own, and every subscriber sees it in an X
        best_bid = max(Decimal(e[270]) for e in entries(snaps[0]) if e[269] == "0")
        inside = best_bid - Decimal("2.00")
        c1 = sessions[0]
        c1.send("D", [(11, "MD-B1"), (21, "1"), (55, SYMBOL), (54, "1"), (60, now_ts()), (38, "7"), (40, "2"),
                      (44, str(inside)), (59, "0")])
        for s in sessions:
            x = await s.expect(has_level("0", inside, Decimal(7)), "the new bid at every subscriber", timeout=15)
            assert x.get_str(262) == f"md-{s.begin_string}"

        # unsubscribe one customer (BENCH1 on cfu2); the W asked after it proves it was done
        b1 = clients.by_sender["BENCH1"]
        send_v(b1, "md-FIX.4.4", "2", [SYMBOL], ["0", "1", "2"])
        send_v(b1, "after", "0", [SYMBOL], ["0", "1"])
        after = await b1.expect(is_(b"W", "after"), "snapshot after the unsubscribe", timeout=15)
        mark = len(b1.inbox.messages)
        second = inside - Decimal("0.50")
        c1.send("D", [(11, "MD-B2"), (21, "1"), (55, SYMBOL), (54, "1"), (60, now_ts()), (38, "3"), (40, "2"),
                      (44, str(second)), (59, "0")])
        for s in sessions:
            if s is not b1:
                await s.expect(has_level("0", second), "the second bid at the others", timeout=15)
        await asyncio.sleep(1.0)
        assert [m for m in b1.inbox.messages[mark:] if m.msg_type == b"X"] == [], "X after unsubscribe"
        assert after.get_str(55) == SYMBOL

        # rejects at the customer utility (CLIENT2 on cfu2): duplicate, unknown symbol, entry type
        c2 = clients.by_sender["CLIENT2"]
        send_v(c2, "md-FIX.4.4", "1", [SYMBOL], ["0"])
        assert (await c2.expect(is_(b"Y", "md-FIX.4.4"), "duplicate")).get_str(281) == "1"
        send_v(c2, "unk", "0", ["NOPE"], ["0"])
        assert (await c2.expect(is_(b"Y", "unk"), "unknown symbol")).get_str(281) == "0"
        send_v(c2, "typ", "1", [SYMBOL], ["0", "4"])
        assert (await c2.expect(is_(b"Y", "typ"), "entry type")).get_str(281) == "8"
        # the customer utility's market-data counters in its Prometheus metrics
        _, samples = scrape(f"http://127.0.0.1:{cl.ports['m_cfu2']}/metrics")
        md = {dict(labels)["counter"]: v for (n, labels), v in samples.items()
              if n == "fixgw_role_events_total" and dict(labels).get("counter", "").startswith("md_")}
        assert md["md_rejects"] >= 3 and md["md_snapshots"] >= 2 and md["md_requests"] >= 5, md
        # ... and the street utilities' quote feeds' (one of them subscribed at the venue)
        subscribes = 0.0
        for street in ("m_ssu1", "m_ssu2"):
            _, samples = scrape(f"http://127.0.0.1:{cl.ports[street]}/metrics")
            subscribes += sum(v for (n, labels), v in samples.items()
                              if n == "fixgw_role_events_total" and dict(labels).get("counter") == "md_subscribes")
        assert subscribes >= 1
        for s in sessions:
            assert s.invalid == [], s.invalid
            assert [m for m in s.inbox.messages if m.msg_type == b"3"] == []
        assert venue_subscriptions(cl, SYMBOL) == 1
        # the shared cluster's book as it was: the two bids leave
        for i, cl_ord_id in enumerate(("MD-B1", "MD-B2")):
            c1.send("F", [(41, cl_ord_id), (11, f"MD-X{i}"), (55, SYMBOL), (54, "1"), (38, "7" if i == 0 else "3"),
                          (60, now_ts())])
            cxl_id = f"MD-X{i}"
            await c1.expect(lambda m: m.msg_type == b"8" and m.get_str(11) == cxl_id and m.get_str(39) == "4",  # noqa: B023
                            "cancel", timeout=15)
    finally:
        clients.stop()
    # every customer logged out: their subscriptions ended, the venue's goes once nobody wants it
    await until(lambda: venue_subscriptions(cl, SYMBOL) == 0, 15, "the venue subscription ended")


def test_order_quote_prints_the_book_and_follows_it(cluster: Cluster) -> None:
    snap = cluster.fixgw("order", "--config", str(cluster.config), "--sender", "CLIENT2", "quote", SYMBOL,
                         "--depth", "3")
    assert snap.returncode == 0, snap.stdout + snap.stderr
    lines = snap.stdout.splitlines()
    assert lines[0].startswith(f"{SYMBOL}: ") and "bid" in lines[1] and len(lines) >= 5, snap.stdout
    best = lines[2].split("|")
    assert Decimal(best[0].split()[1]) < Decimal(best[1].split()[0]), snap.stdout    # uncrossed
    # --follow: the market maker requotes every second, so updates come; then it unsubscribes
    fol = cluster.fixgw("order", "--config", str(cluster.config), "--sender", "CLIENT2", "quote", SYMBOL,
                        "--follow", "2.5")
    assert fol.returncode == 0, fol.stdout + fol.stderr
    assert "change(s)  bid " in fol.stdout and fol.stdout.rstrip().endswith("unsubscribed"), fol.stdout
    bad = cluster.fixgw("order", "--config", str(cluster.config), "--sender", "CLIENT2", "quote", "NOPE")
    assert bad.returncode == 1 and "MDReqRejReason 0" in bad.stdout, bad.stdout + bad.stderr
