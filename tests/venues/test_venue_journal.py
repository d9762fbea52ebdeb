"""The venue journal (venues.journal) in process: commands round-trip through msgpack, and
a venue rebuilt from its journal (real LMDB in a tmp dir, real TCP, a fixgw initiator as
client, a frozen clock) has the same books, market maker, pending fund orders, counters
and report routes as before; status, cancel and a later fill work on it, and ExecIDs and
OrderIDs never repeat across the restart."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from fixgw.orders import OrdType, Side, TimeInForce
from tests.venues.vfix_scenarios import cancel, er, new_order, status
from tests.venues.vfix_support import fixgw_client, free_port
from venues.clock import FrozenClock
from venues.commands import CancelOrder, Command, QueryStatus, ReplaceOrder, SubmitOrder
from venues.exchange import Exchange
from venues.fix_acceptor import VenueServer, journaled_server, seconds_until_for, venue_settings
from venues.fund import FundCompany
from venues.journal import VenueJournal, decode_command, encode_command, from_micros, to_micros
from venues.venue_config import VenueConfig

NY = ZoneInfo("America/New_York")
MORNING = datetime(2024, 3, 6, 10, 0, tzinfo=NY)  # a Wednesday, far from 16:00


def test_commands_and_instants_round_trip() -> None:
    cmds: list[Command] = [
        SubmitOrder("F", "c1", "IBM", Side.BUY, Decimal("100.5"), OrdType.LIMIT, Decimal("9.99"),
                    TimeInForce.GTC, None, "ACC1"),
        SubmitOrder("F", "c2", "FSIDX", Side.SELL, None, OrdType.MARKET, None, TimeInForce.DAY,
                    Decimal("5000.00")),
        CancelOrder("F", "x1", "c1", "IBM", Side.BUY, "EXCH-O1"),
        ReplaceOrder("F", "r1", "c1", "IBM", Side.BUY, Decimal(200), Decimal("10.01"), None, OrdType.LIMIT,
                     TimeInForce.GTC, None),
        QueryStatus("F", "c1", "IBM", Side.BUY),
    ]
    for kind, cmd in zip("DDFGH", cmds, strict=True):
        assert decode_command(kind, encode_command(cmd)) == cmd
    at = datetime(2024, 3, 6, 15, 0, 0, 123456, tzinfo=NY)
    assert from_micros(to_micros(at)) == at


def _settings(port: int, data: Path, comp: str) -> list[object]:
    return venue_settings(comp_id=comp, host="127.0.0.1", port=port, data_dir=data)  # type: ignore[return-value]


_open: list[VenueJournal] = []


def _server(kind: str, clock: FrozenClock, port: int, data: Path) -> tuple[VenueServer, int]:
    """A journaled venue server on ``data`` (the previous one's journal closed first, as
    a process exit would)."""
    while _open:
        _open.pop().close()
    comp = "EXCH" if kind == "exchange" else "FUND"
    journal = VenueJournal(data / "journal")
    _open.append(journal)
    return journaled_server(kind, VenueConfig(), clock, _settings(port, data, comp),  # type: ignore[arg-type]
                            journal, seconds_until=seconds_until_for(clock), max_timer_sleep=0.02)


def _books(ex: Exchange) -> list[object]:
    return [(s, ex.book(s).depth(True), ex.book(s).depth(False), ex.reference_price(s)) for s in ex.symbols]


@pytest.mark.timeout(60)
async def test_exchange_rebuilt_from_its_journal(tmp_path: Path) -> None:
    clock = FrozenClock(MORNING)
    port = free_port()
    seen: set[str] = set()
    a, replayed = _server("exchange", clock, port, tmp_path)
    assert replayed == 0
    async with a, fixgw_client(port, "FIRM-S1", "EXCH", store=tmp_path / "client") as c:
        # far below the market maker's bids: they rest
        c.send("D", new_order("B1", "1", "100", "50.00"))
        c.send("D", new_order("B2", "1", "200", "50.00"))
        c.send("D", new_order("B3", "1", "300", "49.00"))
        for cl in ("B1", "B2", "B3"):
            seen.add((await c.expect(er(cl, "0"), f"ack of {cl}")).get_str(17) or "")
        clock.advance(timedelta(seconds=3))
        a.app.tick()  # the market maker moves (a journaled tick)
        c.send("D", new_order("B4", "1", "10", "48.00"))
        seen.add((await c.expect(er("B4", "0"), "ack of B4")).get_str(17) or "")
    ex_a = a.venue
    assert isinstance(ex_a, Exchange)
    before = _books(ex_a)
    open_before = {(r.cl_ord_id, r.order_id, r.leaves_qty) for r in ex_a.open_orders()}
    routes_before = {r.order_id: a.app.route_of(r.order_id) for r in ex_a.open_orders()}
    assert len(open_before) == 4

    # a new process: the same data dir, the clock later
    clock.advance(timedelta(seconds=1))
    b, replayed = _server("exchange", clock, port, tmp_path)
    assert replayed == 5  # 4 orders and one tick
    ex_b = b.venue
    assert isinstance(ex_b, Exchange)
    assert _books(ex_b) == before
    assert {(r.cl_ord_id, r.order_id, r.leaves_qty) for r in ex_b.open_orders()} == open_before
    assert {o: b.app.route_of(o) for o in routes_before} == routes_before
    async with b:
        async with fixgw_client(port, "FIRM-S2", "EXCH") as c2:
            # another session of the firm finds the orders: status, cancel, then a fill
            c2.send("H", status("B1", "1"))
            st = await c2.expect(er("B1", "I"), "status of B1 after the restart")
            assert st.get_str(39) == "0" and st.get_str(37) == f"{ex_b.name}-O1"
            c2.send("F", cancel("X1", "B1", "1"))
            cx = await c2.expect(er("X1", "4"), "cancel of B1 after the restart")
            # sell through the market maker's bids (all above 50.00) down to B2 at 50.00
            tick = ex_b.tick_size("IBM")
            above = sum(q for t, q, _ in ex_b.book("IBM").depth(True) if t * tick > Decimal("50.00"))
            assert above > 0
            c2.send("D", new_order("S1", "2", str(above + 200), "50.00"))
            ack = await c2.expect(er("S1", "0"), "ack of S1")
            assert ack.get_str(37) == f"{ex_b.name}-O5"  # OrderIDs continue
            done = await c2.expect(lambda m: er("S1", "F")(m) and m.get_str(39) == "2", "S1 filled")
            assert done.get_str(31) == "50.00"
        async with fixgw_client(port, "FIRM-S1", "EXCH", store=tmp_path / "client") as c1:
            # B2's reports go to the session that sent it: stored while it was away, resent
            fill = await c1.expect(er("B2", "F"), "fill of B2 (resting since before the restart)")
            assert fill.get_str(39) == "2" and fill.get_str(37) == f"{ex_b.name}-O2"
            ids = [m.get_str(17) or "" for m in (st, cx, ack, done, fill)]
            assert len(set(ids)) == 5 and not seen & set(ids), (seen, ids)


@pytest.mark.timeout(60)
async def test_fund_pending_orders_survive(tmp_path: Path) -> None:
    clock = FrozenClock(MORNING)
    port = free_port()
    a, _ = _server("fund", clock, port, tmp_path)
    async with a, fixgw_client(port, "FIRM-S1", "FUND", store=tmp_path / "client") as c:
        c.send("D", new_order("F1", "1", "", None, "FSIDX", cash="5000.00"))
        await c.expect(er("F1", "0"), "ack of the fund order")
    fund_a = a.venue
    assert isinstance(fund_a, FundCompany)
    pending = [(r.cl_ord_id, r.order_id) for r in fund_a.open_orders()]
    assert pending == [("F1", f"{fund_a.name}-O1")]
    b, replayed = _server("fund", clock, port, tmp_path)
    assert replayed == 1
    async with b, fixgw_client(port, "FIRM-S1", "FUND", store=tmp_path / "client") as c:
        assert [(r.cl_ord_id, r.order_id) for r in b.venue.open_orders()] == pending  # type: ignore[attr-defined]
        clock.set(MORNING.replace(hour=17))  # past the 16:00 cut-off: the valuation fills it
        fill = await c.expect(er("F1", "F"), "valuation fill of the order placed before the restart", 15)
        assert fill.get_str(39) == "2"


@pytest.mark.timeout(60)
async def test_a_record_that_raises_on_replay_is_skipped_and_the_venue_starts(tmp_path: Path) -> None:
    """A command that raised when it was applied raises again on replay (seen: the venue then
    never started again); it is skipped, counted, and the rest of the journal is applied."""
    clock = FrozenClock(MORNING)
    port = free_port()
    a, _ = _server("exchange", clock, port, tmp_path)
    async with a, fixgw_client(port, "FIRM-S1", "EXCH", store=tmp_path / "client") as c:
        c.send("D", new_order("B1", "1", "100", "50.00"))
        await c.expect(er("B1", "0"), "ack of B1")
        # a cancel whose command does not even decode (as a venue bug would leave it), then B2
        _open[-1].append(["F", to_micros(clock.now()), ["FIX.4.4", "EXCH", "FIRM-S1"], "", {"bogus": 1}])
        c.send("D", new_order("B2", "1", "200", "50.00"))
        await c.expect(er("B2", "0"), "ack of B2")
    b, replayed = _server("exchange", clock, port, tmp_path)
    assert replayed == 3 and b.app.replay_errors == 1
    assert sorted(r.cl_ord_id for r in b.venue.open_orders()) == ["B1", "B2"]  # type: ignore[attr-defined]


def test_journal_appends_survive_reopen(tmp_path: Path) -> None:
    j = VenueJournal(tmp_path / "j", flush_seconds=0.01)
    j.append(["S", 1])
    j.append(["T", 2])
    j.flush()
    j.close()
    j.close()  # idempotent, as a stop after a failed start calls it
    again = VenueJournal(tmp_path / "j", sync=False)
    assert len(again) == 2 and list(again.records()) == [["S", 1], ["T", 2]]
    assert again.first() == ["S", 1] and again.last() == ["T", 2]
    again.append(["T", 3])
    assert again.last() == ["T", 3] and len(again) == 3
    again.close()


def test_journal_bench_figures(tmp_path: Path) -> None:
    from venues.journal_bench import run

    r = run(300, 50, tmp_path)
    assert r["replayed"] == 300 and r["fsync_orders"] == 50
    assert all(r[k] > 0 for k in ("no_journal_us", "journal_nosync_us", "journal_fsync_us", "replay_us"))
