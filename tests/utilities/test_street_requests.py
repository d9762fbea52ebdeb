"""The street utility's cancel/replace requests by venue ClOrdID: a bounded cache of its log.
A request pushed out of the cache is read back from the log, so a replaced order's later
reports still carry the replace's ClOrdIDs however long it rests."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from fixgw.config import SessionID
from replication.hlc import HybridLogicalClock
from replication.node import ReplicationNode
from replication.record import Record, RecordType, Role
from utilities import street_state
from utilities.liveness import Liveness
from utilities.routing import Command
from utilities.street import StreetUtility


async def test_requests_beyond_the_cache_are_read_back_from_the_log(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(street_state, "REQUEST_LIMIT", 2)
    async with ReplicationNode(node_id="ssu1", role=Role.STREET, cluster="t", data_dir=tmp_path, mqtt=False) as node:
        for i, kind in enumerate((RecordType.REPLACE_SENT, RecordType.CANCEL_SENT, RecordType.REPLACE_SENT)):
            await node.append(type=kind, txn="cfu1-0.1", status="E", account="ACC1", symbol="AAPL", side="1",
                              order_qty=Decimal(100 + i), cl_ord_id=f"C{i + 2}", orig_cl_ord_id=f"C{i + 1}",
                              extra={"street": "ssu1", "venue_cl_ord_id": f"cfu1-0.1~{i}"})
        street = StreetUtility(node=node, node_name="ssu1", venues={}, peers=(), liveness=Liveness(3.0))
        street.load()
        assert list(street.requests) == ["cfu1-0.1~1", "cfu1-0.1~2"]   # the oldest went first
        oldest = street._request_of("cfu1-0.1~0")
        assert oldest is not None and oldest.type is RecordType.REPLACE_SENT
        assert (oldest.cl_ord_id, oldest.orig_cl_ord_id, oldest.order_qty) == ("C2", "C1", Decimal(100))
        assert len(street.requests) == 2 and "cfu1-0.1~0" in street.requests   # cached again, still bounded
        assert street._request_of("cfu1-0.1") is None        # the order's own id names no request
        assert street._request_of("cfu1-0.1~9") is None      # a request this log never held


async def test_a_customer_order_sent_again_under_another_txn_is_not_sent_twice(tmp_path: Path) -> None:
    """A paused customer utility's order and its successor's copy (the customer's PossDup resend):
    two txns, one client ClOrdID. The first goes to the venue; the second is recorded rejected
    (superseded), not sent, and no customer utility reports it."""
    clock = HybridLogicalClock("cfu1")

    def order(origin: str, txn: str) -> Record:
        return Record(origin=origin, seq=7, txn=txn, type=RecordType.ORDER, status="A", hlc=clock.now(),
                      account="ACC1", symbol="AAPL", side="1", order_qty=Decimal(1), price=Decimal(150),
                      ord_type="2", tif="0", venue="exchange", session="CLIENT1", cl_ord_id="1-54")

    first, again = order("cfu2", "cfu2-0.7"), order("cfu1", "cfu1-0.9")
    async with ReplicationNode(node_id="ssu1", role=Role.STREET, cluster="t", data_dir=tmp_path, mqtt=False) as node:
        sid = SessionID("FIX.4.4", "S", "EXCH")
        street = StreetUtility(node=node, node_name="ssu1", venues={"exchange": sid},
                               peers=(), liveness=Liveness(3.0))
        street.load()
        # starting: the engine has not created the session to the venue yet: nothing is done
        # (no SENT record that could not go out); the router repeats the command
        await street._new_order(first, Command(b""))
        assert node.log.records_for_txn("cfu2-0.7") == [] and street.counters["not_ready"] == 1
        await street.on_create(sid)
        await street._new_order(first, Command(b""))
        await street._new_order(again, Command(b""))
        assert [r.type for r in node.log.records_for_txn("cfu2-0.7")] == [RecordType.SENT]
        (rej,) = node.log.records_for_txn("cfu1-0.9")
        assert rej.type is RecordType.VENUE_REJECT and rej.extra["superseded"] == "cfu2-0.7"
        assert street.counters["sent"] == 1 and street.counters["superseded"] == 1
        await street._new_order(again, Command(b""))     # the router repeats it: still not sent
        assert street.counters["sent"] == 1 and len(node.log.records_for_txn("cfu1-0.9")) == 1
