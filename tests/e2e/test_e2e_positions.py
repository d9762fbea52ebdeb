"""Positions and balances asked by a QuickFIX 4.4 customer (data dictionary on: QuickFIX itself
validates every AO / AP / BA / BG it receives) on one real cluster for the whole module; a
FIX 4.2 customer gets BusinessMessageReject for the same questions."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import quickfix as fix

from tests.e2e.qf_customer import QfCustomer, now_ts
from tests.interop.quickfix_initiator import until
from tests.support.cluster import Cluster

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def pcluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("positions"), day_seconds=2.0)
    c.start()
    try:
        yield c
    finally:
        c.stop()


def all_fields(raw: str) -> list[tuple[int, str]]:
    out = []
    for part in raw.split("|"):
        tag, _, value = part.partition("=")
        if tag.isdigit():
            out.append((int(tag), value))
    return out


def get(raw: str, tag: int) -> str | None:
    return next((v for t, v in all_fields(raw) if t == tag), None)


def fin_qty(raw: str) -> Decimal:
    """The FIN entry of PositionQty: LongQty - ShortQty."""
    f = all_fields(raw)
    i = next(k for k, (t, v) in enumerate(f) if t == 703 and v == "FIN")
    long_ = next(v for t, v in f[i:] if t == 704)
    short = next(v for t, v in f[i:] if t == 705)
    return Decimal(long_) - Decimal(short)


class Asker:
    def __init__(self, c: QfCustomer) -> None:
        self.c = c

    def send(self, msg_type: str, body: list[tuple[int, str]]) -> None:
        self.c._send(msg_type, body)

    def app(self, *types: str) -> list[str]:
        return [r.raw for r in self.c.qf.app.snapshot()[0] if r.msg_type in types]

    def positions(self, req: str, account: str = "ACC1", sub: str = "0") -> None:
        self.send("AN", [(710, req), (724, "0"), (263, sub), (1, account), (581, "1"),
                         (715, time.strftime("%Y%m%d")), (60, now_ts())])


def firm_books(cl: Cluster) -> dict[str, dict[str, object]]:
    out = cl.fixgw("firm", "books", "--data", str(cl.data / "firm"), "--json")
    assert out.returncode == 0, out.stderr
    books: dict[str, dict[str, object]] = json.loads(out.stdout)
    return books


def test_positions_balances_subscription_and_refusals(pcluster: Cluster, tmp_path: Path) -> None:
    asyncio.run(_scenario(pcluster, tmp_path))


async def _scenario(cl: Cluster, tmp_path: Path) -> None:
    c = QfCustomer(cl, tmp_path / "c1", client="CLIENT1")
    old = QfCustomer(cl, tmp_path / "c2", begin="FIX.4.2", client="CLIENT2", first="cfu2", then="cfu1")
    c.start()
    old.start()
    a = Asker(c)
    try:
        await until(c.qf.app.logged_on, 20, "CLIENT1 logon")
        await until(old.qf.app.logged_on, 20, "CLIENT2 logon")

        # a subscription first (SubscriptionRequestType 1): the opening positions, then updates
        a.positions("SUB1", sub="1")
        await until(lambda: len(a.app("AP")) >= 2, 20, "subscription snapshot")
        ack = a.app("AO")[0]
        assert (get(ack, 710), get(ack, 728), get(ack, 729), get(ack, 727)) == ("SUB1", "0", "0", "2")
        assert {get(r, 55): fin_qty(r) for r in a.app("AP")} == {"AAPL": Decimal(1000), "MSFT": Decimal(500)}

        # a marketable buy fills: the subscription reports the new AAPL position, unsolicited
        c._send("D", [(11, "P1"), (1, "ACC1"), (21, "1"), (55, "AAPL"), (54, "1"), (60, now_ts()),
                      (38, "100"), (40, "2"), (44, "200"), (59, "0")])
        await until(lambda: any(f.get(39) == "2" for f in c.reports() if f.get(11) == "P1"), 30, "P1 filled")
        await until(lambda: any(get(r, 325) == "Y" and fin_qty(r) == 1100 for r in a.app("AP")), 20,
                    "subscription update after the fill")
        upd = next(r for r in a.app("AP") if get(r, 325) == "Y" and fin_qty(r) == 1100)
        assert (get(upd, 55), get(upd, 710), get(upd, 263)) == ("AAPL", "SUB1", "1")

        # unsubscribe (263=2): acknowledged; a later fill sends no more updates
        a.positions("SUB1", sub="2")
        await until(lambda: len(a.app("AO")) >= 2, 20, "unsubscribe ack")
        assert get(a.app("AO")[1], 728) == "0"
        updates = len([r for r in a.app("AP") if get(r, 325) == "Y"])
        c._send("D", [(11, "P2"), (1, "ACC1"), (21, "1"), (55, "AAPL"), (54, "1"), (60, now_ts()),
                      (38, "10"), (40, "2"), (44, "200"), (59, "0")])
        await until(lambda: any(f.get(39) == "2" for f in c.reports() if f.get(11) == "P2"), 30, "P2 filled")

        # a snapshot after the fills equals the firm's books (the firm folds the replicated fills)
        deadline = time.monotonic() + 30
        while True:
            books = firm_books(cl)["ACC1"]
            positions = books["positions"]
            assert isinstance(positions, dict)
            if Decimal(positions.get("AAPL", "0")) == 1110 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        n_ap = len(a.app("AP"))
        a.positions("SNAP1")
        await until(lambda: len(a.app("AP")) >= n_ap + 2, 20, "snapshot reports")
        snap = {get(r, 55): fin_qty(r) for r in a.app("AP") if get(r, 710) == "SNAP1"}
        assert snap == {k: Decimal(v) for k, v in positions.items() if Decimal(v) != 0}
        # the snapshot was asked after P2's fill report, so an update for P2 would have come before it
        assert len([r for r in a.app("AP") if get(r, 325) == "Y"]) == updates
        assert snap["AAPL"] == 1110

        # balances (CollateralInquiry BB -> CollateralReport BA): the firm's cash, settled cash, buying power
        a.send("BB", [(909, "BAL1"), (1, "ACC1")])
        await until(lambda: bool(a.app("BA")), 20, "collateral report")
        ba = a.app("BA")[0]
        assert (get(ba, 909), get(ba, 1)) == ("BAL1", "ACC1")
        assert (Decimal(get(ba, 900) or "x"), Decimal(get(ba, 901) or "x"), Decimal(get(ba, 899) or "x")) == \
            (Decimal(str(books["cash"])), Decimal(str(books["cash_settled"])), Decimal(str(books["buying_power"])))
        assert Decimal(get(ba, 921) or "x") == Decimal(1000000)

        # another customer's account: refused (AO 728=3 / 729=2; BG 945=4 / 946=9)
        a.positions("OTHER", account="ACC2")
        a.send("BB", [(909, "BAL2"), (1, "ACC2")])
        await until(lambda: any(get(r, 710) == "OTHER" for r in a.app("AO")) and bool(a.app("BG")), 20, "refusals")
        other = next(r for r in a.app("AO") if get(r, 710) == "OTHER")
        assert (get(other, 728), get(other, 729), get(other, 727)) == ("3", "2", "0")
        bg = a.app("BG")[0]
        assert (get(bg, 909), get(bg, 945), get(bg, 946)) == ("BAL2", "4", "9")
        assert not [r for r in a.app("AP") if get(r, 1) == "ACC2"]

        # FIX 4.2: BusinessMessageReject 380=3 for both message types
        old._send("AN", [(710, "X1"), (724, "0"), (1, "ACC2")])
        old._send("BB", [(909, "X2"), (1, "ACC2")])

        def bmrs() -> list[str]:
            return [r.raw for r in old.qf.app.snapshot()[0] if r.msg_type == "j"]

        await until(lambda: len(bmrs()) >= 2, 20, "FIX 4.2 business rejects")
        assert sorted((get(r, 372), get(r, 380)) for r in bmrs()) == [("AN", "3"), ("BB", "3")]

        # QuickFIX validated everything it received against FIX44.xml / FIX42.xml: it rejected nothing
        for who in (c, old):
            assert not [r.raw for r in who.admin_out() if r.msg_type == "3"], "QuickFIX rejected one of our messages"

        # the command line asks the same (our engine as the FIX 4.4 client, in CLIENT1's session: QuickFIX's logs out first)
        assert await c.qf.logout_async()
        out = cl.fixgw("order", "--config", str(cl.config), "--sender", "CLIENT1", "--account", "ACC1", "positions")
        assert out.returncode == 0, out.stdout + out.stderr
        assert [ln.split()[:3] for ln in out.stdout.splitlines()] == \
            [["ACC1", sym, str(qty)] for sym, qty in sorted(snap.items())]
        out = cl.fixgw("order", "--config", str(cl.config), "--sender", "CLIENT1", "--account", "ACC1", "balance")
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.startswith(f"ACC1: cash {get(ba, 900)}  settled {get(ba, 901)}  buying power {get(ba, 899)}")

    finally:
        c.close()
        old.close()


def test_fix42_sends_nothing_unknown_to_quickfix() -> None:
    """The 4.2 dictionary indeed lacks the 4.4 account messages (so 4.2 sessions cannot be
    answered with them): what the BusinessMessageReject above stands for."""
    dd = fix.DataDictionary(str(Path(__file__).resolve().parents[2] / "fixgw" / "spec" / "FIX42.xml"))
    assert not dd.isMsgType("AN") and not dd.isMsgType("BB")
    dd44 = fix.DataDictionary(str(Path(__file__).resolve().parents[2] / "fixgw" / "spec" / "FIX44.xml"))
    assert dd44.isMsgType("AN") and dd44.isMsgType("AP") and dd44.isMsgType("BA")
