"""QuickFIX initiator -> fixgw acceptor, over real loopback sockets with persistent stores.

The QuickFIX side is the C++ engine (Python binding) with a FileStore; the fixgw side is an
:class:`~fixgw.engine.Engine` with an LMDB store and a small order desk application. Between them
sits a TCP relay the test can stall and cut (``interop_proxy``), to lose messages in flight.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixgw.config import SessionID
from fixgw.engine import Engine
from tests.interop.interop_fixgw_apps import OrderDesk, acceptor_settings
from tests.interop.interop_links import strictly_increasing
from tests.interop.interop_proxy import CuttableProxy
from tests.interop.quickfix_initiator import InitiatorConfig, QuickfixInitiator, until
from tests.support.broker import free_port

CLIENT = "QFCLIENT"


@pytest.mark.timeout(90)
async def test_quickfix_initiator_to_fixgw_acceptor_orders_gap_resend_logout(tmp_path: Path) -> None:
    port = free_port()
    settings = acceptor_settings(port, tmp_path / "fixgw-lmdb", CLIENT)
    sid = SessionID("FIX.4.4", "FIXGW", CLIENT)
    desk = OrderDesk()
    engine = Engine(settings, desk)
    await engine.start()
    proxy = CuttableProxy(port)
    await proxy.start()
    init = QuickfixInitiator(InitiatorConfig(
        host="127.0.0.1", port=proxy.port, store_dir=tmp_path / "qf-store",
        sender_comp_id=CLIENT, target_comp_id="FIXGW",
    ))
    try:
        init.start()
        await init.until(init.logged_on, 10, "QuickFIX logged on")

        # 1. 1,000 orders, each answered once, in sequence
        batch_a = init.send_orders("A", 1000)
        await init.until(lambda: init.answered() >= set(batch_a), 30, "1,000 ExecutionReports")
        await engine.session(sid).flushed()
        reports = init.reports()
        assert sorted(r.cl_ord_id or "" for r in reports) == sorted(batch_a)  # one each, no extra
        assert not any(r.poss_dup for r in reports)
        assert strictly_increasing([r.seq_num for r in reports])
        assert [o.cl_ord_id for o in desk.orders] == batch_a  # in the order sent
        assert strictly_increasing([o.seq_num for o in desk.orders])
        _, admin_in, admin_out = init.app.snapshot()
        assert not [m for m in admin_out if m.msg_type in ("2", "3", "4")]  # no gap seen, no reject
        assert not [m for m in admin_in if m.msg_type in ("2", "3", "4")]
        fx = engine.session(sid).session
        assert init.next_target_seq() == fx.next_sender  # both agree on both sequence numbers
        assert init.next_sender_seq() == fx.next_target

        # 2. a sequence gap each way: fixgw answers 200 orders whose reports never arrive, then
        #    QuickFIX sends 50 orders that never arrive; the connection is cut
        proxy.hold("down")
        batch_b = init.send_orders("B", 200)
        await until(lambda: desk.answered >= set(batch_b), 20, "fixgw answered the B orders")
        await until(lambda: proxy.held_messages("down") >= 200, 10, "B reports held in the relay")
        proxy.hold("up")
        batch_c = init.send_orders("C", 50)
        await until(lambda: proxy.held_messages("up") >= 50, 10, "C orders held in the relay")
        proxy.cut()
        assert not init.answered() & set(batch_b)

        # 3. fixgw restarts from its LMDB store (a new engine, a new application)
        await engine.session(sid).wait_disconnected(10)
        await engine.stop()
        desk2 = OrderDesk()
        engine = Engine(acceptor_settings(port, tmp_path / "fixgw-lmdb", CLIENT), desk2)
        await engine.start()

        # 4. QuickFIX reconnects by itself; each side asks for what it missed
        everything = set(batch_a) | set(batch_b) | set(batch_c)
        await init.until(lambda: init.answered() >= everything, 30, "the gap filled both ways")
        await engine.session(sid).flushed()
        reports = init.reports()
        by_id: dict[str, list[bool]] = {}
        for r in reports:
            by_id.setdefault(r.cl_ord_id or "", []).append(r.poss_dup)
        assert all(by_id[c] == [True] for c in batch_b)  # B reports: resent once, PossDupFlag=Y
        assert all(by_id[c] == [False] for c in batch_c)  # C reports: new answers to resent orders
        assert sum(len(v) for v in by_id.values()) == len(everything)  # nothing twice, nothing lost
        c_orders = [o for o in desk2.orders if o.cl_ord_id in set(batch_c)]
        assert [o.cl_ord_id for o in c_orders] == batch_c and all(o.poss_dup for o in c_orders)
        _, admin_in, admin_out = init.app.snapshot()
        assert any(m.msg_type == "2" for m in admin_out)  # QuickFIX asked for the B reports
        assert any(m.msg_type == "2" for m in admin_in)  # fixgw asked for the C orders
        assert not [m for m in admin_out + admin_in if m.msg_type == "3"]  # no session Reject
        assert init.app.logons == 2 and desk2.logons == 1
        fx = engine.session(sid).session
        assert init.next_target_seq() == fx.next_sender
        assert init.next_sender_seq() == fx.next_target

        # 5. business as usual after the recovery
        batch_d = init.send_orders("D", 100)
        await init.until(lambda: init.answered() >= set(batch_d), 20, "D reports")
        assert all(not r.poss_dup for r in init.reports() if r.cl_ord_id in set(batch_d))

        # 6. logout, answered by fixgw
        assert await init.logout_async()
        await engine.session(sid).wait_disconnected(10)
        _, admin_in, _ = init.app.snapshot()
        assert admin_in[-1].msg_type == "5"
        assert desk2.logouts == 1 and not engine.session(sid).logged_on
    finally:
        init.close()
        await proxy.close()
        await engine.stop()


@pytest.mark.timeout(60)
async def test_quickfix_initiator_to_fixgw_acceptor_fix42(tmp_path: Path) -> None:
    port = free_port()
    settings = acceptor_settings(port, tmp_path / "fixgw-lmdb", CLIENT, ("FIX.4.2", "FIX.4.4"))
    sid = SessionID("FIX.4.2", "FIXGW", CLIENT)
    desk = OrderDesk()
    engine = Engine(settings, desk)
    await engine.start()
    init = QuickfixInitiator(InitiatorConfig(
        host="127.0.0.1", port=port, store_dir=tmp_path / "qf-store", begin_string="FIX.4.2",
        sender_comp_id=CLIENT, target_comp_id="FIXGW",
    ))
    try:
        init.start()
        await init.until(init.logged_on, 10, "QuickFIX logged on")
        ids = init.send_orders("F", 200)
        await init.until(lambda: init.answered() >= set(ids), 20, "200 ExecutionReports")
        reports = init.reports()
        assert sorted(r.cl_ord_id or "" for r in reports) == sorted(ids)
        assert all("|8=FIX.4.2|" in "|" + r.raw and "|20=0|" in r.raw for r in reports)
        assert not [m for m in init.app.snapshot()[2] if m.msg_type in ("2", "3")]
        assert await init.logout_async()
        await engine.session(sid).wait_disconnected(10)
        assert desk.logouts == 1
    finally:
        init.close()
        await engine.stop()


@pytest.mark.timeout(60)
async def test_quickfix_initiator_to_fixgw_acceptor_cut_in_full_flow(tmp_path: Path) -> None:
    """The connection is cut while orders and reports stream both ways (nothing held back):
    whatever was lost in flight comes back by resend, and every order gets exactly one report."""
    port = free_port()
    sid = SessionID("FIX.4.4", "FIXGW", CLIENT)
    desk = OrderDesk()
    engine = Engine(acceptor_settings(port, tmp_path / "fixgw-lmdb", CLIENT), desk)
    await engine.start()
    proxy = CuttableProxy(port)
    await proxy.start()
    init = QuickfixInitiator(InitiatorConfig(
        host="127.0.0.1", port=proxy.port, store_dir=tmp_path / "qf-store",
        sender_comp_id=CLIENT, target_comp_id="FIXGW",
    ))
    try:
        init.start()
        await init.until(init.logged_on, 10, "QuickFIX logged on")
        # cut in mid-stream, once 100 reports have passed: orders and reports are in the relay
        # and in the socket buffers both ways
        proxy.cut_after("down", 100)
        ids = init.send_orders("S", 600)
        await init.until(lambda: init.app.logons >= 2, 20, "QuickFIX logged on again")
        await init.until(lambda: init.answered() >= set(ids), 30, "every order answered")
        await engine.session(sid).flushed()
        reports = init.reports()
        assert sorted(r.cl_ord_id or "" for r in reports) == sorted(ids)  # exactly one report each
        assert len({r.seq_num for r in reports}) == len(reports)
        assert any(r.poss_dup for r in reports)  # some reports were lost and resent
        firsts = [o.cl_ord_id for o in desk.orders if not o.poss_dup]
        assert firsts == [c for c in ids if c in set(firsts)]  # first copies in the order sent
        assert init.app.logons == 2 and proxy.cuts == 1
        fx = engine.session(sid).session
        assert init.next_target_seq() == fx.next_sender
        assert init.next_sender_seq() == fx.next_target
        assert await init.logout_async()
    finally:
        init.close()
        await proxy.close()
        await engine.stop()
