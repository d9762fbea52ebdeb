"""fixgw initiator -> QuickFIX acceptor, over real loopback sockets with persistent stores.

The QuickFIX acceptor is ``quickfix_echo.py --reply new|fill --no-reset`` in a child process
(FileStore; every NewOrderSingle answered with an ExecutionReport and written to an events
file); the fixgw side is an :class:`~fixgw.engine.Engine` initiator with an LMDB store. A TCP
relay between them (``interop_proxy``) stalls and cuts the connection; the QuickFIX process is
killed (SIGKILL) and restarted from its FileStore.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixgw.config import SessionID
from fixgw.engine import Engine
from tests.interop.interop_fixgw_apps import (
    OrderBlotter,
    initiator_settings,
    new_order_single,
    send_orders,
)
from tests.interop.interop_links import quickfix_acceptor_link, strictly_increasing
from tests.interop.quickfix_echo import QuickfixProcess, read_events
from tests.interop.quickfix_initiator import until
from tests.support.broker import free_port

ME = "FIXGWC"


@pytest.mark.timeout(90)
async def test_fixgw_initiator_to_quickfix_acceptor_orders_gap_resend_logout(tmp_path: Path) -> None:
    async with quickfix_acceptor_link(tmp_path, ME) as link:
        qf, proxy, engine, blotter, sid, events = link.qf, link.proxy, link.engine, link.blotter, link.sid, link.events
        await engine.start()
        await engine.wait_logged_on(sid, 10)

        # 1. 1,000 orders, each answered once, in sequence
        batch_a = await send_orders(engine, sid, "A", 1000)
        await until(lambda: blotter.answered() >= set(batch_a), 30, "1,000 ExecutionReports")
        assert sorted(r.cl_ord_id or "" for r in blotter.reports) == sorted(batch_a)
        assert not any(r.poss_dup for r in blotter.reports)
        assert strictly_increasing([r.seq_num for r in blotter.reports])
        received = read_events(events)
        assert [e[0] for e in received] == batch_a and not any(e[2] for e in received)
        assert strictly_increasing([e[1] for e in received])
        assert not [m for m in blotter.admin_in if m.msg_type in ("2", "3", "4")]
        assert not [m for m in blotter.admin_out if m in ("2", "3", "4")]

        # 2. a gap each way: QuickFIX answers 200 orders whose reports never arrive, then fixgw
        #    sends 50 orders that never arrive; the connection is cut
        proxy.hold("down")
        batch_b = await send_orders(engine, sid, "B", 200)
        await until(lambda: {e[0] for e in read_events(events)} >= set(batch_b), 20, "QuickFIX got B")
        await until(lambda: proxy.held_messages("down") >= 200, 10, "B reports held in the relay")
        proxy.hold("up")
        batch_c = await send_orders(engine, sid, "C", 50)
        await until(lambda: proxy.held_messages("up") >= 50, 10, "C orders held in the relay")
        proxy.cut()
        assert not blotter.answered() & set(batch_b)

        # 3. QuickFIX crashes (SIGKILL) and restarts from its FileStore
        qf.kill()
        qf.start()

        # 4. fixgw reconnects by itself; each side asks for what it missed
        everything = set(batch_a) | set(batch_b) | set(batch_c)
        await until(lambda: blotter.answered() >= everything, 30, "the gap filled both ways")
        by_id: dict[str, list[bool]] = {}
        for r in blotter.reports:
            by_id.setdefault(r.cl_ord_id or "", []).append(r.poss_dup)
        assert all(by_id[c] == [True] for c in batch_b)  # B reports: resent once, PossDupFlag=Y
        assert all(by_id[c] == [False] for c in batch_c)  # C reports: new answers to resent orders
        assert sum(len(v) for v in by_id.values()) == len(everything)  # nothing twice, nothing lost
        c_orders = [e for e in read_events(events) if e[0] in set(batch_c)]
        assert [e[0] for e in c_orders] == batch_c and all(e[2] for e in c_orders)
        assert "2" in blotter.admin_out  # fixgw asked for the B reports
        assert any(m.msg_type == "2" for m in blotter.admin_in)  # QuickFIX asked for the C orders
        assert "3" not in blotter.admin_out and not [m for m in blotter.admin_in if m.msg_type == "3"]
        assert blotter.logons == 2

        # 5. business as usual after the recovery
        batch_d = await send_orders(engine, sid, "D", 100)
        await until(lambda: blotter.answered() >= set(batch_d), 20, "D reports")
        assert all(not r.poss_dup for r in blotter.reports if r.cl_ord_id in set(batch_d))

        # 6. logout (the engine logs out when it stops), answered by QuickFIX
        await engine.stop()
        assert blotter.logouts == blotter.logons == 2  # the cut ended the first logon
        assert blotter.admin_out[-1] == "5" and blotter.admin_in[-1].msg_type == "5"
        code, out, err = qf.terminate()
        assert code == 0, err
        assert "quickfix-echo stopped" in out


@pytest.mark.timeout(60)
@pytest.mark.parametrize("reply", ["new", "fill"])
async def test_fixgw_initiator_to_quickfix_acceptor_fix42(tmp_path: Path, reply: str) -> None:
    qf_port = free_port()
    events = tmp_path / "qf-events.jsonl"
    qf = QuickfixProcess(qf_port, tmp_path / "qf-store", ME, events=events, reply=reply)
    qf.start()
    sid = SessionID("FIX.4.2", ME, "ISLD")
    blotter = OrderBlotter()
    engine = Engine(initiator_settings(qf_port, tmp_path / "fixgw-lmdb", ME, begin_string="FIX.4.2"), blotter)
    try:
        await engine.start()
        await engine.wait_logged_on(sid, 10)
        ids = await send_orders(engine, sid, "F", 200)
        await until(lambda: blotter.answered() >= set(ids), 20, "200 ExecutionReports")
        assert sorted(r.cl_ord_id or "" for r in blotter.reports) == sorted(ids)
        assert [e[0] for e in read_events(events)] == ids
        assert not [m for m in blotter.admin_in if m.msg_type in ("2", "3")]
        await engine.stop()
        assert blotter.logouts == 1 and blotter.admin_in[-1].msg_type == "5"
    finally:
        await engine.stop()
        qf.kill()


@pytest.mark.timeout(60)
async def test_fixgw_initiator_to_quickfix_acceptor_cut_in_full_flow(tmp_path: Path) -> None:
    """The connection is cut while orders and reports stream both ways (nothing held back):
    whatever was lost in flight comes back by resend, and every order gets exactly one report."""
    async with quickfix_acceptor_link(tmp_path, ME) as link:
        proxy, engine, blotter, sid = link.proxy, link.engine, link.blotter, link.sid
        await engine.start()
        await engine.wait_logged_on(sid, 10)
        # cut in mid-stream, once 100 reports have passed: orders and reports are in the relay
        # and in the socket buffers both ways
        proxy.cut_after("down", 100)
        ids = [f"S{i:06d}" for i in range(600)]
        for cl in ids:
            engine.send_to_target(new_order_single(cl), sid)
        await until(lambda: blotter.logons >= 2, 20, "fixgw logged on again")
        await until(lambda: blotter.answered() >= set(ids), 30, "every order answered")
        assert sorted(r.cl_ord_id or "" for r in blotter.reports) == sorted(ids)  # one report each
        assert len({r.seq_num for r in blotter.reports}) == len(blotter.reports)
        assert any(r.poss_dup for r in blotter.reports)  # some reports were lost and resent
        assert blotter.logons == 2 and proxy.cuts == 1
        await engine.stop()
        assert blotter.admin_in[-1].msg_type == "5"
