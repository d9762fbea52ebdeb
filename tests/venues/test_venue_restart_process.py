"""``fixgw venue exchange --data DIR`` SIGKILLed with resting orders and started again on the
same DIR (real processes, real TCP, a fixgw initiator with a persistent store): the client
logs on again with its sequence numbers continuing, and the orders are still there: a status
request finds them, a cancel cancels one, a later sell fills another, the ids continue."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.venues.test_vfix_processes import NO_MARKET_MAKER, VenueProcess
from tests.venues.vfix_scenarios import cancel, er, new_order, status
from tests.venues.vfix_support import fixgw_client, free_port


@pytest.mark.timeout(90)
async def test_exchange_process_recovers_its_orders_after_sigkill(tmp_path: Path) -> None:
    cfg = tmp_path / "venues.toml"
    cfg.write_text(NO_MARKET_MAKER)
    port = free_port()
    args = ("--config", str(cfg), "--data", str(tmp_path / "exch"))
    store = tmp_path / "client"
    ex = VenueProcess("exchange", port, *args)
    try:
        assert "journal replayed 0 commands" in ex.banner, ex.banner
        seen: set[str] = set()
        async with fixgw_client(port, "FIRM-S1", "EXCH", store=store) as c:
            for cl, qty, px in (("B1", "100", "10.00"), ("B2", "200", "10.00"), ("B3", "300", "9.00")):
                c.send("D", new_order(cl, "1", qty, px))
            for cl in ("B1", "B2", "B3"):
                seen.add((await c.expect(er(cl, "0"), f"ack of {cl}")).get_str(17) or "")
            ex.kill()  # SIGKILL, with the session up
        ex = VenueProcess("exchange", port, *args)
        assert "journal replayed 3 commands" in ex.banner, ex.banner
        # the same session logs on again: a sequence-number mismatch would end it here
        async with fixgw_client(port, "FIRM-S1", "EXCH", store=store) as c:
            c.send("H", status("B1", "1"))
            st = await c.expect(er("B1", "I"), "status of B1 after the restart")
            assert st.get_str(39) == "0" and st.get_str(151) == "100"
            c.send("F", cancel("X1", "B1", "1"))
            cx = await c.expect(er("X1", "4"), "cancel of B1 after the restart")
            c.send("D", new_order("S1", "2", "200", "10.00"))
            ack = await c.expect(er("S1", "0"), "ack of the sell")
            fill = await c.expect(er("B2", "F"), "fill of B2, resting since before the SIGKILL")
            assert fill.get_str(39) == "2" and fill.get_str(31) == "10.00"
            assert st.get_str(37) != ack.get_str(37)
            ids = [m.get_str(17) or "" for m in (st, cx, ack, fill)]
            assert len(set(ids)) == 4 and not seen & set(ids), (seen, ids)
            assert not c.invalid, c.invalid
        code, _out, err = ex.terminate()
        assert code == 0, err
    finally:
        ex.kill()
