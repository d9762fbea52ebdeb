"""Heart-beats across engines: a silent line is noticed (TestRequest, then disconnect), and the
admin messages lost meanwhile are gap-filled (SequenceReset 123=Y) while the reports are resent.

HeartBtInt=1 in both tests, so that a silent line is noticed within ~3 s.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import quickfix as fix

from fixgw.config import SessionID
from fixgw.engine import Engine
from tests.interop.interop_fixgw_apps import (
    OrderDesk,
    acceptor_settings,
    send_orders,
)
from tests.interop.interop_links import quickfix_acceptor_link
from tests.interop.interop_proxy import CuttableProxy
from tests.interop.quickfix_echo import read_events
from tests.interop.quickfix_initiator import InitiatorConfig, QuickfixInitiator, until
from tests.support.broker import free_port

CLIENT = "QFHB"
ME = "FIXGWHB"


@pytest.mark.timeout(60)
async def test_fixgw_acceptor_silent_line_quickfix_initiator_notices_and_gap_fills(tmp_path: Path) -> None:
    port = free_port()
    sid = SessionID("FIX.4.4", "FIXGW", CLIENT)
    desk = OrderDesk()
    engine = Engine(acceptor_settings(port, tmp_path / "fixgw-lmdb", CLIENT), desk)
    await engine.start()
    proxy = CuttableProxy(port)
    await proxy.start()
    init = QuickfixInitiator(InitiatorConfig(
        host="127.0.0.1", port=proxy.port, store_dir=tmp_path / "qf-store",
        sender_comp_id=CLIENT, target_comp_id="FIXGW", heartbeat_s=1,
    ))
    try:
        init.start()
        await init.until(init.logged_on, 10, "QuickFIX logged on")
        await until(lambda: sum(m.msg_type == "0" for m in init.app.snapshot()[1]) >= 2, 5,
                    "heart-beats from fixgw")
        # fixgw answers a TestRequest with its TestReqID
        tr = fix.Message()
        tr.getHeader().setField(fix.BeginString("FIX.4.4"))
        tr.getHeader().setField(fix.MsgType("1"))
        tr.setField(fix.TestReqID("PING-1"))
        assert fix.Session.sendToTarget(tr, init.session_id)
        await until(lambda: any("|112=PING-1|" in m.raw for m in init.app.snapshot()[1]
                                if m.msg_type == "0"), 5, "Heartbeat 112=PING-1")

        # the line from fixgw goes silent: reports and heart-beats pile up in the relay
        proxy.hold("down")
        ids = init.send_orders("H", 20)
        await until(lambda: desk.answered >= set(ids), 10, "fixgw answered")
        # QuickFIX sends a TestRequest, hears nothing, and drops the connection itself
        await init.until(lambda: not init.logged_on(), 10, "QuickFIX gave up on the line")
        assert any(m.msg_type == "1" for m in init.app.snapshot()[2])
        proxy.cut()  # release the relay's hold for the next connection
        await init.until(lambda: init.answered() >= set(ids), 20, "reports resent")
        # the heart-beats fixgw sent after its last report are gap-filled after the resent
        # reports: wait for that SequenceReset rather than race it
        await until(lambda: any(m.msg_type == "4" for m in init.app.snapshot()[1]), 5,
                    "SequenceReset-GapFill for the admin messages")
        _, admin_in, _ = init.app.snapshot()
        assert all(r.poss_dup for r in init.reports() if r.cl_ord_id in set(ids))
        gap_fills = [m for m in admin_in if m.msg_type == "4"]
        assert gap_fills and all("|123=Y|" in m.raw and m.poss_dup for m in gap_fills)
        assert not [m for m in admin_in + init.app.snapshot()[2] if m.msg_type == "3"]
        fx = engine.session(sid).session
        # heart-beats keep flowing (every second): the two sides agree once the line is quiet
        await until(lambda: init.next_target_seq() == fx.next_sender and init.next_sender_seq() == fx.next_target,
                    5, f"sequence numbers agree: QuickFIX {init.next_sender_seq()}/{init.next_target_seq()} "
                       f"fixgw {fx.next_target}/{fx.next_sender}")
        assert await init.logout_async()
    finally:
        init.close()
        await proxy.close()
        await engine.stop()


@pytest.mark.timeout(60)
async def test_quickfix_acceptor_silent_line_fixgw_initiator_notices_and_gap_fills(tmp_path: Path) -> None:
    async with quickfix_acceptor_link(tmp_path, ME, heartbeat_s=1) as link:
        proxy, engine, blotter, sid, events = link.proxy, link.engine, link.blotter, link.sid, link.events
        await engine.start()
        await engine.wait_logged_on(sid, 10)
        await until(lambda: sum(m.msg_type == "0" for m in blotter.admin_in) >= 2, 5, "heart-beats from QuickFIX")
        assert "0" in blotter.admin_out  # and fixgw's own

        proxy.hold("down")
        ids = await send_orders(engine, sid, "H", 20)
        # fixgw sends a TestRequest, hears nothing, and drops the connection itself
        await until(lambda: not engine.session(sid).logged_on, 10, "fixgw gave up on the line")
        assert "1" in blotter.admin_out
        proxy.cut()
        await until(lambda: blotter.answered() >= set(ids), 20, "reports resent")
        # trailing heart-beats are gap-filled after the last resent report: wait, don't race
        await until(lambda: any(m.msg_type == "4" for m in blotter.admin_in), 5,
                    "SequenceReset-GapFill for the admin messages")
        assert all(r.poss_dup for r in blotter.reports if r.cl_ord_id in set(ids))
        gap_fills = [m for m in blotter.admin_in if m.msg_type == "4"]
        assert gap_fills and all(m.gap_fill and m.poss_dup for m in gap_fills)
        assert "3" not in blotter.admin_out and not [m for m in blotter.admin_in if m.msg_type == "3"]
        assert [e[0] for e in read_events(events)] == ids  # each order reached QuickFIX once
        await engine.stop()
        assert blotter.admin_in[-1].msg_type == "5"

