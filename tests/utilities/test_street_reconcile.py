"""Street reconciliation after logon (issue 14 item 4), in process: a real street utility
(real LMDB log, broker off), its fixgw initiator, and a real venue over TCP that was
restarted empty except for one of the street's two open orders. After logon the street asks
about both; the one the venue no longer knows becomes a CANCELED record with the reason
(the customer's ExecutionReport Canceled is built from it), the other stays open."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from fixgw.config import SessionID
from fixgw.engine import Engine
from replication.node import ReplicationNode
from replication.record import RecordType, Role
from tests.venues.vfix_scenarios import er, new_order
from tests.venues.vfix_support import fixgw_client, free_port, initiator_settings
from utilities.liveness import Liveness
from utilities.status import fold
from utilities.street import StreetUtility
from venues.clock import FrozenClock
from venues.exchange import Exchange
from venues.fix_acceptor import VenueServer, seconds_until_for, venue_settings
from venues.venue_config import ExchangeConfig, LiquiditySpec

TERMS = {"account": "ACC1", "symbol": "IBM", "side": "1", "order_qty": Decimal(100), "price": Decimal("10.00"),
         "ord_type": "2", "tif": "0", "venue": "exchange", "session": "CLIENT1"}


@pytest.mark.timeout(60)
async def test_an_order_the_venue_forgot_is_canceled_by_the_venue(tmp_path: Path) -> None:
    clock = FrozenClock(datetime(2024, 3, 6, 15, 0, tzinfo=UTC))
    venue = Exchange(ExchangeConfig(liquidity=LiquiditySpec(enabled=False)), clock)
    port = free_port()
    settings = venue_settings(comp_id="EXCH", host="127.0.0.1", port=port, data_dir=None)
    async with ReplicationNode(node_id="ssu1", role=Role.STREET, cluster="t", data_dir=tmp_path / "ssu1",
                               mqtt=False) as node, \
            VenueServer(venue, settings, seconds_until=seconds_until_for(clock), max_timer_sleep=0.02):
        for txn, clid in (("cfu1-0.1", "C1"), ("cfu1-0.2", "C2")):
            extra = {"street": "ssu1", "venue_cl_ord_id": txn}
            await node.append(type=RecordType.SENT, txn=txn, status="A", cl_ord_id=clid, extra=extra, **TERMS)
            await node.append(type=RecordType.VENUE_ACK, txn=txn, status="0", cl_ord_id=clid, extra=extra, **TERMS)
        # the restarted venue knows only the second order (another session of the firm sent it)
        async with fixgw_client(port, "FIXGW-SSU2", "EXCH") as other:
            other.send("D", new_order("cfu1-0.2", "1", "100", "10.00"))
            await other.expect(er("cfu1-0.2", "0"), "the venue has cfu1-0.2")
        sid = SessionID("FIX.4.4", "FIXGW-SSU1", "EXCH")
        street = StreetUtility(node=node, node_name="ssu1", venues={"exchange": sid}, peers=(),
                               liveness=Liveness(3.0))
        street.load()
        async with Engine(initiator_settings(port, "FIXGW-SSU1", "EXCH", "FIX.4.4", None), street) as engine:
            await engine.wait_logged_on(sid, 10)
            deadline = asyncio.get_running_loop().time() + 10
            while asyncio.get_running_loop().time() < deadline:
                recs = node.log.records_for_txn("cfu1-0.1")
                if any(r.type is RecordType.CANCELED for r in recs) and any(
                        r.type is RecordType.VENUE_STATUS for r in node.log.records_for_txn("cfu1-0.2")):
                    break
                await asyncio.sleep(0.05)
            forgotten = node.log.records_for_txn("cfu1-0.1")
            canceled = [r for r in forgotten if r.type is RecordType.CANCELED]
            assert len(canceled) == 1, forgotten
            assert canceled[0].cl_ord_id == "C1" and "Canceled by the venue exchange" in canceled[0].text
            st = fold(forgotten)
            assert st is not None and st.ord_status == "4" and st.is_terminal
            kept = node.log.records_for_txn("cfu1-0.2")
            assert not any(r.type is RecordType.CANCELED for r in kept)
            st2 = fold(kept)
            assert st2 is not None and st2.ord_status == "0"
            assert street.counters["reconciled"] == 2 and street.counters["canceled_by_venue"] == 1


@pytest.mark.timeout(60)
async def test_an_order_still_on_its_way_is_not_canceled(tmp_path: Path) -> None:
    """The race of reconciliation with an order in flight: ``cfu1-0.3`` is recorded SENT and its
    NewOrderSingle leaves only after the status request was answered "unknown" (overtaken); it
    is asked again ``recheck_s`` later and stays working. ``cfu1-0.4``, recorded SENT and never
    sent (the street died or was fenced before the write), is unknown both times: the venue
    never got it, so it is sent then and works there; it is not "canceled by the venue"."""
    clock = FrozenClock(datetime(2024, 3, 6, 15, 0, tzinfo=UTC))
    venue = Exchange(ExchangeConfig(liquidity=LiquiditySpec(enabled=False)), clock)
    port = free_port()
    settings = venue_settings(comp_id="EXCH", host="127.0.0.1", port=port, data_dir=None)
    async with ReplicationNode(node_id="ssu1", role=Role.STREET, cluster="t", data_dir=tmp_path / "ssu1",
                               mqtt=False) as node, \
            VenueServer(venue, settings, seconds_until=seconds_until_for(clock), max_timer_sleep=0.02):
        for txn, clid in (("cfu1-0.3", "C3"), ("cfu1-0.4", "C4")):
            extra = {"street": "ssu1", "venue_cl_ord_id": txn}
            await node.append(type=RecordType.SENT, txn=txn, status="A", cl_ord_id=clid, extra=extra, **TERMS)
        sid = SessionID("FIX.4.4", "FIXGW-SSU1", "EXCH")
        street = StreetUtility(node=node, node_name="ssu1", venues={"exchange": sid}, peers=(),
                               liveness=Liveness(3.0), recheck_s=0.5)
        street.load()
        loop = asyncio.get_running_loop()

        async def until(cond: Callable[[], bool], what: str) -> None:
            deadline = loop.time() + 10
            while not cond():
                assert loop.time() < deadline, what
                await asyncio.sleep(0.02)

        async with Engine(initiator_settings(port, "FIXGW-SSU1", "EXCH", "FIX.4.4", None), street) as engine:
            await engine.wait_logged_on(sid, 10)
            await until(lambda: street.counters["rechecked"] == 2, "both unknown at the first answer")
            assert not any(r.type is RecordType.CANCELED for t in ("cfu1-0.3", "cfu1-0.4")
                           for r in node.log.records_for_txn(t))
            base = street._base("cfu1-0.3")
            assert base is not None
            street._send_new("exchange", "cfu1-0.3", base)      # the overtaken order arrives now
            await until(lambda: any(r.type is RecordType.VENUE_ACK for r in node.log.records_for_txn("cfu1-0.4")),
                        "cfu1-0.4 sent after the second answer and acknowledged by the venue")
            await asyncio.sleep(0.2)
            for txn in ("cfu1-0.3", "cfu1-0.4"):
                working = node.log.records_for_txn(txn)
                assert not any(r.type is RecordType.CANCELED for r in working), working
                st = fold(working)
                assert st is not None and st.ord_status == "0" and not st.is_terminal
            resent = [r for r in node.log.records_for_txn("cfu1-0.4") if r.type is RecordType.SENT]
            assert len(resent) == 2 and resent[-1].extra.get("sent_after_reconcile") is True
            assert street.counters["canceled_by_venue"] == 0 and not street.rechecking
