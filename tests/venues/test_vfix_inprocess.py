"""The FIX venues in process, over real TCP on 127.0.0.1, with fixgw initiators as clients:
the exchange and fund scenarios in FIX.4.2 and FIX.4.4, firm behaviour (shared orders,
report routing, duplicates, resends), a client that was away getting its fills by resend."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.venues.vfix_scenarios import (
    cancel,
    er,
    exchange_scenario,
    fund_scenario,
    new_order,
    status,
)
from tests.venues.vfix_support import fixgw_client, free_port
from venues.clock import FrozenClock
from venues.exchange import Exchange
from venues.fix_acceptor import VenueServer, seconds_until_for, venue_settings
from venues.fund import FundCompany
from venues.venue_config import ExchangeConfig, FundCompanyConfig, LiquiditySpec

NY = ZoneInfo("America/New_York")
# a Wednesday morning in New York: far from the 16:00 session end / cut-off
MORNING = datetime(2024, 3, 6, 10, 0, tzinfo=NY)


@contextlib.asynccontextmanager
async def exchange_server(clock: FrozenClock | None = None) -> AsyncIterator[tuple[VenueServer, int]]:
    clock = clock or FrozenClock(MORNING)
    venue = Exchange(ExchangeConfig(liquidity=LiquiditySpec(enabled=False)), clock)
    port = free_port()
    settings = venue_settings(comp_id="EXCH", host="127.0.0.1", port=port, data_dir=None)
    async with VenueServer(venue, settings, seconds_until=seconds_until_for(clock), max_timer_sleep=0.02) as srv:
        yield srv, port


@contextlib.asynccontextmanager
async def fund_server(clock: FrozenClock, cfg: FundCompanyConfig | None = None) -> AsyncIterator[tuple[VenueServer, int]]:
    venue = FundCompany(cfg or FundCompanyConfig(), clock)
    port = free_port()
    settings = venue_settings(comp_id="FUND", host="127.0.0.1", port=port, data_dir=None)
    async with VenueServer(venue, settings, seconds_until=seconds_until_for(clock), max_timer_sleep=0.02) as srv:
        yield srv, port


@pytest.mark.timeout(30)
@pytest.mark.parametrize("begin", ["FIX.4.4", "FIX.4.2"])
async def test_exchange_scenario_fixgw_client(begin: str) -> None:
    async with exchange_server() as (srv, port), fixgw_client(port, "TRADER", "EXCH", begin) as c:
        await exchange_scenario(c, begin)
        # an application message type the venue does not handle: BusinessMessageReject
        c.send("Q", [(37, "X"), (17, "E"), (127, "A"), (55, "IBM"), (54, "1")])
        bmr = await c.expect(lambda m: m.msg_type == b"j", "business message reject")
        assert bmr.get_str(380) == "3" and bmr.get_str(372) == "Q"
        assert srv.app.unrouted == 0
        assert srv.app.live_routes == 0  # every order of the scenario is done


@pytest.mark.timeout(30)
@pytest.mark.parametrize("begin", ["FIX.4.4", "FIX.4.2"])
async def test_fund_scenario_fixgw_client(begin: str) -> None:
    clock = FrozenClock(MORNING)
    async with fund_server(clock) as (_srv, port), fixgw_client(port, "INVESTOR", "FUND", begin) as c:

        async def move_time() -> None:
            # the two orders are acknowledged, then the cut-off passes: the timer values them
            while len(c.inbox.messages) < 2:
                await asyncio.sleep(0.005)
            clock.set(datetime(2024, 3, 6, 16, 0, 1, tzinfo=NY))

        mover = asyncio.create_task(move_time())
        await fund_scenario(c, begin)
        await mover


@pytest.mark.timeout(30)
async def test_fund_cancel_between_cut_off_and_valuation_is_rejected() -> None:
    """NAV struck at 18:00, cut-off 16:00: a cancel at 16:30 is too late, the fill follows at 18:00."""
    clock = FrozenClock(MORNING)
    cfg = FundCompanyConfig(valuation_time=time(18, 0))
    async with fund_server(clock, cfg) as (_srv, port), fixgw_client(port, "INVESTOR", "FUND") as c:
        c.send("D", new_order("K1", "1", "200", None, "FSTBX"))
        await c.expect(er("K1", "0"), "ack")
        clock.set(datetime(2024, 3, 6, 16, 30, tzinfo=NY))
        c.send("F", cancel("K2", "K1", "1", "FSTBX", "200"))
        rej = await c.expect(lambda m: m.msg_type == b"9" and m.get_str(11) == "K2", "cancel reject")
        assert rej.get_str(102) == "0" and rej.get_str(39) == "0" and "cut-off" in (rej.get_str(58) or "")
        await asyncio.sleep(0.1)
        assert not [m for m in c.inbox.messages if m.get_str(150) == "F"]  # not valued yet
        clock.set(datetime(2024, 3, 6, 18, 0, tzinfo=NY))
        fill = await c.expect(er("K1", "F"), "fill at the 18:00 valuation")
        assert (fill.get_str(60) or "").startswith("20240306-23:00:00")  # 18:00 New York, in UTC
        assert c.invalid == []


@pytest.mark.timeout(30)
async def test_day_orders_expire_at_the_session_end_through_the_timer() -> None:
    clock = FrozenClock(MORNING)
    async with exchange_server(clock) as (srv, port), fixgw_client(port, "TRADER", "EXCH") as c:
        c.send("D", new_order("D1", "1", "10", "170.00"))
        c.send("D", new_order("G1", "1", "10", "170.00", tif="1"))
        await c.expect(er("D1", "0"), "ack")
        await c.expect(er("G1", "0"), "ack")
        clock.advance(timedelta(hours=6, minutes=1))  # past 16:00: nobody sends anything
        exp = await c.expect(er("D1", "C"), "DAY order expired")
        assert exp.get_str(39) == "C" and exp.get_str(58)
        await asyncio.sleep(0.1)
        assert not [m for m in c.inbox.unclaimed() if m.get_str(11) == "G1"]  # GTC stays
        assert srv.app.route_of(exp.get_str(37) or "") is None
        assert c.invalid == []


@pytest.mark.timeout(30)
async def test_firm_sessions_share_orders_and_reports_follow_the_last_session() -> None:
    async with exchange_server() as (srv, port):
        async with fixgw_client(port, "FIRM-A", "EXCH") as a, fixgw_client(port, "FIRM-B", "EXCH") as b, \
                fixgw_client(port, "OTHER", "EXCH", "FIX.4.2") as o:
            a.send("D", new_order("A1", "2", "100", "180.00", account="ACC1"))
            ack = await a.expect(er("A1", "0"), "A's order acknowledged to A")
            # B (same firm) asks for A's order: it gets the report, and the order's reports from now on
            b.send("H", status("A1", "2"))
            st = await b.expect(er("A1", "I"), "status of A's order to B")
            assert st.get_str(39) == "0" and st.get_str(37) == ack.get_str(37) and st.get_str(1) == "ACC1"
            assert srv.app.route_of(ack.get_str(37) or "") == b.session_id.reverse()
            # another firm trades with it: the fill of A1 goes to B, not to A
            o.send("D", new_order("X1", "1", "30", "180.00"))
            await o.expect(er("X1", "2"), "the other firm's fill (4.2: ExecType 2)")
            fill = await b.expect(er("A1", "F"), "fill of A1 to B")
            assert fill.get_str(39) == "1" and fill.get_str(151) == "70" and fill.get_str(1) == "ACC1"
            # B cancels it: the canceled report goes to B
            b.send("F", cancel("A1-C", "A1", "2"))
            cxl = await b.expect(er("A1-C", "4"), "canceled report to B")
            assert cxl.get_str(41) == "A1" and cxl.get_str(14) == "30"
            # a ClOrdID of the firm used again, from the other session: duplicate (103=6)
            b.send("D", new_order("A1", "2", "100", "180.00"))
            dup = await b.expect(er("A1", "8"), "duplicate reject")
            assert dup.get_str(103) == "6"
            # ... but as a possible resend (97=Y) it is answered with the order's status
            b.send("D", [*new_order("A1", "2", "100", "180.00"), (97, "Y")])
            # (a status report names the order by its latest ClOrdID: the cancel's)
            again = await b.expect(er("A1-C", "I"), "status answer to a resent order")
            assert again.get_str(39) == "4" and again.get_str(14) == "30" and again.get_str(37) == ack.get_str(37)
            # the other firm does not see FIRM's orders
            o.send("H", status("A1", "2"))
            unk = await o.expect(er("A1", exec_trans="3"), "unknown to another firm")
            assert unk.get_str(39) == "8" and unk.get_str(103) == "5"
            # A got its ack and nothing after B took over
            await asyncio.sleep(0.1)
            assert [m.get_str(150) for m in a.inbox.messages] == ["0"]
            for c in (a, b, o):
                assert c.invalid == []
        assert srv.app.unrouted == 0


@pytest.mark.timeout(30)
async def test_a_new_order_resent_with_possresend_is_placed_once() -> None:
    async with exchange_server() as (srv, port), fixgw_client(port, "FIRM-A", "EXCH") as a:
        a.send("D", [*new_order("P1", "1", "10", "170.00"), (97, "Y")])  # never seen: a new order
        await a.expect(er("P1", "0"), "ack")
        a.send("D", [*new_order("P1", "1", "10", "170.00"), (97, "Y")])  # seen: its status
        st = await a.expect(er("P1", "I"), "status")
        assert st.get_str(39) == "0"
        assert len(srv.venue.open_orders()) == 1  # type: ignore[attr-defined]


@pytest.mark.timeout(40)
async def test_reports_for_a_session_that_is_away_arrive_by_resend(tmp_path: Path) -> None:
    """A's fill happens while A is logged out; A logs on again (no reset) and gets it."""
    async with exchange_server() as (srv, port), fixgw_client(port, "TRADER", "EXCH") as other:
        store = tmp_path / "client-a"
        async with fixgw_client(port, "FIRM-A", "EXCH", store=store) as a:
            a.send("D", new_order("W1", "2", "50", "180.00"))
            await a.expect(er("W1", "0"), "ack")
        venue_sid = a.session_id.reverse()
        await srv.engine.session(venue_sid).wait_disconnected(5)
        other.send("D", new_order("T1", "1", "50", "180.00"))
        await other.expect(er("T1", "F"), "taker's fill")
        async with fixgw_client(port, "FIRM-A", "EXCH", store=store) as a2:
            fill = await a2.expect(er("W1", "F"), "maker's fill, by resend", 10)
            assert fill.get_str(43) == "Y" and fill.get_str(39) == "2"
            assert a2.invalid == []
        assert other.invalid == []
