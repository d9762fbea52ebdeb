"""Street reconciliation after logon (issue 14 item 4), in process: a real street utility
(real LMDB log, broker off), its fixgw initiator, and a real venue over TCP that was
restarted empty except for one of the street's two open orders. After logon the street asks
about both; the one the venue no longer knows becomes a CANCELED record with the reason
(the customer's ExecutionReport Canceled is built from it), the other stays open."""

from __future__ import annotations

import asyncio
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
