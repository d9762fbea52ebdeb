"""Session-level edges across engines: rejects, a Logout from either side, ResetSeqNumFlag.

- QuickFIX initiator -> fixgw acceptor: an unsupported MsgType gets BusinessMessageReject 380=3,
  an order without Side gets Reject 373=1 371=54, the sequence numbers stay in step; fixgw logs
  the session out (QuickFIX answers); QuickFIX logs on again with ResetOnLogon=Y (141=Y) over
  the old FileStore and both sides restart at 1.
- fixgw initiator -> QuickFIX acceptor: QuickFIX logs out when its process is stopped (fixgw
  answers), fixgw reconnects when QuickFIX is back; a fixgw ResetOnLogon=Y logon over the old
  LMDB store restarts both at 1.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
import quickfix as fix

from fixgw.config import SessionID
from fixgw.engine import Engine
from tests.interop.interop_fixgw_apps import (
    OrderBlotter,
    OrderDesk,
    acceptor_settings,
    initiator_settings,
    send_orders,
)
from tests.interop.quickfix_echo import QuickfixProcess
from tests.interop.quickfix_initiator import InitiatorConfig, QuickfixInitiator, until
from tests.support.broker import free_port


def qf_message(msg_type: str, fields: list[tuple[int, str]]) -> fix.Message:
    m = fix.Message()
    m.getHeader().setField(fix.BeginString("FIX.4.4"))
    m.getHeader().setField(fix.MsgType(msg_type))
    for tag, value in fields:
        m.setField(fix.StringField(tag, value))
    return m


@pytest.mark.timeout(60)
async def test_quickfix_initiator_fixgw_acceptor_rejects_logout_and_reset(tmp_path: Path) -> None:
    port = free_port()
    sid = SessionID("FIX.4.4", "FIXGW", "QFEDGE")
    desk = OrderDesk()
    engine = Engine(acceptor_settings(port, tmp_path / "fixgw-lmdb", "QFEDGE"), desk)
    await engine.start()
    config = InitiatorConfig(host="127.0.0.1", port=port, store_dir=tmp_path / "qf-store",
                             sender_comp_id="QFEDGE", target_comp_id="FIXGW")
    init = QuickfixInitiator(config)
    init2: QuickfixInitiator | None = None
    try:
        init.start()
        await init.until(init.logged_on, 10, "logon")
        status = qf_message("H", [(11, "X1"), (55, "IBM"), (54, "1")])
        assert fix.Session.sendToTarget(status, init.session_id)
        no_side = qf_message("D", [(11, "X2"), (21, "1"), (55, "IBM"), (60, "20260101-00:00:00"),
                                   (38, "1"), (40, "1")])
        assert fix.Session.sendToTarget(no_side, init.session_id)
        ids = init.send_orders("E", 10)
        await init.until(lambda: init.answered() >= set(ids), 10, "reports after the rejects")
        app_in, admin_in, _ = init.app.snapshot()
        bmr = [m for m in app_in if m.msg_type == "j"]
        assert len(bmr) == 1 and all(f in bmr[0].raw for f in ("|380=3|", "|372=H|", "|45=2|"))
        rej = [m for m in admin_in if m.msg_type == "3"]
        assert len(rej) == 1 and all(f in rej[0].raw for f in ("|373=1|", "|371=54|", "|45=3|"))
        assert desk.answered == set(ids)
        fx = engine.session(sid).session
        assert (init.next_sender_seq(), init.next_target_seq()) == (fx.next_target, fx.next_sender)

        # fixgw logs the session out; QuickFIX answers
        engine.session(sid).logout("end of day")
        await engine.session(sid).wait_disconnected(10)
        _, admin_in, admin_out = init.app.snapshot()
        assert any(m.msg_type == "5" and "|58=end of day|" in m.raw for m in admin_in)
        assert any(m.msg_type == "5" for m in admin_out)
        init.drop()  # before QuickFIX reconnects on its own

        # QuickFIX comes back with ResetOnLogon=Y over the same FileStore: 141=Y, both at 1
        init2 = QuickfixInitiator(dataclasses.replace(config, reset_on_logon=True))
        init2.start()
        await init2.until(init2.logged_on, 10, "logon with reset")
        _, admin_in, admin_out = init2.app.snapshot()
        assert "|141=Y|" in admin_out[0].raw and admin_out[0].seq_num == 1
        assert "|141=Y|" in admin_in[0].raw and admin_in[0].seq_num == 1
        ids = init2.send_orders("R", 5)
        await init2.until(lambda: init2.answered() >= set(ids), 10, "reports after the reset")
        await until(lambda: engine.session(sid).session.next_target == 7, 5, "fixgw read all 6")
        assert (init2.next_sender_seq(), init2.next_target_seq()) == (7, 7)
        assert await init2.logout_async()
        await engine.session(sid).wait_disconnected(10)
    finally:
        init.close()
        if init2 is not None:
            init2.close()
        await engine.stop()


@pytest.mark.timeout(60)
async def test_fixgw_initiator_quickfix_acceptor_logout_by_quickfix_and_reset(tmp_path: Path) -> None:
    port = free_port()
    events = tmp_path / "qf-events.jsonl"
    qf = QuickfixProcess(port, tmp_path / "qf-store", "FGEDGE", events=events)
    qf.start()
    sid = SessionID("FIX.4.4", "FGEDGE", "ISLD")
    blotter = OrderBlotter()
    settings = initiator_settings(port, tmp_path / "fixgw-lmdb", "FGEDGE")
    engine = Engine(settings, blotter)
    try:
        await engine.start()
        await engine.wait_logged_on(sid, 10)
        ids = await send_orders(engine, sid, "E", 10)
        await until(lambda: blotter.answered() >= set(ids), 10, "reports")

        # QuickFIX is stopped: it logs out first, fixgw answers
        code, out, err = await asyncio.to_thread(qf.terminate)
        assert "quickfix-echo stopped" in out
        assert code == 0, err
        assert [m.msg_type for m in blotter.admin_in][-1] == "5" and blotter.admin_out[-1] == "5"
        await until(lambda: not engine.session(sid).logged_on, 5, "fixgw logged out")

        # QuickFIX is back: fixgw reconnects and carries on where it was
        qf.start()
        await engine.wait_logged_on(sid, 10)
        ids = await send_orders(engine, sid, "F", 10)
        await until(lambda: blotter.answered() >= set(ids), 10, "reports after the reconnect")
        assert blotter.logons == 2 and not [m for m in blotter.admin_in if m.msg_type in ("2", "3")]
        await engine.stop()

        # fixgw with ResetOnLogon=Y over the same LMDB store: 141=Y, both at 1
        blotter = OrderBlotter()
        engine = Engine([dataclasses.replace(settings[0], reset_on_logon=True)], blotter)
        await engine.start()
        await engine.wait_logged_on(sid, 10)
        first = blotter.admin_in[0]
        assert first.msg_type == "A" and first.seq_num == 1
        ids = await send_orders(engine, sid, "R", 5)
        await until(lambda: blotter.answered() >= set(ids), 10, "reports after the reset")
        assert [r.seq_num for r in blotter.reports] == [2, 3, 4, 5, 6]
        await engine.stop()
        assert blotter.admin_in[-1].msg_type == "5"
    finally:
        await engine.stop()
        qf.kill()
