"""A QuickFIX client (the C++ engine from PyPI) as the brokerage's customer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import quickfix as fix

from tests.interop.quickfix_initiator import InitiatorConfig, QuickfixInitiator, new_order_single
from tests.support.cluster import Cluster

pytestmark = pytest.mark.timeout(120)


def fields(raw: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for part in raw.split("|"):
        tag, _, value = part.partition("=")
        if tag.isdigit():
            out.setdefault(int(tag), value)
    return out


def test_quickfix_customer_trades_and_cancels(cluster: Cluster, tmp_path: Path) -> None:
    asyncio.run(_trade(cluster, tmp_path))


async def _trade(cluster: Cluster, tmp_path: Path) -> None:
    qf = QuickfixInitiator(InitiatorConfig(host="127.0.0.1", port=cluster.ports["cfu2"], store_dir=tmp_path / "qf",
                                           begin_string="FIX.4.2", sender_comp_id="CLIENT2", target_comp_id="FIXGW"))
    qf.start()
    try:
        await qf.until(qf.logged_on, 15, "logon")
        # CLIENT2 trades one account only (ACC2), so Account (1) may be left out
        sid = qf.session_id
        fix.Session.sendToTarget(new_order_single("FIX.4.2", "Q1", qty=100, price="150", symbol="IBM", side="2"), sid)
        fix.Session.sendToTarget(new_order_single("FIX.4.2", "Q2", qty=10, price="100", symbol="IBM", side="1"), sid)

        def reports(cl: str) -> list[dict[int, str]]:
            return [fields(r.raw) for r in qf.reports() if r.cl_ord_id == cl]

        await qf.until(lambda: any(f.get(39) == "2" for f in reports("Q1")), 20, "Q1 filled")
        await qf.until(lambda: any(f.get(39) == "0" for f in reports("Q2")), 20, "Q2 new")
        q1 = reports("Q1")
        # FIX 4.2: ExecTransType present, fills as ExecType 1/2 (no F)
        assert [f[150] for f in q1][:2] == ["A", "0"] and q1[-1][150] == "2" and all(f[20] == "0" for f in q1)
        assert q1[-1][14] == "100" and q1[-1][151] == "0"

        cxl = fix.Message()
        cxl.getHeader().setField(fix.BeginString("FIX.4.2"))
        cxl.getHeader().setField(fix.MsgType("F"))
        for tag, value in ((41, "Q2"), (11, "Q3"), (55, "IBM"), (54, "1"), (38, "10"), (60, "20260101-00:00:00")):
            cxl.setField(fix.StringField(tag, value))
        fix.Session.sendToTarget(cxl, sid)
        await qf.until(lambda: any(f.get(39) == "4" for f in reports("Q3")), 20, "Q2 canceled")
        done = next(f for f in reports("Q3") if f.get(39) == "4")
        assert done[41] == "Q2" and done[150] == "4"
        # QuickFIX validated every report against its own dictionary: none was rejected
        _, _admin_in, admin_out = qf.app.snapshot()
        assert not [m for m in admin_out if m.msg_type == "3"], "QuickFIX rejected one of our messages"
        assert await qf.logout_async()
    finally:
        qf.close()
